"""Writing files so that a crash never leaves a torn one (a temporary file in the same folder,
then a rename over the destination), with the mode the umask gives a new file, and checking an
output path before any work so that a run never fails at its end, or replaces what it should
not."""

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write_bytes(dest, payload):
    """Write `payload` to `dest` through a temporary file and a rename."""
    with atomic_output(dest) as f:
        f.write(payload)


class atomic_output:
    """Context manager yielding a binary file that replaces `dest` only when the block succeeds.
    The file gets the mode of any new file (0666 less the umask); errors name `dest`, never the
    temporary file."""

    def __init__(self, dest):
        self.dest = Path(dest)

    def __enter__(self):
        with _errors_naming(self.dest):
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            fd, self.tmp = tempfile.mkstemp(prefix=f".{self.dest.name}.", suffix=".tmp",
                                            dir=self.dest.parent)
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes it 0600
        self.file = os.fdopen(fd, "wb")
        return self.file

    def __exit__(self, exc_type, exc, tb):
        try:
            with _errors_naming(self.dest):
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


@contextlib.contextmanager
def _errors_naming(path):
    """Re-raise an OSError as the same error about `path` (not a temporary file or a folder)."""
    try:
        yield
    except OSError as e:
        if e.errno is None:
            raise
        raise type(e)(e.errno, e.strerror, str(path)) from None


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_output(path, flag, kind, recognize):
    """Fail before any work unless `path` can be written and replacing it loses nothing: it does
    not exist, or `recognize(path)` says it is `kind` (a file this program wrote).

    flag: how the user named the path (e.g. "--out"), for the messages, which name the user's
    path. Raises ValueError."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{flag} {path} is a directory, not a file")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:  # atomic_output creates the rest
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"{flag} {path}: {folder} is a file, not a directory")
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        raise ValueError(f"cannot write {flag} {path}: {e.strerror or e}") from None
    if (path.exists() or path.is_symlink()) and not recognize(path):
        raise ValueError(f"{flag} {path} exists and is not {kind}: it is left as it is; "
                         f"choose another path")
