"""npbigram/engine/runtime.py: the thread count and the JIT cache's location."""

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


def test_cache_falls_back_to_a_user_folder_when_the_package_is_read_only(monkeypatch, tmp_path):
    package_cache = str(runtime.KERNELS_DIR / "__pycache__")
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    real_writable = runtime._writable
    monkeypatch.setattr(runtime, "_writable",
                        lambda path: str(path) != package_cache and real_writable(path))
    assert runtime._cache_location() == (str(tmp_path / "npbigram" / "numba"), True)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert runtime._cache_location() == (str(tmp_path / "mine"), True)
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setattr(runtime, "_writable", lambda path: False)
    with pytest.warns(RuntimeWarning, match="NUMBA_CACHE_DIR"):
        assert runtime._cache_location() == (None, False)
