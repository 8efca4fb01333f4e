"""SGD exactly as torch.optim.SGD: momentum, dampening, Nesterov and (L2) weight decay, with
torch's defaults (all off) and errors. At step t with gradient g:

    d <- g + wd W                                    weight decay, when wd != 0
    b <- d at t = 1, else momentum b + (1 - dampening) d      when momentum != 0
    d <- d + momentum b  (nesterov)  or  b                    when momentum != 0
    W <- W - lr d
"""

import numpy as np

from ..utils.checks import check_non_negative, check_positive
from .base import Optimizer


class SGD(Optimizer):
    """torch.optim.SGD: state momentum_buffer (V,C) when momentum != 0."""

    kind = "sgd"

    @staticmethod
    def check_hyperparameters(lr=1e-2, momentum=0.0, dampening=0.0, nesterov=False,
                              weight_decay=0.0):
        """torch.optim.SGD's defaults and checks: {name: value}."""
        lr = check_positive(lr, "lr")
        momentum = check_non_negative(momentum, "momentum")
        dampening = check_non_negative(dampening, "dampening")
        weight_decay = check_non_negative(weight_decay, "weight_decay")
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be a bool, got {type(nesterov).__name__}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        return {"lr": lr, "momentum": momentum, "dampening": dampening,
                "nesterov": bool(nesterov), "weight_decay": weight_decay}

    @staticmethod
    def state_names(hyperparameters):
        return ("momentum_buffer",) if hyperparameters["momentum"] != 0 else ()  # b (V,C)

    def update(self, weight, g):
        """Step self.t of the formula above, in place."""
        lr, momentum, dampening, wd = self.lr, self.momentum, self.dampening, self.weight_decay
        d = g
        if wd != 0:
            d = d + wd * weight
        if momentum != 0:
            b = self.state["momentum_buffer"]
            if self.t == 1:
                b[...] = d
            else:
                b *= momentum
                b += (1 - dampening) * d
            d = d + momentum * b if self.nesterov else b
        weight -= lr * d
