"""SGD exactly as torch.optim.SGD: momentum, dampening, Nesterov and (L2) weight decay, with
torch's defaults (all off) and errors. At step t with gradient g:

    d <- g + wd W                                    weight decay, when wd != 0
    b <- d at t = 1, else momentum b + (1 - dampening) d      when momentum != 0
    d <- d + momentum b  (nesterov)  or  b                    when momentum != 0
    W <- W - lr d
"""

from collections import namedtuple

import numpy as np

from ..utils.checks import check_non_negative, check_positive
from .base import Optimizer

SGDCoefficients = namedtuple("SGDCoefficients", [
    "lr",
    "weight_decay",
    "momentum",
    "one_minus_dampening",  # 1 - dampening
    "nesterov",             # 1 or 0
    "first_step",           # 1 at t = 1 (the momentum buffer starts as d), else 0
])


class SGD(Optimizer):
    """torch.optim.SGD: state momentum_buffer (V,C) when momentum != 0."""

    kind = "sgd"
    hyperparameters = ("lr", "momentum", "dampening", "nesterov", "weight_decay")
    Coefficients = SGDCoefficients

    def __init__(self, model, lr=1e-2, momentum=0.0, dampening=0.0, nesterov=False,
                 weight_decay=0.0):
        super().__init__(model)
        self.lr = check_positive(lr, "learning rate")
        self.momentum = check_non_negative(momentum, "momentum")
        self.dampening = check_non_negative(dampening, "dampening")
        self.weight_decay = check_non_negative(weight_decay, "weight_decay")
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be a bool, got {type(nesterov).__name__}")
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        self.nesterov = bool(nesterov)
        if self.momentum != 0:
            self.state = {"momentum_buffer": np.zeros_like(model.weight)}  # b (V,C)

    def step_coefficients(self, t):
        return SGDCoefficients(lr=self.lr, weight_decay=self.weight_decay,
                               momentum=self.momentum, one_minus_dampening=1.0 - self.dampening,
                               nesterov=float(self.nesterov), first_step=float(t == 1))

    def kernel_state(self):
        """(b,), or an empty placeholder without momentum."""
        empty = np.empty((0, 0), dtype=self.model.weight.dtype)
        return (self.state.get("momentum_buffer", empty),)

    def reference_update(self, weight, g, c):
        """The formula above in NumPy, in place; c: this step's coefficients."""
        d = g
        if c.weight_decay != 0:
            d = d + c.weight_decay * weight
        if c.momentum != 0:
            b = self.state["momentum_buffer"]
            if c.first_step:
                b[...] = d
            else:
                b *= c.momentum
                b += c.one_minus_dampening * d
            d = d + c.momentum * b if c.nesterov else b
        weight -= c.lr * d
