"""The low-level math the kernels share: LLVM intrinsics, a vectorizable float32 exp, sums in
a fixed order, and one row's max / exp / softmax.

No sum is left to fast-math reassociation (lane_sum writes its order out), so a kernel gives
the same bits wherever it is inlined, serial or parallel, just compiled or loaded from cache.
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

from .runtime import JIT as jit

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


ROW_GROUPS = 64  # a parallel kernel's rows come in this many groups of about equal work


@njit(inline="always", **jit)
def group_rows(g, vocab_size):
    """Rows first..end-1 of group g of ROW_GROUPS equal runs of rows 0..V-1."""
    return g * vocab_size // ROW_GROUPS, (g + 1) * vocab_size // ROW_GROUPS
