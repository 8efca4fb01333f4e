"""Helpers shared by the test modules."""

import numpy as np

from npbigram import BigramLanguageModel


def model_with_weight(weight, backend="numpy"):
    """A BigramLanguageModel holding a copy of `weight` (V,V) in weight's dtype."""
    model = BigramLanguageModel(weight.shape[0], dtype=weight.dtype, backend=backend, init="zeros")
    model.weight = np.array(weight)
    return model


def random_weight(vocab_size, dtype, seed, scale=1.0):
    """A (V,V) table of N(0, scale^2) entries."""
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal((vocab_size, vocab_size))).astype(dtype)
