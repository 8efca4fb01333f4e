"""npbigram/engine/fastmath.py: the vectorizable float32 exp against float64 exp."""

import numba
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from npbigram.engine.fastmath import exp_f32


@numba.njit
def exp_f32_map(x):
    out = np.empty_like(x)
    for k in range(x.size):
        out[k] = exp_f32(x[k])
    return out


def ulp_error(x):
    """|exp_f32(x) - exp(x)| in units of the float32 spacing at exp(x) (float64 reference)."""
    exact = np.exp(x.astype(np.float64))
    spacing = np.spacing(np.abs(exact.astype(np.float32))).astype(np.float64)
    spacing = np.maximum(spacing, 2.0**-149)  # the subnormals' spacing
    return np.abs(exp_f32_map(x).astype(np.float64) - exact) / spacing


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
