"""Optimizers that update model.weight in place from model.grad, step for step as torch.optim.
OPTIMIZERS is the registry the CLI and checkpoints read; each optimizer is one module here plus
its compiled twin in npbigram/engine/kernels.py (update_row)."""

from .adamw import AdamW
from .base import Optimizer
from .sgd import SGD

OPTIMIZERS = {"adamw": AdamW, "sgd": SGD}

__all__ = ["OPTIMIZERS", "AdamW", "Optimizer", "SGD", "make_optimizer"]


def make_optimizer(kind, model, **hyperparameters):
    """OPTIMIZERS[kind](model, **hyperparameters)."""
    if kind not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {kind!r}: choose one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[kind](model, **hyperparameters)
