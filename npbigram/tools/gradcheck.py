"""Check the hand-derived gradient against finite differences of the loss, entry by entry.

For every entry W[i,j] of the table, with L(k) the loss at W + k eps e_ij, the central
difference D(eps) = (L(1) - L(-1)) / (2 eps) equals dL/dW_ij + (eps^2/6) d3L/dW_ij^3 + O(eps^4).
Its fourth-order form cancels the eps^2 term (Richardson: (4 D(eps) - D(2 eps)) / 3):

    numeric[i,j] = (8 (L(1) - L(-1)) - (L(2) - L(-2))) / (12 eps)

so eps can be large (1e-2), which keeps the rounding error, about ulp(L) / eps, small. The
relative error |analytic - numeric| / max(|analytic|, |numeric|) is 0 where both are 0.
"""

from dataclasses import dataclass

import numpy as np

from ..data.corpus import get_batch
from ..model import BigramLanguageModel
from ..preflight import check_gradcheck
from ..utils.checks import ID_DTYPE

DEFAULT_EPS = 1e-2
DEFAULT_THRESHOLD = 1e-6


@dataclass
class GradcheckResult:
    loss: float  # L(W) on the batch
    analytic: np.ndarray  # (V,C) model.backward()
    numeric: np.ndarray  # (V,C) central differences
    rel_error: np.ndarray  # (V,C)
    eps: float

    @property
    def max_rel_error(self):
        return float(self.rel_error.max())

    @property
    def worst(self):
        """(i, j): the entry of W where analytic and numeric disagree most."""
        return tuple(int(a) for a in np.unravel_index(np.argmax(self.rel_error),
                                                      self.rel_error.shape))


def check_gradient(model, idx, targets, eps=DEFAULT_EPS, progress=None):
    """Compare model.backward() after model(idx, targets) with the differences of the loss at
    every entry of W (float64 weights: in float32 rounding swamps them). progress(n), when
    given, is told of each row's n entries once done."""
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a positive number, got {eps}")
    _, loss = model(idx, targets)
    analytic = model.backward().copy()  # (V,C)
    weight = model.weight
    numeric = np.zeros_like(analytic)  # (V,C)
    for i, j in np.ndindex(*weight.shape):
        w_ij = weight[i, j]
        losses = {}  # k -> L(W + k eps e_ij)
        for k in (-2, -1, 1, 2):
            weight[i, j] = w_ij + k * eps
            losses[k] = model(idx, targets)[1]
        weight[i, j] = w_ij
        numeric[i, j] = (8 * (losses[1] - losses[-1]) - (losses[2] - losses[-2])) / (12 * eps)
        if progress is not None and j == weight.shape[1] - 1:
            progress(weight.shape[1])
    scale = np.maximum(np.abs(analytic), np.abs(numeric))  # (V,C)
    rel_error = np.divide(np.abs(analytic - numeric), scale, out=np.zeros_like(scale),
                          where=scale > 0)
    return GradcheckResult(loss=loss, analytic=analytic, numeric=numeric, rel_error=rel_error,
                           eps=eps)


def gradient_check(vocab_size=65, batch_size=4, block_size=8, seed=0, data=None, eps=DEFAULT_EPS,
                   progress=None):
    """check_gradient of a float64 model with W ~ N(0,1) from `seed` on one batch: B x T
    random ids, or B random windows of `data` (n,) as in training."""
    check_gradcheck(vocab_size, batch_size * block_size)
    rng = np.random.default_rng(seed)
    if data is None:
        idx = rng.integers(0, vocab_size, size=(batch_size, block_size), dtype=ID_DTYPE)  # (B,T)
        targets = rng.integers(0, vocab_size, size=(batch_size, block_size), dtype=ID_DTYPE)
    else:
        idx, targets = get_batch(np.asarray(data), block_size, batch_size, rng)  # (B,T) each
    model = BigramLanguageModel(vocab_size, seed=seed, dtype=np.float64, backend="numpy")
    return check_gradient(model, idx, targets, eps=eps, progress=progress)
