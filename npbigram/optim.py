"""Optimizers that update model.weight in place from model.grad, step for step as torch.optim.

AdamW (torch.optim.AdamW with its defaults), at step t with gradient g:
    W <- W * (1 - lr * weight_decay)                 decoupled weight decay
    m <- m + (1 - beta1) * (g - m)                   = beta1 m + (1 - beta1) g, as torch's lerp
    v <- beta2 v + (1 - beta2) g^2
    W <- W - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
SGD:
    W <- W - lr * g

With a model on the numba backend, step() runs the same formulas as one compiled kernel
(npbigram.kernels.update_kernel) with the scalars of coefficients(t), rounded to the weight's dtype
exactly as NumPy rounds them here: the two backends give the same bits.
"""

import math

import numpy as np

from .data import check_positive
from .model import numba_engine


def _check_lr(lr):
    return check_positive(lr, "learning rate")


class SGD:
    """Plain stochastic gradient descent: W <- W - lr * g."""

    kind = "sgd"

    def __init__(self, model, lr=1e-2):
        self.model = model
        self.lr = _check_lr(lr)
        self.t = 0

    def step(self):
        grad = _grad_of(self.model)
        self.t += 1
        if self.model.backend == "numba":
            _update_numba(self, grad)
            return
        self.model.weight -= self.lr * grad

    def coefficients(self, t):
        """The update's scalars at step t for the numba kernel: (lr,)."""
        return np.array([self.lr], dtype=self.model.weight.dtype)

    def moments(self):
        """The state arrays the kernel updates besides W: none (empty placeholders)."""
        empty = np.empty((0, 0), dtype=self.model.weight.dtype)
        return empty, empty

    def state_dict(self):
        return {"kind": self.kind, "lr": self.lr, "t": self.t}

    def load_state_dict(self, state):
        self.lr = _check_lr(state["lr"])
        self.t = int(state["t"])


class AdamW:
    """torch.optim.AdamW: Adam with decoupled weight decay and bias-corrected moments."""

    kind = "adamw"

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        beta1, beta2 = betas
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError(f"betas must lie in [0, 1), got {betas}")
        if not eps >= 0 or not weight_decay >= 0:
            raise ValueError(f"eps and weight_decay must be >= 0, got {eps} and {weight_decay}")
        self.model = model
        self.lr = _check_lr(lr)
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.t = 0  # steps taken
        self.m = np.zeros_like(model.weight)  # first moment (V,C)
        self.v = np.zeros_like(model.weight)  # second moment (V,C)

    def step(self):
        g = _grad_of(self.model)
        self.t += 1
        if self.model.backend == "numba":
            _update_numba(self, g)
            return
        W, m, v = self.model.weight, self.m, self.v
        W *= 1.0 - self.lr * self.weight_decay
        m += (1.0 - self.beta1) * (g - m)
        v *= self.beta2
        v += (1.0 - self.beta2) * g * g
        bias_correction1 = 1.0 - self.beta1 ** self.t
        bias_correction2 = 1.0 - self.beta2 ** self.t
        denom = np.sqrt(v) / math.sqrt(bias_correction2) + self.eps
        W -= (self.lr / bias_correction1) * (m / denom)

    def coefficients(self, t):
        """The update's scalars at step t for the numba kernel, computed as step() computes
        them: (1 - lr wd, 1 - beta1, beta2, 1 - beta2, lr / (1 - beta1^t), sqrt(1 - beta2^t),
        eps)."""
        bias_correction1 = 1.0 - self.beta1 ** t
        bias_correction2 = 1.0 - self.beta2 ** t
        return np.array([1.0 - self.lr * self.weight_decay, 1.0 - self.beta1, self.beta2,
                         1.0 - self.beta2, self.lr / bias_correction1,
                         math.sqrt(bias_correction2), self.eps], dtype=self.model.weight.dtype)

    def moments(self):
        """The state arrays the kernel updates besides W: (m, v)."""
        return self.m, self.v

    def state_dict(self):
        return {"kind": self.kind, "lr": self.lr, "betas": [self.beta1, self.beta2],
                "eps": self.eps, "weight_decay": self.weight_decay, "t": self.t,
                "m": self.m, "v": self.v}

    def load_state_dict(self, state):
        shape = self.model.weight.shape
        if state["m"].shape != shape or state["v"].shape != shape:
            raise ValueError(f"optimizer state has shape {state['m'].shape}, model has {shape}")
        self.lr = _check_lr(state["lr"])
        self.beta1, self.beta2 = (float(b) for b in state["betas"])
        self.eps, self.weight_decay = float(state["eps"]), float(state["weight_decay"])
        self.t = int(state["t"])
        self.m = np.array(state["m"], dtype=self.model.weight.dtype)
        self.v = np.array(state["v"], dtype=self.model.weight.dtype)


OPTIMIZERS = {"adamw": AdamW, "sgd": SGD}


def make_optimizer(kind, model, lr):
    if kind not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {kind!r}: choose one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[kind](model, lr=lr)


def coefficient_table(optimizer, steps):
    """coefficients() of the next `steps` steps, one row each: (steps, K) for a fused loop."""
    return np.stack([optimizer.coefficients(optimizer.t + s) for s in range(1, steps + 1)])


def _update_numba(optimizer, grad):
    weight = optimizer.model.weight
    update = numba_engine().update_kernel(optimizer.kind, weight.shape[0])
    update(weight, grad, *optimizer.moments(), optimizer.coefficients(optimizer.t))


def _grad_of(model):
    if model.grad is None:
        raise RuntimeError("no gradient: call model.backward() before opt.step()")
    return model.grad
