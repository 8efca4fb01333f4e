"""The loss and gradient of a batch, fused and compiled: the quantities of npbigram.ops
without ever building the (N,C) logits or probabilities.

Shapes: V the vocabulary (= C, the channels), N = B*T positions, x (N,) inputs, y (N,) targets.

    loss  = (1/N) sum_n [ lse(W[x_n]) - W[x_n, y_n] ],   lse(w) = max w + log sum_j exp(w_j - max w)
          (evaluated as log sum_j exp(w_j - max w) - (w_y - max w), so a huge max cancels exactly)
    dW[i] = (1/N) sum_{n: x_n = i} (softmax(W[i]) - onehot(y_n))     gather/scatter: per position
          = (n_i softmax(W[i]) - C[i]) / N                          pair counts: per row

where C[i,j] counts the positions with (x_n, y_n) = (i, j) and n_i = sum_j C[i,j]. Gather/
scatter adds one (V,) term per position, O(N V); as W does not change within a batch, each
row's softmax is computed once and reused by all the positions reading it (the same numbers
as recomputing it per position). Pair counts count the pairs, O(N), then do O(V) per row used.

Every loss+gradient kernel takes (weight, x, y, dweight, row_losses, counts) and returns the
mean loss: dweight (V,C) gets every entry; row_losses (V,) float64 each row's summed loss, the
mean being their sum in row order; counts (V,V) int32 scratch (pair counts only, else (0,0)).
The *_read_* kernels give the gradient of the rows read only (gather_scatter_read_serial).

Determinism: a parallel kernel gives each thread whole rows of dW (positions grouped by input
id with a stable counting sort, so every row adds its positions in their original order) and
sums losses in a fixed order, so the result is bitwise identical for any thread count.
numba does no bounds checks: callers validate ids (npbigram.utils.checks.check_ids) first.
"""


import numpy as np
from numba import njit, prange

from .fastmath import (
    ROW_GROUPS,
    group_rows,
    lane_sum,
    ordered_sum,
    row_index,
    row_softmax,
    zero_fill,
)
from .runtime import JIT as jit

SORT_CHUNKS = 64  # the parallel counting sort splits the positions into this many chunks

# ----------------------------------------------------------------------------------------------
# grouping positions by input id: a stable counting sort, serial or in fixed chunks


@njit(inline="always", **jit)
def _zero_histograms(n_chunks, vocab_size):
    """(K,V) int64 zeros. Every int64 table of the sort is made by np.empty of one signature
    (np.zeros and np.empty_like would each compile a further implementation of numba's)."""
    histograms = np.empty((n_chunks, vocab_size), dtype=np.int64)
    for k in range(n_chunks):
        for i in range(vocab_size):
            histograms[k, i] = 0
    return histograms


@njit(inline="always", **jit)
def _row_starts(histograms):
    """Chunked histograms (K,V) -> starts (V+1,) of each row in the sorted order, and each
    chunk's first slot per row (K,V): chunk k's positions of row i follow chunk k-1's."""
    n_chunks, vocab_size = histograms.shape
    starts = np.empty(vocab_size + 1, dtype=np.int64)
    fill = np.empty(histograms.shape, dtype=np.int64)
    slot = 0
    for i in range(vocab_size):
        starts[i] = slot
        for k in range(n_chunks):
            fill[k, i] = slot
            slot += histograms[k, i]
    starts[vocab_size] = slot
    return starts, fill


@njit(inline="always", **jit)
def targets_by_input(x, y, vocab_size):
    """Stable counting sort of the targets by input id.   x, y (N,) -> targets (N,), starts (V+1,)

    Row i's targets are targets[starts[i]:starts[i+1]]: the y_n of the positions n with x_n = i,
    in increasing n.
    """
    histogram = _zero_histograms(1, vocab_size)
    for n in range(x.size):
        histogram[0, x[n]] += 1
    starts, fill = _row_starts(histogram)
    targets = np.empty(y.size, dtype=np.int64)
    for n in range(x.size):
        targets[fill[0, x[n]]] = y[n]
        fill[0, x[n]] += 1
    return targets, starts


