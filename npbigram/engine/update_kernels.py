"""The optimizers' updates (npbigram/optim/), element by element, compiled: each is its
optimizer's formula written per entry with the same float rounding, so both backends give the
same bits.

UPDATE_RULES, by optimizer kind: the scalars its rows kernel reads at step t (computed here in
Python float64, as the formula computes them, then rounded to the weight's dtype: never
beta**t inside a kernel), the state arrays it updates, and the rows kernel. A step's scalars
reach a kernel as a row of a record array (a compiled kernel receives one faster than a
tuple); update_rows picks the rows kernel at compile time by the record's field names, so a
loop compiled for AdamW contains AdamW's update only. Every rows kernel takes (weight, grad,
row_of, state, scalars, s, first_row, end_row): s the row of scalars to use, row_of None or where
each row's gradient is in a compact one (fastmath.row_index).
"""

import functools
import math
from collections import namedtuple

import numpy as np
from numba import njit, prange
from numba.extending import overload

from .fastmath import ROW_GROUPS, group_rows, row_index, sqrt
from .runtime import JIT as jit

# AdamW's scalars at step t, named as in its formula
AdamWScalars = namedtuple("AdamWScalars", [
    "decay",                 # 1 - lr wd
    "one_minus_beta1",       # 1 - beta1
    "beta2",
    "one_minus_beta2",       # 1 - beta2
    "step_size",             # lr / (1 - beta1^t)
    "bias_correction2_sqrt",  # sqrt(1 - beta2^t)
    "eps",
])
SGDScalars = namedtuple("SGDScalars", [
    "lr",
    "weight_decay",
    "momentum",
    "one_minus_dampening",  # 1 - dampening
    "nesterov",             # 1 or 0
    "first_step",           # 1 at t = 1 (the momentum buffer starts as d), else 0
])


def adamw_scalars(opt, t):
    beta1, beta2 = opt.betas
    return AdamWScalars(
        decay=1.0 - opt.lr * opt.weight_decay, one_minus_beta1=1.0 - beta1, beta2=beta2,
        one_minus_beta2=1.0 - beta2, step_size=opt.lr / (1.0 - beta1 ** t),
        bias_correction2_sqrt=math.sqrt(1.0 - beta2 ** t), eps=opt.eps)


def sgd_scalars(opt, t):
    return SGDScalars(lr=opt.lr, weight_decay=opt.weight_decay, momentum=opt.momentum,
                      one_minus_dampening=1.0 - opt.dampening, nesterov=float(opt.nesterov),
                      first_step=float(t == 1))


def adamw_state(opt):
    return opt.state["m"], opt.state["v"]


def sgd_state(opt):
    """(b,), or an empty placeholder without momentum."""
    empty = np.empty((0, 0), dtype=opt.model.weight.dtype)
    return (opt.state.get("momentum_buffer", empty),)


@njit(inline="always", **jit)
def adamw_rows(weight, grad, row_of, state, scalars, s, first_row, end_row):
    m, v = state
    c = scalars[s]
    decay, one_minus_beta1, beta2 = c.decay, c.one_minus_beta1, c.beta2
    one_minus_beta2, step_size = c.one_minus_beta2, c.step_size
    bias_correction2_sqrt, eps = c.bias_correction2_sqrt, c.eps
    for i in range(first_row, end_row):
        gi = row_index(row_of, i)
        for j in range(weight.shape[1]):
            g = grad[gi, j]
            mij = m[i, j] + one_minus_beta1 * (g - m[i, j])
            vij = v[i, j] * beta2 + one_minus_beta2 * g * g
            m[i, j] = mij
            v[i, j] = vij
            weight[i, j] = (weight[i, j] * decay
                            - step_size * (mij / (sqrt(vij) / bias_correction2_sqrt + eps)))


