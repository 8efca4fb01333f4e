"""The optimizers' updates, element by element, compiled: each is its optimizer's
reference_update (npbigram/optim/) written per entry with the same float rounding, so both
backends give the same bits. Coefficients arrive already rounded to the weight's dtype.

UPDATE_RULES maps the field names of each optimizer's Coefficients to its rows kernel;
update_rows picks from it at compile time by the fields of the coefficients' record type, so a
loop compiled for AdamW contains AdamW's update only. Every rule takes (weight, grad, state,
coefs, s, first_row, end_row): state the optimizer's kernel_state() tuple, coefs its
coefficients() record array and s the row of it to use.
"""

from numba import njit, prange
from numba.extending import overload

from ..optim.adamw import AdamWCoefficients
from ..optim.sgd import SGDCoefficients
from .fastmath import ROW_GROUPS, group_rows, sqrt
from .runtime import JIT as jit


@njit(inline="always", **jit)
def adamw_rows(weight, grad, state, coefs, s, first_row, end_row):
    m, v = state
    c = coefs[s]
    decay, one_minus_beta1, beta2 = c.decay, c.one_minus_beta1, c.beta2
    one_minus_beta2, step_size = c.one_minus_beta2, c.step_size
    bias_correction2_sqrt, eps = c.bias_correction2_sqrt, c.eps
    for i in range(first_row, end_row):
        for j in range(weight.shape[1]):
            g = grad[i, j]
            mij = m[i, j] + one_minus_beta1 * (g - m[i, j])
            vij = v[i, j] * beta2 + one_minus_beta2 * g * g
            m[i, j] = mij
            v[i, j] = vij
            weight[i, j] = (weight[i, j] * decay
                            - step_size * (mij / (sqrt(vij) / bias_correction2_sqrt + eps)))


@njit(inline="always", **jit)
def sgd_rows(weight, grad, state, coefs, s, first_row, end_row):
    (buffer,) = state  # (V,C) with momentum, else empty and unread
    c = coefs[s]
    lr, weight_decay, momentum = c.lr, c.weight_decay, c.momentum
    one_minus_dampening = c.one_minus_dampening
    nesterov, first_step = c.nesterov != 0, c.first_step != 0
    for i in range(first_row, end_row):
        for j in range(weight.shape[1]):
            d = grad[i, j]
            if weight_decay != 0:
                d = d + weight_decay * weight[i, j]
            if momentum != 0:
                b = d if first_step else buffer[i, j] * momentum + one_minus_dampening * d
                buffer[i, j] = b
                d = d + momentum * b if nesterov else b
            weight[i, j] = weight[i, j] - lr * d


UPDATE_RULES = {AdamWCoefficients._fields: adamw_rows, SGDCoefficients._fields: sgd_rows}


def update_rows(weight, grad, state, coefs, s, first_row, end_row):
    """The update of coefs' optimizer (UPDATE_RULES) on rows first_row..end_row-1."""


@overload(update_rows, inline="always")
def _update_rows(weight, grad, state, coefs, s, first_row, end_row):
    rule = UPDATE_RULES[tuple(coefs.dtype.fields)]

    def apply(weight, grad, state, coefs, s, first_row, end_row):
        rule(weight, grad, state, coefs, s, first_row, end_row)
    return apply


@njit(**jit)
def update_serial(weight, grad, state, coefs, s):
    """Update every row with coefficients row s."""
    update_rows(weight, grad, state, coefs, s, 0, weight.shape[0])


@njit(parallel=True, **jit)
def update_parallel(weight, grad, state, coefs, s):
    """update_serial with the rows split over threads: every entry gets the same arithmetic."""
    for g in prange(ROW_GROUPS):
        first_row, end_row = group_rows(g, weight.shape[0])
        update_rows(weight, grad, state, coefs, s, first_row, end_row)
