"""The training of bigram.py: sample a batch, forward, backward by hand, optimizer step, and
the loss estimates between.

Randomness comes from a stream of npbigram.randomness.streams (config.rng): by default NumPy
generators split so that evaluations never move the training batches, or with rng "torch"
bigram.py's one PyTorch generator in its order. The checkpoint keeps the stream's state as it
was at the start of the step, before that step's evaluation drew, so an interrupted run resumes
exactly (and re-evaluates the same batches). Batches are drawn as get_batch draws them (one
rng.integers call per step), and the engine runs the steps (many per compiled call on numba), so
chunking, interrupting and resuming never change the result.

full_batch: every step uses the exact gradient of the whole train split, from its pair counts
(computed once), O(V^2) per step whatever the split's size.

Evaluations run in chunks of bounded work, so that a caller can stop one within a second; the
trainer keeps their history, which checkpoints carry, with the run's elapsed seconds, and
with config.snapshots = K the table at up to K evaluations, spread over the run
(kept_evaluations).
"""

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np

from .data.corpus import batches_starts, check_window_fits, split_pair_counts, train_val_split
from .engine import BACKENDS, DEFAULT_BACKEND, GRAD_METHODS, GRAD_WORK, make_engine
from .model import INIT_DRAW_BYTES, INITS, BigramLanguageModel
from .ops import pair_count_bytes
from .optim import OPTIMIZERS, make_optimizer
from .randomness.streams import RNGS
from .utils.checks import (
    check_choice,
    check_count,
    check_dtype,
    check_ids,
)
from .utils.limits import check_memory

