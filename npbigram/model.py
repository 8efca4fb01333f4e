"""BigramLanguageModel: bigram.py's model with its backward pass written out by hand, and its
checkpoints.

A V x V table W. Token i reads row W[i] as the logits of the next token, exactly as
`nn.Embedding(vocab_size, vocab_size)` does in bigram.py.
"""

from dataclasses import dataclass, field

import numpy as np

from . import ops
from .checkpoint import read_checkpoint, write_checkpoint
from .checks import (check_choice, check_count, check_dtype, check_finite_table, check_ids,
                     check_int, check_non_negative, check_positive, check_seed,
                     describe_nonfinite, nonfinite_rows)
from .engine import DEFAULT_BACKEND, GRAD_METHODS, make_engine
from .limits import check_memory
from .tokenizers import tokenizer_from_json

INITS = ("normal", "zeros")
INIT_DRAW_BYTES = 1 << 24  # the initial weights' float64 normal draws, made this many at a time


class BigramLanguageModel:
    """logits = W[idx]; loss = cross-entropy(logits, targets); grad = dL/dW by hand.

    init "normal": W ~ N(0,1) like nn.Embedding, so the first loss is near ln V + 1/2.
    init "zeros": every logit equal, so the first loss is exactly ln V.

    backend: the engine that computes (npbigram.engine): "numba" (default) fuses the loss and
    gradient into one compiled pass, "numpy" runs npbigram.ops layer by layer; the same numbers.
    grad: "gather-scatter" adds each position's gradient into the row it read; "pair-counts"
    computes the same gradient from the batch's pair counts (see npbigram.ops.counts_backward).
    """

    def __init__(self, vocab_size, *, seed=None, dtype=np.float32, backend=DEFAULT_BACKEND,
                 init="normal", grad="gather-scatter"):
        vocab_size = check_int(vocab_size, "vocab_size")
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be at least 1, got {vocab_size}")
        check_choice(init, INITS, "init")
        self.vocab_size = vocab_size
        self.dtype = check_dtype(dtype)
        self.engine = make_engine(backend)
        self.backend = backend
        self.grad_method = check_choice(grad, GRAD_METHODS, "grad method")
        check_memory("the model", [(f"its {vocab_size:,}x{vocab_size:,} {self.dtype.name} weights",
                                    self.dtype.itemsize * vocab_size ** 2 + INIT_DRAW_BYTES,
                                    "use a smaller vocab_size")])
        # normal draws or zeros: finite, so not checked as an assigned table is
        self._weight = initial_weight(vocab_size, init, self.dtype, check_seed(seed))
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

        return_logits=False (with targets) returns (None, loss): a training step needs only
        the loss and the gradient, and the numba engine then never writes the N x C logits,
        which at large batches cost more time and memory than the whole step.
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
        if not (np.isfinite(logits).all() if targets is None else np.isfinite(loss)):
            self._saved = None
            self._refuse_nonfinite(idx, "the loss" if targets is not None else "the logits")
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

    def _refuse_nonfinite(self, rows_read, result):
        """ValueError: `result` is not finite, naming the rows of W read that are not."""
        rows = nonfinite_rows(self.weight, rows_read.reshape(-1))
        cause = (describe_nonfinite(self.weight, rows) if rows
                 else "the weights are too large to compute with")
        raise ValueError(f"{result} {'are' if result.endswith('s') else 'is'} not finite: "
                         f"{cause}")

    def save(self, path, **extra):
        """Write a checkpoint (see save_checkpoint for `extra`)."""
        save_checkpoint(path, self, **extra)

    @classmethod
    def load(cls, path, backend=DEFAULT_BACKEND):
        """Read the model from a checkpoint written by save()."""
        return load_checkpoint(path, backend=backend).model


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


