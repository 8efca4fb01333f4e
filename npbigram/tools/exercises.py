"""The exercises of docs/exercises.ipynb, graded: one check per exercise, in the lecture's order.

    from npbigram.tools import exercises as ex
    ex.check_softmax(my_softmax)        # softmax: passed: ...  /  not done yet  /  a hint

Each check runs the learner's function on cases it builds, compares with npbigram's own answer
(npbigram.ops, check_gradient's finite differences, npbigram.AdamW, floor_loss, the sampler's
probabilities) and returns a Verdict (npbigram.tools.grading) that says what is wrong in words:

    1 softmax(logits)                             p = exp(z - max z) / sum exp(z - max z)
    2 cross_entropy(logits, targets)              L = mean_n -log p_n[y_n]
    3 cross_entropy_backward(logits, targets)     dL/dlogits = (p - onehot(y)) / N
    4 embedding_backward(dlogits, idx, V)         dW[i] = sum of dlogits_n with idx_n = i
    5 adamw_step(W, g, m, v, t, lr, betas, eps, weight_decay) -> W, m, v
    6 bigram_probs(ids, V, k)                     P[i,j] = (C_ij + k) / (n_i + kV)
    7 trigram_loss_and_grad(W, ids)               W (V*V, V): row a*V + b for the context (a, b)
    8 sample_next(logits, temperature, rng, n)    n draws from softmax(logits / temperature)

1 to 4 are here; 5 to 8 in exercises_training.py.
"""

import functools
from dataclasses import dataclass

import numpy as np

from .. import ops
from ..model import BigramLanguageModel
from .exercises_training import (
    check_adamw_step,
    check_bigram_probs,
    check_sample_next,
    check_trigram_loss_and_grad,
)
from .gradcheck import check_gradient
from .grading import (
    IDS,
    V,
    Hint,
    as_array,
    call,
    close,
    grade_gradient,
    gradient_mistakes,
    graded,
    mistake_in,
    row_label,
    worst_row,
)

__all__ = ["check_softmax", "check_cross_entropy", "check_cross_entropy_backward",
           "check_embedding_backward", "check_adamw_step", "check_bigram_probs",
           "check_trigram_loss_and_grad", "check_sample_next"]

BATCH, BLOCK = 4, 8  # the gradient exercises' batch: the text's first 32 positions

SMALL = np.random.default_rng(1).standard_normal((5, 7))  # N != C: a wrong axis fails to broadcast
LARGE = SMALL + 1000.0  # exp(1000) overflows to inf
SPREAD = SMALL + np.array([[1000.0], [-1000.0], [0.0], [500.0], [-500.0]])  # rows far apart
TARGETS = np.array([3, 0, 6, 6, 1])  # a target repeated, for cross-entropy


@graded("softmax")
def check_softmax(softmax):
    """softmax(logits (N,C)) -> probabilities (N,C): p = exp(z - max z) / sum exp(z - max z)."""
    exp = np.exp(SMALL)
    mistakes = [
        ("your columns sum to 1, not your rows: normalize along the last axis (axis=-1)",
         exp / exp.sum(axis=0)),
        ("your rows do not sum to 1: divide exp(z) by the sum of its row", exp),
        ("your whole array sums to 1: each row is a distribution of its own, divide by the "
         "sum of its row (axis=-1, keepdims=True)", exp / exp.sum()),
    ]
    cases = [(SMALL, None),
             (LARGE, "your softmax gives nan on logits near 1000: exp(1000) overflows to inf. "
                     "softmax(z) = softmax(z - c) for any c, so subtract each row's max first"),
             (SPREAD, "rows far below the array's largest logit give nan (0/0): subtract each "
                      "row's own max, logits.max(axis=-1, keepdims=True), not the array's")]
    for logits, unstable in cases:
        probs = as_array(call(softmax, logits), logits.shape, "your softmax's result")
        if unstable and not np.isfinite(probs).all():
            raise Hint(unstable)
        expected = ops.softmax(logits)
        if not close(probs, expected):
            row, difference = worst_row(probs, expected)
            raise Hint(mistake_in(probs, mistakes) or
                       f"row {row} of your softmax differs from npbigram.ops.softmax's by "
                       f"{difference:.1g} (logits {np.round(logits[row], 2)})")
    return "right on small logits, and stable on logits of +-1000"