EVAL_MODES = ("estimate", "exact")
# --full-batch's defaults where not given: on tinyshakespeare they reach exact train loss
# <= 2.4540 and val <= 2.4860 (the floor is 2.4519) in well under a second
FULL_BATCH_DEFAULTS = {"lr": 0.5, "max_iters": 1000, "eval_interval": 100, "eval": "exact"}
# the optimizers' hyperparameters a config may set (None: the optimizer's default)
OPTIMIZER_OPTIONS = ("momentum", "dampening", "nesterov", "weight_decay")
# settings that a resumed run may change: when it stops, evaluates and what it prints at the
# end, never what a step computes
CHANGEABLE_ON_RESUME = ("max_iters", "eval_interval", "sample_tokens", "snapshots")
# work that a run refuses or warns of before it starts (check_work)
EVAL_POSITIONS_LIMIT = 10**10  # positions of one loss estimate, both splits
STEP_WORK_WARNING = 10**10  # elements of work of one training step
SNAPSHOT_BYTES_LIMIT = 64 * 2**20  # the tables a checkpoint keeps (and an explore page holds)


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
    momentum: float = None
    dampening: float = None
    nesterov: bool = None
    weight_decay: float = None
    init: str = "normal"
    seed: int = 1337
    dtype: str = "float32"
    backend: str = DEFAULT_BACKEND
    eval: str = "estimate"
    grad: str = GRAD_METHODS[0]
    full_batch: bool = False
    rng: str = "numpy"  # a stream of npbigram.randomness.streams.RNGS
    sample_tokens: int = 500  # generated after training, as bigram.py's max_new_tokens
    snapshots: int = 0  # tables kept in the checkpoint, at evaluations spread over the run

    def __post_init__(self):
        for name in ("batch_size", "block_size", "eval_interval", "eval_iters"):
            check_count(getattr(self, name), name, minimum=1)
        check_count(self.max_iters, "max_iters")
        check_count(self.sample_tokens, "sample_tokens")
        check_count(self.snapshots, "snapshots")
        check_count(self.seed, "seed")
        check_choice(self.optimizer, OPTIMIZERS, "optimizer")
        names = OPTIMIZERS[self.optimizer].hyperparameter_names()
        for name in self.optimizer_options():
            if name not in names:
                raise ValueError(f"{name} does not apply to the {self.optimizer} optimizer")
        self.optimizer_hyperparameters()  # the optimizer checks them
        check_choice(self.init, INITS, "init")
        check_choice(self.eval, EVAL_MODES, "eval mode")
        check_dtype(self.dtype)
        check_choice(self.backend, BACKENDS, "backend")
        check_choice(self.grad, GRAD_METHODS, "grad method")
        check_choice(self.rng, RNGS, "rng")
        if not isinstance(self.full_batch, bool):
            raise TypeError(f"full_batch must be a bool, got {type(self.full_batch).__name__}")

    def unused_settings(self):
        """The settings that have no effect under this config: the batch shape when nothing
        samples batches (full batch with exact evaluation), eval_iters with exact evaluation,
        the batch gradient's method with full batch."""
        unused = []
        if self.full_batch and self.eval == "exact":
            unused += ["batch_size", "block_size"]
        if self.eval == "exact":
            unused.append("eval_iters")
        if self.full_batch:
            unused.append("grad")
        return unused

    def optimizer_options(self):
        """The optimizer hyperparameters this config sets besides lr (the rest keep their
        defaults)."""
        return {name: getattr(self, name) for name in OPTIMIZER_OPTIONS
                if getattr(self, name) is not None}

    def optimizer_hyperparameters(self):
        """Every hyperparameter of the optimizer this config makes, checked by the optimizer."""
        return OPTIMIZERS[self.optimizer].check_hyperparameters(lr=self.lr,
                                                                **self.optimizer_options())

    def optimizer_state_names(self):
        """The (V,V) arrays the optimizer keeps (AdamW m and v, SGD with momentum its buffer)."""
        return OPTIMIZERS[self.optimizer].state_names(self.optimizer_hyperparameters())

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def training_memory(config, vocab_size):
    """What training with `config` holds at its peak, by part, for
    npbigram.utils.limits.check_memory.

    The model (weights, gradient, optimizer state) lives throughout, and from the first step on
    the engine keeps a step's batch arrays; besides them, one at a time: drawing the initial
    weights (a second table at most), an evaluation's batches, and the splits' pair counts
    with the float64 tables of the floor reported at the end (npbigram.tools.optimum)."""
    itemsize, engine = np.dtype(config.dtype).itemsize, make_engine(config.backend)
    tables = 2 + len(config.optimizer_state_names())  # weights, gradient, optimizer state
    vocabulary = f"use a text with fewer distinct tokens (this one has {vocab_size:,})"
    n_positions, batch_size = config.batch_size * config.block_size, config.batch_size
    parts = [(f"the {vocab_size:,}x{vocab_size:,} weights, gradient and optimizer state",
              tables * itemsize * vocab_size ** 2, vocabulary)]
    if not config.full_batch:
        steps = engine.steps_per_call(n_positions, vocab_size, config.grad)
        parts.append((f"training steps on batches of {n_positions:,} positions",
                      engine.batch_bytes(n_positions, vocab_size, itemsize, config.grad)
                      + 2 * 8 * steps * batch_size, "lower --batch-size or --block-size"))
    one_at_a_time = [
        ("drawing the initial weights", itemsize * vocab_size ** 2 + INIT_DRAW_BYTES, vocabulary),
        ("the pair counts of the splits",
         5 * 8 * vocab_size ** 2 + pair_count_bytes(vocab_size), vocabulary)]
    if config.eval == "estimate":
        batches = engine.batches_per_call(n_positions, vocab_size)
        one_at_a_time.append((
            f"evaluating {config.eval_iters:,} batches of {n_positions:,} positions",
            8 * config.eval_iters + 2 * 8 * batches * batch_size
            + engine.batch_bytes(n_positions, vocab_size, itemsize, None),
            "lower --eval-iters, --batch-size or --block-size"))
    if config.snapshots:
        parts.append((f"{config.snapshots:,} snapshots of the table",
                      snapshot_bytes(config, vocab_size), "lower --snapshots"))
    return [*parts, max(one_at_a_time, key=lambda part: part[1])]


def snapshot_bytes(config, vocab_size):
    """The bytes of the tables config.snapshots keeps: K x V x V x itemsize."""
    return config.snapshots * vocab_size ** 2 * np.dtype(config.dtype).itemsize


