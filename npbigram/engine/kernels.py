"""The numba engine's kernels: a training step as one pass over the rows of W, as the C step
(benchmarks/c/bigram_step.c) does it.

Shapes: V the vocabulary (= C, the channels), N = B*T positions of a batch of B windows of T.
Position n = b*T + t of batch s reads input inputs[starts[s,b] + t] and target
targets[starts[s,b] + t + shift]: the Trainer's batches are windows of the data (inputs =
targets = data, shift 1), the public API's one (x, y) pair of arrays (shift 0).

    loss  = (1/N) sum_n [ lse(W[x_n]) - W[x_n, y_n] ],   lse(w) = max w + log sum_j exp(w_j - max w)
    dW[i] = (1/N) sum_{n: x_n = i} (softmax(W[i]) - onehot(y_n))     gather/scatter: per position
          = (n_i softmax(W[i]) - C[i]) / N                          pair counts: per row

with C[i,j] the number of positions with (x_n, y_n) = (i, j) and n_i = sum_j C[i,j]. A step:

 1. groups the batch by input id: into pair-count tables (one per chunk of windows, summed per
    row), or by a stable counting sort of the targets by input id (row i's targets in position
    order; chunk k's after chunk k-1's);
 2. for each row i, in one pass: its max and exponentials (softmax computed once, W being fixed
    within a step), its loss share, its gradient row in a scratch row (the gather/scatter order:
    each position's (p - onehot)/N added in position order, as PyTorch's scatter-add does; or
    the pair-count formula, in float64 rounded once), and the optimizer's update of the row
    (a row no position reads gets the update with g = 0, as torch gives it), or, for the public
    API, the gradient row written out. The loss is the row shares summed in row order, / N.

The parallel kernels give each thread whole rows, and the grouping's chunks are fixed by the
sizes, so every row's arithmetic, and so every bit, is the same for any thread count. No sum
is left to fast-math (fastmath.py), so the bits are also the same on any x86-64 CPU.
numba does no bounds checks: callers validate ids (npbigram.utils.checks.check_ids) first.
"""

import math
from collections import namedtuple

import numpy as np
from numba import njit, prange

from .fastmath import lane_sum, row_softmax, sqrt
from .runtime import JIT as jit

ROW_GROUPS = 64  # a parallel kernel's rows come in this many runs of about equal work

# The optimizer's update as a kernel receives it: named scalars in the weight's dtype (rounded
# as the optimizer's NumPy formula rounds them) and, for AdamW, the scalars of each step t of the
# call, computed in Python float64 as the formula computes them (never beta**t in a kernel).
Update = namedtuple("Update", [
    "adamw",                  # True: AdamW's formula (npbigram/optim/adamw.py), else SGD's
    "decay",                  # AdamW: 1 - lr wd
    "one_minus_beta1",        # AdamW: 1 - beta1
    "beta2",                  # AdamW
    "one_minus_beta2",        # AdamW: 1 - beta2
    "eps",                    # AdamW
    "step_size",              # AdamW (S,): lr / (1 - beta1^t) at each step of the call
    "bias_correction2_sqrt",  # AdamW (S,): sqrt(1 - beta2^t) at each step of the call
    "lr",                     # SGD
    "weight_decay",           # SGD (L2, added to the gradient)
    "momentum",               # SGD
    "one_minus_dampening",    # SGD: 1 - dampening
    "nesterov",               # SGD
])


@njit(inline="always", **jit)
def update_row(weight, m, v, i, grad, k, u, s, t):
    """Step t (the call's step s) of u's optimizer on row i of W, with gradient row grad[k].
    m, v: AdamW's moments, or SGD's momentum buffer (an empty one without momentum) and
    nothing."""
    if u.adamw:
        decay, one_minus_beta1, beta2 = u.decay, u.one_minus_beta1, u.beta2
        one_minus_beta2, eps = u.one_minus_beta2, u.eps
        step_size, bias_correction2_sqrt = u.step_size[s], u.bias_correction2_sqrt[s]
        for j in range(weight.shape[1]):
            g = grad[k, j]
            mij = m[i, j] + one_minus_beta1 * (g - m[i, j])
            vij = v[i, j] * beta2 + one_minus_beta2 * g * g
            m[i, j] = mij
            v[i, j] = vij
            weight[i, j] = (weight[i, j] * decay
                            - step_size * (mij / (sqrt(vij) / bias_correction2_sqrt + eps)))
    else:
        lr, weight_decay, momentum = u.lr, u.weight_decay, u.momentum
        one_minus_dampening, nesterov, first_step = u.one_minus_dampening, u.nesterov, t == 1
        for j in range(weight.shape[1]):
            d = grad[k, j]
            if weight_decay != 0:
                d = d + weight_decay * weight[i, j]
            if momentum != 0:
                b = d if first_step else m[i, j] * momentum + one_minus_dampening * d
                m[i, j] = b
                d = d + momentum * b if nesterov else b
            weight[i, j] = weight[i, j] - lr * d


