"""What `python -m npbigram` does as a process of its own, which a library user's process does
not: numba's CPU target set up without its SciPy BLAS probe, a first run's kernels compiled in
two processes, and, after `train`, an exit that does not tear the interpreter's objects down
one by one."""

import os
import sys
from importlib.abc import MetaPathFinder

BLAS_PROBE = "numba.np.arraymath"  # sets _HAVE_BLAS by importing scipy.linalg.cython_blas
BLAS_PACKAGE = "scipy.linalg"


class SkipBlasProbe(MetaPathFinder):
    """Answers numba's BLAS probe, the import of scipy.linalg that numba.np.arraymath makes
    while it is itself imported (on the first kernel load, when SciPy is installed), with
    ModuleNotFoundError, which spares the command SciPy's import: numba then offers no BLAS to
    np.correlate and np.convolve, the only functions it probes for, which no kernel of npbigram
    calls. Any other import of SciPy is
    untouched: the finder leaves sys.meta_path on the first import of scipy.linalg."""

    def find_spec(self, name, path=None, target=None):
        if name != BLAS_PACKAGE:
            return None
        sys.meta_path.remove(self)
        probing = sys.modules.get(BLAS_PROBE)
        if probing is not None and not hasattr(probing, "_HAVE_BLAS"):
            raise ModuleNotFoundError(f"{name} not imported for numba's BLAS probe", name=name)
        return None


def skip_blas_probe():
    """Install SkipBlasProbe unless numba's target or SciPy's linalg is already loaded."""
    if BLAS_PROBE not in sys.modules and BLAS_PACKAGE not in sys.modules:
        sys.meta_path.insert(0, SkipBlasProbe())


def compile_in_helper():
    """Let the numba engine compile part of a first run's kernels in a helper process
    (npbigram.engine.compile_helper) while this one compiles the others."""
    from ..engine import HELPER_PROCESSES
    HELPER_PROCESSES["compile"] = True


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
