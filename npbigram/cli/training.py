"""`npbigram train` and `npbigram sample`."""

import os
import sys

import numpy as np

from .. import preflight
from ..checkpoint import load_checkpoint, save_checkpoint
from ..data.download import DEFAULT_DATA_PATH
from ..data.prepared import load_training_data
from ..engine import BACKENDS, GRAD_METHODS
from ..model import INITS
from ..optim import OPTIMIZERS
from ..randomness.streams import RNGS
from ..run import run_training, write_metrics
from ..tools import optimum, plots
from ..train import (
    EVAL_MODES,
    FULL_BATCH_DEFAULTS,
    TrainConfig,
    Trainer,
    TrainingDiverged,
)
from ..utils import stopping
from ..utils.files import atomic_write_bytes, check_output
from .common import (
    SAMPLE_SEPARATOR,
    CommandError,
    add_checkpoint_flag,
    add_tokenizer_flag,
    checkpoint_tokenizer,
    flag,
    in_flag_words,
    require_at_least,
    write_generated,
)
from .config import add_config_flags, print_config
from .run_setup import (
    DEFAULT_OUT,
    FLAGS_ON_RESUME,
    Outputs,
    new_config,
    resumed_config,
    training_data,
)

SAMPLE_CHARS = TrainConfig.sample_tokens  # bigram.py's sample, and sample's default

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
    "sample_tokens": (int, None, "tokens of the sample printed at the end (0: no sample)"),
    "snapshots": (int, None, "keep the table W at up to this many evaluations in the "
                             "checkpoint, spread over the run (for npbigram explore's slider)"),
}
SWITCHES = {  # boolean flags -> help
    "nesterov": "Nesterov momentum for SGD (needs --momentum, no dampening), as torch.optim.SGD",
}
# how TrainConfig and the Trainer name the settings in their errors -> the flags typed
FLAG_WORDS = {"learning rate": "--lr",
              **{name: flag(name) for name in [*TRAIN_FLAGS, "full_batch"] if "_" in name}}


def add_train_parser(sub):
    p = sub.add_parser("train", help="train a bigram model (defaults: bigram.py's job)",
                       description="Train a bigram model. Defaults reproduce bigram.py.")
    p.add_argument("--data", metavar="PATH",
                   help="text file to train on, or a folder written by npbigram prepare "
                        f"(default: {DEFAULT_DATA_PATH}, downloaded if missing; with --resume, "
                        "the data the checkpoint recorded)")
    add_tokenizer_flag(p, default=None)
    defaults = TrainConfig()
    for name, (type_, choices, help_) in TRAIN_FLAGS.items():
        default = getattr(defaults, name)
        shown = "" if default is None else f" (default: {default})"
        p.add_argument(flag(name), type=type_, choices=choices, default=None,
                       help=help_ + shown)
    for name, help_ in SWITCHES.items():
        p.add_argument(flag(name), action="store_true", default=None, help=help_)
    p.add_argument("--full-batch", action="store_true", default=None,
                   help="every step takes the exact gradient of the whole train split, from its "
                        "pair counts; unless given, " + ", ".join(
                            f"{flag(name)} {value}" for name, value in FULL_BATCH_DEFAULTS.items()))
    p.add_argument("--threads", type=int, metavar="N",
                   help="threads of the numba engine (default: every core, or NUMBA_NUM_THREADS); "
                        "results are identical for any N")
    p.add_argument("--out", metavar="PATH",
                   help=f"checkpoint written at every evaluation and at the end (default: the "
                        f"--resume checkpoint, else {DEFAULT_OUT}); the one with the lowest val "
                        f"loss is kept beside it as NAME.best.npz. A new run never replaces a "
                        f"checkpoint unless --force, nor any other file")
    p.add_argument("--force", action="store_true",
                   help="let a new run replace the checkpoint (and best checkpoint) of another")
    p.add_argument("--resume", metavar="PATH",
                   help="continue the run of this checkpoint, on the data it recorded, with its "
                        f"settings and history (it may change {', '.join(FLAGS_ON_RESUME)})")
    p.add_argument("--plot", metavar="PATH",
                   help="write train and val loss against step, with the optimum, to this PNG")
    p.add_argument("--log", metavar="PATH",
                   help="write every evaluation to this CSV file: step, train loss, val loss, "
                        "elapsed seconds")
    add_config_flags(p)
    p.set_defaults(run=run_train)


