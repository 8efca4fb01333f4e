"""The best any bigram can do: the count-based table and its loss, the floor of training.

A bigram's loss depends on the text only through its pair counts C (V,V), C[i,j] = how often
j follows i, with n_i = sum_j C[i,j]. Grouping the positions by pair,

    L(W) = sum_ij C_ij (logsumexp(W_i) - W_ij) / N            ops.loss_from_counts
         = H + sum_i (n_i / N) KL(P_i || softmax(W_i))        cross-entropy = entropy + KL

with P_i = C_i / n_i the counted next-token distribution of token i and

    H = -sum_ij (C_ij / N) ln(C_ij / n_i)                     floor_loss

the conditional entropy of the next token given the current one. KL >= 0, with equality exactly
when softmax(W_i) = P_i, so H is the lowest loss any table W can reach, and the table
W_i = ln P_i (count_logits) reaches it. On unseen text the counted table gives unseen pairs
probability 0 (infinite loss); add-k smoothing (C + k) / (n + kV) fixes that (count_probs).
"""

import math
from dataclasses import dataclass

import numpy as np

from .. import ops
from ..data.corpus import split_pair_counts, train_val_split
from ..utils.checks import describe_nonfinite, nonfinite_rows

UNSEEN_LOGIT = -1e4  # stands in for ln 0 = -inf: exp(-1e4 - max) is exactly 0.0 in float32/64
DEFAULT_K = 1.0  # Laplace smoothing


def count_probs(counts, k=0.0):
    """P[i,j] = (C_ij + k) / (n_i + kV).   counts (V,V) -> (V,V) float64, rows summing to 1.

    k = 0 is the maximum-likelihood table C_ij / n_i; a row never seen (n_i = 0) is uniform,
    its limit as k -> 0.
    """
    if not (math.isfinite(k) and k >= 0):
        raise ValueError(f"the smoothing k must be a finite number >= 0, got {k}")
    counts = np.asarray(counts, dtype=np.float64)  # (V,V)
    vocab_size = counts.shape[-1]
    smoothed = counts + k
    row_totals = smoothed.sum(axis=-1, keepdims=True)  # (V,1): n_i + kV
    unseen_rows = row_totals[:, 0] == 0
    smoothed[unseen_rows] = 1.0
    row_totals[unseen_rows] = vocab_size
    return smoothed / row_totals


def count_logits(counts, k=0.0):
    """W = ln count_probs(counts, k): a weight table whose softmax is the counted table.  (V,V)

    Pairs of probability 0 get UNSEEN_LOGIT, a finite stand-in for -inf.
    """
    probs = count_probs(counts, k)
    logits = np.full(probs.shape, UNSEEN_LOGIT)
    np.log(probs, out=logits, where=probs > 0)
    return logits


def floor_loss(counts):
    """H = -sum_ij (C_ij/N) ln(C_ij/n_i): the loss of the counted table, lowest of any bigram."""
    return ops.loss_from_counts(count_logits(counts), counts)


@dataclass
class Optimum:
    """The floor on a text's train split and how the smoothed counted table does on val."""

    vocab_size: int
    train_pairs: int  # N: the train split's (current, next) pairs
    distinct_pairs: int  # pairs (i,j) with C_ij > 0, of V*V
    floor: float  # lowest train loss any bigram reaches: H(next | current) of the train pairs
    k: float  # add-k smoothing of the val estimate
    val_pairs: int
    val_pairs_unseen: int  # val pairs that never occur in train: probability 0 when k = 0
    smoothed_val_loss: float  # val loss of count_probs(train counts, k)

    def report(self):
        V = self.vocab_size
        lines = [
            f"train split: {self.train_pairs:,} pairs; {self.distinct_pairs:,} of the "
            f"{V}x{V} = {V * V:,} possible pairs occur",
            f"floor:   {self.floor:.4f} nats  the lowest train loss any bigram can reach: "
            f"H(next | current) of the train pairs",
            f"uniform: {np.log(V):.4f} nats  ln {V}, every token equally likely",
            f"val:     {self.smoothed_val_loss:.4f} nats  the train counts smoothed with "
            f"k={self.k:g}, (C_ij + k) / (n_i + kV)",
        ]
        if self.val_pairs_unseen:
            lines.append(f"         {self.val_pairs_unseen:,} of the {self.val_pairs:,} val pairs "
                         f"never occur in train: with k=0 they would have probability 0 and "
                         f"the val loss would be infinite")
        return "\n".join(lines)


def bigram_optimum(ids, vocab_size, k=DEFAULT_K):
    """The floor of bigram.py's train split of `ids` and the add-k counted table's val loss."""
    counts = counted_splits(*train_val_split(ids), vocab_size)
    return optimum_of_counts(counts["train"], counts["val"], k)


def counted_splits(train, val, vocab_size):
    """{'train': C, 'val': C} of splits that each hold a pair."""
    if len(train) < 2 or len(val) < 2:
        raise ValueError(f"{len(train) + len(val)} tokens are too few: the train and val splits "
                         f"each need at least two tokens to hold a pair")
    return split_pair_counts(train, val, vocab_size)


def optimum_of_counts(train_counts, val_counts, k=DEFAULT_K):
    """bigram_optimum from each split's pair counts (V,V)."""
    vocab_size = train_counts.shape[0]
    val_pairs_unseen = int(val_counts[train_counts == 0].sum())
    if k == 0 and val_pairs_unseen:
        smoothed_val_loss = math.inf  # some val pair has probability 0
    else:
        smoothed_val_loss = ops.loss_from_counts(count_logits(train_counts, k), val_counts)
    return Optimum(
        vocab_size=vocab_size,
        train_pairs=int(train_counts.sum()),
        distinct_pairs=int(np.count_nonzero(train_counts)),
        floor=floor_loss(train_counts),
        k=float(k),
        val_pairs=int(val_counts.sum()),
        val_pairs_unseen=val_pairs_unseen,
        smoothed_val_loss=smoothed_val_loss,
    )


def distance_from_floor(weight, counts):
    """'train loss L is D above the floor H': the exact train loss of W against the optimum.
    counts (V,V): the train split's pair counts."""
    loss, floor = ops.loss_from_counts(weight, counts), floor_loss(counts)
    pairs = f"exact train loss {loss:.4f} over all {int(counts.sum()):,} train pairs"
    if not math.isfinite(loss):
        rows = nonfinite_rows(weight)
        return f"{pairs}: " + (describe_nonfinite(weight, rows) if rows
                               else "the weights are too large to compute with")
    gap = loss - floor if loss > floor else 0.0  # rounding can put a table at the floor below it
    return (f"{pairs}: {gap:.4f} above the floor {floor:.4f} that no bigram can beat "
            f"(npbigram optimum)")
