"""`npbigram train` and `npbigram sample`."""

import sys

import numpy as np

from .. import optimum, plots
from ..download import DEFAULT_DATA_PATH, ensure_dataset
from ..engine import BACKENDS, GRAD_METHODS
from ..model import INITS, load_checkpoint, save_checkpoint
from ..optim import OPTIMIZERS
from ..prepared import load_training_data
from ..run import run_training
from ..streams import RNGS
from ..train import EVAL_MODES, FULL_BATCH_DEFAULTS, TrainConfig, Trainer, TrainingDiverged
from .common import CommandError, add_tokenizer_flag

SAMPLE_CHARS = 500

TRAIN_FLAGS = {  # flag -> (type, choices, help); defaults come from TrainConfig (bigram.py's)
    "batch_size": (int, None, "sequences per batch B"),
    "block_size": (int, None, "tokens per sequence T"),
    "max_iters": (int, None, "training steps"),
    "eval_interval": (int, None, "evaluate every this many steps"),
    "eval_iters": (int, None, "batches per loss estimate"),
    "lr": (float, None, "learning rate"),
    "optimizer": (str, tuple(OPTIMIZERS), "optimizer"),
    "momentum": (float, None, "SGD momentum, as torch.optim.SGD"),
    "dampening": (float, None, "SGD dampening of the momentum, as torch.optim.SGD"),
    "weight_decay": (float, None, "weight decay (torch's defaults: AdamW 0.01, SGD 0)"),
    "init": (str, INITS, "weight init: N(0,1) like nn.Embedding, or zeros (loss exactly ln V)"),
    "seed": (int, None, "random seed"),
    "dtype": (str, ("float32", "float64"), "floating-point type"),
    "backend": (str, BACKENDS, "compute backend"),
    "eval": (str, EVAL_MODES, "estimate over eval_iters batches, or exact over whole splits"),
    "grad": (str, GRAD_METHODS, "the batch gradient per position, or (the same numbers, "
                                "faster) from the batch's pair counts"),
    "rng": (str, tuple(RNGS), "random numbers from NumPy's generators, or PyTorch's CPU "
                              "generator in bigram.py's order (the lecture's numbers)"),
}
SWITCHES = {  # boolean flags -> help
    "nesterov": "Nesterov momentum for SGD (needs --momentum, no dampening), as torch.optim.SGD",
}


def add_train_parser(sub):
    p = sub.add_parser("train", help="train a bigram model (defaults: bigram.py's job)",
                       description="Train a bigram model. Defaults reproduce bigram.py.")
    p.add_argument("--data", metavar="PATH",
                   help="text file to train on, or a folder written by npbigram prepare "
                        f"(default: {DEFAULT_DATA_PATH}, downloaded if missing)")
    add_tokenizer_flag(p, default=None)
    defaults = TrainConfig()
    for name, (type_, choices, help_) in TRAIN_FLAGS.items():
        default = getattr(defaults, name)
        shown = "" if default is None else f" (default: {default})"
        p.add_argument("--" + name.replace("_", "-"), type=type_, choices=choices, default=None,
                       help=help_ + shown)
    for name, help_ in SWITCHES.items():
        p.add_argument("--" + name, action="store_true", default=None, help=help_)
    p.add_argument("--full-batch", action="store_true", default=None,
                   help="every step takes the exact gradient of the whole train split, from its "
                        "pair counts; unless given, " + ", ".join(
                            f"--{k.replace('_', '-')} {v}" for k, v in FULL_BATCH_DEFAULTS.items()))
    p.add_argument("--threads", type=int, metavar="N",
                   help="threads of the numba engine (default: every core, or NUMBA_NUM_THREADS); "
                        "results are identical for any N")
    p.add_argument("--out", default="ckpt.npz", metavar="PATH",
                   help="checkpoint written at every evaluation and at the end (default: ckpt.npz)")
    p.add_argument("--resume", metavar="PATH",
                   help="continue from a checkpoint; its settings apply unless given again")
    p.add_argument("--plot", metavar="PATH",
                   help="write train and val loss against step, with the optimum, to this PNG")
    p.set_defaults(run=run_train)


