"""The numba engine's Python side: which compiled kernel runs (kernels.py), chosen by the
problem's size only (never by the thread count or the machine, so results never depend on
them), and the optimizer's update arguments.

Entering a parallel region costs tens of microseconds, so small problems run the serial
kernels, many steps per call; the parallel ones split a step's grouping into chunks and its rows
into groups fixed by the sizes.
"""

import functools
import math

import numpy as np

from .. import ops
from ..data.corpus import batches_starts, read_windows
from ..optim import make_optimizer
from . import GRAD_WORK, grad_rule
from .kernels import (
    Update,
    batch_losses,
    gather_rows,
    steps_parallel,
    steps_serial,
    update_parallel,
    update_serial,
)

PARALLEL_WORK = 1 << 17  # a step of this much work (step_work) runs on threads
CHUNK_POSITIONS = 1 << 14  # a parallel step groups its batch in chunks of about this many
MAX_CHUNKS = 16  # positions, at most this many
API_WINDOW = 4096  # the public API's batch is grouped in windows of at most this many positions
CHUNK_WORK = 1 << 25  # elements of work per call between evaluations and progress updates
CHUNK_MAX_STEPS = 1024  # and at most this many steps (each holds its batch's window starts)


def step_work(n_positions, vocab_size, rule):
    """Elements of work of one step, its gradient's (GRAD_WORK), as the C step counts it."""
    return GRAD_WORK[rule](n_positions, vocab_size)