@graded("cross-entropy")
def check_cross_entropy(cross_entropy):
    """cross_entropy(logits (N,C), targets (N,)) -> the mean loss: mean_n -log p_n[y_n]."""
    n, logp = len(TARGETS), ops.log_softmax(SMALL)
    at_targets = logp[np.arange(n), TARGETS]  # (N,) log p_n[y_n]
    mistakes = [
        ("you summed the positions' losses: the loss is their mean, divide by N",
         -at_targets.sum()),
        ("your loss is negative: it is -log p[target], minus the log", at_targets.mean()),
        ("you used -logits[target] as -log p[target]: normalize first, "
         "log p = logits - logsumexp(logits)", -SMALL[np.arange(n), TARGETS].mean()),
        ("you took -p[target]: the loss is -log p[target]", -np.exp(at_targets).mean()),
        ("logp[:, targets] picks every target in every row, an (N, N) block: "
         "use logp[np.arange(N), targets]", -logp[:, TARGETS].mean()),
    ]
    for logits in (SMALL, LARGE):
        result = call(cross_entropy, logits, TARGETS)
        if np.shape(result) == (n,):
            raise Hint("you returned one loss per position: the loss is their mean")
        loss = as_array(result, (), "your loss")
        if not np.isfinite(loss):
            raise Hint(f"your loss is {loss} on logits near 1000: compute log p = z - max z - "
                       f"log sum exp(z - max z), which never overflows")
        expected = ops.cross_entropy_forward(logits, TARGETS)[0]
        if not close(loss, expected):
            raise Hint(mistake_in(loss, mistakes) or
                       f"your loss {float(loss):.6f} differs from npbigram's {expected:.6f}")
    return f"{expected:.4f} on the check's {n} positions, and stable on logits near 1000"


@dataclass(frozen=True)
class GradientCase:
    """The gradient exercises' batch: the text's first 32 positions, W ~ N(0,1) (V,V)."""

    idx: np.ndarray  # (N,) inputs: ids repeat ('e' is read 6 times)
    targets: np.ndarray  # (N,)
    logits: np.ndarray  # (N,V) W[idx]
    dlogits: np.ndarray  # (N,V) (p - onehot) / N
    numeric: np.ndarray  # (V,V) check_gradient's finite differences of the loss


@functools.cache
def gradient_case():
    idx, targets = IDS[:BATCH * BLOCK], IDS[1:BATCH * BLOCK + 1]
    weight = np.random.default_rng(0).standard_normal((V, V))
    model = BigramLanguageModel.from_weight(weight, backend="numpy")
    numeric = check_gradient(model, idx.reshape(BATCH, BLOCK),
                             targets.reshape(BATCH, BLOCK)).numeric
    logits = weight[idx]
    dlogits = ops.cross_entropy_backward(ops.softmax(logits), targets)
    return GradientCase(idx, targets, logits, dlogits, numeric)


def grade_batch_gradient(dW):
    """dW (V,V) of the gradient case graded against check_gradient's finite differences."""
    case = gradient_case()
    return grade_gradient(dW, case.numeric, case.idx,
                          gradient_mistakes(case.logits, case.idx, case.targets, V), row_label,
                          "the finite-difference gradient")


@graded("cross-entropy backward")
def check_cross_entropy_backward(cross_entropy_backward):
    """cross_entropy_backward(logits (N,C), targets (N,)) -> dL/dlogits (N,C) = (p - onehot)/N,
    checked as dW = its scatter-add against the finite-difference gradient."""
    case = gradient_case()
    dlogits = as_array(call(cross_entropy_backward, case.logits, case.targets),
                       case.logits.shape, "your dlogits")
    return grade_batch_gradient(ops.embedding_backward(dlogits, case.idx, V))


@graded("scatter-add")
def check_embedding_backward(embedding_backward):
    """embedding_backward(dlogits (N,C), idx (N,), vocab_size) -> dW (V,C): each position's
    dlogits added into the row it read, summed over repeated ids."""
    case = gradient_case()
    return grade_batch_gradient(as_array(call(embedding_backward, case.dlogits, case.idx, V),
                                         (V, V), "your dW"))
