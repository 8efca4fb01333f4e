"""BigramLanguageModel: bigram.py's model with its backward pass written out by hand.

A V x V table W. Token i reads row W[i] as the logits of the next token, exactly as
`nn.Embedding(vocab_size, vocab_size)` does in bigram.py.
"""

import math

import numpy as np

from .engine import DEFAULT_BACKEND, GRAD_METHODS, make_engine
from .sampling import InverseCdfSampler
from .utils.checks import (
    check_choice,
    check_count,
    check_dtype,
    check_finite_table,
    check_ids,
    check_int,
    check_positive,
    check_seed,
    describe_nonfinite,
    nonfinite_rows,
)

INITS = ("normal", "zeros")
INIT_DRAW_BYTES = 1 << 24  # the initial weights' float64 normal draws, made this many at a time


class NonFiniteLoss(ValueError):
    """A forward pass's loss is NaN or infinite; .loss holds it."""

    def __init__(self, message, loss):
        super().__init__(message)
        self.loss = loss


class BigramLanguageModel:
    """logits = W[idx]; loss = cross-entropy(logits, targets); grad = dL/dW by hand.

    init "normal": W ~ N(0,1) like nn.Embedding, so the first loss is near ln V + 1/2.
    init "zeros": every logit equal, so the first loss is exactly ln V.

    backend: the engine that computes (npbigram.engine): "numba" (default) fuses the loss and
    gradient into one compiled pass, "numpy" runs npbigram.ops layer by layer; the same numbers.
    grad: "gather-scatter" (default) adds each position's gradient into the row it read, in
    PyTorch's order; "pair-counts" computes the same gradient from the batch's pair counts (see
    npbigram.ops.counts_backward); "auto" is pair-counts (npbigram.engine.grad_rule), the
    Trainer's default.
    """

    def __init__(self, vocab_size, *, seed=None, dtype=np.float32, backend=DEFAULT_BACKEND,
                 init="normal", grad="gather-scatter"):
        vocab_size = check_int(vocab_size, "vocab_size")
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be at least 1, got {vocab_size}")
        check_choice(init, INITS, "init")
        dtype = check_dtype(dtype)
        # normal draws or zeros: finite, so not checked as an assigned table is
        self._setup(initial_weight(vocab_size, init, dtype, check_seed(seed)), backend, grad)

    @classmethod
    def from_weight(cls, weight, *, backend=DEFAULT_BACKEND, grad="gather-scatter"):
        """A model holding the table `weight` (V,V), float32 or float64, in its dtype (not
        copied when C-contiguous). A table holding a NaN or an infinity is refused."""
        weight = np.asarray(weight)
        if weight.ndim != 2 or weight.shape[0] != weight.shape[1] or weight.shape[0] < 1:
            raise ValueError(f"weight must be a square (V, V) table with V >= 1, got shape "
                             f"{weight.shape}")
        check_dtype(weight.dtype)
        model = cls.__new__(cls)
        model._setup(check_finite_table(np.ascontiguousarray(weight)), backend, grad)
        return model

    def _setup(self, weight, backend, grad):
        self._weight = weight
        self.vocab_size, self.dtype = weight.shape[0], weight.dtype
        self.engine = make_engine(backend)
        self.backend = backend
        self.grad_method = check_choice(grad, GRAD_METHODS, "grad method")
        self.grad = None  # dL/dW of the last forward with targets, set by backward()
        self._saved = None  # what backward() needs from the last forward with targets

    @property
    def weight(self):
        """W (V,V): row i holds the logits of the token after token i."""
        return self._weight

    @weight.setter
    def weight(self, value):
        """A table holding a NaN or an infinity is refused, naming its rows."""
        check_finite_table(np.asarray(value))
        self._weight = value

    def __call__(self, idx, targets=None, *, return_logits=True):
        return self.forward(idx, targets, return_logits=return_logits)

    def forward(self, idx, targets=None, *, return_logits=True):
        """model(idx, targets) = model.forward(idx, targets), as bigram.py's forward:

        idx (B,T) int token ids -> logits (B,T,C) and None;
        with targets (B,T) -> logits (B*T,C) and the mean cross-entropy loss (a float).
        Afterwards model.backward() returns dL/dW (V,C).

        return_logits=False (with targets) returns (None, loss): the engine then never writes
        the N x C logits, which a training step does not need.
        Rows of W that went non-finite (NaN or infinity) make a non-finite result: a ValueError
        naming them.
        """
        idx = check_ids(idx, self.vocab_size, "idx")
        if targets is not None:
            targets = check_ids(targets, self.vocab_size, "targets")
            if targets.shape != idx.shape:
                raise ValueError(f"targets shape {targets.shape} does not match idx shape "
                                 f"{idx.shape}")
            targets = targets.reshape(-1)  # (N,)
        self._saved = None
        logits, loss, self._saved = self.engine.forward(
            self.weight, idx.reshape(-1), targets, self.grad_method, return_logits)
        if not (np.isfinite(logits).all() if targets is None else math.isfinite(loss)):
            self._saved = None
            self._refuse_nonfinite(idx, "the logits" if targets is None else "the loss", loss)
        if targets is None:
            return logits.reshape(*idx.shape, self.vocab_size), None  # (B,T,C)
        return logits, loss  # (B*T,C) as bigram.py, or None

    __call__.__doc__ = forward.__doc__

    def backward(self):
        """dL/dW (V,C) of the last forward with targets, as a new array: the model never
        writes into an array it returned. Sets and returns self.grad."""
        if self._saved is None:
            raise RuntimeError("backward() needs a forward pass with targets first")
        self.grad = self.engine.backward(self._saved)
        return self.grad

    def generate(self, idx, max_new_tokens, *, seed=None, rng=None, temperature=1.0, top_k=None,
                 sampler=None):
        """Append `max_new_tokens` sampled tokens to idx (B,T) -> (B,T+max_new_tokens).

        A bigram's next token depends on the last token only, so each step reads one row of W
        per sequence: O(1) per new token, where bigram.py re-reads the whole growing context.
        sampler: how a token is drawn from its row of logits; the default InverseCdfSampler
        of `rng` (or default_rng(seed)), or MultinomialSampler to draw as torch.multinomial.
        """
        idx = check_ids(idx, self.vocab_size, "idx")
        max_new_tokens = check_count(max_new_tokens, "max_new_tokens")
        temperature = check_positive(temperature, "temperature")
        if top_k is not None:
            top_k = check_count(top_k, "top_k", minimum=1)
        if sampler is None:
            sampler = InverseCdfSampler(rng if rng is not None
                                        else np.random.default_rng(check_seed(seed)))
        out = np.empty((idx.shape[0], idx.shape[1] + max_new_tokens), dtype=idx.dtype)
        out[:, : idx.shape[1]] = idx
        for t in range(idx.shape[1], out.shape[1]):
            logits = self.weight[out[:, t - 1]]  # (B,C): the row of each sequence's last token
            if not np.isfinite(logits).all():
                self._refuse_nonfinite(out[:, t - 1], "the next token's probabilities")
            out[:, t] = sampler(logits, temperature, top_k)
        return out

    def _refuse_nonfinite(self, rows_read, result, loss=None):
        """ValueError: `result` is not finite, naming the rows of W read that are not;
        NonFiniteLoss when it is the loss `loss`."""
        rows = nonfinite_rows(self.weight, rows_read.reshape(-1))
        cause = (describe_nonfinite(self.weight, rows) if rows
                 else "the weights are too large to compute with")
        message = f"{result} {'are' if result.endswith('s') else 'is'} not finite: {cause}"
        raise ValueError(message) if loss is None else NonFiniteLoss(message, loss)


def initial_weight(vocab_size, init, dtype, seed=None):
    """The table before training: N(0,1) entries from default_rng(seed), or zeros.  (V,V)

    The normal entries are the float64 draws of standard_normal((V, V)) rounded to dtype,
    drawn INIT_DRAW_BYTES at a time (the same values), so a float32 table never needs its
    float64 double."""
    weight = np.zeros((vocab_size, vocab_size), dtype=dtype)
    if init == "normal":
        rng, rows = np.random.default_rng(seed), max(1, INIT_DRAW_BYTES // (8 * vocab_size))
        for first in range(0, vocab_size, rows):
            block = weight[first:first + rows]
            block[...] = rng.standard_normal(block.shape)
    return weight