def next_token_probs(logits, temperature=1.0, top_k=None):
    """softmax(logits / temperature) over the top_k largest logits (others get 0).  (B,C)->(B,C)"""
    logits = logits.astype(np.float64)
    # subtract the row max before dividing: a tiny temperature then sends the other logits
    # to -inf (probability 0) instead of the max to +inf (inf - inf = NaN)
    with np.errstate(over="ignore"):
        logits = (logits - logits.max(axis=-1, keepdims=True)) / temperature
    return ops.softmax(keep_top_k(logits, top_k))


def keep_top_k(logits, top_k):
    """The logits with all but each row's top_k largest set to -inf (ties at the k-th kept)."""
    if top_k is None or top_k >= logits.shape[-1]:
        return logits
    kth = np.partition(logits, -top_k, axis=-1)[:, -top_k][:, None]  # (B,1)
    return np.where(logits < kth, -np.inf, logits)


class InverseCdfSampler:
    """NumPy's draw (the default): float64 probabilities, one uniform per row (sample_from)."""

    def __init__(self, rng):
        self.rng = rng

    def __call__(self, logits, temperature=1.0, top_k=None):
        """logits (B,C) -> one token id per row (B,)."""
        return sample_from(next_token_probs(logits, temperature, top_k), self.rng)


class MultinomialSampler:
    """PyTorch's draw, as bigram.py (and nanoGPT's sample.py, for temperature and top_k) makes
    it: probs = F.softmax(logits / temperature) in the logits' dtype, the logits below the
    k-th largest set to -inf first, then torch.multinomial(probs, 1) from `generator` (an
    npbigram.torch_rng.TorchGenerator)."""

    def __init__(self, generator):
        self.generator = generator

    def __call__(self, logits, temperature=1.0, top_k=None):
        """logits (B,C) -> one token id per row (B,)."""
        logits = keep_top_k(logits / logits.dtype.type(temperature), top_k)
        return self.generator.multinomial(ops.softmax(logits), num_samples=1)[:, 0]


def sample_from(probs, rng):
    """One draw per row from a categorical distribution, by inverse CDF of one uniform each.

    Token k is chosen when cdf[k-1] <= u * total < cdf[k], so a zero-probability token is never
    chosen, and the same uniforms always give the same tokens.
    """
    cdf = np.cumsum(probs, axis=-1)  # (B,C)
    u = rng.random(len(probs))[:, None] * cdf[:, -1:]  # (B,1)
    choice = (cdf <= u).sum(axis=-1)
    # u * total can round up to total: fall back to the last token with nonzero probability
    last_nonzero = probs.shape[-1] - 1 - np.argmax(probs[:, ::-1] > 0, axis=-1)
    return np.minimum(choice, last_nonzero)


# ----------------------------------------------------------------------------------------------
# checkpoints: arrays `weight` (V,V) and `opt_<name>` for each optimizer state array; meta
# vocab_size, dtype, tokenizer, the training config, step, the batch generator's state, the
# optimizer's kind, step count and hyperparameters, and the run's data, evaluations and time.
# Keys added later are optional when reading (older checkpoints lack them).


@dataclass
class Checkpoint:
    model: BigramLanguageModel
    tokenizer: object = None  # a tokenizer of npbigram.tokenizers, or None
    optimizer_state: dict = None  # for optimizer.load_state_dict, or None
    config: dict = field(default_factory=dict)  # training configuration
    step: int = 0  # training steps completed
    rng_state: dict = None  # the batch generator's state (npbigram.streams), or None
    data: dict = None  # the data trained on: {"path", "size", "sha256"} (npbigram.provenance)
    # the evaluations, in step order: [{"step", "train", "val", "elapsed"}, ...]
    history: list = field(default_factory=list)
    elapsed: float = 0.0  # seconds the run had trained and evaluated when this was saved


