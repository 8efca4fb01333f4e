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

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 40


STEP_IMPLS = ["numba-nologits", "numpy", "jax", "c"]  # each kind of step but the Trainer's


def run_suite(tmp_path, *flags):
    """suite.py's smallest configuration with `flags`: (results.json, results.md, out folder)."""
    data = tmp_path / "input.txt"
    data.write_text(TEXT)
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "suite.py"), "--quick", "--sizes", "32x8",
         "--vocabs", "65", "--threads", "1", "--seed-iters", "20", "--data", str(data),
         "--out", str(out), *flags],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (out / "tokens_per_s.png").read_bytes().startswith(b"\x89PNG")
    return json.loads((out / "results.json").read_text()), (out / "results.md").read_text()


def installed(module):
    return importlib.util.find_spec(module) is not None


def test_suite_measures_the_trainers_loop(tmp_path):
    results, markdown = run_suite(tmp_path, "--impls", "numba-loop", "--no-seed-job",
                                  "--no-floors")
    (row,) = results["steps"]
    assert row["status"] == "ok" and row["steps_per_call"] > 1 and row["median_s"] > 0, row
    assert "| 65 | 32×8 | 256 |" in markdown


def test_suite_measures_steps_on_its_smallest_configuration(tmp_path):
    """One implementation of each other kind (a numba public API, the NumPy reference, a
    compiled peer, the hand-written C step), every table of their steps rendered; each row is
    one child's (every implementation's own step is checked by its own tests)."""
    results, markdown = run_suite(tmp_path, "--impls", *STEP_IMPLS, "--no-seed-job",
                                  "--no-floors")
    jax = installed("jax") and installed("optax")
    steps = {r["impl"]: r for r in results["steps"]}
    assert list(steps) == STEP_IMPLS and len(results["steps"]) == len(STEP_IMPLS)
    for impl in ("numba-nologits", "numpy"):
        assert steps[impl]["status"] == "ok", steps[impl]
    assert steps["jax"]["status"] == ("ok" if jax else "not installed"), steps["jax"]
    if jax:
        assert steps["jax"]["compile_s"] > 0
    gcc = shutil.which(os.environ.get("CC", "gcc"))  # the C step's compiler
    assert steps["c"]["status"] == ("ok" if gcc else "unavailable"), steps["c"]
    for row in results["steps"]:
        assert row["status"] in ("ok", "unavailable", "not installed"), row
        if row["status"] == "ok":
            assert row["tokens"] == 256 and row["median_s"] > 0 and row["repeats"] >= 3
    assert results["seed_job"] == [] and results["phases"] is None
    groups = [f["group"] for f in results["figures"]]
    assert len(groups) == 19 + 19 and len(set(groups)) == 2
    assert all(f["requirement"] for f in results["figures"])  # each target says what it asks
    assert results["machine"]["cores"] >= 1

    assert "## One training step" in markdown and "| 65 | 32×8 | 256 |" in markdown
    assert "best peer" in markdown and "## Peak memory of one step" in markdown
    assert "Not measured in this run**: --no-floors" in markdown
    if gcc:  # every step's distance from the C step, the C step's own 1×
        assert "**C step**: hand-written C step" in markdown and "| - · 1× C |" in markdown
    if jax:
        assert "## Compile times of the peers" in markdown
    else:
        assert "not installed (`pip install -e '.[bench-jax]'`)" in markdown


def test_a_measurement_past_the_step_timeout_is_stopped_and_said_so(tmp_path):
    results, markdown = run_suite(tmp_path, "--impls", "numpy", "--no-seed-job", "--no-floors",
                                  "--step-timeout", "0.01")
    (row,) = results["steps"]
    assert (row["status"], row["reason"]) == ("failed", "stopped after 0.01 s")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "suite.py"),
                           "--step-timeout", "0"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "--step-timeout must be positive, got 0" in proc.stderr


def test_suite_measures_the_hardware_floors_of_its_step_size(tmp_path):
    results, markdown = run_suite(tmp_path, "--impls", "numpy", "--no-seed-job")
    assert results["floors"]["status"] == "ok", results["floors"]
    floor, = results["floors"]["floors"]
    assert floor["exp_count"] == floor["distinct_rows"] * 65 and floor["floor_s"] > 0
    assert floor["memory_bytes"] == 7 * 4 * 65 * 65 and floor["adamw_s"] > 0
    assert "## Distance from the hardware floor" in markdown


def test_suite_runs_the_seed_jobs_that_need_no_jit_cache(tmp_path):
    """PyTorch's bigram.py and the NumPy backend."""
    results, markdown = run_suite(tmp_path, "--impls", "numpy", "--seed-jobs", "torch", "numpy",
                                  "--no-floors")
    seed = {(r["impl"], r["cache"]): r for r in results["seed_job"]}
    assert set(seed) == {("torch", "-"), ("numpy", "-")} and results["phases"] is None
    assert seed["numpy", "-"]["status"] == "ok" and seed["numpy", "-"]["steps"] == 20
    assert seed["torch", "-"]["status"] == ("ok" if installed("torch") else "not installed")
    assert "## Seed job" in markdown


