"""AdamW exactly as torch.optim.AdamW (its defaults): Adam with decoupled weight decay and
bias-corrected moments. At step t with gradient g:

    W <- W (1 - lr wd)                                 decoupled weight decay
    m <- m + (1 - beta1)(g - m)                        = beta1 m + (1 - beta1) g, as torch's lerp
    v <- beta2 v + (1 - beta2) g^2
    W <- W - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

The scalars are Python floats, so each is rounded once to the weight's dtype where it meets the
arrays, as the compiled kernel receives them.
"""

import math

import numpy as np

from ..utils.checks import check_number, check_positive
from .base import Optimizer


class AdamW(Optimizer):
    """torch.optim.AdamW: state m (exp_avg) and v (exp_avg_sq), both (V,C)."""

    kind = "adamw"

    @staticmethod
    def check_hyperparameters(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        """torch.optim.AdamW's defaults and checks: {name: value}."""
        lr = check_positive(lr, "lr")
        beta1, beta2 = betas
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError(f"betas must lie in [0, 1), got {betas}")
        eps, weight_decay = check_number(eps, "eps"), check_number(weight_decay, "weight_decay")
        if not (0.0 <= eps < math.inf and 0.0 <= weight_decay < math.inf):
            raise ValueError(f"eps and weight_decay must be >= 0 and finite, got {eps} and "
                             f"{weight_decay}")
        return {"lr": lr, "betas": (float(beta1), float(beta2)), "eps": eps,
                "weight_decay": weight_decay}

    @staticmethod
    def state_names(hyperparameters):
        return ("m", "v")  # the first and second moments (V,C)

    def update(self, weight, g):
        """Step self.t of the formula above, in place."""
        lr, (beta1, beta2), eps, wd, t = self.lr, self.betas, self.eps, self.weight_decay, self.t
        m, v = self.state["m"], self.state["v"]
        weight *= 1 - lr * wd
        m += (1 - beta1) * (g - m)
        v *= beta2
        v += (1 - beta2) * g * g
        weight -= lr / (1 - beta1 ** t) * (m / (np.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps))
