"""The signals that ask a command to stop, handled alike: Ctrl-C (SIGINT), SIGTERM (`kill`,
`docker stop`, Slurm, systemd) and SIGHUP (the terminal closed).

A command stops with status 128 + the signal's number, as a shell reports it. Outside the
training loop (npbigram.run.DeferredInterrupt, which saves first), the first signal raises
Stopped, a KeyboardInterrupt, so that every `finally` cleans up (StopRaiser).
"""

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

# signal -> what the command says it was
STOP_SIGNALS = {signal.SIGINT: "interrupted", signal.SIGTERM: "stopped by SIGTERM",
                signal.SIGHUP: "stopped by SIGHUP"}
RETRY_SECONDS = 2.0  # a command still running this long after a stop signal gets it again
RESEND_SECONDS = 0.01


class Stopped(KeyboardInterrupt):
    """A stop signal, raised where the command was."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def exit_status(signum):
    """The status of a command that the signal `signum` stopped: 128 + signum."""
    return 128 + signum


def signal_of(interrupt):
    """The signal a KeyboardInterrupt stands for: its own, or Ctrl-C's."""
    return getattr(interrupt, "signum", signal.SIGINT)


def describe(signum):
    return STOP_SIGNALS[signum]


def install(handler):
    """Set `handler` for every stop signal; returns the previous handlers, for restore()."""
    return {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}


def restore(previous):
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@contextmanager
def raising(afterwards=None):
    """Within the block, a stop signal raises Stopped where the program is (StopRaiser).
    Afterwards: the previous handlers, or `afterwards` for every stop signal."""
    raiser, previous_hook = StopRaiser(), sys.unraisablehook
    previous_handlers = install(raiser)

    def unraisable(report):
        if isinstance(report.exc_value, Stopped):
            raiser.send_again(report.exc_value.signum, RESEND_SECONDS)
        else:
            previous_hook(report)

    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        raiser.cancel()
        sys.unraisablehook = previous_hook
        if afterwards is None:
            restore(previous_handlers)
        else:
            install(afterwards)


class StopRaiser:
    """The stop signals' handler outside the training loop: raise Stopped; signals in the next
    RETRY_SECONDS only say 'stopping'. Python can lose an exception raised by a handler (in a
    __del__, reported to sys.unraisablehook, which `raising` makes resend it; in an attribute
    lookup from C code, silently), so a command still running then gets the signal again."""

    def __init__(self):
        self.raised_at, self.timer = None, None

    def __call__(self, signum, frame):
        now = time.monotonic()
        if self.raised_at is not None and now - self.raised_at < RETRY_SECONDS:
            print("npbigram: stopping", file=sys.stderr)
            return
        self.raised_at = now
        self.send_again(signum, RETRY_SECONDS + RESEND_SECONDS, rearm=False)
        raise Stopped(signum)

    def send_again(self, signum, delay, rearm=True):
        """Send this process `signum` after `delay` seconds (rearm: and raise it then)."""
        self.cancel()
        if rearm:
            self.raised_at = None
        self.timer = threading.Timer(delay, os.kill, (os.getpid(), signum))
        self.timer.daemon = True
        self.timer.start()

    def cancel(self):
        if self.timer is not None:
            self.timer.cancel()
