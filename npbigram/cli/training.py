"""`npbigram train` and `npbigram sample`."""

import sys

import numpy as np

from .. import preflight
from ..checkpoint import load_checkpoint, save_checkpoint
from ..data.prepared import load_training_data
from ..randomness.streams import RNGS
from ..run import run_training, write_metrics
from ..tools import optimum, plots
from ..train import TrainConfig, Trainer, TrainingDiverged
from ..utils import stopping
from ..utils.checks import SettingError
from ..utils.files import atomic_write_bytes
from .common import (
    SAMPLE_SEPARATOR,
    CommandError,
    add_checkpoint_flag,
    check_out,
    checkpoint_tokenizer,
    require_at_least,
    write_generated,
)
from .config import add_settings_flags, as_given, given_settings, print_config, read_config
from .run_setup import Outputs, new_config, resumed_config, training_data

SAMPLE_CHARS = TrainConfig.sample_tokens  # bigram.py's sample, and sample's default


def add_train_parser(sub):
    p = sub.add_parser("train", help="train a bigram model (defaults: bigram.py's job)",
                       description="Train a bigram model. Defaults reproduce bigram.py.")
    add_settings_flags(p)
    p.set_defaults(run=run_train)


def run_train(args):
    """Train as the flags and the --config file say; a bad setting is an error naming its flag
    (given on the command line) or its key and the file."""
    file = read_config(args.config) if args.config is not None else {}
    try:
        return _run_train(args, *given_settings(args, file))
    except SettingError as e:
        raise as_given(e, args, file) from None


def _run_train(args, options, given):
    if args.print_config:
        return print_config(args, options, given)
    if args.checkpoint is not None:
        raise CommandError(f"--checkpoint {args.checkpoint} goes with --print-config (the "
                           f"settings of the run that wrote it); to continue that run, use "
                           f"--resume {args.checkpoint}")
    checkpoint = load_checkpoint(options.resume) if options.resume else None
    config = (new_config(given) if checkpoint is None else
              resumed_config(checkpoint, options.resume, given, options.tokenizer))
    data = None
    if checkpoint is not None:
        data = training_data(options, checkpoint)  # the recorded text, checked unchanged
        if config.max_iters <= checkpoint.step:
            print(f"{options.resume} is at step {checkpoint.step}, and --max-iters "
                  f"{config.max_iters} asks for no more: nothing to do (raise --max-iters to "
                  f"train on)")
            return 0
    if options.threads is not None:
        from ..engine.runtime import set_threads  # imports numba

        set_threads(options.threads)
    with Outputs(options) as outputs:  # checked and locked until the run ends
        return _train(options, checkpoint, config, data, outputs)


def _train(options, checkpoint, config, data, outputs):
    """Run the training the flags describe, into outputs; returns the exit status."""
    if checkpoint is None:
        data = training_data(options, None)
    data_path, data_record, tokenizer_kind = data
    preflight.check_text(data_path, tokenizer_kind)
    tokenizer, splits, counts = load_training_data(data_path, tokenizer_kind)
    if checkpoint is not None and checkpoint.tokenizer.to_json() != tokenizer.to_json():
        raise CommandError(f"{options.resume} was trained with another vocabulary than "
                           f"{data_path}")
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
        check_out(args.out, args.force, "a file", lambda path: True)
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