def test_suite_runs_the_numba_seed_job_phase_by_phase(tmp_path, monkeypatch):
    """The numba seed job cold and warm, and the warm job again phase by phase (phases.py):
    every phase timed, its table rendered."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from phases import PHASES

    results, markdown = run_suite(tmp_path, "--impls", "numpy", "--seed-jobs", "numba",
                                  "--no-floors", "--no-compile-times")
    seed = {(r["impl"], r["cache"]): r for r in results["seed_job"]}
    assert set(seed) == {("numba", "cold"), ("numba", "warm")}
    for row in seed.values():
        assert row["status"] == "ok" and row["steps"] == 20, row
    phases = results["phases"]
    assert phases["status"] == "ok" and phases["runs"] == 1, phases
    assert [p["phase"] for p in phases["phases"]] == [*PHASES, "whole process"]
    assert all(p["median_s"] >= 0 and len(p["all_s"]) == 1 for p in phases["phases"])
    assert phases["phases"][-1]["median_s"] > 0
    assert "## The warm seed job phase by phase" in markdown and "| training |" in markdown
    assert results["compile_times"] is None and "## Compile time per kernel" not in markdown


def test_suite_measures_the_numba_seed_jobs_compile_time_per_kernel(tmp_path):
    results, markdown = run_suite(tmp_path, "--impls", "numpy", "--seed-jobs", "numba",
                                  "--no-floors", "--no-phases", "--seed-iters", "1")
    compiled = results["compile_times"]
    assert compiled["status"] == "ok" and compiled["repeats"] == 1, compiled
    top = {row["kernel"] for row in compiled["table"] if row["depth"] == 0}
    assert "npbigram.engine.kernels.batch_losses" in top, top
    assert compiled["compile_s"] > 0 and compiled["process_cpu_s"] >= compiled["compile_s"]
    assert "## Compile time per kernel" in markdown and "`kernels.batch_losses`" in markdown


@pytest.fixture
def peers(monkeypatch):
    """benchmarks/peers.py (the benchmarks folder on the path: it is a script folder); the
    environment variables a peer sets (PJRT_NPROC, tinygrad's NUM_CPU_THREADS) are restored
    after the test."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    monkeypatch.setenv("PJRT_NPROC", os.environ.get("PJRT_NPROC", "2"))
    monkeypatch.setenv("NUM_CPU_THREADS", os.environ.get("NUM_CPU_THREADS", "1"))
    import peers

    return peers


def cxx_compiler():
    return any(shutil.which(cc) for cc in (os.environ.get("CXX"), "g++", "c++", "clang++") if cc)


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("impl", ["torch-compile", "jax", "mlx", "autograd", "tinygrad", "c"])
def test_peer_steps_give_pytorch_eager_weights(peers, impl, monkeypatch, tmp_path):
    """A few steps of a peer (or of the hand-written C step) give the weights of the same
    steps in PyTorch eager (bigram.py's step), from the same initial table, within float32
    rounding."""
    if peers.install_hint(impl) or peers.install_hint("torch"):
        pytest.skip(f"{impl} or the torch reference is not installed")
    if impl == "torch-compile" and not cxx_compiler():
        pytest.skip("torch.compile's inductor needs a C++ compiler")
    if impl == "c":
        if peers.unavailable_reason("c"):
            pytest.skip(peers.unavailable_reason("c"))
        monkeypatch.setenv(peers.C_CACHE_VARIABLE, str(tmp_path))  # built from this source
    if impl == "tinygrad":  # without clang, the step's math on tinygrad's Python device
        monkeypatch.setenv("DEV", "CPU" if not peers.unavailable_reason(impl) else "PYTHON")
    assert_steps_match_pytorch_eager(peers, impl, vocab_size=11, batch=(4, 8), threads=1)


@pytest.mark.parametrize("vocab_size, batch", [(64, (512, 256)), (400, (64, 64))],
                         ids=["pair-counts", "sort"])
def test_the_c_steps_parallel_pass_gives_pytorch_eager_weights(peers, monkeypatch, tmp_path,
                                                               vocab_size, batch):
    """Above its size for threads (B·T + V² >= 2^17) the C step groups the batch on 2
    threads, by pair counts (2 V² <= B·T) or by sorting it, and takes the rows on 2 threads:
    the same weights as PyTorch eager."""
    if peers.install_hint("torch") or peers.unavailable_reason("c"):
        pytest.skip("the torch reference or a C compiler is missing")
    monkeypatch.setenv(peers.C_CACHE_VARIABLE, str(tmp_path))
    assert_steps_match_pytorch_eager(peers, "c", vocab_size, batch, threads=2)


def assert_steps_match_pytorch_eager(peers, impl, vocab_size, batch, threads, steps=3):
    """`steps` steps of the peer impl (on `threads` threads) and of PyTorch eager, from the
    same initial table on the same random batch, give the same weights within float32
    rounding."""
    rng = np.random.default_rng(0)
    xb, yb = (rng.integers(0, vocab_size, size=batch) for _ in range(2))
    start = peers.initial_weight(vocab_size)
    weights = {}
    for name, n_threads in (("torch", 1), (impl, threads)):
        peer = peers.build(name, vocab_size, n_threads, xb, yb, weight=start)
        for _ in range(steps):
            peer.step()
        weights[name] = peer.weight()
    assert weights[impl].dtype == np.float32
    assert np.abs(weights["torch"] - start).max() > 1e-3  # the steps moved the weights
    np.testing.assert_allclose(weights[impl], weights["torch"], rtol=1e-5, atol=1e-5)


def test_a_peer_without_its_compiler_is_unavailable_with_the_reason(peers, monkeypatch,
                                                                       tmp_path):
    """Without the compiler it builds with, the C step (and tinygrad on its CPU device) is a
    row saying why, and no child is started."""
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("DEV", "CPU")
    import suite

    def no_child(*args, **kwargs):
        raise AssertionError("a child was started")

    monkeypatch.setattr(suite, "run_child", no_child)
    args = suite.parse_args(["--no-seed-job", "--impls", "c", "tinygrad"])
    for impl in ("c", "tinygrad"):
        row = suite.measure_step(impl, 32, 8, 65, 1, str(tmp_path), args)
        if impl == "tinygrad" and row["status"] == "not installed":
            continue
        assert row["status"] == "unavailable", row
        assert ("no C compiler" if impl == "c" else "no clang") in row["reason"], row


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
