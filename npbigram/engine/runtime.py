"""The numba engine's run-time set-up, done here and only here, before numba is imported:
where compiled kernels are cached, how OpenMP threads wait, the options every kernel compiles
with, and the thread count. Importing this module runs configure() and then imports numba.
"""

import os
import sys
import tempfile
import warnings
from pathlib import Path

KERNELS_DIR = Path(__file__).resolve().parent  # numba caches beside the kernels' modules


def _writable(path):
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            return True
    except OSError:
        return False


def _cache_location():
    """Where compiled kernels are cached: (NUMBA_CACHE_DIR or None for the engine's
    __pycache__, whether caching is possible).

    $NUMBA_CACHE_DIR wins when set. Otherwise numba caches next to the kernels; when that
    directory is read-only (a system install), we point NUMBA_CACHE_DIR at
    $XDG_CACHE_HOME/npbigram/numba (default ~/.cache/npbigram/numba), then at a folder in the
    temporary directory; when nothing is writable, kernels compile afresh in every process.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"], True
    if _writable(KERNELS_DIR / "__pycache__"):
        return None, True
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    for candidate in (Path(xdg) / "npbigram" / "numba",
                      Path(tempfile.gettempdir()) / f"npbigram-numba-{os.getuid()}"):
        if _writable(candidate):
            return str(candidate), True
    warnings.warn("npbigram: no writable folder for numba's JIT cache (set NUMBA_CACHE_DIR); "
                  "kernels will compile in every process", RuntimeWarning, stacklevel=2)
    return None, False


def configure():
    """Set OMP_WAIT_POLICY and NUMBA_CACHE_DIR before numba reads them; returns (cache folder
    or None, whether kernels can be cached).

    OpenMP threads wait passively: with the default busy-waiting, a parallel region on a
    machine whose cores are busy with other work ran several times slower than one thread
    (a waiting thread spins on the core its partner needs). OMP_WAIT_POLICY=active overrides.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    cache_dir, cache = _cache_location()
    if cache_dir is not None:
        os.environ["NUMBA_CACHE_DIR"] = cache_dir
        if "numba" in sys.modules:  # numba already read its configuration: tell it directly
            sys.modules["numba"].config.CACHE_DIR = cache_dir
    return cache_dir, cache


CACHE_DIR, CACHE = configure()

import numba  # noqa: E402  (after the environment is set)
import numpy as np  # noqa: E402

# error_model "numpy": x / 0 gives inf or nan as in NumPy, without the branch that raises
# ZeroDivisionError and would keep LLVM from vectorizing a loop that divides
JIT = dict(cache=CACHE, nogil=True, error_model="numpy")


def set_threads(n):
    """Use n threads in parallel kernels (1 <= n <= NUMBA_NUM_THREADS, every core by default).
    Results do not depend on n."""
    limit = numba.config.NUMBA_NUM_THREADS
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"threads must be an int, got {type(n).__name__}")
    if not 1 <= n <= limit:
        raise ValueError(f"threads must be between 1 and {limit} (raise the limit with "
                         f"NUMBA_NUM_THREADS), got {n}")
    numba.set_num_threads(int(n))
