"""Progress of long work on stderr: a tqdm bar on a terminal (terminal_bar, the one set-up of
every bar the package shows); with Progress, on a pipe or a file, where a bar would be a stream
of carriage returns, a line at least every PROGRESS_SECONDS once the work has run that long
(work that ends sooner prints nothing), e.g.

    evaluating step 0: 40/400 batches, 12 s
"""

import sys
import time

from tqdm import tqdm

PROGRESS_SECONDS = 5.0


def terminal_bar(stream=None, **tqdm_kwargs):
    """A tqdm bar on `stream` (default: stderr) shown only when it is a terminal, and cleared
    when it closes; tqdm_kwargs: total=, desc=, unit=, ... as tqdm takes them."""
    stream = stream if stream is not None else sys.stderr
    return tqdm(file=stream, disable=not stream.isatty(), leave=False, **tqdm_kwargs)


class Progress:
    """A context manager; update(n) after each n units of work done. units: (singular,
    plural), e.g. ("batch", "batches")."""

    def __init__(self, total, desc, units, initial=0, stream=None, clock=time.monotonic):
        self.stream = stream if stream is not None else sys.stderr
        self.total, self.desc, self.units, self.done = total, desc, units, initial
        self.terminal = self.stream.isatty()
        self.clock = clock
        self.start = self.last_line = clock()
        self.bar = terminal_bar(self.stream, total=total, initial=initial, desc=desc,
                                unit=units[0])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()
        return False

    def update(self, n):
        self.done += n
        self.bar.update(n)
        now = self.clock()
        if not self.terminal and now - self.last_line >= PROGRESS_SECONDS:
            self.last_line = now
            print(f"{self.desc}: {self.done:,}/{self.total:,} {self.units[1]}, "
                  f"{now - self.start:.0f} s", file=self.stream, flush=True)
