"""Hardware floors of a training step, measured on this machine in the same run as the steps.

    NUMBA_NUM_THREADS=2 python benchmarks/floors.py --configs 32x8x65 512x64x65 ...

What any step must at least do (benchmarks/README.md, "Distance from the hardware floor"): E =
(distinct input ids) x V float32 exponentials, AdamW's 7·4·V² bytes, reading the batch; each the
faster of a serial and a numba-parallel loop, the step's floor the largest of the three (they
can overlap: their sum is no bound); beside AdamW's bytes, npbigram's own AdamW pass. The last
line of stdout is one JSON object:
{"status": "ok", "exp": name, "threads": n, "floors": [one row per config]}.
"""

import argparse
import importlib
import json
import math
import sys
import time
from functools import partial

import numpy as np
from measure_step import LEARNING_RATE, make_inputs, parse_dims
from numba import get_num_threads, njit, prange

from npbigram import AdamW, BigramLanguageModel

# where npbigram's vectorizable float32 exp lives: the one place to change when it moves
EXP_F32 = ("npbigram.engine.fastmath", "exp_f32")
GROUPS = 64  # a parallel kernel's rows come in this many groups
CALL_S = 0.002  # each timed call repeats the kernel until it takes about this long
CALLS, BUDGET_S = 7, 0.3  # at least CALLS timed calls, then more until BUDGET_S
ROUNDS = 3  # the AdamW floor and npbigram's AdamW pass, timed in turn
ADAMW_ARRAYS_READ, ADAMW_ARRAYS_WRITTEN = 4, 3  # W, g, m, v; W, m, v
BOUNDS = {"exp_s": "exp", "memory_s": "AdamW bytes", "batch_s": "batch bytes"}  # floor: the max


def package_exp():
    """npbigram's polynomial float32 exp (a numba function), imported by name."""
    module, name = EXP_F32
    return getattr(importlib.import_module(module), name)


def serial_and_parallel(kernel, groups=None):
    """{"serial": kernel compiled for one thread, "parallel": with numba's parallel loops}; with
    groups, kernel(groups, ...) runs its rows as one group serially, as `groups` in parallel."""
    serial = njit(nogil=True, error_model="numpy")(kernel)
    parallel = njit(parallel=True, nogil=True, error_model="numpy")(kernel)
    if groups is None:
        return {"serial": serial, "parallel": parallel}
    return {"serial": partial(serial, 1), "parallel": partial(parallel, groups)}