def check_snapshots(config, vocab_size):
    """Refuse snapshots whose tables would take more than SNAPSHOT_BYTES_LIMIT, naming the
    flag and the most that fit."""
    size = snapshot_bytes(config, vocab_size)
    if size > SNAPSHOT_BYTES_LIMIT:
        table = vocab_size ** 2 * np.dtype(config.dtype).itemsize
        raise ValueError(
            f"--snapshots {config.snapshots:,} would keep {config.snapshots:,} tables of "
            f"{vocab_size:,}x{vocab_size:,} {config.dtype} ({size / 2**20:,.1f} MiB) in the "
            f"checkpoint, more than its cap of {SNAPSHOT_BYTES_LIMIT / 2**20:g} MiB: use "
            f"--snapshots {SNAPSHOT_BYTES_LIMIT // table:,} or fewer")


def kept_evaluations(steps, limit):
    """The steps of the evaluations (at `steps`, rising) whose table a run keeps, at most
    `limit`: every stride-th from the first, and the newest, the stride the smallest power of
    two that keeps few enough (limit 1: the newest only). As evaluations are added the stride
    only doubles, so what is kept is always among what was kept before, and the newest."""
    last = len(steps) - 1
    if limit < 2:
        return set(steps[last:]) if limit and steps else set()
    stride = 1
    while last // stride + 1 + (last % stride != 0) > limit:
        stride *= 2
    return {*steps[::stride], steps[-1]}


def check_work(config, vocab_size):
    """Refuse an evaluation of more than EVAL_POSITIONS_LIMIT positions (an estimate that large
    is never needed: --eval exact is the whole splits' loss in O(V^2)), and warn of a training
    step of more than STEP_WORK_WARNING elements of work (its gradient method's N*V or N+V^2):
    either would take minutes where a user expects seconds. The memory check bounds a step's
    positions too."""
    n_positions = config.batch_size * config.block_size
    if config.eval == "estimate":
        positions = 2 * config.eval_iters * n_positions
        if positions > EVAL_POSITIONS_LIMIT:
            raise ValueError(
                f"one evaluation would read {positions:,} positions (2 splits x --eval-iters "
                f"{config.eval_iters:,} x {config.batch_size:,} x {config.block_size:,}), more "
                f"than {EVAL_POSITIONS_LIMIT:,}: minutes of work at every --eval-interval; "
                f"lower --eval-iters, or use --eval exact (every pair, in O(V^2))")
    if not config.full_batch:
        work = {name: method_work(n_positions, vocab_size) for name, method_work in
                GRAD_WORK.items()}
        if work[config.grad] > STEP_WORK_WARNING:
            faster = min(work, key=work.get)
            advice = (f"--grad {faster} computes the same gradient in about "
                      f"{work[faster]:,.3g}" if work[faster] < work[config.grad] else
                      "lower --batch-size or --block-size")
            warnings.warn(f"each training step computes about {work[config.grad]:,.3g} "
                          f"entries ({n_positions:,} positions x {vocab_size:,} tokens), seconds "
                          f"of work a step: {advice}")