def save_checkpoint(path, model, *, tokenizer=None, optimizer=None, config=None, step=0,
                    rng_state=None, data=None, history=(), elapsed=0.0):
    """Write model (and optionally tokenizer, optimizer, config, step, the batch generator's
    state as a JSON-serialisable dict, and the run's data, evaluation history and elapsed
    seconds) to `path`."""
    arrays = {"weight": model.weight}
    optimizer_meta = None
    if optimizer is not None:
        optimizer_meta = {}
        for name, value in optimizer.state_dict().items():
            if isinstance(value, np.ndarray):
                arrays[f"opt_{name}"] = value
            else:
                optimizer_meta[name] = value
    write_checkpoint(path, arrays, {
        "vocab_size": model.vocab_size,
        "dtype": model.dtype.name,
        "tokenizer": tokenizer.to_json() if tokenizer is not None else None,
        "config": config or {},
        "step": int(step),
        "rng_state": rng_state,
        "optimizer": optimizer_meta,
        "data": data,
        "history": [dict(evaluation) for evaluation in history],
        "elapsed": float(elapsed),
    })


def check_history(history, step):
    """A checkpoint's evaluations: dicts of step, train, val (and elapsed), their steps rising
    within [0, step]."""
    history, previous = [dict(evaluation) for evaluation in history], -1
    for evaluation in history:
        at = check_count(evaluation["step"], "an evaluation's step")
        if not previous < at <= step:
            raise ValueError(f"the history's evaluation at step {at} is out of order (after "
                             f"step {previous}, at most step {step})")
        for name in ("train", "val"):
            check_non_negative(evaluation[name], f"the {name} loss at step {at}")
        previous = at
    return history


def load_checkpoint(path, backend=DEFAULT_BACKEND):
    """Read a checkpoint; a missing file raises FileNotFoundError, a truncated, corrupt or
    foreign one, one whose meta does not hold together (a negative step) or whose weights are
    not finite, ValueError."""
    arrays, meta = read_checkpoint(path)
    try:
        weight = arrays["weight"]
        vocab_size = int(meta["vocab_size"])
        dtype = check_dtype(meta["dtype"])
        if weight.shape != (vocab_size, vocab_size) or weight.dtype != dtype:
            raise ValueError(f"weight is {weight.dtype} {weight.shape}, "
                             f"expected {dtype} ({vocab_size}, {vocab_size})")
        tokenizer = tokenizer_from_json(meta["tokenizer"]) if meta["tokenizer"] else None
        if tokenizer is not None and tokenizer.vocab_size != vocab_size:
            raise ValueError(f"tokenizer has {tokenizer.vocab_size} tokens, weight {vocab_size}")
        optimizer_state = meta["optimizer"]
        if optimizer_state is not None:
            optimizer_state = {**optimizer_state, **{
                name[len("opt_"):]: array for name, array in arrays.items()
                if name.startswith("opt_")}}
        config, rng_state, data = dict(meta["config"]), meta["rng_state"], meta.get("data")
        step = check_count(meta["step"], "step")
        elapsed = check_non_negative(meta.get("elapsed", 0.0), "elapsed")
        history = check_history(meta.get("history", []), step)
        model = BigramLanguageModel(vocab_size, dtype=dtype, backend=backend, init="zeros")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path} is not a valid npbigram checkpoint: {e}") from None
    try:
        model.weight = np.ascontiguousarray(weight)  # refused, naming its rows, if not finite
        for name, table in (optimizer_state or {}).items():
            tabular = isinstance(table, np.ndarray) and table.ndim == 2
            rows = nonfinite_rows(table) if tabular else []
            if rows:
                raise ValueError(describe_nonfinite(table, rows, f"the optimizer's {name} holds"))
    except ValueError as e:
        raise ValueError(f"{path}: {e}: the checkpoint is damaged") from None
    return Checkpoint(model=model, tokenizer=tokenizer, optimizer_state=optimizer_state,
                      config=config, step=step, rng_state=rng_state, data=data, history=history,
                      elapsed=elapsed)
