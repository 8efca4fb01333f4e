"""npbigram/engine/fastmath.py: the vectorizable float32 exp against float64 exp, and the float64
exp and log (fdlibm's) against long double ones."""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from npbigram.engine.fastmath import exp_f32, exp_f64, log_f64


def mapped(function):
    """function on each element of an array, compiled."""
    @numba.njit
    def apply(x):
        out = np.empty_like(x)
        for k in range(x.size):
            out[k] = function(x[k])
        return out
    return apply


exp_f32_map, exp_f64_map, log_f64_map = mapped(exp_f32), mapped(exp_f64), mapped(log_f64)


def ulp_error(x):
    """|exp_f32(x) - exp(x)| in units of the float32 spacing at exp(x) (float64 reference)."""
    exact = np.exp(x.astype(np.float64))
    spacing = np.spacing(np.abs(exact.astype(np.float32))).astype(np.float64)
    spacing = np.maximum(spacing, 2.0**-149)  # the subnormals' spacing
    return np.abs(exp_f32_map(x).astype(np.float64) - exact) / spacing


@pytest.mark.slow
def test_exp_is_within_2_ulp_over_the_float32_range():
    """Every 61st float32 bit pattern whose exp is finite and not 0 (about 37 million)."""
    bits = np.arange(0, 2**32, 61, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = x[np.isfinite(x) & (x > -104.0) & (x < 88.72)]
    assert ulp_error(x).max() <= 2.0


@settings(deadline=None, max_examples=300)
@given(x=st.floats(-110, 89, width=32))
def test_exp_matches_float64_exp_anywhere(x):
    x = np.array([x], dtype=np.float32)
    with np.errstate(over="ignore"):
        overflows = np.isinf(np.exp(x.astype(np.float64)).astype(np.float32)[0])
        if overflows:
            assert np.isinf(exp_f32_map(x)[0])
        else:
            assert ulp_error(x)[0] <= 2.0


def test_exp_edges():
    x = np.array([0.0, -0.0, 1.0, -1.0, 88.72, 88.73, 100.0, 3e38, np.inf,
                  -103.9, -104.0, -110.0, -1e30, -np.inf, np.nan], dtype=np.float32)
    y = exp_f32_map(x)
    assert y[0] == 1.0 and y[1] == 1.0
    assert np.isfinite(y[4]) and np.all(np.isinf(y[5:9]))  # no overflow before inf
    assert 0 < y[9] < 2.0**-126  # subnormal, not flushed
    assert np.all(y[10:14] == 0.0)  # exactly 0 for large negative inputs
    assert np.isnan(y[14])


def float64_ulp_error(got, x, function):
    """|got - function(x)| in units of the float64 spacing there (long double reference)."""
    exact = function(x.astype(np.longdouble))
    spacing = np.maximum(np.spacing(np.abs(exact.astype(np.float64))), 2.0**-1074)
    return np.abs(got.astype(np.longdouble) - exact) / spacing.astype(np.longdouble)


def test_float64_exp_and_log_are_within_1_ulp():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-745, 709.7, 200_000), rng.uniform(-1, 1, 100_000),
                        rng.uniform(-40, 0, 100_000)])  # the kernels' w - max w <= 0
    assert float64_ulp_error(exp_f64_map(x), x, np.exp).max() < 1.0
    y = np.concatenate([np.exp(rng.uniform(-700, 700, 200_000)), rng.uniform(1, 65, 100_000),
                        1 + rng.uniform(-1e-5, 1e-5, 100_000),  # the kernels' sums are in [1, V]
                        rng.integers(1, 2**52, 10_000).view(np.float64)])  # subnormals
    assert float64_ulp_error(log_f64_map(y), y, np.log).max() < 1.0


def test_float64_exp_and_log_edges():
    x = np.array([0.0, -0.0, 709.78, 709.79, 1e300, np.inf, -745.1, -745.2, -1e300, -np.inf,
                  np.nan])
    y = exp_f64_map(x)
    assert y[0] == y[1] == 1.0 and np.isfinite(y[2]) and np.all(np.isinf(y[3:6]))
    assert y[6] == 2.0**-1074 and np.all(y[7:10] == 0.0) and np.isnan(y[10])
    x = np.array([1.0, 0.0, -0.0, -1.0, np.inf, np.nan, 2.0**-1074, 1.7976931348623157e308])
    y = log_f64_map(x)
    assert y[0] == 0.0 and not np.signbit(y[0]) and y[1] == y[2] == -np.inf
    assert np.isnan(y[3]) and y[4] == np.inf and np.isnan(y[5])
    assert y[6] == np.log(2.0**-1074) and y[7] == np.log(1.7976931348623157e308)
