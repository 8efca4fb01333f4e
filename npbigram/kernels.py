"""The numba engine: the reference math of npbigram.ops, fused and compiled.

Shapes: V the vocabulary (= C, the channels), N = B*T positions, x (N,) inputs, y (N,) targets.
Every kernel computes the same quantities as the NumPy reference, written out per row:

    loss  = (1/N) sum_n [ lse(W[x_n]) - W[x_n, y_n] ],   lse(w) = max w + log sum_j exp(w_j - max w)
          (evaluated as log sum_j exp(w_j - max w) - (w_y - max w), so a huge max cancels exactly)
    dW[i] = (1/N) sum_{n: x_n = i} (softmax(W[i]) - onehot(y_n))     gather/scatter: per position
          = (n_i softmax(W[i]) - C[i]) / N                          pair counts: per row

where C[i,j] counts the positions with (x_n, y_n) = (i, j) and n_i = sum_j C[i,j]. Neither
builds the (N,C) logits or probabilities. Gather/scatter adds one (V,) term per position, O(N V);
as W does not change within a batch, each row's softmax is computed once and reused by all the
positions reading it (the same numbers as recomputing it per position). Pair counts count the
pairs, O(N), then do O(V) per row that occurs.

Determinism: a parallel kernel gives each thread whole rows of dW (positions grouped by input id
with a stable counting sort, so every row adds its positions in their original order) and sums
losses in a fixed order; whether a kernel runs serially or in parallel depends on the problem
size only. So the result is bitwise identical for any thread count and on every rerun. No sum
is left to fast-math reassociation (lane_sum writes its order out), so the serial and parallel
variants agree bit for bit too, and a kernel gives the same bits whether it was just compiled
or loaded from the cache (where LLVM inlined it differently).

numba does no bounds checks: callers validate ids (npbigram.data.check_ids) before every kernel.
Kernels compile on first use and are cached on disk (see CACHE_DIR below).
"""

import math
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np


# ----------------------------------------------------------------------------------------------
# JIT cache location, decided before numba reads its configuration


def _writable(path):
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            return True
    except OSError:
        return False


