"""Setting up a `npbigram train` run from its flags, before any work: its settings (a resumed
run's are its checkpoint's, with only the flags that may change), its data, and its outputs.
"""

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from ..checkpoint import is_checkpoint, read_meta
from ..data.provenance import describe_file, recorded_data
from ..data.tokenizers import TOKENIZERS
from ..run import is_metrics_csv
from ..tools import plots
from ..train import CHANGEABLE_ON_RESUME, FULL_BATCH_DEFAULTS, TrainConfig
from ..utils.checks import check_settings, setting
from ..utils.files import (
    OutputLock,
    atomic_write_bytes,
    check_distinct,
    check_output,
    lock_beside,
    same_file,
)
from .common import (
    TOKENIZER_HELP,
    CommandError,
    checkpoint_tokenizer,
    data_or_tinyshakespeare,
    flag,
)

DEFAULT_OUT = "ckpt.npz"
# flags that a resumed run accepts: the settings of CHANGEABLE_ON_RESUME, and where and how
# this run writes its outputs
FLAGS_ON_RESUME = (*map(flag, CHANGEABLE_ON_RESUME), "--out", "--plot", "--log", "--threads")
UNUSED_BECAUSE = {  # why TrainConfig.unused_settings() may name a setting
    "batch_size": "--full-batch with --eval exact samples no batches",
    "block_size": "--full-batch with --eval exact samples no batches",
    "eval_iters": "--eval exact evaluates the whole splits",
    "grad": "--full-batch takes the gradient from the train split's pair counts",
}


@dataclass
class RunOptions:
    """`npbigram train`'s flags besides TrainConfig's, declared as those are."""

    data: str = setting(None, "text file to train on, or a folder written by npbigram prepare "
                              "(default: tinyshakespeare, shipped in the package; with "
                              "--resume, the data the checkpoint recorded)", metavar="PATH")
    tokenizer: str = setting(None, TOKENIZER_HELP, choices=tuple(TOKENIZERS))
    threads: int = setting(None, "threads of the numba engine (default: every core, or "
                                 "NUMBA_NUM_THREADS); results are identical for any N",
                           minimum=1, metavar="N")
    out: str = setting(None, f"checkpoint written at every evaluation and at the end (default: "
                             f"the --resume checkpoint, else {DEFAULT_OUT}); the one with the "
                             f"lowest val loss is kept beside it as NAME.best.npz. A new run "
                             f"never replaces a checkpoint unless --force, nor any other file",
                       metavar="PATH")
    force: bool = setting(False, "let a new run replace the checkpoint (and best checkpoint) of "
                                 "another")
    resume: str = setting(None, f"continue the run of this checkpoint, on the data it recorded, "
                                f"with its settings and history (it may change "
                                f"{', '.join(FLAGS_ON_RESUME)})", metavar="PATH")
    plot: str = setting(None, "write train and val loss against step, with the optimum, to this "
                              "PNG", metavar="PATH")
    log: str = setting(None, "write every evaluation to this CSV file: step, train loss, val "
                             "loss, elapsed seconds", metavar="PATH")

    def __post_init__(self):
        check_settings(self)


def best_path(out):
    """Where the best checkpoint of a run writing `out` is kept: ckpt.npz -> ckpt.best.npz."""
    out = Path(out)
    return out.with_name(f"{out.stem}.best{out.suffix}")


def new_config(given, base=None):
    """A new run's TrainConfig: the settings `given` (name -> value) over `base` (a
    checkpoint's) or the --full-batch defaults; a setting given without effect is an error."""
    defaults = FULL_BATCH_DEFAULTS if base is None and given.get("full_batch") else {}
    config = TrainConfig(**{**defaults, **(base or {}), **given})
    unused = [name for name in config.unused_settings() if name in given]
    if unused:
        raise CommandError(f"{' and '.join(map(flag, unused))} would have no effect: "
                           f"{UNUSED_BECAUSE[unused[0]]}")
    return config


