"""The benchmark suite runs end to end on its smallest configuration (no timing assertions)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 40


def test_suite_runs_its_smallest_configuration(tmp_path):
    data = tmp_path / "input.txt"
    data.write_text(TEXT)
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--sizes", "32x8",
         "--vocabs", "65", "--threads", "1", "--seed-iters", "20", "--data", str(data),
         "--out", str(out)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr

    results = json.loads((out / "results.json").read_text())
    torch_installed = importlib.util.find_spec("torch") is not None
    steps = {r["impl"]: r for r in results["steps"]}
    assert len(steps) == len(results["steps"]) == 8
    for impl in ("numba", "numba-nologits", "numba-loop", "numpy"):
        assert steps[impl]["status"] == "ok", steps[impl]
    assert steps["torch"]["status"] == ("ok" if torch_installed else "not installed")
    for row in results["steps"]:
        assert row["status"] in ("ok", "unavailable", "not installed"), row
        if row["status"] == "ok":
            assert row["tokens"] == 256 and row["median_s"] > 0 and row["repeats"] >= 3
    seed = {(r["impl"], r["cache"]): r for r in results["seed_job"]}
    for key in [("numpy", "-"), ("numba", "cold"), ("numba", "warm")]:
        assert seed[key]["status"] == "ok" and seed[key]["steps"] == 20, seed[key]
    assert seed["torch", "-"]["status"] == ("ok" if torch_installed else "not installed")
    assert len(results["figures"]) == 19
    assert results["machine"]["cores"] >= 1

    markdown = (out / "results.md").read_text()
    assert "## One training step" in markdown and "| 65 | 32×8 | 256 |" in markdown
    assert (out / "tokens_per_s.png").read_bytes().startswith(b"\x89PNG")