def step_plan(n_positions, vocab_size, rule):
    """(kernel, K chunks, whether the batch is grouped by pair-count tables): the parallel
    kernel from PARALLEL_WORK on, its grouping in chunks of CHUNK_POSITIONS; tables for the
    pair-count formula where K tables of V^2 cost no more than the batch, else the sort."""
    parallel = step_work(n_positions, vocab_size, rule) >= PARALLEL_WORK
    chunks = min(MAX_CHUNKS, max(1, n_positions // CHUNK_POSITIONS)) if parallel else 1
    tables = rule == "pair-counts" and chunks * vocab_size * vocab_size <= n_positions
    return (steps_parallel if parallel else steps_serial), chunks, tables


def update_arguments(optimizer, steps=1, first_step=None):
    """The kernels' Update for steps first_step .. first_step + steps - 1 (default: the step
    after optimizer.t), each scalar in the weight's dtype, so rounded as the formula's NumPy
    arithmetic rounds it."""
    dtype = optimizer.model.weight.dtype.type
    first_step = optimizer.t + 1 if first_step is None else first_step
    t = range(first_step, first_step + steps)
    if optimizer.kind == "adamw":
        lr, (beta1, beta2) = optimizer.lr, optimizer.betas
        return Update(
            adamw=True, decay=dtype(1.0 - lr * optimizer.weight_decay),
            one_minus_beta1=dtype(1.0 - beta1), beta2=dtype(beta2),
            one_minus_beta2=dtype(1.0 - beta2), eps=dtype(optimizer.eps),
            step_size=np.array([lr / (1.0 - beta1 ** k) for k in t], dtype=dtype),
            bias_correction2_sqrt=np.array([math.sqrt(1.0 - beta2 ** k) for k in t], dtype=dtype),
            lr=dtype(lr), weight_decay=dtype(0), momentum=dtype(0),
            one_minus_dampening=dtype(0), nesterov=False)
    none = np.empty(0, dtype=dtype)
    return Update(
        adamw=False, decay=dtype(0), one_minus_beta1=dtype(0), beta2=dtype(0),
        one_minus_beta2=dtype(0), eps=dtype(0), step_size=none, bias_correction2_sqrt=none,
        lr=dtype(optimizer.lr), weight_decay=dtype(optimizer.weight_decay),
        momentum=dtype(optimizer.momentum), one_minus_dampening=dtype(1.0 - optimizer.dampening),
        nesterov=bool(optimizer.nesterov))


def optimizer_state(optimizer):
    """(m, v) as the kernels take them: AdamW's moments, or SGD's momentum buffer (empty
    without momentum) and an empty array."""
    empty = np.empty((0, 0), dtype=optimizer.model.weight.dtype)
    if optimizer.kind == "adamw":
        return optimizer.state["m"], optimizer.state["v"]
    return optimizer.state.get("momentum_buffer", empty), empty


class NumbaEngine:
    name = "numba"

    def __init__(self):
        self._scratch = {}  # arrays kept between calls: large fresh arrays cost page faults

    def steps_per_call(self, n_positions, vocab_size, grad_method):
        """Steps per run_steps call: about CHUNK_WORK elements of work, at most
        CHUNK_MAX_STEPS. n_positions None: full batch, O(V^2) per step."""
        work = (vocab_size ** 2 if n_positions is None
                else step_work(n_positions, vocab_size, grad_rule(grad_method)))
        return max(1, min(CHUNK_MAX_STEPS, CHUNK_WORK // work))

    def batches_per_call(self, n_positions, vocab_size):
        """Batches per batch_losses call: about CHUNK_WORK positions (one entry of W read per
        position), at most CHUNK_MAX_STEPS."""
        return max(1, min(CHUNK_MAX_STEPS, CHUNK_WORK // n_positions))

    def batch_bytes(self, n_positions, vocab_size, itemsize, grad_method):
        """A step's batch: its targets grouped by row (int64), or the pair-count tables (int32,
        K V^2); the logits are never built. A batch's loss alone (grad_method None) reads the
        data in place."""
        if grad_method is None:
            return 0
        _, chunks, tables = step_plan(n_positions, vocab_size, grad_rule(grad_method))
        return 4 * chunks * vocab_size ** 2 if tables else 8 * n_positions

    def _tables(self, chunks, vocab_size, tables):
        """The pair-count tables (K,V,V) int32 of a step, kept between calls; (0,V,V) to sort."""
        shape = (chunks if tables else 0, vocab_size, vocab_size)
        array = self._scratch.get("pairs")
        if array is None or array.shape != shape:
            array = self._scratch["pairs"] = np.empty(shape, dtype=np.int32)
        return array

    def warm_up(self, model, optimizer, data, batch_size, block_size, grad_method, full_batch):
        """Compile, or load from the JIT cache, the kernels that training at these sizes and
        batch evaluation call, on a two-token problem of the same types (so that timed work
        never compiles). Model and optimizer are left as they are. Returns how many kernels
        were compiled (0: all came from the cache)."""
        kernels = (steps_serial, steps_parallel, batch_losses)
        before = compiled_count(kernels)
        weight = np.zeros((2, 2), dtype=model.weight.dtype)
        tiny_model = TinyModel(weight)
        tiny = make_optimizer(optimizer.kind, tiny_model,
                              **dict(zip(optimizer.hyperparameter_names(),
                                         optimizer.hyperparameters())))
        tokens, _ = read_windows(data, np.zeros((1, 1), dtype=np.int64), block_size)
        tiny_data = np.zeros(block_size + 1, dtype=tokens.dtype)
        tiny_data.flags.writeable = tokens.flags.writeable
        if full_batch:
            self._full_batch(tiny_model, tiny, np.ones((2, 2), np.int64), np.empty(1),
                             plan_vocab=model.vocab_size)
        else:
            self._run(tiny_model, tiny, tiny_data, np.zeros((1, 1), np.int64), block_size,
                      np.empty(1), grad_method, plan=(batch_size * block_size, model.vocab_size))
        batch_losses(weight, tiny_data, np.zeros((1, 1), np.int64), block_size, np.empty(1))
        return compiled_count(kernels) - before

    def forward(self, weight, x, y, grad_method, return_logits):
        """Logits gathered into a new array; with targets, the loss and gradient in one fused
        pass that never builds the (N,C) probabilities: backward() hands the gradient over."""
        logits = None
        if return_logits or y is None:
            logits = np.empty((x.size, weight.shape[1]), dtype=weight.dtype)  # (N,C)
            gather_rows(weight, x, logits)
        if y is None:
            return logits, None, None
        n_positions, vocab_size, rule = x.size, weight.shape[0], grad_rule(grad_method)
        kernel, chunks, tables = step_plan(n_positions, vocab_size, rule)
        window = math.gcd(n_positions, API_WINDOW)  # the batch as windows of x and y
        starts = np.arange(0, n_positions, window, dtype=np.int64).reshape(1, -1)
        grad, loss, empty = np.empty_like(weight), np.empty(1), _empty(weight.dtype)
        kernel(weight, empty, empty, no_update(weight.dtype), 0, x, y, 0, starts, window,
               self._tables(chunks, vocab_size, tables), chunks, False, rule == "pair-counts",
               grad, loss)
        return logits, loss[0], grad

    def backward(self, saved):
        return saved

    def compiled_update(self, optimizer, weight, grad):
        """Step optimizer.t of the optimizer's formula, compiled."""
        kernel = update_parallel if weight.size >= PARALLEL_WORK else update_serial
        kernel(weight, grad, *optimizer_state(optimizer),
               update_arguments(optimizer, 1, optimizer.t), optimizer.t)

    def run_steps(self, model, optimizer, data, batch_size, block_size, rng, losses):
        """The README's loop fused: the batches drawn as get_batch draws them, then len(losses)
        steps of the kernel, each one pass over the rows of W."""
        starts = batches_starts(len(data), block_size, batch_size, rng, len(losses))
        data, starts = read_windows(data, starts, block_size)  # a memory map's, copied out
        return self._run(model, optimizer, data, starts, block_size, losses, model.grad_method)

    def _run(self, model, optimizer, data, starts, block_size, losses, grad_method, plan=None):
        """The steps of run_steps; plan: the (N, V) to choose the kernel by, when not the
        problem's own (warm_up's tiny one). Returns the steps done."""
        weight, rule = model.weight, grad_rule(grad_method)
        n_positions, vocab_size = plan or (starts.shape[1] * block_size, weight.shape[0])
        kernel, chunks, tables = step_plan(n_positions, vocab_size, rule)
        pairs = np.empty((chunks if tables else 0, weight.shape[0], weight.shape[0]), np.int32)
        if plan is None:
            pairs = self._tables(chunks, vocab_size, tables)
        done = kernel(weight, *optimizer_state(optimizer), update_arguments(optimizer, len(losses)),
                      optimizer.t + 1, data, data, 1, starts, block_size, pairs, chunks, False,
                      rule == "pair-counts", _empty(weight.dtype), losses)
        optimizer.t += done
        return done

    def full_batch_steps(self, model, optimizer, counts, losses):
        return self._full_batch(model, optimizer, counts, losses)

    def _full_batch(self, model, optimizer, counts, losses, plan_vocab=None):
        """len(losses) steps on the exact gradient of the split whose pair counts (V,V) are
        `counts`; returns the steps done."""
        weight = model.weight
        vocab_size = plan_vocab or weight.shape[0]
        kernel = steps_parallel if vocab_size ** 2 >= PARALLEL_WORK else steps_serial
        pairs = np.ascontiguousarray(counts, dtype=np.int64).reshape(1, *counts.shape)
        no_ids = np.empty(0, dtype=np.int64)
        done = kernel(weight, *optimizer_state(optimizer), update_arguments(optimizer, len(losses)),
                      optimizer.t + 1, no_ids, no_ids, 0, np.empty((len(losses), 0), np.int64), 0,
                      pairs, 1, True, True, _empty(weight.dtype), losses)
        optimizer.t += done
        return done

    def batch_losses(self, weight, data, starts, block_size):
        losses = np.empty(len(starts))
        batch_losses(weight, *read_windows(data, starts, block_size), block_size, losses)
        return losses

    exact_loss = staticmethod(ops.loss_from_counts)


def compiled_count(kernels):
    """How many compilations of `kernels` this process has made (numba counts them per
    process: cache misses)."""
    return sum(sum(kernel.stats.cache_misses.values()) for kernel in kernels)


class TinyModel:
    """What an optimizer reads of its model: the weight."""

    def __init__(self, weight):
        self.weight = weight


def _empty(dtype):
    return np.empty((0, 0), dtype=dtype)


@functools.cache
def no_update(dtype):
    """An Update for the kernels' gradient-only calls (nothing reads it)."""
    none = np.empty(0, dtype=dtype.type)
    zero = dtype.type(0)
    return Update(adamw=False, decay=zero, one_minus_beta1=zero, beta2=zero,
                  one_minus_beta2=zero, eps=zero, step_size=none, bias_correction2_sqrt=none,
                  lr=zero, weight_decay=zero, momentum=zero, one_minus_dampening=zero,
                  nesterov=False)