def exp_kernels(exp):
    """Kernels computing exp(x[i, j]) for every element of x, reps times, group g's results
    added into row g of acc."""

    def exp_rows(groups, x, acc, reps):
        rows = x.shape[0]
        for _ in range(reps):
            for g in prange(groups):
                for i in range(g * rows // groups, (g + 1) * rows // groups):
                    for j in range(x.shape[1]):
                        acc[g, j] += exp(x[i, j])

    return serial_and_parallel(exp_rows, GROUPS)


def read_batch(x, y, reps):
    """Reads every element of x and y, reps times; returns their sum."""
    total = 0
    for _ in range(reps):
        for i in prange(x.size):
            total += x[i] + y[i]
    return total


BETA1, BETA2, LR = np.float32(0.9), np.float32(0.999), np.float32(1e-3)


@njit(inline="always", nogil=True, error_model="numpy")
def _stream_rows(w, g, m, v, first, end):
    for i in range(first, end):
        for j in range(w.shape[1]):
            gij = g[i, j]
            mij = m[i, j] * BETA1 + gij * (np.float32(1) - BETA1)
            vij = v[i, j] * BETA2 + gij * gij * (np.float32(1) - BETA2)
            m[i, j] = mij
            v[i, j] = vij
            w[i, j] -= LR * (mij - vij)


@njit(nogil=True, error_model="numpy")
def stream_serial(w, g, m, v, reps):
    """AdamW's memory traffic: read W, g, m, v, write W, m, v; reps times (a serial loop over
    the rows: faster than one group of stream_parallel's at small V)."""
    for _ in range(reps):
        _stream_rows(w, g, m, v, 0, w.shape[0])


@njit(parallel=True, nogil=True, error_model="numpy")
def stream_parallel(w, g, m, v, reps):
    rows = w.shape[0]
    for _ in range(reps):
        for k in prange(GROUPS):
            _stream_rows(w, g, m, v, k * rows // GROUPS, (k + 1) * rows // GROUPS)


READ_BATCH = serial_and_parallel(read_batch)
STREAM_ADAMW = {"serial": stream_serial, "parallel": stream_parallel}


def time_kernel(kernel, *args, budget=BUDGET_S):
    """Minimum seconds of one repetition of kernel(*args, reps), over timed calls of reps
    repetitions each (about CALL_S long): at least CALLS calls, then more until `budget`."""
    kernel(*args, 1)  # compile
    t0 = time.perf_counter()
    kernel(*args, 1)
    reps = max(1, math.ceil(CALL_S / max(time.perf_counter() - t0, 1e-9)))
    times, spent = [], 0.0
    while len(times) < CALLS or spent < budget:
        t0 = time.perf_counter()
        kernel(*args, reps)
        elapsed = time.perf_counter() - t0
        times.append(elapsed / reps)
        spent += elapsed
    return min(times)


def fastest(variants, *args, budget=BUDGET_S):
    """(seconds, variant name) of the faster of {name: kernel}."""
    return min((time_kernel(kernel, *args, budget=budget), name)
               for name, kernel in variants.items())


def step_floors(kernels, batch_size, block_size, vocab_size):
    """The exp floor and the batch floor of the step at this size."""
    xb, yb = make_inputs("numba", batch_size, block_size, vocab_size)
    rows = np.unique(xb).size
    rng = np.random.default_rng(0)
    x = rng.uniform(-10, 0, size=(rows, vocab_size)).astype(np.float32)
    acc = np.zeros((GROUPS, vocab_size), dtype=np.float32)
    exp_s, exp_variant = fastest(kernels, x, acc)
    xb, yb = xb.ravel(), yb.ravel()
    batch_s, batch_variant = fastest(READ_BATCH, xb, yb)
    return {"distinct_rows": rows, "exp_count": rows * vocab_size, "exp_s": exp_s,
            "exp_variant": exp_variant, "batch_bytes": xb.nbytes + yb.nbytes,
            "batch_s": batch_s, "batch_variant": batch_variant}


def adamw_steps(opt, reps):
    """opt.step(), reps times: npbigram's AdamW pass over W, g, m, v, as a step runs it."""
    for _ in range(reps):
        opt.step()


def memory_floor(vocab_size):
    """The streaming kernel's floor, and beside it npbigram's own AdamW pass (`opt.step()` on a
    fixed gradient, timed the same way), both over the optimizer's arrays (where they lie in
    memory changes the rate); the two in turn, ROUNDS times (each a share of the budget), each
    its minimum, so that a slow moment of a shared host slows neither alone."""
    rng = np.random.default_rng(0)
    model = BigramLanguageModel.from_weight(
        rng.standard_normal((vocab_size, vocab_size), dtype=np.float32))
    model.grad = rng.standard_normal((vocab_size, vocab_size), dtype=np.float32)
    opt = AdamW(model, lr=LEARNING_RATE)
    arrays = model.weight, model.grad, opt.state["m"], opt.state["v"]
    stream, adamw = [], []
    for _ in range(ROUNDS):
        stream.append(fastest(STREAM_ADAMW, *arrays, budget=BUDGET_S / ROUNDS))
        adamw.append(time_kernel(adamw_steps, opt, budget=BUDGET_S / ROUNDS))
    (seconds, variant) = min(stream)
    moved = (ADAMW_ARRAYS_READ + ADAMW_ARRAYS_WRITTEN) * model.weight.nbytes
    return {"memory_bytes": moved, "memory_s": seconds, "memory_variant": variant,
            "bandwidth_bytes_per_s": moved / seconds, "adamw_s": min(adamw)}


def measure(configs):
    kernels = exp_kernels(package_exp())
    memory = {v: memory_floor(v) for v in sorted({v for _, _, v in configs})}
    floors = []
    for b, t, v in configs:
        row = {"batch_size": b, "block_size": t, "vocab_size": v,
               **step_floors(kernels, b, t, v), **memory[v]}
        row["floor_s"], row["bound"] = max((row[key], bound) for key, bound in BOUNDS.items())
        floors.append(row)
    return {"status": "ok", "exp": ".".join(EXP_F32), "threads": get_num_threads(),
            "floors": floors}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", type=parse_dims("32x8x65"), required=True,
                        metavar="BxTxV")
    print(json.dumps(measure(parser.parse_args(argv).configs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