@njit(parallel=True, **jit)
def targets_by_input_parallel(x, y, vocab_size):
    """targets_by_input over SORT_CHUNKS contiguous chunks of positions: the same targets."""
    n_positions = x.size
    histograms = _zero_histograms(SORT_CHUNKS, vocab_size)
    for k in prange(SORT_CHUNKS):
        for n in range(k * n_positions // SORT_CHUNKS, (k + 1) * n_positions // SORT_CHUNKS):
            histograms[k, x[n]] += 1
    starts, fill = _row_starts(histograms)
    targets = np.empty(y.size, dtype=np.int64)
    for k in prange(SORT_CHUNKS):
        for n in range(k * n_positions // SORT_CHUNKS, (k + 1) * n_positions // SORT_CHUNKS):
            targets[fill[k, x[n]]] = y[n]
            fill[k, x[n]] += 1
    return targets, starts


@njit(**jit)
def balanced_row_groups(starts, groups):
    """Split rows 0..V-1 into `groups` contiguous runs of about equal position counts (some may
    be empty).   starts (V+1,) -> bounds (G+1,), group g = rows bounds[g]:bounds[g+1]"""
    vocab_size = starts.size - 1
    bounds = np.empty(groups + 1, dtype=np.int64)
    bounds[0] = 0
    row = 0
    for g in range(1, groups):
        target = (starts[vocab_size] * g) // groups
        while row < vocab_size and starts[row + 1] <= target:
            row += 1
        bounds[g] = row
    bounds[groups] = vocab_size
    return bounds


# ----------------------------------------------------------------------------------------------
# the gather/scatter path: O(N V)


@njit(inline="always", **jit)
def _gather_scatter_rows(weight, targets, starts, first_row, end_row, dweight, row_of,
                         row_losses, probs, inv_n):
    """Rows first_row..end_row-1 of dW, zero on entry (row i at dweight[row_index(row_of, i)]):
    for each position reading row i (in position order) with target y, add
    (softmax(W_i) - onehot(y))/N into dW_i, and lse(W_i) - W[i, y] to row i's loss.
    targets, starts as from targets_by_input. W does not change within a batch, so each row's
    softmax is computed once and reused by all its positions: the same numbers as recomputing
    it per position."""
    zero = weight.dtype.type(0)
    for i in range(first_row, end_row):
        row_losses[i] = 0.0
        if starts[i] == starts[i + 1]:
            continue  # no position reads row i: dW_i stays 0
        m, log_sum = row_softmax(weight, i, inv_n, probs)  # probs = softmax(W_i) / N
        out = row_index(row_of, i)
        loss = 0.0
        for k in range(starts[i], starts[i + 1]):
            target = targets[k]
            for j in range(weight.shape[1]):  # (p_j - [j = y])/N, one rounding
                dweight[out, j] += probs[j] - (inv_n if j == target else zero)
            loss += log_sum - (np.float64(weight[i, target]) - m)
        row_losses[i] = loss


@njit(**jit)
def gather_scatter_serial(weight, x, y, dweight, row_losses, counts):
    """dW = sum_n (softmax(W[x_n]) - onehot(y_n)) / N, one row after another."""
    inv_n = weight.dtype.type(1.0 / x.size)
    targets, starts = targets_by_input(x, y, weight.shape[0])
    probs = np.empty(weight.shape[1], dtype=weight.dtype)
    zero_fill(dweight)
    _gather_scatter_rows(weight, targets, starts, 0, weight.shape[0], dweight, None, row_losses,
                         probs, inv_n)
    return ordered_sum(row_losses) / x.size


@njit(parallel=True, **jit)
def gather_scatter_parallel(weight, x, y, dweight, row_losses, counts):
    """gather_scatter_serial with threads owning whole rows: each row's arithmetic does not
    depend on which thread runs it, so the result is the same for any thread count."""
    inv_n = weight.dtype.type(1.0 / x.size)
    targets, starts = targets_by_input_parallel(x, y, weight.shape[0])
    bounds = balanced_row_groups(starts, ROW_GROUPS)
    zero_fill(dweight)  # one memset: faster than each thread zeroing its rows
    for g in prange(ROW_GROUPS):
        probs = np.empty(weight.shape[1], dtype=weight.dtype)
        _gather_scatter_rows(weight, targets, starts, bounds[g], bounds[g + 1], dweight, None,
                             row_losses, probs, inv_n)
    return ordered_sum(row_losses) / x.size


@njit(inline="always", **jit)
def _number_rows_read(starts, row_of, grad_rows):
    """row_of[i] = the rank of row i among the rows read (starts (V+1,) as from
    targets_by_input), or the last row of grad_rows for a row not read; those grad_rows
    zeroed. grad_rows (R+1, C), R at least the number of rows read."""
    zero_row = grad_rows.shape[0] - 1
    rank = 0
    for i in range(starts.size - 1):
        if starts[i] == starts[i + 1]:
            row_of[i] = zero_row
        else:
            row_of[i] = rank
            rank += 1
    for r in range(rank):
        for j in range(grad_rows.shape[1]):
            grad_rows[r, j] = 0
    for j in range(grad_rows.shape[1]):
        grad_rows[zero_row, j] = 0


@njit(**jit)
def gather_scatter_read_serial(weight, x, y, grad_rows, row_of, row_losses):
    """gather_scatter_serial's gradient of the rows the batch reads only, compactly: dW_i in
    grad_rows[row_of[i]], and row_of[i] = the last row, zeros, for a row not read (see
    _number_rows_read). A step's update then reads the rows of zeros from the cache, not a
    (V,C) array of them from memory: the same numbers, a quarter less memory traffic."""
    inv_n = weight.dtype.type(1.0 / x.size)
    targets, starts = targets_by_input(x, y, weight.shape[0])
    _number_rows_read(starts, row_of, grad_rows)
    probs = np.empty(weight.shape[1], dtype=weight.dtype)
    _gather_scatter_rows(weight, targets, starts, 0, weight.shape[0], grad_rows, row_of,
                         row_losses, probs, inv_n)
    return ordered_sum(row_losses) / x.size


@njit(parallel=True, **jit)
def gather_scatter_read_parallel(weight, x, y, grad_rows, row_of, row_losses):
    """gather_scatter_read_serial with threads owning whole rows, as gather_scatter_parallel."""
    inv_n = weight.dtype.type(1.0 / x.size)
    targets, starts = targets_by_input_parallel(x, y, weight.shape[0])
    _number_rows_read(starts, row_of, grad_rows)
    bounds = balanced_row_groups(starts, ROW_GROUPS)
    for g in prange(ROW_GROUPS):
        probs = np.empty(weight.shape[1], dtype=weight.dtype)
        _gather_scatter_rows(weight, targets, starts, bounds[g], bounds[g + 1], grad_rows,
                             row_of, row_losses, probs, inv_n)
    return ordered_sum(row_losses) / x.size


@njit(**jit)
def gather_rows(weight, x, out):
    """out[n] = W[x_n]: the logits of the API's forward.   x (N,) -> out (N,C)"""
    for n in range(x.size):
        i = x[n]  # read once: a store into out might alias x, so x[n] in the loop would be
        for j in range(weight.shape[1]):  # re-read per entry and the copy never vectorized
            out[n, j] = weight[i, j]


# ----------------------------------------------------------------------------------------------
# the pair-counts path: O(N) counting, then O(V) per row with n_i > 0


@njit(**jit)
def count_pairs_into(x, y, counts):
    """counts[i,j] = number of positions with (x_n, y_n) = (i, j).   counts (V,V) int"""
    counts[:] = 0
    for n in range(x.size):
        counts[x[n], y[n]] += 1


@njit(inline="always", **jit)
def _counts_rows(weight, counts, first_row, end_row, dweight, row_losses, probs, terms, inv_n):
    """The pair-count gradient of rows first_row..end_row-1 of dW (zero on entry) and their
    losses n_i lse(W_i) - sum_j C_ij W_ij (both 0 for a row with n_i = 0).
    probs (C,), terms (C,) float64: scratch"""
    for i in range(first_row, end_row):
        n_row = counts[i].sum()
        if n_row == 0:
            row_losses[i] = 0.0
            continue
        m, log_sum = row_softmax(weight, i, inv_n, probs)  # probs = softmax(W_i) / N
        for j in range(weight.shape[1]):
            dweight[i, j] = n_row * probs[j] - counts[i, j] * inv_n
            terms[j] = counts[i, j] * (np.float64(weight[i, j]) - m) if counts[i, j] else 0.0
        row_losses[i] = n_row * log_sum - lane_sum(terms)  # - sum_j C_ij (W_ij - max)


@njit(**jit)
def counts_grad_serial(weight, counts, n_positions, dweight, row_losses):
    """The pair-count gradient of the counts (V,V) into dweight; returns the
    mean loss sum_i [n_i lse(W_i) - sum_j C_ij W_ij] / N.   counts (V,V) int"""
    inv_n = weight.dtype.type(1.0 / n_positions)
    probs = np.empty(weight.shape[1], dtype=weight.dtype)
    terms = np.empty(weight.shape[1], dtype=np.float64)
    zero_fill(dweight)
    _counts_rows(weight, counts, 0, weight.shape[0], dweight, row_losses, probs, terms, inv_n)
    return ordered_sum(row_losses) / n_positions


@njit(parallel=True, **jit)
def counts_grad_parallel(weight, counts, n_positions, dweight, row_losses):
    """counts_grad_serial with rows split over threads: the same result for any thread count."""
    inv_n = weight.dtype.type(1.0 / n_positions)
    zero_fill(dweight)
    for g in prange(ROW_GROUPS):
        probs = np.empty(weight.shape[1], dtype=weight.dtype)
        terms = np.empty(weight.shape[1], dtype=np.float64)
        first_row, end_row = group_rows(g, weight.shape[0])
        _counts_rows(weight, counts, first_row, end_row, dweight, row_losses, probs, terms, inv_n)
    return ordered_sum(row_losses) / n_positions


@njit(**jit)
def pair_counts_serial(weight, x, y, dweight, row_losses, counts):
    """The batch's gradient from its pair counts: counting O(N), then O(V) per row used."""
    count_pairs_into(x, y, counts)
    return counts_grad_serial(weight, counts, x.size, dweight, row_losses)


@njit(**jit)
def pair_counts_parallel(weight, x, y, dweight, row_losses, counts):
    """pair_counts_serial with the rows split over threads."""
    count_pairs_into(x, y, counts)
    return counts_grad_parallel(weight, counts, x.size, dweight, row_losses)



@njit(**jit)
def batch_losses(weight, data, starts, block_size, losses):
    """Mean loss of each batch: losses[s] = mean over the windows at starts[s] (B,) of
    lse(W[x_n]) - W[x_n, y_n]. W is fixed, so each row's max and log-sum are computed once."""
    row_maxes = np.empty(weight.shape[0], dtype=np.float64)
    log_sums = np.empty(weight.shape[0], dtype=np.float64)
    probs = np.empty(weight.shape[1], dtype=weight.dtype)
    for i in range(weight.shape[0]):
        row_maxes[i], log_sums[i] = row_softmax(weight, i, weight.dtype.type(1), probs)
    n_positions = starts.shape[1] * block_size
    for s in range(starts.shape[0]):
        total = 0.0
        for b in range(starts.shape[1]):
            for t in range(block_size):
                i = data[starts[s, b] + t]
                target = data[starts[s, b] + t + 1]
                total += log_sums[i] - (np.float64(weight[i, target]) - row_maxes[i])
        losses[s] = total / n_positions