class Trainer:
    """Holds the model, optimizer, splits and batch generator; runs steps and evaluations, and
    keeps their history."""

    def __init__(self, config, data, vocab_size, *, splits=None, counts=None):
        """data (n,) ids, split 90/10 as bigram.py; or splits=(train, val) already split (such
        as a prepared corpus's memmaps, ids already checked) with their pair counts
        {'train': C, 'val': C} if known."""
        self.config = config
        self.vocab_size = vocab_size
        check_snapshots(config, vocab_size)
        check_memory("training", training_memory(config, vocab_size))
        check_work(config, vocab_size)
        self.train_data, self.val_data = splits if splits is not None else train_val_split(data)
        for name, split in (("train", self.train_data), ("val", self.val_data)):
            if "block_size" in config.unused_settings():  # no window is read: pairs are counted
                if len(split) < 2:
                    raise ValueError(f"the {name} split has {len(split)} token"
                                     f"{'s' * (len(split) != 1)}, no pair: use a longer text")
            else:
                check_window_fits(len(split), config.block_size, f"the {name} split")
        if splits is None:  # the compiled loops read windows without bounds checks
            self.train_data = check_ids(self.train_data, vocab_size, "train data", ndim=1)
            self.val_data = check_ids(self.val_data, vocab_size, "val data", ndim=1)
        self._counts = counts  # pair counts of each split, for exact evaluation and full batch
        self.stream = RNGS[config.rng](config.seed)  # the run's randomness
        self.model = BigramLanguageModel.from_weight(
            self.stream.initial_weight(vocab_size, config.init, np.dtype(config.dtype)),
            backend=config.backend, grad=self.grad_method(config))
        self.optimizer = make_optimizer(config.optimizer, self.model, lr=config.lr,
                                        **config.optimizer_options())
        self.batch_rng = self.stream.train_rng  # draws the training batches
        self.step = 0  # training steps completed
        self.history = []  # evaluations: {"step", "train", "val", "elapsed"} in step order
        self.elapsed = 0.0  # seconds spent training and evaluating, over resumed runs too
        self.snapshots = []  # [(step, table (V,V)), ...] at the kept_evaluations

    def restore(self, checkpoint):
        """Continue from a checkpoint written by this trainer's configuration."""
        if checkpoint.model.weight.shape != self.model.weight.shape:
            raise ValueError(f"checkpoint vocabulary {checkpoint.model.vocab_size} does not match "
                             f"the data's {self.vocab_size}")
        if checkpoint.config.get("rng", "numpy") != self.config.rng:
            raise ValueError(f"the checkpoint drew from the {checkpoint.config.get('rng', 'numpy')} "
                             f"generator: resume it with that --rng, not {self.config.rng}")
        self.model.weight = checkpoint.model.weight.astype(self.model.dtype)
        if checkpoint.optimizer_state is not None:
            if checkpoint.optimizer_state.get("kind") != self.optimizer.kind:
                raise ValueError(f"checkpoint optimizer {checkpoint.optimizer_state.get('kind')!r} "
                                 f"does not match {self.optimizer.kind!r}")
            self.optimizer.load_state_dict(checkpoint.optimizer_state)
        if checkpoint.rng_state is not None:
            self.stream.set_state(checkpoint.rng_state)
        self.step = checkpoint.step
        self.history = [dict(evaluation) for evaluation in checkpoint.history]
        self.elapsed = checkpoint.elapsed
        self.snapshots = list(checkpoint.snapshots)

    def train_step(self):
        """One step of bigram.py's loop; returns the batch loss."""
        return float(self.train_steps(1)[0])

    def train_steps(self, steps):
        """`steps` training steps; returns their losses (steps,): each batch's loss before its
        update, or with full_batch the exact train loss. A non-finite loss raises
        TrainingDiverged before that step's update."""
        cfg, engine = self.config, self.model.engine
        losses = np.empty(steps)
        if cfg.full_batch:
            done = engine.full_batch_steps(self.model, self.optimizer,
                                           self.split_counts()["train"], losses)
        else:
            done = engine.run_steps(self.model, self.optimizer, self.train_data, cfg.batch_size,
                                    cfg.block_size, self.batch_rng, losses)
        self.step += done
        if done < steps:
            raise TrainingDiverged(f"the loss became {losses[done]} at step {self.step}")
        return losses

    def tokens_per_step(self):
        """Positions a step's gradient covers: B*T, or with full_batch every train pair."""
        if self.config.full_batch:
            return len(self.train_data) - 1
        return self.config.batch_size * self.config.block_size

    def chunk_steps(self):
        """How many steps one call of train_steps should run (the engine's choice)."""
        cfg = self.config
        n_positions = None if cfg.full_batch else cfg.batch_size * cfg.block_size
        return self.model.engine.steps_per_call(n_positions, self.vocab_size, cfg.grad)

    def evaluate(self, stop=None, progress=None):
        """{'train': loss, 'val': loss}: the mean of eval_iters batch losses, or exact.

        Batches are evaluated in calls of bounded work (the engine's batches_per_call); stop(),
        when given, is asked before each, and when it returns True the evaluation is abandoned
        and None returned; progress(batches), when given, after each, with the batches that call
        evaluated (2 * eval_iters in all). The batches and the result do not depend on the
        chunking."""
        if self.config.eval == "exact":
            return self.exact_losses()
        cfg, engine = self.config, self.model.engine
        before = self.stream.get_state()
        rng = self.stream.eval_rng(self.step)
        per_call = engine.batches_per_call(cfg.batch_size * cfg.block_size, self.vocab_size)
        result = {}
        for name, split in (("train", self.train_data), ("val", self.val_data)):
            losses = np.empty(cfg.eval_iters)  # (eval_iters,) each batch's mean loss
            for first in range(0, cfg.eval_iters, per_call):
                if stop is not None and stop():
                    self.stream.set_state(before)  # an abandoned evaluation has drawn nothing
                    return None
                count = min(per_call, cfg.eval_iters - first)
                starts = batches_starts(len(split), cfg.block_size, cfg.batch_size, rng, count)
                losses[first:first + count] = engine.batch_losses(self.model.weight, split,
                                                                  starts, cfg.block_size)
                if progress is not None:
                    progress(count)
            result[name] = float(np.mean(losses))
        return result

    def record_evaluation(self, losses):
        """Add an evaluation at the current step to the history (and the table to the
        snapshots); returns whether its val loss is the lowest of the history (the best model
        so far)."""
        best = min((evaluation["val"] for evaluation in self.history), default=np.inf)
        self.history.append({"step": self.step, "train": losses["train"], "val": losses["val"],
                             "elapsed": self.elapsed})
        kept = kept_evaluations([e["step"] for e in self.history], self.config.snapshots)
        self.snapshots = [(step, table) for step, table in self.snapshots if step in kept]
        if self.step in kept:
            self.snapshots.append((self.step, self.model.weight.copy()))
        return losses["val"] < best

    @staticmethod
    def grad_method(config):
        """config.grad, but "auto" on the torch stream is gather/scatter: bigram.py's summation
        order, so that `--rng torch` replays the lecture's numbers exactly."""
        return "gather-scatter" if config.grad == "auto" and config.rng == "torch" else config.grad

    def evaluated_now(self):
        """Whether the history already holds an evaluation at the current step."""
        return bool(self.history) and self.history[-1]["step"] == self.step

    def warm_up(self):
        """Have the engine compile the kernels this training runs; returns how many it
        compiled (0 when they came from the JIT cache)."""
        cfg = self.config
        return self.model.engine.warm_up(self.model, self.optimizer, self.train_data,
                                         cfg.batch_size, cfg.block_size, cfg.grad,
                                         cfg.full_batch)

    def split_counts(self):
        """{'train': C, 'val': C}: each split's pair counts (V,V), computed once."""
        if self._counts is None:
            self._counts = split_pair_counts(self.train_data, self.val_data, self.vocab_size)
        return self._counts

    def exact_losses(self):
        """The mean loss over every pair of each whole split, in O(V^2) from its pair counts."""
        return {name: self.model.engine.exact_loss(self.model.weight, counts)
                for name, counts in self.split_counts().items()}

    def checkpoint_kwargs(self, tokenizer, data=None):
        """save_checkpoint's arguments for this run; data: the record of its data. The stream's
        state is taken after this step's evaluation, which a resumed run does not repeat."""
        return dict(tokenizer=tokenizer, optimizer=self.optimizer, config=self.config.to_dict(),
                    step=self.step, rng_state=self.stream.get_state(), data=data,
                    history=self.history, elapsed=self.elapsed, snapshots=self.snapshots)


def format_eval(step, losses):
    """bigram.py's line: 'step 300: train loss 2.5000, val loss 2.5100'."""
    return f"step {step}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}"
