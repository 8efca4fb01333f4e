"""Sampling the next token from a row of logits: temperature, top-k, and two draws (NumPy's
inverse CDF, the default, and torch.multinomial's, as bigram.py draws).

A sampler is called as sampler(logits (B,C), temperature, top_k) -> token ids (B,).
"""

import numpy as np

from . import ops


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
    npbigram.randomness.torch_rng.TorchGenerator)."""

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
