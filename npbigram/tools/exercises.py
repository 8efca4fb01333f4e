"""The exercises of docs/exercises.ipynb, graded: one check per exercise, in the lecture's order.

    from npbigram.tools import exercises as ex
    ex.check_softmax(my_softmax)        # softmax: passed: ...  /  not done yet  /  a hint

Each check runs the learner's function on cases it builds, compares with npbigram's own answer
and returns a Verdict (npbigram.tools.grading) that says what is wrong in words.
"""

import functools
from dataclasses import dataclass

import numpy as np

from .. import ops
from ..data.corpus import pair_counts
from ..data.tokenizers import CharTokenizer
from ..engine import make_engine
from ..model import BigramLanguageModel
from ..optim import AdamW
from ..sampling import next_token_probs
from .explain import char_label
from .gradcheck import check_gradient
from .grading import Hint, as_array, call, close, graded, mistake_in, worst_row
from .optimum import count_probs, floor_loss

__all__ = ["check_softmax", "check_cross_entropy", "check_cross_entropy_backward",
           "check_embedding_backward", "check_adamw_step", "check_bigram_probs",
           "check_trigram_loss_and_grad", "check_sample_next"]

BATCH, BLOCK = 4, 8  # the gradient exercises' batch: the text's first 32 positions

SMALL = np.random.default_rng(1).standard_normal((5, 7))  # N != C: a wrong axis fails to broadcast
LARGE = SMALL + 1000.0  # exp(1000) overflows to inf
SPREAD = SMALL + np.array([[1000.0], [-1000.0], [0.0], [500.0], [-500.0]])  # rows far apart
TARGETS = np.array([3, 0, 6, 6, 1])  # a target repeated, for cross-entropy

# the exercises' text: tinyshakespeare's first lines, in its characters so that ids are the
# lecture's (43 is 'e')
VOCABULARY = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
V = len(VOCABULARY)
TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. "
        "resolved.\n\nFirst Citizen:\nFirst, you know Caius Marcius is chief enemy to the "
        "people.\n\nAll:\nWe know't, we know't.\n\nFirst Citizen:\nLet us kill him, and we'll "
        "have corn at our own price.\nIs't a verdict?\n\nAll:\nNo more talking on't; let it be "
        "done: away, away!\n\nSecond Citizen:\nOne word, good citizens.\n\nFirst Citizen:\nWe "
        "are accounted poor citizens, the patricians good.\n")
IDS = CharTokenizer(VOCABULARY).encode(TEXT)  # (532,)


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


def row_label(row):
    """Row i of a (V,C) table and the character it belongs to: "43 ('e')"."""
    return f"{row} ({char_label(VOCABULARY[row])!r})"


def gradient_mistakes(logits, rows, targets, n_rows):
    """(hint, dW) of the typical mistakes in the backward pass of W[rows] and the loss."""
    n, probs = len(targets), ops.softmax(logits)  # (N,C)
    onehot = np.eye(logits.shape[-1])[targets]  # (N,C)
    every_target = probs.copy()
    every_target[:, targets] -= 1.0
    buffered = np.zeros((n_rows, logits.shape[-1]))
    buffered[rows] += (probs - onehot) / n  # a repeated row receives one position's gradient

    def scatter(dlogits):
        return ops.embedding_backward(dlogits, rows, n_rows)

    return [
        (f"did you divide by N? dL/dlogits = (p - onehot) / N, N = {n} positions",
         scatter(probs - onehot)),
        ("the sign is flipped: dL/dlogits = p - onehot, not onehot - p",
         scatter((onehot - probs) / n)),
        ("did you subtract the one-hot? 1 comes off p at each position's target",
         scatter(probs / n)),
        ("p[:, targets] -= 1 subtracts every target from every row: "
         "use p[np.arange(N), targets] -= 1", scatter(every_target / n)),
        ("dW[idx] += dlogits adds once per distinct id, so a row read by several positions "
         "keeps one position's gradient: use np.add.at(dW, idx, dlogits)", buffered),
    ]


def grade_gradient(dW, expected, rows, mistakes, label, reference):
    """The passed message if dW is `expected`, else a Hint naming its worst row and mistake."""
    if close(dW, expected, rtol=1e-5, atol=1e-7):  # finite differences are good to ~1e-8
        return f"your dW matches {reference} to {np.abs(dW - expected).max():.1g} in every entry"
    row, difference = worst_row(dW, expected)
    reads = int(np.count_nonzero(rows == row))
    hint = mistake_in(dW, mistakes) or "compare your formula with the derivation in the markdown"
    raise Hint(f"your dW row {label(row)}, read by {reads} position{'s' * (reads != 1)}, differs "
               f"from {reference} by {difference:.1g}: {hint}")


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
    """What npbigram's optimizers step (.weight, .grad, a NumPy engine): a trigram's table."""

    engine = make_engine("numpy")

    def __init__(self, weight):
        self.weight, self.grad = weight, None


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
    rows, targets = IDS[:-2] * V + IDS[1:-1], IDS[2:]  # context (x_t, x_t+1), target x_t+2
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
