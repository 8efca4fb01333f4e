"""A first run compiles the training loop's update and batch kernels, then the evaluation
kernel, in a helper process, into the shared JIT cache, while the process compiles the
gradient, then the loop (loading the helper's update and batch kernels): the same kernels and
weights bit for bit, no helper when the cache is warm, and the process compiling the kernels
itself when the helper fails.
Each case runs in a fresh process with its own NUMBA_CACHE_DIR (an empty cache)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from npbigram import TrainConfig, Trainer

CONFIG = {"max_iters": 30, "eval_iters": 3, "eval_interval": 10}
WARM_UP = """
import json, sys
import numpy as np
from npbigram.engine import HELPER_PROCESSES, compile_helper, grad_kernels, update_kernels
HELPER_PROCESSES["compile"] = True
if len(sys.argv) > 2:
    compile_helper.HELPER_COMMAND = json.loads(sys.argv[2])
from npbigram import TrainConfig, Trainer

data = np.random.default_rng(0).integers(0, 65, 20_000).astype(np.uint8)
trainer = Trainer(TrainConfig(**json.loads(sys.argv[1])), data, 65)
compiled = trainer.warm_up()
update, evaluation = update_kernels.update_serial.stats, grad_kernels.batch_losses.stats
trainer.train_steps(trainer.config.max_iters)
print(json.dumps({"compiled": compiled, "update_loaded": sum(update.cache_hits.values()),
                  "update_compiled": sum(update.cache_misses.values()),
                  "evaluation_loaded": sum(evaluation.cache_hits.values()),
                  "weight": trainer.model.weight.tolist(),
                  "evaluation": {k: float(v) for k, v in trainer.evaluate().items()}}))
"""
needs_two_cores = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2,
                                     reason="the helper runs only when two cores can be used")


def warm_up_in_new_process(cache_dir, helper_command=None):
    args = [json.dumps(CONFIG)] + ([json.dumps(helper_command)] if helper_command else [])
    proc = subprocess.run([sys.executable, "-c", WARM_UP, *args], capture_output=True,
                          text=True, timeout=600,
                          env=dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir)))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def trained_here():
    """The same run in this process, every kernel compiled (or cached) by this process."""
    data = np.random.default_rng(0).integers(0, 65, 20_000).astype(np.uint8)
    trainer = Trainer(TrainConfig(**CONFIG), data, 65)
    trainer.train_steps(CONFIG["max_iters"])
    return trainer.model.weight, trainer.evaluate()


@pytest.mark.slow
@needs_two_cores
def test_a_first_run_loads_the_kernels_its_helper_compiled(tmp_path):
    first = warm_up_in_new_process(tmp_path)
    assert (first["update_loaded"], first["update_compiled"]) == (1, 0)
    assert first["evaluation_loaded"] == 1  # compiled by the helper
    assert first["compiled"] == 5  # the helper's kernels count as compiled by the first run
    weight, evaluation = trained_here()
    assert np.array(first["weight"], np.float32).tobytes() == weight.tobytes()
    assert first["evaluation"] == {k: float(v) for k, v in evaluation.items()}

    started = tmp_path / "helper started"
    warm = warm_up_in_new_process(tmp_path, [sys.executable, "-c",
                                             f"open({str(started)!r}, 'w')"])
    assert warm["compiled"] == 0 and warm["update_loaded"] == 1
    assert not started.exists()  # a warm cache: no helper
    assert warm["weight"] == first["weight"]


@pytest.mark.slow
@needs_two_cores
def test_a_helper_that_fails_leaves_the_compilation_to_the_process(tmp_path):
    failed = warm_up_in_new_process(tmp_path, [sys.executable, "-c", "raise SystemExit(3)"])
    assert (failed["update_loaded"], failed["update_compiled"]) == (0, 1)
    assert failed["compiled"] == 5
    weight, _ = trained_here()
    assert np.array(failed["weight"], np.float32).tobytes() == weight.tobytes()


def test_no_helper_is_started_unless_the_command_turned_it_on():
    from npbigram.engine import HELPER_PROCESSES, compile_helper

    assert HELPER_PROCESSES["compile"] is False  # a library user's process
    assert compile_helper.start(["a job's spec"]) is None
