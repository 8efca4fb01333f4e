"""Exercises 5 to 8 of docs/exercises.ipynb (npbigram.tools.exercises holds them all): AdamW's
step, the counted table and smoothing, a trigram trained the same way, sampling with a
temperature."""

import numpy as np

from .. import ops
from ..engine import make_engine
from ..data.corpus import pair_counts
from ..model import BigramLanguageModel
from ..optim import AdamW
from ..sampling import next_token_probs
from .explain import char_label
from .grading import (
    IDS,
    V,
    VOCABULARY,
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
from .optimum import count_probs, floor_loss

# not torch's defaults, so that a step that ignores one shows
ADAMW_HYPERPARAMETERS = {"lr": 0.1, "betas": (0.8, 0.9), "eps": 1e-3, "weight_decay": 0.1}
ADAMW_START = np.random.default_rng(3).standard_normal((4, 4))  # W before step 1
ADAMW_GRADIENTS = (np.random.default_rng(4).standard_normal((3, 4, 4))  # g at steps 1, 2, 3,
                   * np.array([1.0, 0.1, 3.0])[:, None, None])  # of sizes that differ
ADAMW_MISTAKES = [  # (hint, how the textbook step below then differs)
    ("the bias correction is missing: m_hat = m / (1 - beta1^t) and v_hat = v / (1 - beta2^t) "
     "(m and v start at 0, so without it the first steps are too small)",
     {"bias_correction": False}),
    ("the weight decay went into the gradient (Adam's L2 penalty, g + wd W): AdamW decays the "
     "weight itself, W <- W (1 - lr wd)", {"decay": "l2"}),
    ("W was not decayed: AdamW first multiplies W by (1 - lr weight_decay)", {"decay": None}),
    ("eps goes outside the square root: m_hat / (sqrt(v_hat) + eps)", {"eps_in_sqrt": True}),
]
TRIGRAM_STEPS, TRIGRAM_LR = 30, 0.1
SAMPLE_LOGITS = np.array([1.0, -0.5, 2.5, 0.0, 1.5, -2.0])  # the most likely token is 2
SAMPLE_TEMPERATURES = (1.0, 0.5, 2.0)
SAMPLE_DRAWS = 20_000
SAMPLE_SIGMAS = 5  # a frequency within 5 standard errors of its probability agrees with it


def textbook_adamw(weight, grad, m, v, t, lr, betas, eps, weight_decay, decay="decoupled",
                   bias_correction=True, eps_in_sqrt=False):
    """AdamW's step as textbooks write it, and its typical mistakes (ADAMW_MISTAKES)."""
    beta1, beta2 = betas
    if decay == "l2":
        grad = grad + weight_decay * weight
    elif decay == "decoupled":
        weight = weight * (1 - lr * weight_decay)
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    m_hat, v_hat = (m / (1 - beta1 ** t), v / (1 - beta2 ** t)) if bias_correction else (m, v)
    denominator = np.sqrt(v_hat + eps) if eps_in_sqrt else np.sqrt(v_hat) + eps
    return weight - lr * m_hat / denominator, m, v


def textbook_trajectory(**mistake):
    """W after each of the check's steps of textbook_adamw with `mistake`."""
    weight, m, v, weights = ADAMW_START, 0.0, 0.0, []
    for t, grad in enumerate(ADAMW_GRADIENTS, start=1):
        weight, m, v = textbook_adamw(weight, grad, m, v, t, **ADAMW_HYPERPARAMETERS, **mistake)
        weights.append(weight)
    return weights


def adamw_trajectory():
    """W after each of the check's steps of npbigram.AdamW (torch.optim.AdamW's formula)."""
    model = BigramLanguageModel.from_weight(ADAMW_START.copy(), backend="numpy")
    optimizer, weights = AdamW(model, **ADAMW_HYPERPARAMETERS), []
    for grad in ADAMW_GRADIENTS:
        model.grad = grad
        optimizer.step()
        weights.append(model.weight.copy())
    return weights


@graded("AdamW")
def check_adamw_step(adamw_step):
    """adamw_step(W, g, m, v, t, lr=, betas=, eps=, weight_decay=) -> the new (W, m, v), for
    t = 1, 2, 3 against npbigram.AdamW."""
    expected = adamw_trajectory()
    mistakes = [(hint, textbook_trajectory(**mistake)) for hint, mistake in ADAMW_MISTAKES]
    weight, m, v = ADAMW_START, np.zeros_like(ADAMW_START), np.zeros_like(ADAMW_START)
    for t, grad in enumerate(ADAMW_GRADIENTS, start=1):
        result = call(adamw_step, weight, grad, m, v, t, **ADAMW_HYPERPARAMETERS)
        if not (isinstance(result, tuple) and len(result) == 3):
            raise Hint("return the new W, m and v, as a tuple of three arrays")
        weight, m, v = (as_array(array, ADAMW_START.shape, f"the {name} you returned at step {t}")
                        for array, name in zip(result, "Wmv"))
        if not np.isfinite(weight).all():
            raise Hint(f"your W after step {t} holds nan or inf: is the bias correction 1 - beta^t "
                       f"with the t you are given (1 at the first step)?")
        if not close(weight, expected[t - 1]):
            hint = mistake_in(weight, [(hint, weights[t - 1]) for hint, weights in mistakes])
            if hint is None and t > 1:
                hint = f"step {t - 1} matched: are m and v carried from one step to the next?"
            raise Hint(f"your W after step {t} differs from npbigram.AdamW's by "
                       f"{np.abs(weight - expected[t - 1]).max():.1g}: "
                       f"{hint or 'compare your step with the formula line by line'}")
    return (f"{len(ADAMW_GRADIENTS)} steps match npbigram.AdamW (torch.optim.AdamW) with "
            + ", ".join(f"{name}={value}" for name, value in ADAMW_HYPERPARAMETERS.items()))


@graded("counting")
def check_bigram_probs(bigram_probs):
    """bigram_probs(ids (n,), vocab_size, k) -> P (V,V), P[i,j] = (C_ij + k) / (n_i + kV), for
    k = 0 (rows never seen, 0/0, not graded) and k = 1, against count_probs."""
    counts = pair_counts(IDS, V)  # (V,V)
    seen_rows = counts.sum(axis=1) > 0
    tables = {}
    for k in (0.0, 1.0):
        probs = as_array(call(bigram_probs, IDS, V, k), (V, V), f"your table for k={k:g}")
        graded_rows = seen_rows if k == 0 else np.ones(V, dtype=bool)
        expected = count_probs(counts, k)
        if not close(probs[graded_rows], expected[graded_rows]):
            row, difference = worst_row(np.where(graded_rows[:, None], probs, expected), expected)
            # the mistakes, in the rows seen (a row never seen may be 0/0 in the answer)
            smoothed = counts[seen_rows] + k  # (S,V)
            mistakes = [
                ("your table is transposed: row i is the distribution of the token after i, so "
                 "C[i, j] counts j following i", count_probs(counts.T, k)[seen_rows]),
                ("each row is a distribution: divide by its row's total n_i + kV, not the whole "
                 "table's", smoothed / (counts + k).sum()),
                ("add-k adds k to each of the row's V entries: divide by n_i + kV, not n_i + k",
                 smoothed / (counts[seen_rows].sum(axis=1, keepdims=True) + k)),
            ] + [(f"k={k:g} gives the unsmoothed table: add k to every count",
                  count_probs(counts)[seen_rows])] * (k > 0)
            hint = mistake_in(probs[seen_rows], mistakes)
            raise Hint(f"row {row_label(row)} of your k={k:g} table differs from count_probs's "
                       f"by {difference:.1g}: {hint or 'P[i, j] = (C_ij + k) / (n_i + kV)'}")
        tables[k] = probs
    pairs = counts > 0
    loss = {k: -(counts[pairs] * np.log(table[pairs])).sum() / counts.sum()
            for k, table in tables.items()}
    return (f"with k=0 your table's loss on its text, {loss[0.0]:.4f} nats, is floor_loss's "
            f"{floor_loss(counts):.4f}, the lowest any bigram reaches there; with k=1 it is "
            f"{loss[1.0]:.4f}, and no pair has probability 0")


class TableModel:
    """What npbigram's optimizers step: .weight, .grad, and an engine whose step runs the
    optimizer's NumPy formula; here a trigram's (V*V, V) table."""

    engine = make_engine("numpy")

    def __init__(self, weight):
        self.weight, self.grad = weight, None


def trigram_rows(ids, vocab_size):
    """The row a*V + b of each context (a, b) = (x_t, x_t+1), and its target x_t+2."""
    return ids[:-2] * vocab_size + ids[1:-1], ids[2:]


def trigram_label(row):
    context = char_label(VOCABULARY[row // V]) + char_label(VOCABULARY[row % V])
    return f"{row} (context {context!r})"


def trigram_reference(weight, rows, targets):
    """The loss and dL/dW of the table W (V*V, V) read at `rows`, by npbigram.ops."""
    loss, probs = ops.cross_entropy_forward(weight[rows], targets)
    dlogits = ops.cross_entropy_backward(probs, targets)
    return loss, ops.embedding_backward(dlogits, rows, len(weight))


def trigram_answer(trigram_loss_and_grad, weight, step):
    result = call(trigram_loss_and_grad, weight, IDS)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise Hint("return the loss and dW, as a tuple")
    return (as_array(result[0], (), f"your loss {step}"),
            as_array(result[1], weight.shape, f"your dW {step}"))


@graded("trigram")
def check_trigram_loss_and_grad(trigram_loss_and_grad):
    """trigram_loss_and_grad(W (V*V, V), ids (n,)) -> (loss, dW) over the n - 2 positions,
    against npbigram.ops; then TRIGRAM_STEPS AdamW steps on the whole text."""
    rows, targets = trigram_rows(IDS, V)
    weight = np.random.default_rng(2).standard_normal((V * V, V))
    loss, dW = trigram_answer(trigram_loss_and_grad, weight, "at W ~ N(0, 1)")
    expected_loss, expected_dW = trigram_reference(weight, rows, targets)
    if not close(loss, expected_loss):
        swapped_rows = IDS[1:-1] * V + IDS[:-2]
        mistakes = [
            ("the row of the context (a, b) is a*V + b; you read b*V + a",
             trigram_reference(weight, swapped_rows, targets)[0]),
            ("the target of the context (x_t, x_t+1) is x_t+2; you scored x_t+1",
             trigram_reference(weight, rows, IDS[1:-1])[0]),
        ]
        hint = mistake_in(loss, mistakes) or "the context (x_t, x_t+1) reads row x_t*V + x_t+1"
        raise Hint(f"your loss {float(loss):.6f} differs from npbigram.ops' {expected_loss:.6f}: "
                   f"{hint}")
    grade_gradient(dW, expected_dW, rows, gradient_mistakes(weight[rows], rows, targets, V * V),
                   trigram_label, "npbigram.ops' gradient")
    table = TableModel(np.zeros((V * V, V)))
    optimizer = AdamW(table, lr=TRIGRAM_LR)
    losses = []
    for step in range(TRIGRAM_STEPS):
        loss, table.grad = trigram_answer(trigram_loss_and_grad, table.weight, f"at step {step}")
        losses.append(float(loss))
        optimizer.step()
    trained_loss = trigram_reference(table.weight, rows, targets)[0]
    trigram_counts = np.bincount(rows * V + targets, minlength=V ** 3).reshape(V * V, V)
    return (f"your loss and dW match npbigram.ops'; {TRIGRAM_STEPS} AdamW steps (lr "
            f"{TRIGRAM_LR}) on the whole text took the table from {losses[0]:.4f} to "
            f"{trained_loss:.4f} nats, below the bigram's floor "
            f"{floor_loss(pair_counts(IDS, V)):.4f} on the same text (the trigram's own floor "
            f"is {floor_loss(trigram_counts):.4f})")


def sample_frequencies(sample_next, temperature, seed=0):
    """How often each token came out of SAMPLE_DRAWS draws of the learner's sampler."""
    result = call(sample_next, SAMPLE_LOGITS, temperature, np.random.default_rng(seed),
                  SAMPLE_DRAWS)
    draws = np.asarray(result)
    if draws.shape == ():  # one token, whatever the draw
        draws = np.full(SAMPLE_DRAWS, draws)
    if draws.shape != (SAMPLE_DRAWS,) or draws.dtype.kind not in "iu":
        raise Hint(f"return {SAMPLE_DRAWS} token ids (integers), one per draw; got "
                   f"{draws.dtype} of shape {draws.shape}")
    if draws.min() < 0 or draws.max() >= len(SAMPLE_LOGITS):
        raise Hint(f"your draws hold ids outside [0, {len(SAMPLE_LOGITS)})")
    return np.bincount(draws, minlength=len(SAMPLE_LOGITS)) / SAMPLE_DRAWS


def follows(frequencies, probs):
    """Every frequency within SAMPLE_SIGMAS standard errors of its probability."""
    standard_error = np.sqrt(probs * (1 - probs) / SAMPLE_DRAWS)
    return bool(np.all(np.abs(frequencies - probs) <= SAMPLE_SIGMAS * standard_error + 1e-12))


@graded("sampling")
def check_sample_next(sample_next):
    """sample_next(logits (C,), temperature, rng, num_samples) -> (num_samples,) ids drawn
    from softmax(logits / temperature), the sampler's next_token_probs."""
    def probs(temperature):
        return next_token_probs(SAMPLE_LOGITS[None], temperature)[0]

    if not np.array_equal(sample_frequencies(sample_next, 1.0),
                          sample_frequencies(sample_next, 1.0)):
        raise Hint("the same rng gave different draws: draw with the rng you are given "
                   "(rng.choice, rng.random), not np.random's global functions")
    for temperature in SAMPLE_TEMPERATURES:
        frequencies = sample_frequencies(sample_next, temperature)
        if follows(frequencies, probs(temperature)):
            continue
        mistakes = [
            ("every draw is the most likely token: that is argmax, not sampling. Draw from p, "
             "e.g. rng.choice(len(p), size=n, p=p) (argmax is the limit T -> 0)",
             np.eye(len(SAMPLE_LOGITS))[np.argmax(SAMPLE_LOGITS)]),
            ("your draws do not change with the temperature: divide the logits by it, "
             "softmax(logits / T)", probs(1.0)),
            ("you multiplied the logits by the temperature: divide them, softmax(logits / T), "
             "so that a high T flattens p", probs(1.0 / temperature)),
            ("your draws are uniform: draw with the probabilities p (rng.choice(..., p=p))",
             np.full(len(SAMPLE_LOGITS), 1.0 / len(SAMPLE_LOGITS))),
        ]
        hint = next((hint for hint, wrong in mistakes if follows(frequencies, wrong)),
                    f"draw from p = softmax(logits / T) = {np.round(probs(temperature), 3)}")
        raise Hint(f"at temperature {temperature:g} your draws' frequencies "
                   f"{np.round(frequencies, 3)} are not softmax(logits / T)'s: {hint}")
    return (f"at temperatures {', '.join(f'{t:g}' for t in SAMPLE_TEMPERATURES)} your "
            f"{SAMPLE_DRAWS:,} draws follow softmax(logits / T): a low T sharpens p toward the "
            f"argmax, a high T flattens it toward uniform")
