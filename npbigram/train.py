"""The training loop of bigram.py: sample a batch, forward, backward by hand, AdamW step.

Randomness is split so that an interrupted run resumes exactly: the weights come from
default_rng(seed), training batches from default_rng((seed, 1)) whose state the checkpoint
keeps, and each evaluation at step s from its own default_rng((seed, 2, s)).

On the numba backend, train_steps(k) runs k steps through kernels.train_loop (one compiled
call at the sizes where a step takes microseconds) on the very batches the step-by-step loop
would draw: their start indices come from the same generator, one rng.integers call per step
as get_batch makes. Steps are deterministic for any thread count, so chunking, interrupting and
resuming never change the result.

full_batch: every step uses the exact gradient of the whole train split, from its pair counts
(computed once): dW_i = (n_i softmax(W_i) - C_i) / N, O(V^2) per step whatever the split's size.
"""

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from . import ops
from .data import check_ids, check_positive, get_batch, train_val_split
from .model import (DEFAULT_BACKEND, GRAD_METHODS, INITS, BigramLanguageModel, check_backend,
                    check_dtype, check_grad_method, numba_engine)
from .optim import OPTIMIZERS, coefficient_table, make_optimizer

EVAL_MODES = ("estimate", "exact")
# --full-batch's defaults where not given: on tinyshakespeare they reach exact train loss
# <= 2.4540 and val <= 2.4860 (the floor is 2.4519) in well under a second
FULL_BATCH_DEFAULTS = {"lr": 0.5, "max_iters": 1000, "eval_interval": 100, "eval": "exact"}
CHUNK_WORK = 1 << 25  # elements of work per fused call between evaluations and progress updates
CHUNK_MAX_STEPS = 1024  # and at most this many steps (each holds its batch's window starts)


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
    grad: str = GRAD_METHODS[0]
    full_batch: bool = False

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
        check_grad_method(self.grad)
        if not isinstance(self.full_batch, bool):
            raise TypeError(f"full_batch must be a bool, got {type(self.full_batch).__name__}")

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
        # the compiled loops read windows of the splits without bounds checks: check them once
        self.train_data = check_ids(self.train_data, vocab_size, "train data", ndim=1)
        self.val_data = check_ids(self.val_data, vocab_size, "val data", ndim=1)
        self.model = BigramLanguageModel(vocab_size, seed=config.seed, dtype=config.dtype,
                                         backend=config.backend, init=config.init,
                                         grad=config.grad)
        self.optimizer = make_optimizer(config.optimizer, self.model, config.lr)
        self.rng = np.random.default_rng((config.seed, 1))  # training batches
        self.step = 0  # training steps completed
        self._counts = None  # pair counts of each split, for exact evaluation and full batch
        self._batch = None  # numba: the buffers a training batch is gathered into

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
        return float(self.train_steps(1)[0])

    def train_steps(self, steps):
        """`steps` training steps; returns their losses (steps,): each batch's loss before its
        update, or with full_batch the exact train loss. A non-finite loss raises
        TrainingDiverged before that step's update."""
        if self.config.full_batch:
            return self._full_batch_steps(steps)
        if self.model.backend == "numba":
            return self._fused_steps(steps)
        cfg = self.config
        losses = np.empty(steps)
        for s in range(steps):
            xb, yb = get_batch(self.train_data, cfg.block_size, cfg.batch_size, self.rng)
            _, losses[s] = self.model(xb, yb)
            if not math.isfinite(losses[s]):
                raise TrainingDiverged(f"the loss became {losses[s]} at step {self.step}")
            self.model.backward()
            self.optimizer.step()
            self.step += 1
        return losses

    def tokens_per_step(self):
        """Positions a step's gradient covers: B*T, or with full_batch every train pair."""
        if self.config.full_batch:
            return len(self.train_data) - 1
        return self.config.batch_size * self.config.block_size

    def chunk_steps(self):
        """How many steps one call of train_steps should run: about CHUNK_WORK elements of work
        (at most CHUNK_MAX_STEPS) on the numba backend, whose loop is compiled; one on NumPy."""
        cfg = self.config
        if self.model.backend != "numba":
            return 1
        if cfg.full_batch:
            work = self.vocab_size ** 2
        elif cfg.grad == "pair-counts":
            work = cfg.batch_size * cfg.block_size + self.vocab_size ** 2
        else:
            work = cfg.batch_size * cfg.block_size * self.vocab_size
        return max(1, min(CHUNK_MAX_STEPS, CHUNK_WORK // work))

    def _fused_steps(self, steps):
        cfg = self.config
        starts = self._batch_starts(self.train_data, steps, self.rng)  # (S,B)
        losses = np.empty(steps)
        kernels = numba_engine()
        pair_counts = cfg.grad == "pair-counts"
        n_positions = cfg.batch_size * cfg.block_size
        if self._batch is None:  # kept between calls: large fresh arrays cost page faults
            self._batch = (np.empty(n_positions, dtype=np.int64),  # x (N,)
                           np.empty(n_positions, dtype=np.int64),  # y (N,)
                           kernels.counts_scratch(pair_counts, self.vocab_size))
        x, y, counts = self._batch
        done = kernels.train_loop(
            kernels.grad_kernel(pair_counts, n_positions, self.vocab_size),
            kernels.update_kernel(self.optimizer.kind, self.vocab_size),
            self.model.weight, self._grad_buffer(), *self.optimizer.moments(), counts, x, y,
            self.train_data, starts, cfg.block_size, coefficient_table(self.optimizer, steps),
            losses)
        return self._finish(losses, done)

    def _full_batch_steps(self, steps):
        counts = self.split_counts()["train"]
        losses = np.empty(steps)
        if self.model.backend == "numba":
            kernels = numba_engine()
            done = kernels.full_batch_loop(
                kernels.update_kernel(self.optimizer.kind, self.vocab_size),
                self.model.weight, self._grad_buffer(), *self.optimizer.moments(), counts,
                coefficient_table(self.optimizer, steps), losses)
            return self._finish(losses, done)
        for s in range(steps):
            losses[s] = ops.loss_from_counts(self.model.weight, counts)
            if not math.isfinite(losses[s]):
                raise TrainingDiverged(f"the loss became {losses[s]} at step {self.step}")
            self.model.grad = ops.counts_backward(ops.softmax(self.model.weight), counts)
            self.optimizer.step()
            self.step += 1
        return losses

    def _batch_starts(self, split, steps, rng):
        """Window starts of `steps` batches (steps,B), drawn exactly as get_batch draws them."""
        cfg = self.config
        high = len(split) - cfg.block_size
        starts = np.stack([rng.integers(0, high, size=cfg.batch_size) for _ in range(steps)])
        if starts.min() < 0 or starts.max() >= high:  # kernels read data[start + T] unchecked
            raise ValueError(f"batch starts outside [0, {high})")
        return starts

    def _grad_buffer(self):
        """model.grad, where a compiled loop leaves its last gradient."""
        if self.model.grad is None or self.model.grad.shape != self.model.weight.shape:
            self.model.grad = np.empty_like(self.model.weight)
        return self.model.grad

    def _finish(self, losses, done):
        """Account for the `done` steps a compiled loop completed; raise if it stopped early."""
        self.step += done
        self.optimizer.t += done
        if done < len(losses):
            raise TrainingDiverged(f"the loss became {losses[done]} at step {self.step}")
        return losses

    def evaluate(self):
        """{'train': loss, 'val': loss}: the mean of eval_iters batch losses, or exact."""
        if self.config.eval == "exact":
            return self.exact_losses()
        cfg = self.config
        rng = np.random.default_rng((cfg.seed, 2, self.step))
        losses = {}
        for name, split in (("train", self.train_data), ("val", self.val_data)):
            if self.model.backend == "numba":  # the same batches, in one compiled call
                batch_losses = np.empty(cfg.eval_iters)
                numba_engine().batch_losses(self.model.weight, split,
                                            self._batch_starts(split, cfg.eval_iters, rng),
                                            cfg.block_size, batch_losses)
            else:
                batch_losses = [
                    self.model(*get_batch(split, cfg.block_size, cfg.batch_size, rng))[1]
                    for _ in range(cfg.eval_iters)]
            losses[name] = float(np.mean(batch_losses))
        return losses

    def split_counts(self):
        """{'train': C, 'val': C}: each split's pair counts (V,V), computed once."""
        if self._counts is None:
            self._counts = {name: ops.pair_counts(split, self.vocab_size)
                            for name, split in (("train", self.train_data),
                                                ("val", self.val_data))}
        return self._counts

    def exact_losses(self):
        """The mean loss over every pair of each whole split, in O(V^2) from its pair counts."""
        return {name: ops.loss_from_counts(self.model.weight, counts)
                for name, counts in self.split_counts().items()}

    def checkpoint_kwargs(self, tokenizer):
        return dict(tokenizer=tokenizer, optimizer=self.optimizer, config=self.config.to_dict(),
                    step=self.step, rng=self.rng)


def format_eval(step, losses):
    """bigram.py's line: 'step 300: train loss 2.5000, val loss 2.5100'."""
    return f"step {step}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}"


def _int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value
