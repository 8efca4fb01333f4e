"""npbigram/files.py: atomic writes with the umask's mode, and output paths checked first."""

import errno
import os
import stat
import tempfile

import pytest
from hypothesis import strategies as st
from npbigram.files import atomic_output, atomic_write_bytes, check_output

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
    assert str(failure.value) == f"[Errno 30] Read-only file system: '{tmp_path / 'l.png'}'"


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