def resumed_config(checkpoint, resume, given, tokenizer):
    """The settings of the run `checkpoint` continues, with the changes CHANGEABLE_ON_RESUME
    allows; another setting given that differs from the checkpoint's is an error naming it."""
    if checkpoint.optimizer_state is None or checkpoint.rng_state is None:
        raise CommandError(f"--resume {resume} holds the weights without the optimizer's and "
                           f"the batch generator's state that a run continues from (a model "
                           f"exported as safetensors is for sampling and evaluating): resume "
                           f"from the run's .npz checkpoint, or start a new run")
    saved = TrainConfig.from_dict(checkpoint.config)
    conflicts = [(flag(name), value, getattr(saved, name)) for name, value in given.items()
                 if name not in CHANGEABLE_ON_RESUME and getattr(saved, name) != value]
    saved_tokenizer = checkpoint.tokenizer.kind if checkpoint.tokenizer else None
    if tokenizer is not None and tokenizer != saved_tokenizer:
        conflicts.append(("--tokenizer", tokenizer, saved_tokenizer))
    if conflicts:
        given_text = ", ".join(f"{name} {value}" for name, value, _ in conflicts)
        saved_text = ", ".join(f"{name} {value}" for name, _, value in conflicts)
        raise CommandError(f"{given_text}: {resume} was trained with {saved_text}, and a "
                           f"resumed run keeps its settings (it may change "
                           f"{', '.join(FLAGS_ON_RESUME)}); drop them, or start a new run")
    return TrainConfig.from_dict({**saved.to_dict(), **{
        name: value for name, value in given.items() if name in CHANGEABLE_ON_RESUME}})


def training_data(options, checkpoint):
    """(path of the text, its record for checkpoints, tokenizer kind): a new run's --data (or
    the packaged tinyshakespeare), or the text a resumed run recorded, checked unchanged."""
    if checkpoint is None:
        path = Path(data_or_tinyshakespeare(options.data))
        return path, describe_file(path), options.tokenizer
    tokenizer = checkpoint_tokenizer(checkpoint, options.resume, "it cannot continue training")
    if checkpoint.data is not None:
        path = recorded_data(checkpoint.data, options.resume, given=options.data)
        return path, checkpoint.data, tokenizer.kind
    if options.data is None:
        raise CommandError(f"{options.resume} does not record the text it was trained on: "
                           f"pass it with --data PATH")
    return Path(options.data), describe_file(options.data), tokenizer.kind


class Outputs:
    """The files a run writes (checkpoint, best checkpoint, plot, log), checked before any work
    and locked against another process until the block ends."""

    def __init__(self, options):
        self.out = Path(options.out or options.resume or DEFAULT_OUT)
        self.best = best_path(self.out)
        self.plot, self.log = options.plot, options.log
        self.resume = Path(options.resume) if options.resume else None
        # the run continues in its own checkpoint: its files are this run's to replace
        self.in_place = self.resume is not None and same_file(self.out, self.resume)
        named = [(f"--out {self.out}", self.out),
                 (f"the best checkpoint {self.best} of --out {self.out}", self.best),
                 (f"--plot {self.plot}", self.plot), (f"--log {self.log}", self.log)]
        named = [(name, path) for name, path in named if path]
        check_distinct(named)
        for path, name in ((self.out, "--out"), (self.best, "the best checkpoint of --out")):
            check_output(path, name, "an npbigram checkpoint", is_checkpoint)
        if self.plot:
            plots.check_plot_path(self.plot, "--plot")
        if self.log:
            check_output(self.log, "--log", "a metrics CSV written by npbigram", is_metrics_csv)
        self._locks = ExitStack()
        try:
            for name, path in named:
                self._locks.enter_context(OutputLock(lock_beside(path), name))
            self._refuse_another_runs_checkpoint(options.force)
        except BaseException:
            self._locks.close()
            raise

    def _refuse_another_runs_checkpoint(self, force):
        for path in (self.out, self.best):
            if path.exists() and not self.in_place and not force:
                raise CommandError(
                    f"{path} holds the checkpoint of another run (step "
                    f"{read_meta(path)['step']}): continue it with --resume {self.out}, choose "
                    f"another --out, or replace it with --force")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._locks.close()
        return False

    def start(self):
        """Before training: the best checkpoint beside --out is this run's, a copy of the
        resumed run's best, or none yet."""
        if self.in_place:
            return
        resumed_best = best_path(self.resume) if self.resume is not None else None
        if resumed_best is not None and resumed_best.exists():
            atomic_write_bytes(self.best, resumed_best.read_bytes(), "the best checkpoint")
        elif self.best.exists():  # another run's, replaced with --force
            self.best.unlink()
