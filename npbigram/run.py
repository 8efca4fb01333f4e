"""The run loop of `npbigram train`: bigram.py's evaluation schedule with a checkpoint at each
evaluation, training in chunks between, progress, timing, and stop signals (DeferredInterrupt).
The kernels are compiled (or loaded from the JIT cache) before the timed loop.
"""

import csv
import io
import sys
import time
from dataclasses import dataclass

from tqdm import tqdm

from .utils import stopping
from .utils.files import atomic_write_bytes, file_head
from .utils.progress import Progress

METRICS_COLUMNS = ("step", "train_loss", "val_loss", "elapsed_seconds")


@dataclass
class RunOutcome:
    train_seconds: float = 0.0  # time spent in training steps (compilation, evaluations excluded)
    steps: int = 0  # steps trained by this run
    stop_signal: int = 0  # the signal that stopped the run (after saving), 0 if none
    compile_seconds: float = 0.0  # preparing the kernels before training
    compiled: int = 0  # kernels compiled then (0: all loaded from the JIT cache)


def run_training(trainer, save, log=None, after_evaluation=None):
    """Train `trainer` to config.max_iters: at every multiple of eval_interval and at the last
    step, evaluate (once per step), log bigram.py's line, save(best) (best: the lowest val loss
    so far), after_evaluation(); train in chunks between; save(False) at the end or on a stop
    signal. The last step's evaluation, which bigram.py does not make, leaves the stream as it
    found it for the sample. Returns a RunOutcome; TrainingDiverged propagates."""
    log = log or (lambda line: tqdm.write(line, file=sys.stdout))
    config, outcome = trainer.config, RunOutcome()
    start_step = trainer.step
    with DeferredInterrupt() as interrupt:
        # a signal during the compilation waits for it: numba's compiler holds locks
        started = time.perf_counter()
        outcome.compiled = trainer.warm_up()
        outcome.compile_seconds = time.perf_counter() - started
        if outcome.compiled:
            log(f"compiled kernels in {outcome.compile_seconds:.1f} s")
        with Progress(config.max_iters, "train", ("step", "steps"), initial=trainer.step) as bar:
            clock = Clock(trainer)
            after_loop = None  # the stream as bigram.py's is after its loop: for the sample
            while not interrupt.requested:
                last = trainer.step >= config.max_iters
                scheduled = last or trainer.step % config.eval_interval == 0
                if scheduled and not trainer.evaluated_now():
                    before = trainer.stream.get_state()
                    losses = evaluate(trainer, stop=lambda: interrupt.requested)
                    if losses is None:
                        break
                    if last:  # bigram.py never evaluates here; a longer run only on its schedule
                        after_loop = before
                        if trainer.step % config.eval_interval:
                            trainer.stream.set_state(before)
                    clock.tick()
                    best = trainer.record_evaluation(losses)
                    log(f"step {trainer.step}: train loss {losses['train']:.4f}, "  # bigram.py's
                        f"val loss {losses['val']:.4f}")
                    save(best)
                    if after_evaluation is not None:
                        after_evaluation()
                    continue
                if last:
                    break
                # up to the next evaluation, in chunks that one compiled call runs
                steps = min(trainer.chunk_steps(), config.max_iters - trainer.step,
                            config.eval_interval - trainer.step % config.eval_interval)
                t0 = time.perf_counter()
                try:
                    trainer.train_steps(steps)
                finally:
                    outcome.train_seconds += time.perf_counter() - t0
                    outcome.steps = trainer.step - start_step
                    clock.tick()
                bar.update(steps)
            outcome.stop_signal = interrupt.signum
            save(False)
    if after_loop is not None:
        trainer.stream.set_state(after_loop)
    return outcome


def evaluate(trainer, stop):
    """trainer.evaluate(stop), its progress shown when it draws batches."""
    if trainer.config.eval == "exact":
        return trainer.evaluate(stop)
    with Progress(2 * trainer.config.eval_iters, f"evaluating step {trainer.step}",
                  ("batch", "batches")) as bar:
        return trainer.evaluate(stop, progress=bar.update)


class Clock:
    """trainer.elapsed: the seconds of the run so far, continuing a resumed run's count."""

    def __init__(self, trainer):
        self.trainer, self.base, self.start = trainer, trainer.elapsed, time.perf_counter()

    def tick(self):
        self.trainer.elapsed = self.base + time.perf_counter() - self.start


class DeferredInterrupt:
    """Turn a stop signal (Ctrl-C, SIGTERM, SIGHUP) into a flag checked between chunks of work,
    so a checkpoint is never torn; `signum` is the first signal's (0: none)."""

    def __enter__(self):
        self.signum = 0
        self._previous = stopping.install(self._handle)
        return self

    @property
    def requested(self):
        return self.signum != 0

    def _handle(self, signum, frame):
        if self.requested:
            print("npbigram: stopping: saving the checkpoint first", file=sys.stderr)
        else:
            self.signum = signum

    def __exit__(self, *exc):
        stopping.restore(self._previous)
        return False


def write_metrics(path, history):
    """The evaluations as CSV: step, train loss, val loss, elapsed seconds."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(METRICS_COLUMNS)
    for evaluation in history:
        writer.writerow([evaluation["step"], f"{evaluation['train']:.6f}",
                         f"{evaluation['val']:.6f}", f"{evaluation['elapsed']:.3f}"])
    atomic_write_bytes(path, text.getvalue().encode())


def is_metrics_csv(path):
    """Whether `path` is a metrics CSV this program wrote (its header line says so)."""
    header = (",".join(METRICS_COLUMNS) + "\n").encode()
    return file_head(path, len(header)) == header
