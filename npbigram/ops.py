"""The model's math in plain NumPy: each layer a forward/backward pair, read top to bottom.

Shapes as in the lecture: B batch, T time (block), C channels (= V, the vocabulary size),
N = B*T positions. This is the reference every faster kernel is tested against.

    logits = W[idx]                                  embedding_forward    (B,T) -> (B,T,C)
    loss   = mean_n( logsumexp(logits_n) - logits_n[y_n] )   cross_entropy_forward
    dlogits = (softmax(logits) - onehot(y)) / N      cross_entropy_backward
    dW[i]  = sum of dlogits_n over positions n with idx_n == i   embedding_backward
           = (n_i softmax(W_i) - C_i) / N, C the (input, target) pair counts   counts_backward
"""

import numpy as np


def embedding_forward(weight, idx):
    """logits[b,t,:] = W[idx[b,t], :] -- a row lookup.   W (V,C), idx (B,T) -> (B,T,C)"""
    return weight[idx]


def embedding_backward(dlogits, idx, vocab_size):
    """dW[i,:] = sum over positions n with idx_n == i of dlogits[n,:].   -> (V,C)

    Each position read one row of W, so its gradient flows back into that row only. A row read
    by several positions (repeated ids) receives the sum of their gradients: a scatter-add.
    """
    channels = dlogits.shape[-1]
    dweight = np.zeros((vocab_size, channels), dtype=dlogits.dtype)  # (V,C)
    np.add.at(dweight, idx.reshape(-1), dlogits.reshape(-1, channels))
    return dweight


def log_softmax(logits):
    """log p = logits - logsumexp(logits), the row max subtracted first: exp never overflows."""
    row_max = logits.max(axis=-1, keepdims=True)  # (N,1)
    shifted = logits - row_max  # (N,C), every entry <= 0
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits):
    """p = exp(logits - max) / sum(exp(logits - max)) along the last axis."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def cross_entropy_forward(logits, targets):
    """loss = mean_n -log p_n[y_n], p = softmax(logits_n).   logits (N,C), targets (N,)

    Returns the loss and the probabilities (N,C) that the backward pass needs.
    """
    logp = log_softmax(logits)  # (N,C)
    loss = -logp[np.arange(len(targets)), targets].mean()
    return loss, np.exp(logp)


def cross_entropy_backward(probs, targets):
    """dL/dlogits = (p - onehot(y)) / N.   probs (N,C), targets (N,) -> (N,C)"""
    n = len(targets)
    dlogits = probs.copy()
    dlogits[np.arange(n), targets] -= 1.0
    dlogits /= n
    return dlogits


def count_pairs(inputs, targets, vocab_size):
    """C[i,j] = how many positions n have (x_n, y_n) = (i, j).   (N,), (N,) -> (V,V) int64"""
    return np.bincount(inputs * vocab_size + targets,
                       minlength=vocab_size * vocab_size).reshape(vocab_size, vocab_size)


def counts_backward(row_probs, counts):
    """The pair-count gradient of the module docstring, n_i = sum_j C_ij and N = sum C: the
    scatter-add of embedding_backward grouped by (input, target) pair.
    row_probs (V,C): softmax(W_i) (any finite value where n_i = 0); counts (V,V)"""
    n_rows = counts.sum(axis=1, keepdims=True)  # (V,1)
    return ((n_rows * row_probs - counts) / counts.sum()).astype(row_probs.dtype)


def loss_from_counts(weight, counts):
    """Exact mean loss over every pair: sum_ij C_ij (logsumexp(W_i) - W_ij) / sum C, in float64.

    The loss of a bigram table depends on the data only through its pair counts, so a whole
    split costs O(V^2) once its counts are known.
    """
    weight = weight.astype(np.float64)
    logp = log_softmax(weight)  # (V,V)
    return float(-(counts * logp).sum() / counts.sum()) + 0.0  # never -0.0: it is >= 0
