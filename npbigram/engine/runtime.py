"""The numba engine's run-time set-up, done here and only here, before numba is imported:
where compiled kernels are cached, how OpenMP threads wait, the options every kernel compiles
with, and the thread count. Importing this module runs configure() and then imports numba.
"""

import os
import stat
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


def _private_folder(path):
    """Whether `path` is, or now is, a folder only this user can write: created with mode 0700,
    or found as a real folder (not a link) that this user owns and no one else may write to.
    numba's cache files are pickles, so a folder that another user could write into would let
    them plant code (the temporary directory is shared)."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError:
        return False
    try:
        status = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISDIR(status.st_mode) and status.st_uid == os.getuid()
            and not status.st_mode & 0o022 and _writable(path))


def _cache_location():
    """Where compiled kernels are cached: (NUMBA_CACHE_DIR or None for the engine's
    __pycache__, whether caching is possible).

    $NUMBA_CACHE_DIR wins when it is writable. Otherwise numba caches next to the kernels; when
    that directory is read-only (a system install), in $XDG_CACHE_HOME/npbigram/numba (default
    ~/.cache/npbigram/numba), then in a private folder of the temporary directory; when nothing
    is writable, kernels compile afresh in every process. A NUMBA_CACHE_DIR that cannot be
    written, a temporary folder that is not private, and no cache at all are reported once
    (a RuntimeWarning), with the fix.
    """
    problems = []
    requested = os.environ.get("NUMBA_CACHE_DIR")
    if requested:
        if _writable(Path(requested)):
            return requested, True
        problems.append(f"NUMBA_CACHE_DIR={requested} is not writable (make it writable or "
                        f"unset it)")
    location = None
    if _writable(KERNELS_DIR / "__pycache__"):
        location = (None, True)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                               ".cache")
        user_folder = Path(xdg) / "npbigram" / "numba"
        temporary = Path(tempfile.gettempdir()) / f"npbigram-numba-{os.getuid()}"
        if _writable(user_folder):
            location = (str(user_folder), True)
        elif _private_folder(temporary):
            location = (str(temporary), True)
        elif temporary.exists():
            problems.append(f"{temporary} is not a private folder of this user (remove it, or "
                            f"set NUMBA_CACHE_DIR to a folder of yours)")
    if location is None:
        problems.append("no folder to cache compiled kernels in: they compile in every "
                        "process, several seconds each time (set NUMBA_CACHE_DIR to a "
                        "writable folder)")
        location = (None, False)
    elif problems:
        problems.append(f"compiled kernels are cached in {location[0] or KERNELS_DIR} instead")
    if problems:
        warnings.warn("; ".join(problems), RuntimeWarning, stacklevel=2)
    return location


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
    else:  # beside the kernels, numba's default: drop a NUMBA_CACHE_DIR it cannot use
        os.environ.pop("NUMBA_CACHE_DIR", None)
    if "numba" in sys.modules:  # numba already read its configuration: tell it directly
        sys.modules["numba"].config.CACHE_DIR = cache_dir or ""
    return cache_dir, cache


CACHE_DIR, CACHE = configure()

import numba  # noqa: E402  (after the environment is set)
import numpy as np  # noqa: E402

# error_model "numpy": x / 0 gives inf or nan as in NumPy, without the branch that raises
# ZeroDivisionError and would keep LLVM from vectorizing a loop that divides; no_cfunc_wrapper:
# no kernel is called through a C function pointer, and a first run compiles faster without
JIT = dict(cache=CACHE, nogil=True, error_model="numpy", no_cfunc_wrapper=True)


def set_threads(n):
    """Use n threads in parallel kernels (1 <= n <= NUMBA_NUM_THREADS, every core by default).
    Results do not depend on n."""
    limit = numba.config.NUMBA_NUM_THREADS
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"threads must be an int, got {type(n).__name__}")
    if not 1 <= n <= limit:
        allowed = "1" if limit == 1 else f"between 1 and {limit}"
        raise ValueError(f"threads must be {allowed}, the limit NUMBA_NUM_THREADS sets (every "
                         f"core by default; raise it in the environment), got {n}")
    numba.set_num_threads(int(n))
