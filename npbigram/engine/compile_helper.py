"""A first run's compilation on two cores: when the JIT cache is empty, a helper process
compiles part of a job's kernels (numba_engine.warm_up_calls) into the same cache while this
process compiles the others. The helper compiles the training loop's callees (the batch's
windows and the optimizer's update) and says so on its standard output, then compiles
evaluation; meanwhile this process compiles the batch gradient, then, once the callees are in
the cache, the training loop calling them all, and at last loads the helper's kernels from the
cache. numba caches the machine code it compiled, so the kernels, and every result, are the
same bit for bit as when one process compiles them all.

Used when HELPER_PROCESSES["compile"] is on (npbigram.cli.process turns it on for the command's
own process) and the process may use more than one core. When the helper cannot run or fails,
this process compiles its kernels itself.

    python -m npbigram.engine.numba_engine SPEC   # the helper; SPEC: warm_up_spec's, as JSON
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from . import HELPER_PROCESSES, runtime
from .grad_kernels import batch_losses

PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])  # so the helper imports this npbigram
HELPER_COMMAND = [sys.executable, "-m", "npbigram.engine.numba_engine"]  # + SPEC


@runtime.numba.njit(**runtime.JIT)
def _cache_probe(x):
    """Compiled on the first run after the JIT cache was emptied or the package changed."""
    return x + 1


def tiny_problem(dtype, data_dtype, writeable, block_size):
    """(weight (2,2), data of block_size + 1 tokens, one window start (1,1)): arrays of the
    types a job's kernels compile for (read-only data compiles separately)."""
    data = np.zeros(block_size + 1, dtype=data_dtype)
    data.flags.writeable = writeable
    return np.zeros((2, 2), dtype), data, np.zeros((1, 1), dtype=np.int64)


def evaluation_call(dtype, data_dtype, writeable, block_size):
    """(batch_losses, its arguments) on the tiny problem."""
    weight, data, starts = tiny_problem(dtype, data_dtype, writeable, block_size)
    return batch_losses, (weight, data, starts, block_size, np.empty(1))


def _usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this system
        return os.cpu_count() or 1


def start(spec):
    """The helper compiling its share of the job of `spec` (a JSON list), or None: not
    enabled, one core, no JIT cache, or the cache already warm (its probe loaded rather than
    compiled)."""
    if not (HELPER_PROCESSES["compile"] and runtime.CACHE and _usable_cores() > 1):
        return None
    _cache_probe(1)
    if not sum(_cache_probe.stats.cache_misses.values()):
        return None
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [PACKAGE_PARENT, os.environ.get("PYTHONPATH")])))
    try:
        return subprocess.Popen([*HELPER_COMMAND, json.dumps(spec)], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return None


CALLEES_DONE = "callees compiled"  # the line the helper prints once its first share is cached


def wait_for_callees(helper):
    """Wait until `helper` (None: no helper) has put its first share in the cache, or has
    stopped without doing so (then this process compiles those kernels as it needs them)."""
    if helper is not None:
        helper.stdout.readline()


def finish(helper):
    """Wait for `helper` (None: nothing to wait for); how many kernels it compiled, 0 when it
    failed (this process then compiles them)."""
    if helper is None:
        return 0
    try:
        out = helper.stdout.read()
        helper.wait()
    finally:
        if helper.poll() is None:  # interrupted while waiting
            helper.kill()
            helper.wait()
    try:
        return int(out.removeprefix(CALLEES_DONE)) if helper.returncode == 0 else 0
    except ValueError:
        return 0


def run(spec, helper_calls):
    """The helper's side: helper_calls(spec) for the JSON `spec` gives two lists of calls; make
    the first, say so (CALLEES_DONE), make the second, then print how many kernels they
    compiled."""
    callees, later = helper_calls(json.loads(spec))
    for kernel, args in callees:
        kernel(*args)
    print(CALLEES_DONE, flush=True)
    for kernel, args in later:
        kernel(*args)
    print(sum(sum(kernel.stats.cache_misses.values()) for kernel, _ in [*callees, *later]))
    return 0
