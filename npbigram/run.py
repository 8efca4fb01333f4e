"""The run loop of `npbigram train`, in one place: bigram.py's evaluation schedule (every
eval_interval steps, and a checkpoint then), training in chunks between evaluations, the
progress bar, the training time, and Ctrl-C.

The first Ctrl-C becomes a flag checked between chunks, so a checkpoint is never torn: the
run saves and stops. A second Ctrl-C interrupts at once.
"""

import signal
import sys
import time
from dataclasses import dataclass, field

from tqdm import tqdm

from .train import format_eval


@dataclass
class RunOutcome:
    history: list = field(default_factory=list)  # (step, {'train': loss, 'val': loss})
    train_seconds: float = 0.0  # time spent in training steps (evaluations excluded)
    steps: int = 0  # steps trained by this run
    interrupted: bool = False  # stopped by Ctrl-C (after saving)


def run_training(trainer, save, log=None):
    """Train `trainer` to config.max_iters: evaluate (log the line bigram.py prints, then
    save()) at every multiple of eval_interval, train in chunks between, save() at the end.
    Returns a RunOutcome; TrainingDiverged propagates, with the last good checkpoint saved."""
    log = log or (lambda line: tqdm.write(line, file=sys.stdout))
    config, outcome = trainer.config, RunOutcome()
    start_step = trainer.step
    with DeferredInterrupt() as interrupt, tqdm(
            total=config.max_iters, initial=trainer.step, desc="train", unit="step",
            file=sys.stderr, disable=not sys.stderr.isatty(), leave=False) as bar:
        while trainer.step < config.max_iters:
            if interrupt.requested:
                outcome.interrupted = True
                break
            if trainer.step % config.eval_interval == 0:
                outcome.history.append((trainer.step, trainer.evaluate()))
                log(format_eval(*outcome.history[-1]))
                save()
            # up to the next evaluation, in chunks that one compiled call runs
            steps = min(trainer.chunk_steps(), config.max_iters - trainer.step,
                        config.eval_interval - trainer.step % config.eval_interval)
            t0 = time.perf_counter()
            try:
                trainer.train_steps(steps)
            finally:
                outcome.train_seconds += time.perf_counter() - t0
                outcome.steps = trainer.step - start_step
            bar.update(steps)
    save()
    return outcome


class DeferredInterrupt:
    """Turn the first Ctrl-C into a flag checked between steps, so a checkpoint is never torn;
    a second Ctrl-C interrupts at once."""

    def __enter__(self):
        self.requested = False
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)
        return False
