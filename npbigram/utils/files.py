"""Outputs: written through a temporary file and a rename, so a crash never leaves a torn one;
checked before any work; locked so that two processes never write one at once.

A temporary file is named .NAME.PID.RANDOM.tmp: one a killed write left is removed by the next
write to NAME once that PID no longer runs.
"""

import contextlib
import errno
import fcntl
import os
import re
import tempfile
from pathlib import Path

# errors of a write itself (not of reading what is written), reported as a failed write
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


class WriteError(OSError):
    """An output that could not be written: its message says which, why, and what was kept."""

    def __str__(self):
        return self.strerror


class OutputInUse(ValueError):
    """Another process holds the lock on an output."""


def atomic_write_bytes(dest, payload, what=""):
    """Write `payload` to `dest` through a temporary file and a rename."""
    with atomic_output(dest, what) as f:
        f.write(payload)


class atomic_output:
    """Context manager yielding a binary file that replaces `dest` only when the block succeeds,
    with a new file's mode. A failure raises WriteError naming `what` ("the checkpoint") and
    `dest`, and whether the previous file is unchanged or none was created."""

    def __init__(self, dest, what=""):
        self.dest, self.what = Path(dest), what

    def __enter__(self):
        with self._errors():
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.dest)
            fd, self.tmp = tempfile.mkstemp(prefix=f".{self.dest.name}.{os.getpid()}.",
                                            suffix=".tmp", dir=self.dest.parent)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes it 0600
        self.file = os.fdopen(fd, "wb")
        return self.file

    def __exit__(self, exc_type, exc, tb):
        try:
            with self._errors():
                if exc_type is None:
                    self.file.flush()
                    os.fsync(self.file.fileno())
                self.file.close()
                if exc_type is None:
                    os.replace(self.tmp, self.dest)
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:  # writing into the file
            raise self._failure(exc) from None
        return False

    @contextlib.contextmanager
    def _errors(self):
        try:
            yield
        except OSError as e:
            if e.errno is None:
                raise
            raise self._failure(e) from None

    def _failure(self, error):
        kept = (f"the previous {self.dest} is unchanged" if os.path.lexists(self.dest)
                else f"no {self.dest} was created")
        reason = (error.strerror or str(error)).lower()
        name = f"{self.what} {self.dest}" if self.what else str(self.dest)
        return WriteError(error.errno, f"could not write {name}: {reason}; {kept}")


def remove_stale_temporaries(dest):
    """Remove the temporary files of `dest` whose writer PID no longer runs."""
    pattern = re.compile(rf"\.{re.escape(dest.name)}\.(\d+)\.[a-z0-9_]+\.tmp")
    with os.scandir(dest.parent) as entries:
        stale = [entry.path for entry in entries
                 if (match := pattern.fullmatch(entry.name)) and not _running(int(match[1]))]
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _running(pid):
    """Whether process `pid` may still write (another user's process, or a number too large to
    be a PID, counts as running: its file is kept)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        pass
    return True


def check_output(path, flag, kind, recognize):
    """ValueError before any work unless `path` can be written and does not exist or
    `recognize(path)` says it is `kind` (a file this program wrote); flag: "--out"."""
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


def file_head(path, size):
    """The first `size` bytes of the file at `path` (b"" when it cannot be read): how this
    program recognizes a file it wrote."""
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError:
        return b""


def check_distinct(outputs):
    """ValueError before any work unless the outputs, (description, path) pairs such as
    ("--log m.csv", "m.csv"), are distinct files (links resolved)."""
    for i, (name, path) in enumerate(outputs):
        for other_name, other in outputs[:i]:
            if same_file(path, other):
                raise ValueError(f"{name} is the same file as {other_name}: every output "
                                 f"needs a path of its own")


def same_file(a, b):
    """Whether the paths a and b name one file (existing or not)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def lock_beside(path):
    """The lock file of the output `path`: .NAME.lock beside the file it names (links
    resolved, so that every name of one file has one lock)."""
    real = Path(os.path.realpath(path))
    return real.with_name(f".{real.name}.lock")


class OutputLock:
    """An exclusive lock on an output until the block ends: fcntl.flock on `lock_file`, which
    holds the holder's PID (the kernel releases a dead holder's flock). Folders created for it
    are removed on release if still empty. described: the output as messages name it ("--out
    ckpt.npz"). A held lock raises OutputInUse; a folder that cannot be written, ValueError."""

    def __init__(self, lock_file, described):
        self.lock_file, self.described = Path(lock_file), described

    def __enter__(self):
        self.created = []
        try:
            self.created = _make_folders(self.lock_file.parent)
            self.fd = self._acquire()
        except BaseException as e:
            self._remove_created()
            if isinstance(e, OSError):
                raise ValueError(f"cannot write {self.described}: {e.strerror or e}") from None
            raise
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())
        return self

    def _acquire(self):
        while True:
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                os.close(fd)
                raise OutputInUse(
                    f"{self.described} is being written by another npbigram process"
                    f"{f' (PID {holder})' if holder else ''}: wait for it to finish, or "
                    f"choose another path") from None
            if _is_open_as(fd, self.lock_file):
                return fd
            os.close(fd)  # its holder removed that file as we opened it: lock the new one

    def __exit__(self, *exc):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.lock_file)
        os.close(self.fd)
        self._remove_created()
        return False

    def _remove_created(self):
        for folder in self.created:
            with contextlib.suppress(OSError):
                folder.rmdir()


def _is_open_as(fd, path):
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _make_folders(folder):
    """Create `folder` and its missing parents; returns those created, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    created = []
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir()
            created.insert(0, folder)
    return created
