"""AdamW exactly as torch.optim.AdamW (its defaults): Adam with decoupled weight decay and
bias-corrected moments. At step t with gradient g:

    W <- W (1 - lr wd)                                 decoupled weight decay
    m <- m + (1 - beta1)(g - m)                        = beta1 m + (1 - beta1) g, as torch's lerp
    v <- beta2 v + (1 - beta2) g^2
    W <- W - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
"""

import math
from collections import namedtuple

import numpy as np

from ..utils.checks import check_non_negative, check_positive
from .base import Optimizer

# the update's scalars at step t, named as in the formula above
AdamWCoefficients = namedtuple("AdamWCoefficients", [
    "decay",                 # 1 - lr wd
    "one_minus_beta1",       # 1 - beta1
    "beta2",
    "one_minus_beta2",       # 1 - beta2
    "step_size",             # lr / (1 - beta1^t)
    "bias_correction2_sqrt",  # sqrt(1 - beta2^t)
    "eps",
])


class AdamW(Optimizer):
    """torch.optim.AdamW: state m (exp_avg) and v (exp_avg_sq), both (V,C)."""

    kind = "adamw"
    hyperparameters = ("lr", "betas", "eps", "weight_decay")
    Coefficients = AdamWCoefficients

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(model)
        beta1, beta2 = betas
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError(f"betas must lie in [0, 1), got {betas}")
        if not eps >= 0 or not weight_decay >= 0:
            raise ValueError(f"eps and weight_decay must be >= 0, got {eps} and {weight_decay}")
        self.lr = check_positive(lr, "learning rate")
        self.betas = (float(beta1), float(beta2))
        self.eps = check_non_negative(eps, "eps")
        self.weight_decay = check_non_negative(weight_decay, "weight_decay")
        self.state = {"m": np.zeros_like(model.weight),  # first moment (V,C)
                      "v": np.zeros_like(model.weight)}  # second moment (V,C)

    def step_coefficients(self, t):
        beta1, beta2 = self.betas
        return AdamWCoefficients(
            decay=1.0 - self.lr * self.weight_decay, one_minus_beta1=1.0 - beta1, beta2=beta2,
            one_minus_beta2=1.0 - beta2, step_size=self.lr / (1.0 - beta1 ** t),
            bias_correction2_sqrt=math.sqrt(1.0 - beta2 ** t), eps=self.eps)

    def reference_update(self, weight, g, c):
        """The formula above in NumPy, in place; c: this step's coefficients."""
        m, v = self.state["m"], self.state["v"]
        weight *= c.decay
        m += c.one_minus_beta1 * (g - m)
        v *= c.beta2
        v += c.one_minus_beta2 * g * g
        weight -= c.step_size * (m / (np.sqrt(v) / c.bias_correction2_sqrt + c.eps))
