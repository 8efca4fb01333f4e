"""npbigram/engine/runtime.py: the thread count and the JIT cache's location."""

import os
import stat

import numba
import pytest
from npbigram.engine import runtime
from npbigram.engine.runtime import set_threads


def test_set_threads_checks_its_argument():
    with pytest.raises(ValueError, match="NUMBA_NUM_THREADS"):
        set_threads(numba.config.NUMBA_NUM_THREADS + 1)
    with pytest.raises(ValueError):
        set_threads(0)
    with pytest.raises(TypeError):
        set_threads(1.5)


def test_a_limit_of_one_thread_is_said_plainly(monkeypatch):
    """'threads must be between 1 and 1'."""
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 1)
    with pytest.raises(ValueError) as failure:
        set_threads(2)
    assert str(failure.value).startswith("threads must be 1, the limit NUMBA_NUM_THREADS sets")
    assert "between" not in str(failure.value)


@pytest.fixture
def package_read_only(monkeypatch, tmp_path):
    """The kernels' __pycache__ cannot be written, nor NUMBA_CACHE_DIR (none set), and XDG's
    cache is in tmp_path."""
    package_cache = str(runtime.KERNELS_DIR / "__pycache__")
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    real_writable = runtime._writable

    def writable(path):
        return str(path) != package_cache and real_writable(path)

    monkeypatch.setattr(runtime, "_writable", writable)
    return writable


def test_cache_falls_back_to_a_user_folder_when_the_package_is_read_only(package_read_only,
                                                                         monkeypatch, tmp_path):
    assert runtime._cache_location() == (str(tmp_path / "xdg" / "npbigram" / "numba"), True)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert runtime._cache_location() == (str(tmp_path / "mine"), True)
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setattr(runtime, "_writable", lambda path: False)
    monkeypatch.setattr(runtime, "_private_folder", lambda path: False)
    with pytest.warns(RuntimeWarning, match="set NUMBA_CACHE_DIR to a writable folder"):
        assert runtime._cache_location() == (None, False)


def test_a_cache_dir_that_cannot_be_written_is_reported_with_the_fix(package_read_only,
                                                                     monkeypatch, tmp_path):
    """A read-only NUMBA_CACHE_DIR silently recompiled in every run."""
    read_only = tmp_path / "read-only"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(read_only))
    monkeypatch.setattr(runtime, "_writable", lambda path: (
        path != read_only and package_read_only(path)))
    with pytest.warns(RuntimeWarning) as warned:
        location = runtime._cache_location()
    assert location == (str(tmp_path / "xdg" / "npbigram" / "numba"), True)
    assert len(warned) == 1
    assert str(warned[0].message) == (
        f"NUMBA_CACHE_DIR={read_only} is not writable (make it writable or unset it); compiled "
        f"kernels are cached in {tmp_path / 'xdg' / 'npbigram' / 'numba'} instead")


@pytest.fixture
def only_the_temporary_folder(package_read_only, monkeypatch, tmp_path):
    """Neither the package nor XDG's cache can be written; the temporary directory is tmp_path."""
    monkeypatch.setattr(runtime.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(runtime, "_writable", lambda path: (
        "xdg" not in str(path) and package_read_only(path)))
    return tmp_path / f"npbigram-numba-{os.getuid()}"


def test_the_temporary_cache_folder_is_created_private(only_the_temporary_folder):
    """It was created with exist_ok and the umask's mode."""
    assert runtime._cache_location() == (str(only_the_temporary_folder), True)
    assert stat.S_IMODE(only_the_temporary_folder.stat().st_mode) == 0o700


@pytest.mark.parametrize("planted", ["another user's", "group-writable", "a link"])
def test_a_temporary_cache_folder_another_user_could_write_is_refused(
        only_the_temporary_folder, monkeypatch, tmp_path, planted):
    """Numba's cache files are pickles; a folder another local user made
    first (or can write to) could hold their code."""
    folder = only_the_temporary_folder
    if planted == "a link":
        (tmp_path / "theirs").mkdir(mode=0o700)
        folder.symlink_to(tmp_path / "theirs")
    else:
        folder.mkdir(mode=0o700)
    if planted == "group-writable":
        folder.chmod(0o770)
    if planted == "another user's":
        uid = os.getuid()
        monkeypatch.setattr(runtime.os, "getuid", lambda: uid + 1)  # the folder is not ours
        monkeypatch.setattr(runtime.tempfile, "gettempdir", lambda: str(tmp_path))
        os.rename(folder, tmp_path / f"npbigram-numba-{uid + 1}")
        folder = tmp_path / f"npbigram-numba-{uid + 1}"
    with pytest.warns(RuntimeWarning, match=f"{folder} is not a private folder of this user"):
        assert runtime._cache_location() == (None, False)