def run_train(args):
    require_at_least(args.threads, "--threads", 1)
    given = {name: getattr(args, name) for name in [*TRAIN_FLAGS, *SWITCHES, "full_batch"]
             if getattr(args, name) is not None}
    if args.print_config:
        with in_flag_words(FLAG_WORDS):
            return print_config(args, given)
    if args.checkpoint is not None:
        raise CommandError(f"--checkpoint {args.checkpoint} goes with --print-config (the "
                           f"settings of the run that wrote it); to continue that run, use "
                           f"--resume {args.checkpoint}")
    checkpoint = load_checkpoint(args.resume) if args.resume else None
    with in_flag_words(FLAG_WORDS):
        config = (new_config(given) if checkpoint is None else
                  resumed_config(checkpoint, args.resume, given, args.tokenizer))
    data = None
    if checkpoint is not None:
        data = training_data(args, checkpoint)  # the recorded text, checked unchanged
        if config.max_iters <= checkpoint.step:
            print(f"{args.resume} is at step {checkpoint.step}, and --max-iters "
                  f"{config.max_iters} asks for no more: nothing to do (raise --max-iters to "
                  f"train on)")
            return 0
    if args.threads is not None:
        from ..engine.runtime import set_threads  # imports numba

        set_threads(args.threads)
    with Outputs(args) as outputs:  # checked and locked until the run ends
        return _train(args, checkpoint, config, data, outputs)


def _train(args, checkpoint, config, data, outputs):
    """Run the training the flags describe, into outputs; returns the exit status."""
    if checkpoint is None:
        data = training_data(args, None)  # may download tinyshakespeare
    data_path, data_record, tokenizer_kind = data
    preflight.check_text(data_path, tokenizer_kind)
    tokenizer, splits, counts = load_training_data(data_path, tokenizer_kind)
    if checkpoint is not None and checkpoint.tokenizer.to_json() != tokenizer.to_json():
        raise CommandError(f"{args.resume} was trained with another vocabulary than {data_path}")
    with in_flag_words(FLAG_WORDS):
        preflight.check_training(config, tokenizer.vocab_size)
        trainer = Trainer(config, None, tokenizer.vocab_size, splits=splits, counts=counts)
    if checkpoint is not None:
        trainer.restore(checkpoint)
        print(f"resumed from step {trainer.step}")
    outputs.start()
    saved_step = checkpoint.step if outputs.in_place else None  # what outputs.out holds

    def save(best):
        nonlocal saved_step
        kwargs = trainer.checkpoint_kwargs(tokenizer, data=data_record)
        save_checkpoint(outputs.out, trainer.model, **kwargs)
        saved_step = trainer.step
        if best:
            save_checkpoint(outputs.best, trainer.model, **kwargs)

    def after_evaluation():
        if outputs.log:
            write_metrics(outputs.log, trainer.history)

    try:
        outcome = run_training(trainer, save, after_evaluation=after_evaluation)
    except TrainingDiverged as e:
        raise CommandError(f"{e}; stopped without saving it, the last good checkpoint "
                           f"is {outputs.out}") from None
    except OSError as e:  # a disk full, or made read-only, during the run
        kept = (f"{outputs.out} holds step {saved_step}: continue with --resume {outputs.out}"
                if saved_step is not None else "no checkpoint of it was saved")
        raise CommandError(f"{e}. The run stopped at step {trainer.step}; {kept}") from None
    if outcome.stop_signal:
        if outputs.plot:
            plots.plot_training(trainer, outputs.plot)
        print(f"{stopping.describe(outcome.stop_signal)} at step {trainer.step}: checkpoint "
              f"saved to {outputs.out}; continue with --resume {outputs.out}", file=sys.stderr)
        return stopping.exit_status(outcome.stop_signal)

    if config.sample_tokens:
        sample = trainer.model.generate(np.full((1, 1), tokenizer.start_id, dtype=np.int64),
                                        config.sample_tokens, sampler=trainer.stream.sampler())
        write_generated(tokenizer.decode_bytes(sample[0]) + b"\n")
    print(f"{timing(trainer, outcome)}; checkpoint: {outputs.out}")
    if trainer.history:
        best = min(trainer.history, key=lambda evaluation: evaluation["val"])
        print(f"best val loss {best['val']:.4f} at step {best['step']}: {outputs.best}")
    print(optimum.distance_from_floor(trainer.model.weight, trainer.split_counts()["train"]))
    if outputs.plot:
        plots.plot_training(trainer, outputs.plot)
        print(f"loss plot: {outputs.plot}")
    return 0


