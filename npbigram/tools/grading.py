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
