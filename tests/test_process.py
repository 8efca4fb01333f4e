"""`python -m npbigram` as a process of its own: `train` exiting without the interpreter's
teardown, with the same results, output and exit status."""

import subprocess
import sys

import pytest

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 40
TRAIN = ["train", "--backend", "numba", "--max-iters", "20", "--eval-iters", "2"]


def train(tmp_path, out, before=""):
    """`npbigram train` in a new process; `before`: Python run first in that process."""
    (tmp_path / "input.txt").write_text(TEXT)
    args = [*TRAIN, "--data", "input.txt", "--out", out]
    code = f"{before}\nimport sys\nsys.argv = ['npbigram', *{args!r}]\nimport runpy\n" \
           "runpy.run_module('npbigram', run_name='__main__')"
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_train_exits_with_its_status_and_all_its_output(tmp_path):
    """The exit without teardown keeps the exit status, and stdout and stderr whole."""
    ok = train(tmp_path, "a.npz")
    assert ok.returncode == 0, ok.stderr
    assert "trained 20 steps" in ok.stdout and "best val loss" in ok.stdout
    assert ok.stdout.endswith("\n")
    failed = train(tmp_path, "a.npz")  # exists: refused without --force
    assert failed.returncode == 1 and failed.stderr.startswith("npbigram: error:"), failed.stderr
