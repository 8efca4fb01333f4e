"""The seed job's warm process phase by phase (a child of suite.py):

    NPBIGRAM_PHASES_T0=<time.monotonic() of the parent> python benchmarks/phases.py TRAIN-ARGS...

runs `npbigram train TRAIN-ARGS` in this process as `python -m npbigram train` does (the same
imports, then npbigram.cli.main()) and times it phase by phase: each phase is the wall time
inside the functions it names, less the time of other phases nested in them, so the phases add
up to the process's time up to its exit. Its last stdout line is a JSON object: the phase
seconds in PHASES order, and the monotonic clock at the end (the parent adds the interpreter's
exit). A phase's time is the same call the job makes: nothing is called twice or in another
order.
"""

import time

STARTED = time.monotonic()  # before any import of this script's: the interpreter's start ends here

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from functools import wraps  # noqa: E402

T0_VARIABLE = "NPBIGRAM_PHASES_T0"
# phase -> what it times; the wrapped functions are in wrap_phases()
PHASES = {
    "interpreter start": "exec to the script's first line (Python's start-up, site)",
    "import numpy": "`import numpy`",
    "import numba": "`import numba` (with SciPy's version check when SciPy is installed)",
    "import npbigram": "`import npbigram.cli`: the package, its kernels' modules (not compiled)",
    "numba target initialisation": "numba's CPU target loading its registries "
                                   "(`CPUContext.load_additional_registries`), the first time "
                                   "a kernel is loaded",
    "JIT cache loads": "numba loading compiled kernels from its cache (`Cache.load_overload`)",
    "data: hash the text": "the SHA-256 checkpoints record (`describe_file`)",
    "data: read, encode, split": "`load_training_data`",
    "model and optimizer": "`Trainer(...)`",
    "warm-up besides the cache loads": "`Trainer.warm_up`, less its cache loads",
    "training": "`Trainer.train_steps`",
    "evaluation": "`Trainer.evaluate`",
    "checkpoint writes": "`save_checkpoint` (the last and the best checkpoint)",
    "sample": "`BigramLanguageModel.generate` and writing it",
    "distance from the optimum": "`optimum.distance_from_floor` (the train split's pair counts)",
    "the rest of the command": "argument parsing, output checks and locks, printing",
    "interpreter exit": "the command's return to the parent seeing the process end",
}


class Clock:
    """Exclusive times: time spent in a phase while another phase runs inside it counts only
    for the inner one."""

    def __init__(self):
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.stack = []  # [phase, start of its current stretch]

    def enter(self, phase):
        now = time.monotonic()
        if self.stack:
            outer, start = self.stack[-1]
            self.seconds[outer] += now - start
        self.stack.append([phase, now])

    def leave(self):
        phase, start = self.stack.pop()
        now = time.monotonic()
        self.seconds[phase] += now - start
        if self.stack:
            self.stack[-1][1] = now


CLOCK = Clock()


def timed(phase, function):
    @wraps(function)
    def wrapper(*args, **kwargs):
        CLOCK.enter(phase)
        try:
            return function(*args, **kwargs)
        finally:
            CLOCK.leave()

    return wrapper


def wrap(owner, name, phase):
    setattr(owner, name, timed(phase, getattr(owner, name)))


def wrap_phases():
    """Wrap the functions each phase times, where the command looks them up."""
    from numba.core import caching, cpu

    from npbigram import model, train
    from npbigram.cli import run_setup, training
    from npbigram.tools import optimum

    wrap(cpu.CPUContext, "load_additional_registries", "numba target initialisation")
    wrap(caching.Cache, "load_overload", "JIT cache loads")
    wrap(run_setup, "describe_file", "data: hash the text")
    wrap(training, "load_training_data", "data: read, encode, split")
    wrap(train.Trainer, "__init__", "model and optimizer")
    wrap(train.Trainer, "warm_up", "warm-up besides the cache loads")
    wrap(train.Trainer, "train_steps", "training")
    wrap(train.Trainer, "evaluate", "evaluation")
    wrap(training, "save_checkpoint", "checkpoint writes")
    wrap(model.BigramLanguageModel, "generate", "sample")
    wrap(training, "write_generated", "sample")
    wrap(optimum, "distance_from_floor", "distance from the optimum")


def main():
    seconds = CLOCK.seconds
    seconds["interpreter start"] = STARTED - float(os.environ[T0_VARIABLE])
    for phase, module in [("import numpy", "numpy"), ("import numba", "numba"),
                          ("import npbigram", "npbigram.cli")]:
        CLOCK.enter(phase)
        __import__(module)
        CLOCK.leave()
    wrap_phases()
    from npbigram.cli import main as npbigram_main
    from npbigram.cli import process

    def report(status):
        """The JSON line, when the command is done: before its exit (which may be os._exit)."""
        CLOCK.leave()
        print(json.dumps({"status": "ok" if status == 0 else f"exit status {status}",
                          "phases_s": seconds, "ended": time.monotonic()}), flush=True)

    exit_now = process.exit_now
    process.exit_now = lambda status: (report(status), exit_now(status))
    sys.argv = ["npbigram", "train", *sys.argv[1:]]
    CLOCK.enter("the rest of the command")
    status = npbigram_main()
    report(status)
    return status


if __name__ == "__main__":
    sys.exit(main())
