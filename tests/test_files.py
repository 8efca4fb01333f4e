"""npbigram/files.py: atomic writes with the umask's mode, and output paths checked first."""

import errno
import os
import stat
import subprocess
import sys
import tempfile

import pytest
from hypothesis import strategies as st
from npbigram.utils.files import (
    OutputInUse,
    OutputLock,
    atomic_output,
    atomic_write_bytes,
    check_distinct,
    check_output,
    lock_beside,
)

any_text = st.text(st.characters(exclude_categories=()), min_size=1)  # lone surrogates too


def test_atomic_output_replaces_the_file_only_on_success(tmp_path):
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_output(dest) as f:
            f.write(b"half of the new")
            raise RuntimeError("boom")
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    with atomic_output(dest) as f:
        f.write(b"new")
    assert dest.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_files_get_the_mode_the_umask_gives(tmp_path, umask):
    """Checkpoints and PNGs were created 0600 whatever the umask."""
    previous = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "out.bin", b"data")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out.bin").stat().st_mode) == 0o666 & ~umask


def test_a_failed_write_names_the_destination_not_a_temporary_file(tmp_path, monkeypatch):
    """'[Errno 30] Read-only file system: '.../.l.png.osnqb7i4.tmp''."""
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / ".l.png.x.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(OSError) as failure:
        atomic_write_bytes(tmp_path / "l.png", b"data")
    assert str(failure.value) == (f"could not write {tmp_path / 'l.png'}: read-only file "
                                  f"system; no {tmp_path / 'l.png'} was created")


def test_check_output_names_the_flag_and_the_users_path(tmp_path, monkeypatch):
    """Checked before any work, never replacing a foreign file."""
    def never(path):
        raise AssertionError("only an existing file is recognized")

    check_output(tmp_path / "new" / "deeper" / "ckpt.npz", "--out", "a checkpoint", never)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("text")
    with pytest.raises(ValueError, match=r"--out .*corpus.txt exists and is not a checkpoint: "
                                         r"it is left as it is; choose another path"):
        check_output(corpus, "--out", "a checkpoint", lambda path: False)
    check_output(corpus, "--out", "a checkpoint", lambda path: True)
    with pytest.raises(ValueError, match=r"--out .*corpus.txt/ckpt.npz: .*corpus.txt is a file, "
                                         r"not a directory"):
        check_output(corpus / "ckpt.npz", "--out", "a checkpoint", never)
    with pytest.raises(ValueError, match=r"--plot .* is a directory, not a file"):
        check_output(tmp_path, "--plot", "a PNG image", never)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    with pytest.raises(ValueError, match=r"cannot write --plot .*l.png: Read-only file system"):
        check_output(tmp_path / "l.png", "--plot", "a PNG image", never)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt"]


def test_a_temporary_file_names_its_writer_and_a_dead_writers_is_removed(tmp_path):
    """A SIGKILL during a checkpoint write left a .NAME.npz.*.tmp forever, also across
    --resume."""
    dest = tmp_path / "ckpt.npz"
    with atomic_output(dest) as f:
        f.write(b"new")
        assert [p.name.split(".")[:4] for p in tmp_path.iterdir()] == [
            ["", "ckpt", "npz", str(os.getpid())]]
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True)
    dead, alive = int(finished.stdout), os.getppid()
    left = {name: tmp_path / name for name in [
        f".ckpt.npz.{dead}.k2_x9q0a.tmp",  # a killed writer's: removed
        f".ckpt.npz.{alive}.abcdefgh.tmp",  # a running writer's
        f".other.npz.{dead}.abcdefgh.tmp",  # another destination's
        f".ckpt.npz.{dead}.tmp", ".ckpt.npz.abcdefgh.tmp", "ckpt.npz.1.abc.tmp"]}  # not ours
    for path in left.values():
        path.write_bytes(b"partial")
    atomic_write_bytes(dest, b"newer")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["ckpt.npz", *list(left)[1:]])


@pytest.mark.parametrize("code, reason", [(errno.ENOSPC, "no space left on device"),
                                          (errno.EROFS, "read-only file system"),
                                          (errno.EACCES, "permission denied")])
def test_a_failed_write_says_what_failed_and_what_was_kept(tmp_path, monkeypatch, code, reason):
    """A full disk printed the raw '[Errno 28] No space left on device: ...'."""
    def fails(*args):
        raise OSError(code, os.strerror(code))

    dest = tmp_path / "ckpt.npz"
    dest.write_bytes(b"old")
    monkeypatch.setattr(os, "fsync", fails)
    with pytest.raises(OSError) as failure:
        atomic_write_bytes(dest, b"new", "the checkpoint")
    assert failure.value.errno == code
    assert str(failure.value) == (f"could not write the checkpoint {dest}: {reason}; the "
                                  f"previous {dest} is unchanged")
    with pytest.raises(OSError, match=rf"^could not write {tmp_path / 'new.npz'}: {reason}; no "
                                      rf"{tmp_path / 'new.npz'} was created$"):
        atomic_write_bytes(tmp_path / "new.npz", b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.npz"]
    assert dest.read_bytes() == b"old"


def test_a_full_disk_while_the_block_writes_is_a_failed_write(tmp_path):
    dest = tmp_path / "out.bin"
    with pytest.raises(OSError, match=rf"^could not write {dest}: no space left on device; no "):
        with atomic_output(dest) as f:
            f.write(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(FileNotFoundError):  # reading something else: not about dest
        with atomic_output(dest):
            open(tmp_path / "missing.txt", "rb")
    assert list(tmp_path.iterdir()) == []


def test_check_distinct_compares_files_not_names(tmp_path):
    """--out y.npz --log y.best.npz left the CSV in y.best.npz."""
    (tmp_path / "a.csv").write_text("x")
    os.link(tmp_path / "a.csv", tmp_path / "hard.csv")
    os.symlink(tmp_path / "later.png", tmp_path / "soft.png")
    check_distinct([("--out a.npz", tmp_path / "a.npz"), ("--log a.csv", tmp_path / "a.csv")])
    for other in [tmp_path / "hard.csv", tmp_path / "sub" / ".." / "a.csv"]:
        with pytest.raises(ValueError, match=r"^--plot .* is the same file as --log a.csv: every "
                                             r"output needs a path of its own$"):
            check_distinct([("--log a.csv", tmp_path / "a.csv"), (f"--plot {other}", other)])
    with pytest.raises(ValueError, match="is the same file as --plot"):
        check_distinct([("--plot", tmp_path / "later.png"), ("--log", tmp_path / "soft.png")])


def test_an_output_lock_refuses_a_second_holder_and_a_stale_lock_file_blocks_nobody(tmp_path):
    lock_file = lock_beside(tmp_path / "new" / "ckpt.npz")
    assert lock_file == tmp_path / "new" / ".ckpt.npz.lock"
    with OutputLock(lock_file, "--out ckpt.npz"):
        assert lock_file.read_text() == f"{os.getpid()}\n"
        with pytest.raises(OutputInUse, match=rf"^--out ckpt.npz is being written by another "
                                              rf"npbigram process \(PID {os.getpid()}\): wait "
                                              rf"for it to finish, or choose another path$"):
            with OutputLock(lock_file, "--out ckpt.npz"):
                pass
    assert list(tmp_path.iterdir()) == []  # the lock file and the folder made for it are gone
    lock_file.parent.mkdir()
    lock_file.write_text("999999999\n")  # left by a killed process
    with OutputLock(lock_file, "--out ckpt.npz"):
        assert lock_file.read_text() == f"{os.getpid()}\n"
    assert list(lock_file.parent.iterdir()) == []