@njit(inline="always", **jit)
def sgd_rows(weight, grad, row_of, state, scalars, s, first_row, end_row):
    (buffer,) = state  # (V,C) with momentum, else empty and unread
    c = scalars[s]
    lr, weight_decay, momentum = c.lr, c.weight_decay, c.momentum
    one_minus_dampening = c.one_minus_dampening
    nesterov, first_step = c.nesterov != 0, c.first_step != 0
    for i in range(first_row, end_row):
        gi = row_index(row_of, i)
        for j in range(weight.shape[1]):
            d = grad[gi, j]
            if weight_decay != 0:
                d = d + weight_decay * weight[i, j]
            if momentum != 0:
                b = d if first_step else buffer[i, j] * momentum + one_minus_dampening * d
                buffer[i, j] = b
                d = d + momentum * b if nesterov else b
            weight[i, j] = weight[i, j] - lr * d


# Scalars: the namedtuple class of the scalars, scalars(optimizer, t) its values at step t,
# state(optimizer) the arrays it updates, rows the kernel
UpdateRule = namedtuple("UpdateRule", "Scalars scalars state rows")
UPDATE_RULES = {"adamw": UpdateRule(AdamWScalars, adamw_scalars, adamw_state, adamw_rows),
                "sgd": UpdateRule(SGDScalars, sgd_scalars, sgd_state, sgd_rows)}
ROWS_BY_FIELDS = {rule.Scalars._fields: rule.rows for rule in UPDATE_RULES.values()}


def step_scalars(optimizer, first_step, steps=1):
    """The scalars of steps first_step .. first_step + steps - 1: a (steps,) record array,
    every field in the weight's dtype, so each scalar is rounded as the formula's NumPy
    arithmetic rounds it."""
    rule = UPDATE_RULES[optimizer.kind]
    return np.array([rule.scalars(optimizer, t) for t in range(first_step, first_step + steps)],
                    dtype=_record_dtype(rule.Scalars, optimizer.model.weight.dtype))


def kernel_state(optimizer):
    """The optimizer's state arrays as its rows kernel takes them: a tuple, in order."""
    return UPDATE_RULES[optimizer.kind].state(optimizer)


@functools.cache
def _record_dtype(Scalars, weight_dtype):
    return np.dtype([(name, weight_dtype) for name in Scalars._fields])


def update_rows(weight, grad, row_of, state, scalars, s, first_row, end_row):
    """The update of scalars' optimizer (ROWS_BY_FIELDS) on rows first_row..end_row-1, row i's
    gradient at grad[row_index(row_of, i)]."""


@overload(update_rows, inline="always")
def _update_rows(weight, grad, row_of, state, scalars, s, first_row, end_row):
    rule = ROWS_BY_FIELDS[tuple(scalars.dtype.fields)]

    def apply(weight, grad, row_of, state, scalars, s, first_row, end_row):
        rule(weight, grad, row_of, state, scalars, s, first_row, end_row)
    return apply


@njit(**jit)
def update_serial(weight, grad, state, scalars, s):
    """Update every row with the scalars of row s."""
    update_rows(weight, grad, None, state, scalars, s, 0, weight.shape[0])


@njit(parallel=True, **jit)
def update_parallel(weight, grad, state, scalars, s):
    """update_serial with the rows split over threads: every entry gets the same arithmetic."""
    for g in prange(ROW_GROUPS):
        first_row, end_row = group_rows(g, weight.shape[0])
        update_rows(weight, grad, None, state, scalars, s, first_row, end_row)


@njit(parallel=True, **jit)
def update_read_parallel(weight, grad_rows, row_of, state, scalars, s):
    """update_parallel from a compact gradient (grad_kernels.gather_scatter_read_serial): row
    i's at grad_rows[row_of[i]]. The same arithmetic on the same values, so the same bits."""
    for g in prange(ROW_GROUPS):
        first_row, end_row = group_rows(g, weight.shape[0])
        update_rows(weight, grad_rows, row_of, state, scalars, s, first_row, end_row)