@njit(inline="always", **jit)
def _group(inputs, targets, shift, starts, block_size, pairs, histograms, row_starts, by_row):
    """Step 1 for the batch of windows at starts (B,), in K = histograms.shape[0] chunks of
    windows: with tables (pairs (K,V,V)), chunk k counts its pairs into pairs[k]; else a stable
    counting sort: row i's targets are by_row[row_starts[i]:row_starts[i+1]]."""
    n_chunks, n_windows, vocab_size = histograms.shape[0], starts.size, histograms.shape[1]
    if pairs.shape[0] > 0:
        for k in prange(n_chunks):
            for i in range(vocab_size):
                for j in range(vocab_size):
                    pairs[k, i, j] = 0
            for b in range(k * n_windows // n_chunks, (k + 1) * n_windows // n_chunks):
                start = starts[b]
                for t in range(block_size):
                    pairs[k, inputs[start + t], targets[start + t + shift]] += 1
    else:  # the stable counting sort
        for k in prange(n_chunks):
            for i in range(vocab_size):
                histograms[k, i] = 0
            for b in range(k * n_windows // n_chunks, (k + 1) * n_windows // n_chunks):
                start = starts[b]
                for t in range(block_size):
                    histograms[k, inputs[start + t]] += 1
        slot = 0  # each chunk's first slot of each row: chunk k's positions follow chunk k-1's
        for i in range(vocab_size):
            row_starts[i] = slot
            for k in range(n_chunks):
                count = histograms[k, i]
                histograms[k, i] = slot
                slot += count
        row_starts[vocab_size] = slot
        for k in prange(n_chunks):
            for b in range(k * n_windows // n_chunks, (k + 1) * n_windows // n_chunks):
                start = starts[b]
                for t in range(block_size):
                    i = inputs[start + t]
                    by_row[histograms[k, i]] = targets[start + t + shift]
                    histograms[k, i] += 1


@njit(inline="always", **jit)
def _row(weight, i, pair_counts, pairs, row_starts, by_row, inv_n, probs, grad, counts, terms,
         k):
    """Step 2's loss share of row i (float64), its gradient row into grad[k]. probs, grad (G,C),
    counts (G,C) int64, terms (G,C) float64: scratch rows, k the group's."""
    zero = weight.dtype.type(0)
    if pairs.shape[0] > 0:  # the row's counts: the chunks' tables summed
        n_row = 0
        for j in range(weight.shape[1]):
            c = 0
            for chunk in range(pairs.shape[0]):
                c += pairs[chunk, i, j]
            counts[k, j] = c
            n_row += c
    else:
        n_row = row_starts[i + 1] - row_starts[i]
    if n_row == 0:  # no position reads row i: its gradient is 0
        for j in range(weight.shape[1]):
            grad[k, j] = zero
        return 0.0
    m, log_sum = row_softmax(weight, i, inv_n, probs, k)  # probs[k] = softmax(W_i) / N
    if pair_counts:
        if pairs.shape[0] == 0:
            for j in range(weight.shape[1]):
                counts[k, j] = 0
            for p in range(row_starts[i], row_starts[i + 1]):
                counts[k, by_row[p]] += 1
        for j in range(weight.shape[1]):  # (n_i p_j - C_ij)/N in float64, one rounding
            grad[k, j] = n_row * probs[k, j] - counts[k, j] * inv_n
            terms[k, j] = counts[k, j] * (np.float64(weight[i, j]) - m) if counts[k, j] else 0.0
        return n_row * log_sum - lane_sum(terms, k)  # n_i lse(W_i) - sum_j C_ij (W_ij - max)
    for j in range(weight.shape[1]):
        grad[k, j] = zero
    loss = 0.0
    for p in range(row_starts[i], row_starts[i + 1]):  # the positions in position order
        target = by_row[p]
        for j in range(weight.shape[1]):  # (p_j - [j = y])/N, one rounding
            grad[k, j] += probs[k, j] - (inv_n if j == target else zero)
        loss += log_sum - (np.float64(weight[i, target]) - m)
    return loss


@njit(inline="always", **jit)
def _steps(weight, m, v, u, t, inputs, targets, shift, starts, block_size, pairs, chunks,
           counted, pair_counts, dweight, losses, groups):
    """len(losses) steps, one batch each: starts (S,B); losses[s] gets batch s's loss.
    pairs: (K,V,V) int32 tables (K = chunks) to group by pair counts, (0,V,V) to sort; counted:
    pairs already hold the counts of every step (the full batch: K = 1, int64, S steps on them).
    pair_counts: the pair-count formula, else gather/scatter's. dweight (V,C): the gradient is
    written there and nothing updated (one step); (0,0): each step updates W with u's optimizer,
    steps t, t+1, ... A loop stops at a non-finite loss and returns the steps before it (its
    rows were updated in the same pass); else len(losses)."""
    vocab_size, channels = weight.shape
    update = dweight.shape[0] == 0
    histograms = np.empty((chunks, vocab_size), dtype=np.int64)
    row_starts = np.empty(vocab_size + 1, dtype=np.int64)
    by_row = np.empty(0 if pairs.shape[0] > 0 else starts.shape[1] * block_size, dtype=np.int64)
    probs = np.empty((groups, channels), dtype=weight.dtype)
    grad = np.empty((groups, channels), dtype=weight.dtype)
    counts = np.empty((groups, channels), dtype=np.int64)
    terms = np.empty((groups, channels), dtype=np.float64)
    row_losses = np.empty(vocab_size, dtype=np.float64)
    bounds = np.empty(groups + 1, dtype=np.int64)
    n_positions = starts.shape[1] * block_size
    if counted:
        n_positions = 0
        for i in range(vocab_size):
            for j in range(channels):
                n_positions += pairs[0, i, j]
    inv_n = weight.dtype.type(1.0 / n_positions)
    for s in range(losses.size):
        if not counted:
            _group(inputs, targets, shift, starts[s], block_size, pairs, histograms,
                   row_starts, by_row)
        # runs of rows of about equal work: a row costs V, gather/scatter V more per position
        per_position = 0 if pair_counts else channels
        total = vocab_size * channels + n_positions * per_position
        row, done = 0, 0
        bounds[0], bounds[groups] = 0, vocab_size
        for g in range(1, groups):
            while row < vocab_size:
                cost = channels + (per_position * (row_starts[row + 1] - row_starts[row])
                                   if per_position else 0)
                if (done + cost) * groups > total * g:
                    break
                done += cost
                row += 1
            bounds[g] = row
        for g in prange(groups):
            for i in range(bounds[g], bounds[g + 1]):
                row_losses[i] = _row(weight, i, pair_counts, pairs, row_starts, by_row, inv_n,
                                     probs, grad, counts, terms, g)
                if update:
                    update_row(weight, m, v, i, grad, g, u, s, t + s)
                else:
                    for j in range(channels):
                        dweight[i, j] = grad[g, j]
        total_loss = 0.0
        for i in range(vocab_size):  # in row order, whatever thread took the row
            total_loss += row_losses[i]
        losses[s] = total_loss / n_positions
        if not math.isfinite(losses[s]):
            return s
    return losses.size


@njit(**jit)
def steps_serial(weight, m, v, u, t, inputs, targets, shift, starts, block_size, pairs, chunks,
                 counted, pair_counts, dweight, losses):
    """_steps on one thread: many steps of small problems per call."""
    return _steps(weight, m, v, u, t, inputs, targets, shift, starts, block_size, pairs, chunks,
                  counted, pair_counts, dweight, losses, 1)


@njit(parallel=True, **jit)
def steps_parallel(weight, m, v, u, t, inputs, targets, shift, starts, block_size, pairs,
                   chunks, counted, pair_counts, dweight, losses):
    """_steps with the chunks and the groups of rows over threads: the same bits."""
    return _steps(weight, m, v, u, t, inputs, targets, shift, starts, block_size, pairs, chunks,
                  counted, pair_counts, dweight, losses, ROW_GROUPS)


@njit(inline="always", **jit)
def _update(weight, grad, m, v, u, t, groups):
    vocab_size = weight.shape[0]
    for g in prange(groups):
        for i in range(g * vocab_size // groups, (g + 1) * vocab_size // groups):
            update_row(weight, m, v, i, grad, i, u, 0, t)


@njit(**jit)
def update_serial(weight, grad, m, v, u, t):
    """Step t of u's optimizer on every row of W, from the gradient grad (V,C)."""
    _update(weight, grad, m, v, u, t, 1)


@njit(parallel=True, **jit)
def update_parallel(weight, grad, m, v, u, t):
    """update_serial with the rows over threads: the same bits."""
    _update(weight, grad, m, v, u, t, ROW_GROUPS)


@njit(**jit)
def gather_rows(weight, x, out):
    """out[n] = W[x_n]: the logits of the API's forward.   x (N,) -> out (N,C)"""
    for n in range(x.size):
        i = x[n]  # read once: a store into out might alias x, so x[n] in the loop would be
        for j in range(weight.shape[1]):  # re-read per entry and the copy never vectorized
            out[n, j] = weight[i, j]


@njit(**jit)
def batch_losses(weight, data, starts, block_size, losses):
    """Mean loss of each batch: losses[s] = mean over the windows at starts[s] (B,) of
    lse(W[x_n]) - W[x_n, y_n]. W is fixed, so each row's max and log-sum are computed once."""
    row_maxes = np.empty(weight.shape[0], dtype=np.float64)
    log_sums = np.empty(weight.shape[0], dtype=np.float64)
    probs = np.empty((1, weight.shape[1]), dtype=weight.dtype)
    for i in range(weight.shape[0]):
        row_maxes[i], log_sums[i] = row_softmax(weight, i, weight.dtype.type(1), probs, 0)
    n_positions = starts.shape[1] * block_size
    for s in range(starts.shape[0]):
        total = 0.0
        for b in range(starts.shape[1]):
            for t in range(block_size):
                i = data[starts[s, b] + t]
                target = data[starts[s, b] + t + 1]
                total += log_sums[i] - (np.float64(weight[i, target]) - row_maxes[i])
        losses[s] = total / n_positions
