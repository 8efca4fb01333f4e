"""Writing files so that a crash never leaves a torn one: a temporary file in the same folder,
then a rename over the destination."""

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(dest, payload):
    """Write `payload` to `dest` through a temporary file and a rename."""
    with atomic_output(dest) as f:
        f.write(payload)


class atomic_output:
    """Context manager yielding a binary file that replaces `dest` only when the block succeeds."""

    def __init__(self, dest):
        self.dest = Path(dest)

    def __enter__(self):
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.dest.name}.", suffix=".tmp",
                                        dir=self.dest.parent)
        self.file = os.fdopen(fd, "wb")
        return self.file

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.file.flush()
                os.fsync(self.file.fileno())
            self.file.close()
            if exc_type is None:
                os.replace(self.tmp, self.dest)
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)
        return False