def run_train(args):
    if args.plot:
        plots.check_plot_path(args.plot)
    data_path = args.data if args.data is not None else ensure_dataset()
    tokenizer, splits, counts = load_training_data(data_path, args.tokenizer)
    given = {name: getattr(args, name) for name in [*TRAIN_FLAGS, *SWITCHES]
             if getattr(args, name) is not None}
    if args.full_batch:
        given = {**FULL_BATCH_DEFAULTS, **given, "full_batch": True}
    if args.threads is not None:
        from ..engine.runtime import set_threads  # imports numba

        set_threads(args.threads)
    checkpoint = load_checkpoint(args.resume) if args.resume else None
    if checkpoint is not None:
        if checkpoint.tokenizer is None or checkpoint.tokenizer.to_json() != tokenizer.to_json():
            raise CommandError(f"{args.resume} was trained with another vocabulary than "
                               f"{data_path}")
        config = TrainConfig.from_dict({**checkpoint.config, **given})
    else:
        config = TrainConfig(**given)
    trainer = Trainer(config, None, tokenizer.vocab_size, splits=splits, counts=counts)
    if checkpoint is not None:
        trainer.restore(checkpoint)

    def save():
        save_checkpoint(args.out, trainer.model, **trainer.checkpoint_kwargs(tokenizer))

    try:
        outcome = run_training(trainer, save)
    except TrainingDiverged as e:
        raise CommandError(f"{e}; stopped without saving it, the last good checkpoint "
                           f"is {args.out}") from None
    if outcome.interrupted:
        if args.plot:
            plots.plot_training(trainer, outcome.history, args.plot)
        print(f"interrupted at step {trainer.step}: checkpoint saved to {args.out}; "
              f"continue with --resume {args.out}", file=sys.stderr)
        return 130

    sample = trainer.model.generate(np.zeros((1, 1), dtype=np.int64), SAMPLE_CHARS,
                                    sampler=trainer.random.sampler())
    print(tokenizer.decode(sample[0]))
    tokens = outcome.steps * trainer.tokens_per_step()
    seconds = outcome.train_seconds
    rate = tokens / seconds if seconds > 0 else float("nan")
    print(f"trained {outcome.steps} steps in {seconds:.3f} s ({rate:,.0f} tokens/s); "
          f"checkpoint: {args.out}")
    print(optimum.distance_from_floor(trainer.model.weight, trainer.split_counts()["train"]))
    if args.plot:
        plots.plot_training(trainer, outcome.history, args.plot)
        print(f"loss plot: {args.plot}")
    return 0


def add_sample_parser(sub):
    p = sub.add_parser("sample", help="generate text from a checkpoint")
    p.add_argument("--checkpoint", required=True, metavar="PATH",
                   help="checkpoint written by npbigram train")
    p.add_argument("--max-new-tokens", type=int, default=SAMPLE_CHARS,
                   help=f"tokens to generate per sample (default: {SAMPLE_CHARS})")
    p.add_argument("--prompt", default=None,
                   help="text to continue (default: token 0, as bigram.py)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="divide the logits by this before softmax (default: 1.0)")
    p.add_argument("--top-k", type=int, default=None,
                   help="sample only among the K most likely tokens")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed (default: fresh randomness; with --rng torch, "
                        "torch's default seed)")
    p.add_argument("--rng", choices=tuple(RNGS), default="numpy",
                   help="draw as NumPy (default), or as torch.multinomial from PyTorch's "
                        "generator")
    p.add_argument("--num-samples", type=int, default=1,
                   help="independent samples, generated as one batch (default: 1)")
    p.set_defaults(run=run_sample)


def run_sample(args):
    checkpoint = load_checkpoint(args.checkpoint)
    tokenizer = checkpoint.tokenizer
    if tokenizer is None:
        raise CommandError(f"{args.checkpoint} holds no tokenizer, so its tokens cannot be decoded")
    if args.num_samples < 1:
        raise CommandError(f"--num-samples must be at least 1, got {args.num_samples}")
    if args.prompt:
        prompt = tokenizer.encode(args.prompt)
    else:
        prompt = np.zeros(1, dtype=np.int64)
    context = np.tile(prompt, (args.num_samples, 1))  # (N, T0)
    out = checkpoint.model.generate(context, args.max_new_tokens,
                                    sampler=RNGS[args.rng].seeded_sampler(args.seed),
                                    temperature=args.temperature, top_k=args.top_k)
    for i, row in enumerate(out):
        if i:
            print("-" * 40)
        print(tokenizer.decode(row))
    return 0
