"""The training of bigram.py: sample a batch, forward, backward by hand, optimizer step, and
the loss estimates between.

Randomness comes from a stream of npbigram.randomness.streams (config.rng). Batches are drawn
as get_batch draws them, one rng.integers call per step, so chunking, interrupting and resuming
never change the result. full_batch: every step takes the exact gradient of the whole train
split from its pair counts, O(V^2) per step. The trainer keeps the evaluations' history and,
with config.snapshots = K, the table at up to K of them (kept_evaluations).
"""

import dataclasses
import inspect
from dataclasses import dataclass

import numpy as np

from .data.corpus import batches_starts, check_window_fits, split_pair_counts, train_val_split
from .engine import BACKENDS, DEFAULT_BACKEND, GRAD_METHODS
from .model import INITS, BigramLanguageModel
from .optim import OPTIMIZERS
from .randomness.streams import RNGS
from .utils.checks import DTYPES, SettingError, check_ids, check_settings, setting

EVAL_MODES = ("estimate", "exact")
# --full-batch's defaults where not given
FULL_BATCH_DEFAULTS = {"lr": 0.5, "max_iters": 1000, "eval_interval": 100, "eval": "exact"}
# the optimizers' hyperparameters besides lr a config may set (None: the optimizer's default)
OPTIMIZER_OPTIONS = ("momentum", "dampening", "nesterov", "weight_decay")
# settings that a resumed run may change: when it stops, evaluates and what it prints at the
# end, never what a step computes
CHANGEABLE_ON_RESUME = ("max_iters", "eval_interval", "sample_tokens", "snapshots")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainConfig:
    """A run's settings, bigram.py's hyperparameters the defaults. Each field is a parameter,
    a flag of `npbigram train` (--batch-size) and a --config key (batch_size)."""

    batch_size: int = setting(32, "sequences per batch B", minimum=1)
    block_size: int = setting(8, "tokens per sequence T", minimum=1)
    max_iters: int = setting(3000, "training steps", minimum=0)
    eval_interval: int = setting(300, "evaluate every this many steps", minimum=1)
    eval_iters: int = setting(200, "batches per loss estimate", minimum=1)
    lr: float = setting(1e-2, "learning rate", positive=True)
    optimizer: str = setting("adamw", "optimizer", choices=tuple(OPTIMIZERS))
    momentum: float = setting(None, "SGD momentum, as torch.optim.SGD", minimum=0)
    dampening: float = setting(None, "SGD dampening of the momentum, as torch.optim.SGD",
                               minimum=0)
    nesterov: bool = setting(None, "Nesterov momentum for SGD (needs --momentum, no "
                                   "dampening), as torch.optim.SGD")
    weight_decay: float = setting(None, "weight decay (torch's defaults: AdamW 0.01, SGD 0)",
                                  minimum=0)
    init: str = setting("normal", "weight init: N(0,1) like nn.Embedding, or zeros (loss "
                                  "exactly ln V)", choices=INITS)
    seed: int = setting(1337, "random seed", minimum=0)
    dtype: str = setting("float32", "floating-point type", choices=DTYPES)
    backend: str = setting(DEFAULT_BACKEND, "compute backend", choices=BACKENDS)
    eval: str = setting("estimate", "estimate over eval_iters batches, or exact over whole "
                                    "splits", choices=EVAL_MODES)
    grad: str = setting(GRAD_METHODS[0], "the batch gradient: auto (from the batch's pair "
                                         "counts where faster, by size only), gather-scatter "
                                         "(per position, in PyTorch's order) or pair-counts",
                        choices=GRAD_METHODS)
    full_batch: bool = setting(False, "every step takes the exact gradient of the whole train "
                                      "split, from its pair counts; unless given, " + ", ".join(
                                          f"--{name.replace('_', '-')} {value}"
                                          for name, value in FULL_BATCH_DEFAULTS.items()))
    rng: str = setting("numpy", "random numbers from NumPy's generators, or PyTorch's CPU "
                                "generator in bigram.py's order (the lecture's numbers)",
                       choices=tuple(RNGS))
    sample_tokens: int = setting(500, "tokens of the sample printed at the end (0: no sample)",
                                 minimum=0)  # as bigram.py's max_new_tokens
    snapshots: int = setting(0, "keep the table W at up to this many evaluations in the "
                                "checkpoint, spread over the run (for npbigram explore's "
                                "slider)", minimum=0)

    def __post_init__(self):
        check_settings(self)
        takes = OPTIMIZERS[self.optimizer].hyperparameter_names()
        for name in self.optimizer_options():
            if name not in takes:
                raise SettingError(name, lambda who: f"{who} does not apply to the "
                                                     f"{self.optimizer} optimizer")
        if self.nesterov and (not self.momentum or self.dampening):
            raise SettingError("nesterov", lambda who: f"{who}: Nesterov momentum requires a "
                                                       f"momentum and zero dampening")

    def unused_settings(self):
        """The settings that have no effect under this config."""
        unused = []
        if self.full_batch and self.eval == "exact":
            unused += ["batch_size", "block_size"]
        if self.eval == "exact":
            unused.append("eval_iters")
        if self.full_batch:
            unused.append("grad")
        return unused

    def optimizer_options(self):
        """The optimizer hyperparameters this config sets besides lr."""
        return {name: getattr(self, name) for name in OPTIMIZER_OPTIONS
                if getattr(self, name) is not None}

    def optimizer_hyperparameters(self):
        """Every hyperparameter of the optimizer: lr, the options set, the defaults for the
        rest."""
        check = inspect.signature(OPTIMIZERS[self.optimizer].check_hyperparameters)
        arguments = check.bind(lr=self.lr, **self.optimizer_options())
        arguments.apply_defaults()
        return dict(arguments.arguments)

    def optimizer_state_names(self):
        """The (V,V) arrays the optimizer keeps (AdamW m and v, SGD with momentum its buffer)."""
        return OPTIMIZERS[self.optimizer].state_names(self.optimizer_hyperparameters())

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


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


class Trainer:
    """Holds the model, optimizer, splits and batch generator; runs steps and evaluations, and
    keeps their history."""

    def __init__(self, config, data, vocab_size, *, splits=None, counts=None):
        """data (n,) ids, split 90/10 as bigram.py; or splits=(train, val) of checked ids (a
        prepared corpus's memmaps) with their pair counts {'train': C, 'val': C} if known."""
        self.config = config
        self.vocab_size = vocab_size
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
        self.optimizer = OPTIMIZERS[config.optimizer].from_checked(
            self.model, config.optimizer_hyperparameters())
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
        drawn_from = checkpoint.config.get("rng", "numpy")
        if drawn_from != self.config.rng:
            raise ValueError(f"the checkpoint drew from the {drawn_from} generator: resume it "
                             f"with that --rng, not {self.config.rng}")
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
        """`steps` training steps; returns their losses (steps,), each before its update. A
        non-finite loss raises TrainingDiverged; the weights may then hold that step's update
        (the numba engine updates each row in the pass that computes the loss), so a run saves
        nothing after it."""
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
        """{'train': loss, 'val': loss}: the mean of eval_iters batch losses, or exact. Runs in
        calls of the engine's batches_per_call; before each, stop() returning True abandons it
        (None); after each, progress(batches)."""
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
        snapshots); returns whether its val loss is the lowest so far."""
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
        """Compile the kernels this training runs; returns how many were compiled."""
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
