"""`python -m npbigram` as a process of its own: numba's SciPy BLAS probe skipped, and `train`
exiting without the interpreter's teardown, with the same results, output and exit status."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 40
TRAIN = ["train", "--backend", "numba", "--max-iters", "20", "--eval-iters", "2"]
needs_scipy = pytest.mark.skipif(importlib.util.find_spec("scipy") is None,
                                 reason="the BLAS probe imports SciPy only when it is installed")


def train(tmp_path, out, before=""):
    """`npbigram train` in a new process; `before`: Python run first in that process."""
    (tmp_path / "input.txt").write_text(TEXT)
    args = [*TRAIN, "--data", "input.txt", "--out", out]
    code = f"{before}\nimport sys\nsys.argv = ['npbigram', *{args!r}]\nimport runpy\n" \
           "runpy.run_module('npbigram', run_name='__main__')"
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)


REPORT_MODULES = """
import sys
from npbigram.cli import process
exit_now = process.exit_now
def report_then_exit(status):
    print("loaded:", *(m for m in ("numba.np.arraymath", "scipy.linalg") if m in sys.modules),
          file=sys.stderr)
    exit_now(status)
process.exit_now = report_then_exit
"""


@needs_scipy
def test_train_imports_no_scipy_linalg_for_numbas_blas_probe(tmp_path):
    proc = train(tmp_path, "a.npz", before=REPORT_MODULES)
    assert proc.returncode == 0, proc.stderr
    assert "loaded: numba.np.arraymath\n" in proc.stderr  # the probe's module, without SciPy's


@needs_scipy
def test_train_gives_the_same_checkpoint_with_the_blas_probe_as_without(tmp_path):
    """A process that imported scipy.linalg first (numba finds BLAS) trains the same weights,
    optimizer state and output, bit for bit."""
    skipped = train(tmp_path, "a.npz")
    probed = train(tmp_path, "b.npz", before="import scipy.linalg")
    assert skipped.returncode == probed.returncode == 0, skipped.stderr + probed.stderr
    untimed = [[line for line in proc.stdout.replace("a.npz", "b.npz")
                .replace("a.best.npz", "b.best.npz").splitlines()
                if "tokens/s" not in line] for proc in (skipped, probed)]
    assert untimed[0] == untimed[1] and len(untimed[0]) > 3
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for name in ("weight", "opt_m", "opt_v"):  # meta holds the elapsed seconds
            assert a[name].tobytes() == b[name].tobytes(), name


@needs_scipy
def test_scipy_linalg_imports_as_usual_after_the_probe_is_skipped():
    code = ("from npbigram.cli import process; process.skip_blas_probe()\n"
            "import numba.np.arraymath as m\nimport scipy.linalg\n"
            "print(m._HAVE_BLAS, scipy.linalg.cython_blas.__name__)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.split() == ["False", "scipy.linalg.cython_blas"]


@pytest.mark.slow
def test_train_exits_with_its_status_and_all_its_output(tmp_path):
    """The exit without teardown keeps the exit status, and stdout and stderr whole."""
    ok = train(tmp_path, "a.npz")
    assert ok.returncode == 0, ok.stderr
    assert "trained 20 steps" in ok.stdout and "best val loss" in ok.stdout
    assert ok.stdout.endswith("\n")
    failed = train(tmp_path, "a.npz")  # exists: refused without --force
    assert failed.returncode == 1 and failed.stderr.startswith("npbigram: error:"), failed.stderr
