"""BigramLanguageModel: bigram.py's model with its backward pass written out by hand.

A V x V table W. Token i reads row W[i] as the logits of the next token, exactly as
`nn.Embedding(vocab_size, vocab_size)` does in bigram.py.
"""

import numpy as np

from . import ops
from .data import check_ids, check_positive

BACKENDS = ("numpy", "numba")
DEFAULT_BACKEND = "numba"
INITS = ("normal", "zeros")
GRAD_METHODS = ("gather-scatter", "pair-counts")


def check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def check_backend(backend):
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    return backend


class BigramLanguageModel:
    """logits = W[idx]; loss = cross-entropy(logits, targets); grad = dL/dW by hand.

    init "normal": W ~ N(0,1) like nn.Embedding, so the first loss is near ln V + 1/2.
    init "zeros": every logit equal, so the first loss is exactly ln V.

    backend "numba": forward with targets computes loss and gradient in one fused kernel
    (npbigram.kernels) and backward() hands the gradient back; "numpy": ops.py, layer by layer.
    grad "gather-scatter": dW[x_n] += (softmax(W[x_n]) - onehot(y_n)) / N per position;
    "pair-counts": the same gradient from the batch's pair counts C and row totals n,
    dW_i = (n_i softmax(W_i) - C_i) / N, in O(N + U V) for U distinct inputs instead of O(N V).
    """

    def __init__(self, vocab_size, *, seed=None, dtype=np.float32, backend=DEFAULT_BACKEND,
                 init="normal", grad="gather-scatter"):
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)):
            raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__}")
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be at least 1, got {vocab_size}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")
        self.vocab_size = int(vocab_size)
        self.dtype = check_dtype(dtype)
        self.backend = check_backend(backend)
        self.grad_method = check_grad_method(grad)  # how backward() computes self.grad
        shape = (self.vocab_size, self.vocab_size)
        if init == "normal":
            self.weight = np.random.default_rng(seed).standard_normal(shape).astype(self.dtype)
        else:
            self.weight = np.zeros(shape, dtype=self.dtype)
        self.grad = None  # dL/dW of the last forward with targets, set by backward()
        self._saved = None  # what backward() needs from the last forward
        self._spare_grad = None  # numba: the array the next forward's gradient goes into

    # ------------------------------------------------------------------------------------------
    def __call__(self, idx, targets=None, *, return_logits=True):
        return self.forward(idx, targets, return_logits=return_logits)

    def forward(self, idx, targets=None, *, return_logits=True):
        """idx (B,T) -> logits (B,T,C) and None; with targets (B,T): logits (B*T,C) and the loss.

        return_logits=False (with targets) returns (None, loss): a training step needs only
        the loss and the gradient, and on the numba backend then never writes the N x C logits,
        which at large batches cost more time and memory than the whole step.
        """
        idx = check_ids(idx, self.vocab_size, "idx")
        if targets is not None:
            targets = check_ids(targets, self.vocab_size, "targets")
            if targets.shape != idx.shape:
                raise ValueError(f"targets shape {targets.shape} does not match idx shape "
                                 f"{idx.shape}")
        if self.backend == "numba":
            return self._forward_numba(idx, targets, return_logits or targets is None)
        logits = ops.embedding_forward(self.weight, idx)  # (B,T,C)
        if targets is None:
            self._saved = None
            return logits, None
        B, T, C = logits.shape
        logits = logits.reshape(B * T, C)  # (N,C), as bigram.py
        targets = targets.reshape(B * T)  # (N,)
        loss, probs = ops.cross_entropy_forward(logits, targets)
        self._saved = (idx, targets, probs)
        return (logits if return_logits else None), float(loss)

    def _forward_numba(self, idx, targets, return_logits):
        """The same contract from the fused kernels: logits gathered into a fresh array, and with
        targets the loss and gradient in one pass (saved for backward) that never builds the
        (N,C) probabilities. Ids are already checked: the kernels do no bounds checks."""
        kernels = numba_engine()
        x = idx.reshape(-1)  # (N,)
        logits = None
        if return_logits:
            logits = np.empty((x.size, self.vocab_size), dtype=self.dtype)  # (N,C)
            kernels.gather_rows(self.weight, x, logits)
        if targets is None:
            self._saved = None
            return logits.reshape(*idx.shape, self.vocab_size), None
        # the gradient goes into a spare array, not into self.grad: backward() swaps them, so
        # self.grad only changes when backward() is called (and no step allocates V x C anew)
        grad = self._spare_grad
        if grad is None or grad.shape != self.weight.shape or grad.dtype != self.weight.dtype:
            grad = np.empty_like(self.weight)  # (V,C)
        pair_counts = self.grad_method == "pair-counts"
        kernel = kernels.grad_kernel(pair_counts, x.size, self.vocab_size)
        loss = kernel(self.weight, x, targets.reshape(-1), grad, np.empty(self.vocab_size),
                      kernels.counts_scratch(pair_counts, self.vocab_size))
        self._saved = grad
        self._spare_grad = None
        return logits, loss

    def backward(self):
        """dL/dW of the last forward with targets: (V,C). Overwrites and returns self.grad."""
        if self._saved is None:
            raise RuntimeError("backward() needs a forward pass with targets first")
        if self.backend == "numba":  # computed with the loss by the fused kernel
            if self.grad is not self._saved:
                self.grad, self._spare_grad = self._saved, self.grad
            return self.grad
        idx, targets, probs = self._saved
        if self.grad_method == "pair-counts":
            self.grad = pair_counts_backward(probs, idx.reshape(-1), targets)
            return self.grad
        dlogits = ops.cross_entropy_backward(probs, targets)  # (N,C)
        self.grad = ops.embedding_backward(dlogits, idx, self.vocab_size)  # (V,C)
        return self.grad

    # ------------------------------------------------------------------------------------------
    def generate(self, idx, max_new_tokens, *, seed=None, rng=None, temperature=1.0, top_k=None):
        """Append `max_new_tokens` sampled tokens to idx (B,T) -> (B,T+max_new_tokens).

        A bigram's next token depends on the last token only, so each step reads one row of W
        per sequence: O(1) per new token, where bigram.py re-reads the whole growing context.
        """
        idx = check_ids(idx, self.vocab_size, "idx")
        max_new_tokens = _check_count(max_new_tokens, "max_new_tokens")
        temperature = check_positive(temperature, "temperature")
        if top_k is not None:
            top_k = _check_count(top_k, "top_k")
            if top_k < 1:
                raise ValueError(f"top_k must be at least 1, got {top_k}")
        rng = rng if rng is not None else np.random.default_rng(seed)
        out = np.empty((idx.shape[0], idx.shape[1] + max_new_tokens), dtype=idx.dtype)
        out[:, : idx.shape[1]] = idx
        for t in range(idx.shape[1], out.shape[1]):
            logits = self.weight[out[:, t - 1]]  # (B,C): the row of each sequence's last token
            probs = next_token_probs(logits, temperature, top_k)
            out[:, t] = sample_from(probs, rng)
        return out

    # ------------------------------------------------------------------------------------------
    def save(self, path, **extra):
        """Write a checkpoint (see npbigram.checkpoint.save_checkpoint for `extra`)."""
        from .checkpoint import save_checkpoint

        save_checkpoint(path, self, **extra)

    @classmethod
    def load(cls, path, backend=DEFAULT_BACKEND):
        """Read the model from a checkpoint written by save()."""
        from .checkpoint import load_checkpoint

        return load_checkpoint(path, backend=backend).model