def timing(trainer, outcome):
    """'trained N steps in S s (R tokens/s)': the time of the training steps only (not the
    kernels' compilation or the evaluations). A full-batch step's gradient covers every train
    pair through their counts, so its rate is pairs of gradient evaluation, not tokens read."""
    steps, seconds = outcome.steps, outcome.train_seconds
    if steps == 0 or seconds <= 0:
        return f"trained {steps} steps"
    rate = steps * trainer.tokens_per_step() / seconds
    if trainer.config.full_batch:
        return (f"trained {steps} steps in {seconds:.3f} s ({rate:,.0f} pairs/s of gradient "
                f"evaluation: each step's gradient is exact over all "
                f"{trainer.tokens_per_step():,} train pairs, from their counts)")
    return f"trained {steps} steps in {seconds:.3f} s ({rate:,.0f} tokens/s)"


def add_sample_parser(sub):
    p = sub.add_parser("sample", help="generate text from a checkpoint")
    add_checkpoint_flag(p)
    p.add_argument("--max-new-tokens", type=int, default=SAMPLE_CHARS,
                   help=f"tokens to generate per sample (default: {SAMPLE_CHARS})")
    p.add_argument("--prompt", default=None,
                   help="text to continue (default: the tokenizer's start: token 0 for char, "
                        "as bigram.py; a newline for byte)")
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
    p.add_argument("--out", metavar="FILE",
                   help="write the samples to FILE: raw bytes of a byte model, UTF-8 text of a "
                        "char model (on a terminal, control bytes are shown escaped)")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.set_defaults(run=run_sample)


def run_sample(args):
    require_at_least(args.num_samples, "--num-samples", 1)
    require_at_least(args.seed, "--seed", 0)
    require_at_least(args.top_k, "--top-k", 1)
    if args.out:
        if os.path.lexists(args.out) and not args.force:
            raise CommandError(f"--out {args.out} exists: replace it with --force, or choose "
                               f"another path")
        check_output(args.out, "--out", "a file", lambda path: True)
    checkpoint = load_checkpoint(args.checkpoint, backend="numpy")
    tokenizer = checkpoint_tokenizer(checkpoint, args.checkpoint, "its tokens cannot be decoded")
    if args.prompt:
        prompt = tokenizer.encode(args.prompt)
    else:
        prompt = np.array([tokenizer.start_id], dtype=np.int64)
    context = np.tile(prompt, (args.num_samples, 1))  # (N, T0)
    out = checkpoint.model.generate(context, args.max_new_tokens,
                                    sampler=RNGS[args.rng].seeded_sampler(args.seed),
                                    temperature=args.temperature, top_k=args.top_k)
    payload = SAMPLE_SEPARATOR.join(tokenizer.decode_bytes(row) for row in out) + b"\n"
    if args.out:
        atomic_write_bytes(args.out, payload)
        print(f"wrote {args.num_samples} sample{'s' * (args.num_samples > 1)} to {args.out}")
    else:
        write_generated(payload)
    return 0
