"""What `python -m npbigram` does as a process of its own, which a library user's process does
not: after `train`, an exit that does not tear the interpreter's objects down one by one."""

import os
import sys


def exit_now(status):
    """Exit with `status` once stdout and stderr are flushed, skipping the interpreter's
    teardown (after a train run, the freeing of numba's types and compiled code one by one):
    the command has closed every file it wrote and runs no other thread or process by then."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        status = 141  # as a process that SIGPIPE ended
    sys.stderr.flush()
    os._exit(status)
