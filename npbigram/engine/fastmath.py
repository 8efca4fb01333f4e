"""The low-level math the kernels share: LLVM intrinsics, exp and log of our own, a sum in a
fixed order, and one row's softmax.

No sum is left to fast-math reassociation (lane_sum writes its order out), so a kernel gives
the same bits wherever it is inlined, serial or parallel, just compiled or loaded from cache.
exp and log are written out in IEEE operations and correctly rounded fma (never libm's, whose
x86-64 glibc runs other code on CPUs with and without FMA, differing in the last bit for ~0.05%
of inputs), and LLVM fuses no multiply-add we did not write, so the bits are also the same for
any x86-64 CPU numba compiles for.
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
def _float64_from_bits(typingctx, bits):
    """Reinterpret an int64's bits as a float64 (no conversion)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@intrinsic
def _float64_bits(typingctx, x):
    """The bits of a float64, as an int64 (no conversion)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


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
def lane_sum(values, k):
    """sum of the row values[k] (n entries) as 8 partial sums, lane l taking j = l mod 8, added
    in a fixed order.

    No fast-math: the order is written out, so the result is the same bits wherever the code is
    inlined and however LLVM vectorizes it, and 8 independent chains still add quickly."""
    zero = values.dtype.type(0)
    s0, s1, s2, s3, s4, s5, s6, s7 = zero, zero, zero, zero, zero, zero, zero, zero
    n = values.shape[1]
    whole = n - n % 8
    for j in range(0, whole, 8):
        s0 += values[k, j]
        s1 += values[k, j + 1]
        s2 += values[k, j + 2]
        s3 += values[k, j + 3]
        s4 += values[k, j + 4]
        s5 += values[k, j + 5]
        s6 += values[k, j + 6]
        s7 += values[k, j + 7]
    tail = zero
    for j in range(whole, n):
        tail += values[k, j]
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


# fdlibm's exp and log (e_exp.c, e_log.c), < 1 ulp: ln 2 = LN2_HI_64 + LN2_LO_64, where
# k * LN2_HI_64 is exact for |k| < 2^32
LN2_HI_64, LN2_LO_64 = 6.93147180369123816490e-01, 1.90821492927058770002e-10
INV_LN2 = 1.44269504088896338700e+00
EXP_P_64 = (1.66666666666666019037e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05,
            -1.65339022054652515390e-06, 4.13813679705723846039e-08)
EXP_LO_64, EXP_HI_64 = -746.0, 710.0  # exp(-746) < 2^-1075: rounds to 0; exp(710): inf
LOG_P_64 = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
            2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
            1.479819860511658591e-01)
SMALLEST_NORMAL_64, TWO_54 = 2.2250738585072014e-308, 18014398509481984.0


@njit(**jit)
def exp_f64(x):
    """exp(x) for float64 x (fdlibm): x = k ln2 + r, |r| <= ln2/2; with t = r^2 and
    c = r - t P(t), exp(r) = 1 - ((lo - r c / (2 - c)) - hi), hi - lo = r; times 2^k, applied as
    2^(k>>1) * 2^(k-(k>>1)) (one rounding, subnormal results too). Exactly 0 below -745.2,
    inf above 709.79, NaN for NaN."""
    xc = min(max(x, EXP_LO_64), EXP_HI_64)
    k = np.floor(xc * INV_LN2 + 0.5)  # nearest integer
    hi = xc - k * LN2_HI_64
    lo = k * LN2_LO_64
    r = hi - lo
    t = r * r
    p1, p2, p3, p4, p5 = EXP_P_64
    c = r - t * (p1 + t * (p2 + t * (p3 + t * (p4 + t * p5))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    n = np.int64(k)
    half = n >> 1
    scaled = (y * _float64_from_bits((half + 1023) << 52)) * _float64_from_bits(
        (n - half + 1023) << 52)
    return scaled if x == x else x


@njit(**jit)
def log_f64(x):
    """log(x) for float64 x (fdlibm): x = 2^k (1 + f), sqrt(2)/2 <= 1 + f < sqrt(2); with
    s = f / (2 + f), log(1 + f) = f - s (f - R(s^2)) (or, for larger f, with f^2 / 2 split off),
    plus k ln2 in two parts. x <= 0, inf and NaN take libm's answers (-inf, NaN, inf: exact)."""
    if not 0.0 < x < np.inf:
        return math.log(x)
    k = 0
    if x < SMALLEST_NORMAL_64:  # subnormal: scale into the normal range
        x *= TWO_54
        k = -54
    bits = _float64_bits(x)
    high = bits >> 32
    k += (high >> 20) - 1023
    high &= 0x000FFFFF
    i = (high + 0x95F64) & 0x100000  # whether the mantissa is above sqrt(2): then halve it
    f = _float64_from_bits(((high | (i ^ 0x3FF00000)) << 32) | (bits & 0xFFFFFFFF)) - 1.0
    dk = np.float64(k + (i >> 20))
    if (0x000FFFFF & (2 + high)) < 3:  # |f| < 2^-20
        if f == 0.0:
            return dk * LN2_HI_64 + dk * LN2_LO_64
        r = f * f * (0.5 - 0.33333333333333333 * f)
        return dk * LN2_HI_64 - ((r - dk * LN2_LO_64) - f)
    lg1, lg2, lg3, lg4, lg5, lg6, lg7 = LOG_P_64
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = z * (lg1 + w * (lg3 + w * (lg5 + w * lg7))) + w * (lg2 + w * (lg4 + w * lg6))
    if ((high - 0x6147A) | (0x6B851 - high)) > 0:
        half_f_squared = 0.5 * f * f
        return dk * LN2_HI_64 - ((half_f_squared - (s * (half_f_squared + r)
                                                    + dk * LN2_LO_64)) - f)
    return dk * LN2_HI_64 - ((s * (f - r) - dk * LN2_LO_64) - f)


def fast_exp(x):
    """exp for the kernels: exp_f32 for float32, exp_f64 for float64."""
    return math.exp(x)


@overload(fast_exp, inline="always")
def _fast_exp_overload(x):
    if x == types.float32:
        return lambda x: exp_f32(x)
    return lambda x: exp_f64(x)


# ----------------------------------------------------------------------------------------------
# one row's softmax. Rows are passed as (matrix, row index): slicing a row would create an array
# object whose reference counting costs more than the row's arithmetic at V = 65.


@njit(inline="always", **jit)
def row_softmax(weight, i, inv_n, probs, k):
    """probs[k, j] = softmax(W_i)_j * inv_n; returns max_j W_ij and log sum_j exp(W_ij - max),
    in float64: the loss of target y is then log_sum - (W_iy - max). probs (G,C): scratch rows,
    k the one to fill."""
    m = weight[i, 0]
    for j in range(1, weight.shape[1]):
        m = max_ignoring_order(m, weight[i, j])
    for j in range(weight.shape[1]):
        probs[k, j] = fast_exp(weight[i, j] - m)
    total = lane_sum(probs, k)
    scale = inv_n / total
    for j in range(weight.shape[1]):
        probs[k, j] *= scale
    return np.float64(m), log_f64(np.float64(total))
