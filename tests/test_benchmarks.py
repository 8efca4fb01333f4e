"""The benchmark suite runs end to end on its smallest configuration (no timing assertions)."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 40


def test_suite_runs_its_smallest_configuration(tmp_path):
    data = tmp_path / "input.txt"
    data.write_text(TEXT)
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "suite.py"), "--quick", "--sizes", "32x8",
         "--vocabs", "65", "--threads", "1", "--seed-iters", "20", "--data", str(data),
         "--out", str(out)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr

    results = json.loads((out / "results.json").read_text())
    installed = {m: importlib.util.find_spec(m) is not None for m in ("torch", "jax", "optax")}
    peers_installed = {"torch": installed["torch"], "torch-compile": installed["torch"],
                       "jax": installed["jax"] and installed["optax"]}
    steps = {r["impl"]: r for r in results["steps"]}
    assert len(steps) == len(results["steps"]) == 10
    for impl in ("numba", "numba-nologits", "numba-loop", "numpy"):
        assert steps[impl]["status"] == "ok", steps[impl]
    for impl, present in peers_installed.items():
        assert steps[impl]["status"] == ("ok" if present else "not installed"), steps[impl]
        if impl != "torch" and present:
            assert steps[impl]["compile_s"] > 0
    for row in results["steps"]:
        assert row["status"] in ("ok", "unavailable", "not installed"), row
        if row["status"] == "ok":
            assert row["tokens"] == 256 and row["median_s"] > 0 and row["repeats"] >= 3
    seed = {(r["impl"], r["cache"]): r for r in results["seed_job"]}
    for key in [("numpy", "-"), ("numba", "cold"), ("numba", "warm")]:
        assert seed[key]["status"] == "ok" and seed[key]["steps"] == 20, seed[key]
    assert seed["torch", "-"]["status"] == ("ok" if installed["torch"] else "not installed")
    assert results["floors"]["status"] == "ok", results["floors"]
    floor, = results["floors"]["floors"]
    assert floor["exp_count"] == floor["distinct_rows"] * 65 and floor["floor_s"] > 0
    assert floor["memory_bytes"] == 7 * 4 * 65 * 65
    groups = [f["group"] for f in results["figures"]]
    assert len(groups) == 18 + 19 and len(set(groups)) == 2
    assert all(f["requirement"] for f in results["figures"])  # each target says what it asks
    assert results["machine"]["cores"] >= 1

    markdown = (out / "results.md").read_text()
    assert "## One training step" in markdown and "| 65 | 32×8 | 256 |" in markdown
    assert "## Distance from the hardware floor" in markdown and "best peer" in markdown
    if not peers_installed["jax"]:
        assert "not installed (`pip install -e '.[bench]'`)" in markdown
    assert (out / "tokens_per_s.png").read_bytes().startswith(b"\x89PNG")


@pytest.fixture
def peers(monkeypatch):
    """benchmarks/peers.py (the benchmarks folder on the path: it is a script folder); the environment variables
    a peer sets (PJRT_NPROC) are restored after the test."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    monkeypatch.setenv("PJRT_NPROC", os.environ.get("PJRT_NPROC", "2"))
    import peers

    return peers


def c_compiler():
    return any(shutil.which(cc) for cc in (os.environ.get("CXX"), "g++", "c++", "clang++") if cc)


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("impl", ["torch-compile", "jax"])
def test_peer_steps_give_pytorch_eager_weights(peers, impl):
    """A few steps of a compiled peer give the weights of the same steps in PyTorch eager
    (bigram.py's step), from the same initial table, within float32 rounding."""
    if peers.install_hint(impl) or peers.install_hint("torch"):
        pytest.skip(f"{impl} or the torch reference is not installed")
    if impl == "torch-compile" and not c_compiler():
        pytest.skip("torch.compile's inductor needs a C++ compiler")
    vocab_size, steps = 11, 3
    rng = np.random.default_rng(0)
    xb, yb = (rng.integers(0, vocab_size, size=(4, 8)) for _ in range(2))
    start = peers.initial_weight(vocab_size)
    weights = {}
    for name in ("torch", impl):
        peer = peers.build(name, vocab_size, 1, xb, yb, weight=start)
        for _ in range(steps):
            peer.step()
        weights[name] = peer.weight()
    assert weights[impl].dtype == np.float32
    assert np.abs(weights["torch"] - start).max() > 1e-3  # the steps moved the weights
    np.testing.assert_allclose(weights[impl], weights["torch"], rtol=1e-5, atol=1e-5)


def test_prepare_bench_rejects_an_unknown_in_memory_size(tmp_path):
    """A size --in-memory-max does not know is a one-line usage error before any work."""
    data = tmp_path / "input.txt"
    data.write_text(TEXT)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "prepare_bench.py"), "--sizes", "100MB",
         "--in-memory-max", "5GB", "--tmp", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "NPBIGRAM_DATA": str(data)})
    assert proc.returncode == 2, proc.stderr
    assert "--in-memory-max" in proc.stderr and "Traceback" not in proc.stderr
