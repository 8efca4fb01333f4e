"""Training loops compiled whole: many steps per call from Python, for sizes where a step
takes microseconds and a call from Python per step would cost as much again.

A step takes the batch of windows at starts[s] (B,) of `data`, its loss and gradient (one loop
per gradient rule: gather_scatter_steps, pair_counts_steps), and the optimizer's update
(update_kernels.update_rows, chosen by the scalars' record type). Loops stop before updating at
a non-finite loss and return the number of steps completed.
data (n,) int64 ids, checked, with every starts[s,b] + T < n: nothing here checks bounds.
"""

import math
from collections import namedtuple

import numpy as np
from numba import njit, prange

from .grad_kernels import counts_grad_serial, gather_scatter_serial
from .runtime import JIT as jit
from .update_kernels import update_serial

# the scratch arrays of a batch, one class per gradient rule
GatherScatterBatch = namedtuple("GatherScatterBatch", "x y counts")  # x, y (N,); counts unused
PairCountsBatch = namedtuple("PairCountsBatch", "counts")  # counts (V,V) int32


@njit(inline="always", **jit)
def _fill_window(data, start, block_size, x, y, b):
    """Window b of get_batch's batch: x[b*T + t] = data[start + t], y = the next token."""
    for t in range(block_size):
        x[b * block_size + t] = data[start + t]
        y[b * block_size + t] = data[start + t + 1]


@njit(**jit)
def fill_batch(data, starts, block_size, x, y):
    """get_batch's windows at starts (B,) into x, y (B*T,)."""
    for b in range(starts.size):
        _fill_window(data, starts[b], block_size, x, y, b)


@njit(parallel=True, **jit)
def fill_batch_parallel(data, starts, block_size, x, y):
    """fill_batch with the windows split over threads."""
    for b in prange(starts.size):
        _fill_window(data, starts[b], block_size, x, y, b)


@njit(**jit)
def count_batch_pairs(data, starts, block_size, counts):
    """count_pairs of the batch of windows at starts (B,), read straight from data."""
    counts[:] = 0
    for b in range(starts.size):
        start = starts[b]
        current = data[start]
        for t in range(1, block_size + 1):
            following = data[start + t]
            counts[current, following] += 1
            current = following


@njit(inline="always", **jit)
def gather_scatter_batch(weight, data, starts, block_size, batch, grad, row_losses):
    """The windows gathered into x, y, then the gather/scatter gradient."""
    fill_batch(data, starts, block_size, batch.x, batch.y)
    return gather_scatter_serial(weight, batch.x, batch.y, grad, row_losses, batch.counts)


@njit(inline="always", **jit)
def pair_counts_batch(weight, data, starts, block_size, batch, grad, row_losses):
    """The windows' pairs counted straight from data, then the pair-count gradient."""
    count_batch_pairs(data, starts, block_size, batch.counts)
    return counts_grad_serial(weight, batch.counts, starts.size * block_size, grad, row_losses)


@njit(inline="always", **jit)
def _steps(batch_loss_grad, weight, grad, state, scalars, data, starts, block_size, batch,
           losses):
    """len(starts) steps; losses (S,) gets each batch's loss before its update. batch_loss_grad,
    one of the batch rules above, is inlined here when the loop of its rule compiles: the rule is
    chosen by which loop the engine calls, so each compiles once (a numba overload choosing it
    by the batch's type would compile it a second time just to type it)."""
    row_losses = np.empty(weight.shape[0], dtype=np.float64)
    for s in range(starts.shape[0]):
        losses[s] = batch_loss_grad(weight, data, starts[s], block_size, batch, grad, row_losses)
        if not math.isfinite(losses[s]):
            return s
        update_serial(weight, grad, state, scalars, s)
    return starts.shape[0]


@njit(**jit)
def gather_scatter_steps(weight, grad, state, scalars, data, starts, block_size, batch, losses):
    """The steps of the gather/scatter gradient; batch a GatherScatterBatch."""
    return _steps(gather_scatter_batch, weight, grad, state, scalars, data, starts, block_size,
                  batch, losses)


@njit(**jit)
def pair_counts_steps(weight, grad, state, scalars, data, starts, block_size, batch, losses):
    """The steps of the pair-count gradient; batch a PairCountsBatch."""
    return _steps(pair_counts_batch, weight, grad, state, scalars, data, starts, block_size,
                  batch, losses)


@njit(**jit)
def compiled_full_batch_steps(weight, grad, state, scalars, counts, losses):
    """len(losses) steps on the exact gradient of a whole split from its pair counts (V,V):
    losses[s] is the exact loss before step s."""
    n_positions = counts.sum()
    row_losses = np.empty(weight.shape[0], dtype=np.float64)
    for s in range(losses.size):
        losses[s] = counts_grad_serial(weight, counts, n_positions, grad, row_losses)
        if not math.isfinite(losses[s]):
            return s
        update_serial(weight, grad, state, scalars, s)
    return losses.size
