"""How an exercise is graded: the learner's function run on cases the check builds, compared
with npbigram's own answer, and a verdict in words.

    passed          the answer matches npbigram's on every case
    not done yet    the function still raises NotImplementedError, or returns None
    a hint          what is wrong and where, and the typical mistake that gives that answer

A check finds the typical mistake by computing it: each exercise keeps a table of
(hint, the answer that mistake gives), and an answer matching one of them gets its hint.
"""

import functools
import warnings
from dataclasses import dataclass

import numpy as np

from .. import ops
from ..data.tokenizers import CharTokenizer
from .explain import char_label

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

PASSED, NOT_DONE, HINT = "passed", "not done yet", "hint"
RTOL, ATOL = 1e-6, 1e-9  # float64 answers to npbigram's; a typical mistake is off by far more
ERROR_HINTS = [  # (part of an error's message, lowercase, and what usually causes it)
    ("could not be broadcast", "a sum or max over the last axis drops that axis: keep it with "
                               "keepdims=True so that it broadcasts against the rows"),
    ("probabilities do not sum to 1", "divide the logits by the temperature before the softmax, "
                                      "not the probabilities after it"),
]


@dataclass(frozen=True)
class Verdict:
    """What a check says: `status` (PASSED, NOT_DONE or HINT) and the words that go with it."""

    exercise: str
    status: str
    message: str

    @property
    def passed(self):
        return self.status == PASSED

    def __str__(self):
        status = "" if self.status == HINT else f"{self.status}: "
        return f"{self.exercise}: {status}{self.message}"

    def _repr_pretty_(self, printer, cycle):
        """How IPython shows a check cell's result: its sentence."""
        printer.text(str(self))


class Hint(Exception):
    """Raised inside a check: the answer is wrong, and the message says how."""


class NotDone(Exception):
    """Raised inside a check: the learner's function is still a stub."""


def graded(exercise):
    """Turn check(answer) -> the passed message (raising Hint or NotDone) into
    check(answer) -> Verdict of `exercise`."""
    def decorate(check):
        @functools.wraps(check)
        def grade(answer):
            try:
                return Verdict(exercise, PASSED, check(answer))
            except NotDone as stub:
                return Verdict(exercise, NOT_DONE, str(stub))
            except Hint as hint:
                return Verdict(exercise, HINT, str(hint))
        return grade
    return decorate


def name_of(answer):
    return getattr(answer, "__name__", "function")


def call(answer, *args, **kwargs):
    """answer(*args, **kwargs) on copies of the arrays, without NumPy's warnings (a nan is
    graded, not warned about). A stub raises NotDone; any other error becomes a Hint."""
    args = [np.copy(a) if isinstance(a, np.ndarray) else a for a in args]
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = answer(*args, **kwargs)
    except NotImplementedError:
        raise NotDone(f"{name_of(answer)} still raises NotImplementedError") from None
    except Exception as error:  # the learner's error, reported as the first hint
        causes = [hint for part, hint in ERROR_HINTS if part in str(error).lower()]
        raise Hint(f"your {name_of(answer)} raised {type(error).__name__}: {error}"
                   + "".join(f": {cause}" for cause in causes)) from None
    if result is None:
        raise NotDone(f"{name_of(answer)} returns None (write its body, ending in return)")
    return result


def as_array(result, shape, what):
    """The answer as a float64 array of `shape`, or a Hint naming the shape it has."""
    try:
        array = np.asarray(result, dtype=np.float64)
    except (TypeError, ValueError):
        raise Hint(f"{what} should be a NumPy array, got {type(result).__name__}") from None
    if array.shape != tuple(shape):
        raise Hint(f"{what} has shape {array.shape}; it should have shape {tuple(shape)}")
    return array


def close(a, b, rtol=RTOL, atol=ATOL):
    """a and b equal to the checks' tolerance, nan where the other has nan."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))


def mistake_in(answer, mistakes, rtol=RTOL, atol=ATOL):
    """The hint of the first (hint, wrong answer) in `mistakes` that `answer` equals, or None."""
    return next((hint for hint, wrong in mistakes if close(answer, wrong, rtol, atol)), None)


def worst_row(answer, expected):
    """(row, largest |answer - expected| in it) of 2-D arrays; a nan difference is the largest."""
    difference = np.abs(answer - expected)
    ranked = np.nan_to_num(difference, nan=np.inf)
    row = int(np.argmax(ranked.max(axis=-1)))
    return row, float(difference[row, np.argmax(ranked[row])])


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
    """A Hint naming dW's worst row and the mistake that explains it, unless dW is `expected`;
    else the passed message."""
    if close(dW, expected, rtol=1e-5, atol=1e-7):  # finite differences are good to ~1e-8
        return f"your dW matches {reference} to {np.abs(dW - expected).max():.1g} in every entry"
    row, difference = worst_row(dW, expected)
    reads = int(np.count_nonzero(rows == row))
    hint = mistake_in(dW, mistakes) or "compare your formula with the derivation in the markdown"
    raise Hint(f"your dW row {label(row)}, read by {reads} position{'s' * (reads != 1)}, differs "
               f"from {reference} by {difference:.1g}: {hint}")
