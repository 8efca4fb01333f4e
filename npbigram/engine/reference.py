"""The NumPy engine: the model's math layer by layer, as npbigram.ops writes it, and training
as the README's loop (get_batch, model(x, y), model.backward(), opt.step(), the optimizer's
formula in NumPy). The reference every compiled kernel is tested against."""

import math

import numpy as np

from .. import ops
from ..data.corpus import get_batch, windows
from ..model import NonFiniteLoss
from . import grad_rule


class NumpyEngine:
    name = "numpy"

    def steps_per_call(self, n_positions, vocab_size, grad_method):
        return 1

    def batches_per_call(self, n_positions, vocab_size):
        return 1

    def batch_bytes(self, n_positions, vocab_size, itemsize, grad_method):
        """Windows (int64), and (N,C) logits, shifted logits, exps, log-probabilities,
        probabilities and dlogits alive together, at most; pair counts add (V,V) tables. A
        batch's loss alone (grad_method None) needs no dlogits."""
        tables = 6 if grad_method is not None else 5
        counts = ((itemsize + 8) * vocab_size ** 2 if grad_method is not None
                  and grad_rule(grad_method) == "pair-counts" else 0)
        return 4 * 8 * n_positions + tables * itemsize * n_positions * vocab_size + counts

    def warm_up(self, model, optimizer, data, batch_size, block_size, grad_method, full_batch):
        return 0  # nothing to compile

    def forward(self, weight, x, y, grad_method, return_logits):
        """x, y (N,) -> logits (N,C) (or None), the mean loss, and what backward needs."""
        logits = ops.embedding_forward(weight, x)  # (N,C)
        if y is None:
            return logits, None, None
        loss, probs = ops.cross_entropy_forward(logits, y)
        return (logits if return_logits else None), float(loss), (grad_method, x, y, probs)

    def backward(self, saved):
        """dL/dW: per position (embedding_backward of the loss's dlogits), or per row from the
        batch's pair counts (counts_backward); the same numbers."""
        grad_method, x, y, probs = saved
        vocab_size = probs.shape[1]
        if grad_rule(grad_method) == "pair-counts":
            row_probs = np.zeros((vocab_size, vocab_size), dtype=probs.dtype)
            row_probs[x] = probs  # softmax(W_i) for each row that occurs
            return ops.counts_backward(row_probs, ops.count_pairs(x, y, vocab_size))
        dlogits = ops.cross_entropy_backward(probs, y)  # (N,C)
        return ops.embedding_backward(dlogits, x, vocab_size)  # (V,C)

    compiled_update = None  # Optimizer.step runs its NumPy formula

    def run_steps(self, model, optimizer, data, batch_size, block_size, rng, losses):
        """The README's training loop, step after step; losses[s] is step s's batch loss.
        Stops before the update of a step whose loss is not finite; returns the steps done."""
        for s in range(len(losses)):
            xb, yb = get_batch(data, block_size, batch_size, rng)
            try:
                _, losses[s] = model(xb, yb, return_logits=False)
            except NonFiniteLoss as diverged:
                losses[s] = diverged.loss
                return s
            model.backward()
            optimizer.step()
        return len(losses)

    def full_batch_steps(self, model, optimizer, counts, losses):
        """Steps on the exact gradient of the split whose pair counts are `counts`."""
        for s in range(len(losses)):
            losses[s] = ops.loss_from_counts(model.weight, counts)
            if not math.isfinite(losses[s]):
                return s
            model.grad = ops.counts_backward(ops.softmax(model.weight), counts)
            optimizer.step()
        return len(losses)

    def batch_losses(self, weight, data, starts, block_size):
        losses = np.empty(len(starts))
        for s in range(len(starts)):
            x, y = windows(data, starts[s], block_size)
            logits = ops.embedding_forward(weight, x.reshape(-1))
            losses[s] = ops.cross_entropy_forward(logits, y.reshape(-1))[0]
        return losses

    exact_loss = staticmethod(ops.loss_from_counts)