def next_token_probs(logits, temperature=1.0, top_k=None):
    """softmax(logits / temperature) over the top_k largest logits (others get 0).  (B,C)->(B,C)"""
    logits = logits.astype(np.float64)
    # subtract the row max before dividing: a tiny temperature then sends the other logits
    # to -inf (probability 0) instead of the max to +inf (inf - inf = NaN)
    with np.errstate(over="ignore"):
        logits = (logits - logits.max(axis=-1, keepdims=True)) / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = np.partition(logits, -top_k, axis=-1)[:, -top_k][:, None]
        logits = np.where(logits < kth, -np.inf, logits)
    return ops.softmax(logits)


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


def pair_counts_backward(probs, inputs, targets):
    """The batch's gradient from its pair counts C[i,j] = #{n: (x_n, y_n) = (i, j)}: every
    position reading row i has the same softmax, so ops.embedding_backward's per-position sum
    collapses to one term per row.   probs (N,C) of forward, inputs and targets (N,)"""
    vocab_size = probs.shape[1]
    row_probs = np.zeros((vocab_size, vocab_size), dtype=probs.dtype)
    row_probs[inputs] = probs  # softmax(W_i) for each row that occurs
    return ops.counts_backward(row_probs, ops.count_pairs(inputs, targets, vocab_size))


def check_grad_method(grad_method):
    if grad_method not in GRAD_METHODS:
        raise ValueError(f"unknown grad method {grad_method!r}: choose one of "
                         f"{', '.join(GRAD_METHODS)}")
    return grad_method


def numba_engine():
    """The numba engine, imported on first use: `import npbigram` does not load numba."""
    from . import kernels

    return kernels


def _check_count(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)
