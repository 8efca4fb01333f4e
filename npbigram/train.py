"""The training loop of bigram.py: sample a batch, forward, backward by hand, AdamW step.

Randomness is split so that an interrupted run resumes exactly: the weights come from
default_rng(seed), training batches from default_rng((seed, 1)) whose state the checkpoint
keeps, and each evaluation at step s from its own default_rng((seed, 2, s)).
"""

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from . import ops
from .data import check_positive, get_batch, train_val_split
from .model import DEFAULT_BACKEND, INITS, BigramLanguageModel, check_backend, check_dtype
from .optim import OPTIMIZERS, make_optimizer

EVAL_MODES = ("estimate", "exact")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainConfig:
    """bigram.py's hyperparameters are the defaults."""

    batch_size: int = 32
    block_size: int = 8
    max_iters: int = 3000
    eval_interval: int = 300
    eval_iters: int = 200
    lr: float = 1e-2
    optimizer: str = "adamw"
    init: str = "normal"
    seed: int = 1337
    dtype: str = "float32"
    backend: str = DEFAULT_BACKEND
    eval: str = "estimate"

    def __post_init__(self):
        for name in ("batch_size", "block_size", "eval_interval", "eval_iters"):
            if _int(getattr(self, name), name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if _int(self.max_iters, "max_iters") < 0:
            raise ValueError(f"max_iters must be >= 0, got {self.max_iters}")
        _int(self.seed, "seed")
        check_positive(self.lr, "learning rate")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}")
        if self.init not in INITS:
            raise ValueError(f"unknown init {self.init!r}")
        if self.eval not in EVAL_MODES:
            raise ValueError(f"unknown eval mode {self.eval!r}: choose estimate or exact")
        check_dtype(self.dtype)
        check_backend(self.backend)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


class Trainer:
    """Holds the model, optimizer, splits and batch generator; runs steps and evaluations."""

    def __init__(self, config, data, vocab_size):
        self.config = config
        self.vocab_size = vocab_size
        self.train_data, self.val_data = train_val_split(data)
        for name, split in (("train", self.train_data), ("val", self.val_data)):
            if len(split) < config.block_size + 1:
                raise ValueError(
                    f"the {name} split has {len(split)} tokens, fewer than block_size + 1 = "
                    f"{config.block_size + 1}: use a longer text or a smaller --block-size"
                )
        self.model = BigramLanguageModel(vocab_size, seed=config.seed, dtype=config.dtype,
                                         backend=config.backend, init=config.init)
        self.optimizer = make_optimizer(config.optimizer, self.model, config.lr)
        self.rng = np.random.default_rng((config.seed, 1))  # training batches
        self.step = 0  # training steps completed
        self._counts = None  # pair counts of each split, for exact evaluation

    def restore(self, checkpoint):
        """Continue from a checkpoint written by this trainer's configuration."""
        if checkpoint.model.weight.shape != self.model.weight.shape:
            raise ValueError(f"checkpoint vocabulary {checkpoint.model.vocab_size} does not match "
                             f"the data's {self.vocab_size}")
        self.model.weight = checkpoint.model.weight.astype(self.model.dtype)
        if checkpoint.optimizer_state is not None:
            if checkpoint.optimizer_state.get("kind") != self.optimizer.kind:
                raise ValueError(f"checkpoint optimizer {checkpoint.optimizer_state.get('kind')!r} "
                                 f"does not match {self.optimizer.kind!r}")
            self.optimizer.load_state_dict(checkpoint.optimizer_state)
        if checkpoint.rng_state is not None:
            self.rng.bit_generator.state = checkpoint.rng_state
        self.step = checkpoint.step

    def train_step(self):
        """One step of bigram.py's loop; returns the batch loss."""
        cfg = self.config
        xb, yb = get_batch(self.train_data, cfg.block_size, cfg.batch_size, self.rng)
        _, loss = self.model(xb, yb)
        if not math.isfinite(loss):
            raise TrainingDiverged(f"the loss became {loss} at step {self.step}")
        self.model.backward()
        self.optimizer.step()
        self.step += 1
        return loss

    def evaluate(self):
        """{'train': loss, 'val': loss}: the mean of eval_iters batch losses, or exact."""
        if self.config.eval == "exact":
            return self.exact_losses()
        cfg = self.config
        rng = np.random.default_rng((cfg.seed, 2, self.step))
        losses = {}
        for name, split in (("train", self.train_data), ("val", self.val_data)):
            batch_losses = [self.model(*get_batch(split, cfg.block_size, cfg.batch_size, rng))[1]
                            for _ in range(cfg.eval_iters)]
            losses[name] = float(np.mean(batch_losses))
        return losses

    def exact_losses(self):
        """The mean loss over every pair of each whole split, in O(V^2) from its pair counts."""
        if self._counts is None:
            self._counts = {name: ops.pair_counts(split, self.vocab_size)
                            for name, split in (("train", self.train_data),
                                                ("val", self.val_data))}
        return {name: ops.loss_from_counts(self.model.weight, counts)
                for name, counts in self._counts.items()}

    def checkpoint_kwargs(self, tokenizer):
        return dict(tokenizer=tokenizer, optimizer=self.optimizer, config=self.config.to_dict(),
                    step=self.step, rng=self.rng)


def format_eval(step, losses):
    """bigram.py's line: 'step 300: train loss 2.5000, val loss 2.5100'."""
    return f"step {step}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}"


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False


def _int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value