def _cache_location():
    """Where compiled kernels are cached: (NUMBA_CACHE_DIR or None for the package's
    __pycache__, whether caching is possible).

    $NUMBA_CACHE_DIR wins when set. Otherwise numba caches next to this file; when the package
    directory is read-only (a system install), we point NUMBA_CACHE_DIR at
    $XDG_CACHE_HOME/npbigram/numba (default ~/.cache/npbigram/numba), then at a folder in the
    temporary directory; when nothing is writable, kernels compile afresh in every process.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"], True
    if _writable(Path(__file__).resolve().parent / "__pycache__"):
        return None, True
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    for candidate in (Path(xdg) / "npbigram" / "numba",
                      Path(tempfile.gettempdir()) / f"npbigram-numba-{os.getuid()}"):
        if _writable(candidate):
            return str(candidate), True
    warnings.warn("npbigram: no writable folder for numba's JIT cache (set NUMBA_CACHE_DIR); "
                  "kernels will compile in every process", RuntimeWarning, stacklevel=2)
    return None, False


# OpenMP threads that wait passively: with the default busy-waiting, a parallel region on a
# machine whose cores are busy with other work ran 2-3x slower than one thread (a waiting
# thread spins on the core its partner needs); passive waiting costs microseconds per region,
# and parallel kernels only run for milliseconds of work. OMP_WAIT_POLICY=active overrides.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

CACHE_DIR, CACHE = _cache_location()
if CACHE_DIR is not None:
    os.environ["NUMBA_CACHE_DIR"] = CACHE_DIR
    if "numba" in sys.modules:  # numba already read its configuration: tell it directly
        sys.modules["numba"].config.CACHE_DIR = CACHE_DIR

import numba  # noqa: E402  (after the cache location is set)
from llvmlite import ir  # noqa: E402
from numba import njit, prange, types  # noqa: E402
from numba.extending import intrinsic, overload  # noqa: E402

# Work (elements) above which a kernel runs in parallel; entering a parallel region costs tens
# of microseconds. The choice depends on sizes only, never on the thread count. Measured on 2
# cores: gather/scatter at N*V = 2M takes 372 us serial and 511 us on 2 threads, at 8M 991 and
# 892 us; the per-row kernels at V = 256 are twice as fast serial, at V = 1024 1.4x slower.
PARALLEL_POSITIONS_WORK = 1 << 23  # N * V for the gather/scatter path
PARALLEL_ROWS_WORK = 1 << 18  # V * V for per-row kernels (pair-count gradient, optimizers)
PARALLEL_FILL_POSITIONS = 1 << 16  # N for gathering a batch's windows
ROW_GROUPS = 64  # a parallel kernel's rows come in this many groups of about equal work
SORT_CHUNKS = 64  # the parallel counting sort splits the positions into this many chunks

# error_model "numpy": x / 0 gives inf or nan as in NumPy, without the branch that raises
# ZeroDivisionError and would keep LLVM from vectorizing a loop that divides
jit = dict(cache=CACHE, nogil=True, error_model="numpy")


# ----------------------------------------------------------------------------------------------
# exp: range reduction and a polynomial, so that LLVM can vectorize it (math.exp is scalar libm)


@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret an int32's bits as a float32 (no conversion)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@intrinsic
def max_ignoring_order(typingctx, a, b):
    """max(a, b) as llvm.maxnum with the fast-math flags nnan, nsz: a max is exact in any order,
    so LLVM may vectorize a running max. (NaN weights still surface: exp and the loss keep them.)"""
    def codegen(context, builder, signature, args):
        ty = args[0].type
        maxnum = builder.module.declare_intrinsic("llvm.maxnum", [ty],
                                                  ir.FunctionType(ty, [ty, ty]))
        return builder.call(maxnum, args, fastmath=("nnan", "nsz"))
    return a(a, a), codegen


@intrinsic
def sqrt(typingctx, x):
    """IEEE sqrt (correctly rounded, as NumPy's) as llvm.sqrt: numba's np.sqrt on a scalar
    calls libm's sqrtf, which a loop cannot vectorize."""
    def codegen(context, builder, signature, args):
        ty = args[0].type
        fn = builder.module.declare_intrinsic("llvm.sqrt", [ty], ir.FunctionType(ty, [ty]))
        return builder.call(fn, args)
    return x(x), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c with one rounding (llvm.fma), in vector and scalar code alike."""
    def codegen(context, builder, signature, args):
        ty = args[0].type
        fn = builder.module.declare_intrinsic("llvm.fma", [ty], ir.FunctionType(ty, [ty] * 3))
        return builder.call(fn, args)
    return a(a, a, a), codegen


@njit(inline="always", **jit)
def lane_sum(values):
    """sum of values (n,) as 8 partial sums, lane k taking j = k mod 8, added in a fixed order.

    No fast-math: the order is written out, so the result is the same bits wherever the code is
    inlined and however LLVM vectorizes it, and 8 independent chains still add quickly."""
    zero = values.dtype.type(0)
    s0, s1, s2, s3, s4, s5, s6, s7 = zero, zero, zero, zero, zero, zero, zero, zero
    whole = values.size - values.size % 8
    for j in range(0, whole, 8):
        s0 += values[j]
        s1 += values[j + 1]
        s2 += values[j + 2]
        s3 += values[j + 3]
        s4 += values[j + 4]
        s5 += values[j + 5]
        s6 += values[j + 6]
        s7 += values[j + 7]
    tail = zero
    for j in range(whole, values.size):
        tail += values[j]
    return (((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))) + tail


LOG2E = np.float32(1.4426950408889634)
LN2_HI = np.float32(0.693359375)  # ln 2 = LN2_HI + LN2_LO; n * LN2_HI is exact for |n| < 2^9
LN2_LO = np.float32(-2.12194440e-4)
# Cephes expf: exp(r) ~ 1 + r + r^2 P(r) on |r| <= ln2/2
EXP_P = tuple(np.float32(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                                       4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1))
EXP_LO = np.float32(-110.0)  # exp(-110) < 2^-150: rounds to 0
EXP_HI = np.float32(89.0)  # exp(89) > FLT_MAX: inf


@njit(**jit)
def exp_f32(x):
    """exp(x) for float32 x: x = n ln2 + r, |r| <= ln2/2, exp(x) = 2^n (1 + r + r^2 P(r)).

    At most 1.02 ulp from exp(x) computed in float64, over every float32 x (checked
    exhaustively; subnormal results included); exactly 0 below -104, inf above 88.73, NaN for
    NaN. 2^n is applied as 2^(n>>1) * 2^(n-(n>>1))
    so that neither factor overflows or underflows before the product does.
    """
    xc = min(max(x, EXP_LO), EXP_HI)
    n = np.floor(xc * LOG2E + np.float32(0.5))  # nearest integer, as float32
    r = fma(n, -LN2_LO, fma(n, -LN2_HI, xc))
    p0, p1, p2, p3, p4, p5 = EXP_P
    poly = fma(fma(fma(fma(fma(fma(p0, r, p1), r, p2), r, p3), r, p4), r, p5), r * r, r)
    poly = poly + np.float32(1.0)
    k = np.int32(n)
    half = k >> 1
    scaled = ((poly * _float32_from_bits((half + 127) << 23))
              * _float32_from_bits((k - half + 127) << 23))
    return scaled if x == x else x


def fast_exp(x):
    """exp for the kernels: exp_f32 for float32, libm's exp for float64 (accuracy first)."""
    return math.exp(x)


@overload(fast_exp, inline="always")
def _fast_exp_overload(x):
    if x == types.float32:
        return lambda x: exp_f32(x)
    return lambda x: math.exp(x)


# ----------------------------------------------------------------------------------------------
# one row: max, exp, sum. Rows are passed as (matrix, row index): slicing a row would create an
# array object whose reference counting costs more than the row's arithmetic at V = 65.


@njit(inline="always", **jit)
def row_max(weight, i):
    """max_j W[i,j]"""
    m = weight[i, 0]
    for j in range(1, weight.shape[1]):
        m = max_ignoring_order(m, weight[i, j])
    return m


@njit(inline="always", **jit)
def exp_shifted(weight, i, shift, exps):
    """exps_j = exp(W[i,j] - shift); returns sum_j exps_j.   exps (C,)"""
    for j in range(weight.shape[1]):
        exps[j] = fast_exp(weight[i, j] - shift)
    return lane_sum(exps)


@njit(inline="always", **jit)
def row_softmax(weight, i, inv_n, probs):
    """probs_j = softmax(W_i)_j * inv_n; returns max_j W_ij and log sum_j exp(W_ij - max), in
    float64: the loss of target y is then log_sum - (W_iy - max)."""
    m = row_max(weight, i)
    total = exp_shifted(weight, i, m, probs)
    scale = inv_n / total
    for j in range(weight.shape[1]):
        probs[j] *= scale
    return np.float64(m), math.log(np.float64(total))


@njit(**jit)
def ordered_sum(values):
    """sum in index order (in a parallel kernel, arr.sum() would become a parallel reduction)."""
    total = 0.0
    for k in range(values.size):
        total += values[k]
    return total


# ----------------------------------------------------------------------------------------------
# grouping positions by input id: a stable counting sort, serial or in fixed chunks


@njit(inline="always", **jit)
def _row_starts(histograms):
    """Chunked histograms (K,V) -> starts (V+1,) of each row in the sorted order, and each
    chunk's first slot per row (K,V): chunk k's positions of row i follow chunk k-1's."""
    n_chunks, vocab_size = histograms.shape
    starts = np.empty(vocab_size + 1, dtype=np.int64)
    fill = np.empty_like(histograms)
    slot = 0
    for i in range(vocab_size):
        starts[i] = slot
        for k in range(n_chunks):
            fill[k, i] = slot
            slot += histograms[k, i]
    starts[vocab_size] = slot
    return starts, fill


@njit(**jit)
def targets_by_input(x, y, vocab_size):
    """Stable counting sort of the targets by input id.   x, y (N,) -> targets (N,), starts (V+1,)

    Row i's targets are targets[starts[i]:starts[i+1]]: the y_n of the positions n with x_n = i,
    in increasing n.
    """
    histogram = np.zeros((1, vocab_size), dtype=np.int64)
    for n in range(x.size):
        histogram[0, x[n]] += 1
    starts, fill = _row_starts(histogram)
    targets = np.empty_like(y)
    for n in range(x.size):
        targets[fill[0, x[n]]] = y[n]
        fill[0, x[n]] += 1
    return targets, starts


@njit(parallel=True, **jit)
def targets_by_input_parallel(x, y, vocab_size):
    """targets_by_input over SORT_CHUNKS contiguous chunks of positions: the same targets."""
    n_positions = x.size
    histograms = np.zeros((SORT_CHUNKS, vocab_size), dtype=np.int64)
    for k in prange(SORT_CHUNKS):
        for n in range(k * n_positions // SORT_CHUNKS, (k + 1) * n_positions // SORT_CHUNKS):
            histograms[k, x[n]] += 1
    starts, fill = _row_starts(histograms)
    targets = np.empty_like(y)
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
def _gather_scatter_rows(weight, targets, starts, first_row, end_row, dweight, row_losses, probs,
                         inv_n):
    """Rows first_row..end_row-1: for each position reading row i (in position order) with target
    y, add (softmax(W_i) - onehot(y))/N into dW_i, and lse(W_i) - W[i, y] to row i's loss.
    targets, starts as from targets_by_input. W does not change within a batch, so each row's
    softmax is computed once and reused by all its positions: the same numbers as recomputing
    it per position."""
    zero = weight.dtype.type(0)
    for i in range(first_row, end_row):
        for j in range(weight.shape[1]):
            dweight[i, j] = 0
        row_losses[i] = 0.0
        if starts[i] == starts[i + 1]:
            continue
        m, log_sum = row_softmax(weight, i, inv_n, probs)  # probs = softmax(W_i) / N
        loss = 0.0
        for k in range(starts[i], starts[i + 1]):
            target = targets[k]
            for j in range(weight.shape[1]):  # (p_j - [j = y])/N, one rounding
                dweight[i, j] += probs[j] - (inv_n if j == target else zero)
            loss += log_sum - (np.float64(weight[i, target]) - m)
        row_losses[i] = loss


# Every loss+gradient kernel takes (weight, x, y, dweight, row_losses, counts) and returns the
# mean loss: x, y (N,) ids; dweight (V,C) gets every entry; row_losses (V,) float64 each row's
# summed loss, and the mean is their sum in row order; counts (V,V) int32 scratch (pair counts
# only, else (0,0)). Python picks serial or parallel by size (grad_kernel below), so a fused
# loop compiles only the kernel it runs.


@njit(**jit)
def gather_scatter_serial(weight, x, y, dweight, row_losses, counts):
    """dW = sum_n (softmax(W[x_n]) - onehot(y_n)) / N, one row after another."""
    inv_n = weight.dtype.type(1.0 / x.size)
    targets, starts = targets_by_input(x, y, weight.shape[0])
    probs = np.empty(weight.shape[1], dtype=weight.dtype)
    _gather_scatter_rows(weight, targets, starts, 0, weight.shape[0], dweight, row_losses,
                         probs, inv_n)
    return ordered_sum(row_losses) / x.size


@njit(parallel=True, **jit)
def gather_scatter_parallel(weight, x, y, dweight, row_losses, counts):
    """gather_scatter_serial with threads owning whole rows: each row's arithmetic does not
    depend on which thread runs it, so the result is the same for any thread count."""
    inv_n = weight.dtype.type(1.0 / x.size)
    targets, starts = targets_by_input_parallel(x, y, weight.shape[0])
    bounds = balanced_row_groups(starts, ROW_GROUPS)
    for g in prange(ROW_GROUPS):
        probs = np.empty(weight.shape[1], dtype=weight.dtype)
        _gather_scatter_rows(weight, targets, starts, bounds[g], bounds[g + 1], dweight,
                             row_losses, probs, inv_n)
    return ordered_sum(row_losses) / x.size


@njit(**jit)
def gather_rows(weight, x, out):
    """out[n] = W[x_n]: the logits of the API's forward.   x (N,) -> out (N,C)"""
    for n in range(x.size):
        for j in range(weight.shape[1]):
            out[n, j] = weight[x[n], j]


# ----------------------------------------------------------------------------------------------
# the pair-counts path: O(N) counting, then O(V) per row with n_i > 0


@njit(**jit)
def count_pairs(x, y, counts):
    """counts[i,j] = number of positions with (x_n, y_n) = (i, j).   counts (V,V) int"""
    counts[:] = 0
    for n in range(x.size):
        counts[x[n], y[n]] += 1


@njit(inline="always", **jit)
def _counts_rows(weight, counts, first_row, end_row, dweight, row_losses, probs, terms, inv_n):
    """dW_i = (n_i softmax(W_i) - C_i) / N and row loss n_i lse(W_i) - sum_j C_ij W_ij for rows
    first_row..end_row-1 (both 0 for a row with n_i = 0).   probs (C,), terms (C,) float64"""
    for i in range(first_row, end_row):
        n_row = counts[i].sum()
        if n_row == 0:
            for j in range(weight.shape[1]):
                dweight[i, j] = 0
            row_losses[i] = 0.0
            continue
        m, log_sum = row_softmax(weight, i, inv_n, probs)  # probs = softmax(W_i) / N
        for j in range(weight.shape[1]):
            dweight[i, j] = n_row * probs[j] - counts[i, j] * inv_n
            terms[j] = counts[i, j] * (np.float64(weight[i, j]) - m) if counts[i, j] else 0.0
        row_losses[i] = n_row * log_sum - lane_sum(terms)  # - sum_j C_ij (W_ij - max)


@njit(**jit)
def counts_grad_serial(weight, counts, n_positions, dweight, row_losses):
    """The pair-count gradient dW_i = (n_i softmax(W_i) - C_i) / N into dweight; returns the
    mean loss sum_i [n_i lse(W_i) - sum_j C_ij W_ij] / N.   counts (V,V) int"""
    inv_n = weight.dtype.type(1.0 / n_positions)
    probs = np.empty(weight.shape[1], dtype=weight.dtype)
    terms = np.empty(weight.shape[1], dtype=np.float64)
    _counts_rows(weight, counts, 0, weight.shape[0], dweight, row_losses, probs, terms, inv_n)
    return ordered_sum(row_losses) / n_positions


@njit(parallel=True, **jit)
def counts_grad_parallel(weight, counts, n_positions, dweight, row_losses):
    """counts_grad_serial with rows split over threads: the same result for any thread count."""
    inv_n = weight.dtype.type(1.0 / n_positions)
    vocab_size = weight.shape[0]
    for g in prange(ROW_GROUPS):
        probs = np.empty(weight.shape[1], dtype=weight.dtype)
        terms = np.empty(weight.shape[1], dtype=np.float64)
        _counts_rows(weight, counts, g * vocab_size // ROW_GROUPS,
                     (g + 1) * vocab_size // ROW_GROUPS, dweight, row_losses, probs, terms, inv_n)
    return ordered_sum(row_losses) / n_positions


@njit(**jit)
def pair_counts_serial(weight, x, y, dweight, row_losses, counts):
    """The batch's gradient from its pair counts: counting O(N), then O(V) per row used."""
    count_pairs(x, y, counts)
    return counts_grad_serial(weight, counts, x.size, dweight, row_losses)


@njit(**jit)
def pair_counts_parallel(weight, x, y, dweight, row_losses, counts):
    """pair_counts_serial with the rows split over threads."""
    count_pairs(x, y, counts)
    return counts_grad_parallel(weight, counts, x.size, dweight, row_losses)


def grad_kernel(pair_counts, n_positions, vocab_size):
    """The loss+gradient kernel for this size. Serial or parallel depends on the size only,
    so the result never depends on the thread count."""
    if pair_counts:
        return pair_counts_parallel if vocab_size ** 2 >= PARALLEL_ROWS_WORK else pair_counts_serial
    if n_positions * vocab_size >= PARALLEL_POSITIONS_WORK:
        return gather_scatter_parallel
    return gather_scatter_serial


def counts_scratch(pair_counts, vocab_size):
    """The counts buffer a kernel of grad_kernel needs: (V,V) int32 for pair counts (a batch
    has fewer than 2^31 positions), else empty."""
    return np.empty((vocab_size, vocab_size) if pair_counts else (0, 0), dtype=np.int32)


# ----------------------------------------------------------------------------------------------
# optimizers: the formulas of npbigram.optim, element by element, with the same float32
# rounding (coefficients arrive already cast to the weight's dtype). Each takes
# (weight, grad, m, v, coef); SGD ignores m and v.


@njit(inline="always", **jit)
def _adamw_rows(weight, grad, m, v, coef, first_row, end_row):
    """coef = (1 - lr wd, 1 - beta1, beta2, 1 - beta2, lr / (1 - beta1^t), sqrt(1 - beta2^t), eps)
        W <- W (1 - lr wd);  m <- m + (1 - beta1)(g - m);  v <- beta2 v + (1 - beta2) g^2
        W <- W - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)"""
    decay, one_minus_beta1, beta2, one_minus_beta2, step_size, bc2_sqrt, eps = (
        coef[0], coef[1], coef[2], coef[3], coef[4], coef[5], coef[6])
    for i in range(first_row, end_row):
        for j in range(weight.shape[1]):
            g = grad[i, j]
            mij = m[i, j] + one_minus_beta1 * (g - m[i, j])
            vij = v[i, j] * beta2 + one_minus_beta2 * g * g
            m[i, j] = mij
            v[i, j] = vij
            weight[i, j] = weight[i, j] * decay - step_size * (mij / (sqrt(vij) / bc2_sqrt + eps))


@njit(inline="always", **jit)
def _sgd_rows(weight, grad, coef, first_row, end_row):
    """coef = (lr,):  W <- W - lr g"""
    for i in range(first_row, end_row):
        for j in range(weight.shape[1]):
            weight[i, j] -= coef[0] * grad[i, j]


@njit(**jit)
def adamw_serial(weight, grad, m, v, coef):
    _adamw_rows(weight, grad, m, v, coef, 0, weight.shape[0])


@njit(parallel=True, **jit)
def adamw_parallel(weight, grad, m, v, coef):
    vocab_size = weight.shape[0]
    for g in prange(ROW_GROUPS):
        _adamw_rows(weight, grad, m, v, coef, g * vocab_size // ROW_GROUPS,
                    (g + 1) * vocab_size // ROW_GROUPS)


@njit(**jit)
def sgd_serial(weight, grad, m, v, coef):
    _sgd_rows(weight, grad, coef, 0, weight.shape[0])


@njit(parallel=True, **jit)
def sgd_parallel(weight, grad, m, v, coef):
    vocab_size = weight.shape[0]
    for g in prange(ROW_GROUPS):
        _sgd_rows(weight, grad, coef, g * vocab_size // ROW_GROUPS,
                  (g + 1) * vocab_size // ROW_GROUPS)


@njit(inline="always", **jit)
def _update_serial(adamw, weight, grad, m, v, coef):
    """adamw_serial if adamw else sgd_serial: the update of the compiled serial loops."""
    if adamw:
        adamw_serial(weight, grad, m, v, coef)
    else:
        sgd_serial(weight, grad, m, v, coef)


def update_kernel(optimizer_kind, vocab_size):
    """The update kernel of optimizer_kind ('adamw' or 'sgd'), parallel over rows when V*V is
    large. Every element gets the same arithmetic either way."""
    parallel = vocab_size ** 2 >= PARALLEL_ROWS_WORK
    if optimizer_kind == "adamw":
        return adamw_parallel if parallel else adamw_serial
    return sgd_parallel if parallel else sgd_serial


# ----------------------------------------------------------------------------------------------
# training loops: many steps per call from Python


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


@njit(**jit)
def train_steps_serial(pair_counts, adamw, weight, grad, m, v, counts, x, y, data, starts,
                       block_size, coefs, losses):
    """train_loop's steps in one compiled call, with the serial kernels (pair_counts_serial or
    gather_scatter_serial; adamw_serial or sgd_serial): at these sizes a step takes
    microseconds, and a call from Python per step would cost as much again."""
    n_steps, batch_size = starts.shape
    row_losses = np.empty(weight.shape[0], dtype=np.float64)
    for s in range(n_steps):
        if pair_counts:  # = pair_counts_serial, without gathering the batch first
            count_batch_pairs(data, starts[s], block_size, counts)
            losses[s] = counts_grad_serial(weight, counts, batch_size * block_size, grad,
                                           row_losses)
        else:
            fill_batch(data, starts[s], block_size, x, y)
            losses[s] = gather_scatter_serial(weight, x, y, grad, row_losses, counts)
        if not math.isfinite(losses[s]):
            return s
        _update_serial(adamw, weight, grad, m, v, coefs[s])
    return n_steps


def train_loop(grad_kernel, update_kernel, weight, grad, m, v, counts, x, y, data, starts,
               block_size, coefs, losses):
    """len(starts) training steps: step s takes the batch of windows at starts[s] (B,) into
    x, y (B*T,), its loss and gradient from grad_kernel, and updates with update_kernel and
    coefs[s]; losses (S,) gets each step's loss. Stops before updating at a non-finite loss;
    returns the number of steps completed. Serial kernels run in one compiled call
    (train_steps_serial); parallel ones, whose steps take milliseconds, are called step by step,
    with the batch gathered in parallel from PARALLEL_FILL_POSITIONS positions on.
    data (n,) int64 ids, checked, with every starts[s,b] + T < n."""
    if grad_kernel in (gather_scatter_serial, pair_counts_serial) and update_kernel in (
            adamw_serial, sgd_serial):
        return train_steps_serial(grad_kernel is pair_counts_serial, update_kernel is adamw_serial,
                                  weight, grad, m, v, counts, x, y, data, starts, block_size,
                                  coefs, losses)
    fill = fill_batch_parallel if x.size >= PARALLEL_FILL_POSITIONS else fill_batch
    row_losses = np.empty(weight.shape[0], dtype=np.float64)
    for s in range(len(starts)):
        fill(data, starts[s], block_size, x, y)
        losses[s] = grad_kernel(weight, x, y, grad, row_losses, counts)
        if not math.isfinite(losses[s]):
            return s
        update_kernel(weight, grad, m, v, coefs[s])
    return len(starts)


@njit(**jit)
def full_batch_steps_serial(adamw, weight, grad, m, v, counts, coefs, losses):
    """full_batch_loop's steps in one compiled call, with counts_grad_serial and adamw_serial
    or sgd_serial."""
    n_positions = counts.sum()
    row_losses = np.empty(weight.shape[0], dtype=np.float64)
    for s in range(coefs.shape[0]):
        losses[s] = counts_grad_serial(weight, counts, n_positions, grad, row_losses)
        if not math.isfinite(losses[s]):
            return s
        _update_serial(adamw, weight, grad, m, v, coefs[s])
    return coefs.shape[0]


def full_batch_loop(update_kernel, weight, grad, m, v, counts, coefs, losses):
    """len(coefs) steps on the exact gradient of a whole split from its pair counts (V,V):
    losses[s] is the exact loss before step s. Stops at a non-finite loss; returns the number
    of steps completed. One compiled call for serial sizes, else one call per kernel per step."""
    if update_kernel in (adamw_serial, sgd_serial):
        return full_batch_steps_serial(update_kernel is adamw_serial, weight, grad, m, v, counts,
                                       coefs, losses)
    n_positions = int(counts.sum())
    row_losses = np.empty(weight.shape[0], dtype=np.float64)
    for s in range(len(coefs)):
        losses[s] = counts_grad_parallel(weight, counts, n_positions, grad, row_losses)
        if not math.isfinite(losses[s]):
            return s
        update_kernel(weight, grad, m, v, coefs[s])
    return len(coefs)


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


def set_threads(n):
    """Use n threads in parallel kernels (1 <= n <= NUMBA_NUM_THREADS, every core by default).
    Results do not depend on n."""
    limit = numba.config.NUMBA_NUM_THREADS
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"threads must be an int, got {type(n).__name__}")
    if not 1 <= n <= limit:
        raise ValueError(f"threads must be between 1 and {limit} (raise the limit with "
                         f"NUMBA_NUM_THREADS), got {n}")
    numba.set_num_threads(int(n))
