"""The numba engine's Python side: which compiled kernel runs, chosen from tables by the
problem's size only (never by the thread count, so results never depend on it).

Entering a parallel region costs tens of microseconds, so small problems run serial kernels,
and training steps at those sizes run many per call (loops.py). The thresholds below were
measured by benchmarks/suite.py on 2 cores.
"""

import sys
from collections import namedtuple
from dataclasses import dataclass

import numpy as np

from .. import ops
from ..data.corpus import batches_starts, read_windows
from ..optim import make_optimizer
from . import GRAD_WORK, compile_helper, loops
from .grad_kernels import (
    batch_losses,
    counts_grad_parallel,
    counts_grad_serial,
    gather_rows,
    gather_scatter_parallel,
    gather_scatter_read_parallel,
    gather_scatter_read_serial,
    gather_scatter_serial,
    pair_counts_parallel,
    pair_counts_serial,
)
from .loops import (
    GatherScatterBatch,
    PairCountsBatch,
    count_batch_pairs,
    fill_batch,
    fill_batch_parallel,
)
from .update_kernels import (
    kernel_state,
    step_scalars,
    update_parallel,
    update_read_parallel,
    update_serial,
)

PARALLEL_POSITIONS_WORK = 1 << 23  # N * V from which gather/scatter runs in parallel
PARALLEL_ROWS_WORK = 1 << 18  # V * V from which per-row kernels (counts, updates) do
PARALLEL_FILL_POSITIONS = 1 << 16  # N from which a batch's windows are gathered in parallel
CHUNK_WORK = 1 << 25  # elements of work per call between evaluations and progress updates
CHUNK_MAX_STEPS = 1024  # and at most this many steps (each holds its batch's window starts)
SCALAR_STEPS = 256  # steps of an optimizer's scalars computed at once for compiled_update


@dataclass(frozen=True)
class GradMethod:
    """A way to compute a batch's loss and gradient: its kernels (weight, x, y, dweight,
    row_losses, counts) -> loss, when the parallel one runs, its scratch arrays and its
    compiled training loop."""
    serial: object
    parallel: object
    work: object  # (N, V) -> elements of work of one step
    parallel_from: object  # (N, V) -> whether the parallel kernel runs
    counts_shape: object  # V -> shape of the int32 counts scratch
    batch: object  # (x, y, counts) -> the scratch namedtuple of the compiled loop
    loop: object  # the compiled loop of training steps (loops.py) at serial sizes
    # (serial, parallel): its kernels giving the gradient of the rows read only, compactly
    # (StepKernels.rows_read), or None
    rows_read: object
    # (weight, data, window starts, T, x, y, counts, dweight, row_losses) -> the calls of the
    # loop's gradient kernel and batch kernel, (kernel, args) each
    loop_callees: object


GRAD_KERNELS = {
    "gather-scatter": GradMethod(
        gather_scatter_serial, gather_scatter_parallel, work=GRAD_WORK["gather-scatter"],
        parallel_from=lambda n, v: n * v >= PARALLEL_POSITIONS_WORK,
        counts_shape=lambda v: (0, 0), batch=GatherScatterBatch,
        loop=loops.gather_scatter_steps,
        rows_read=(gather_scatter_read_serial, gather_scatter_read_parallel),
        loop_callees=lambda weight, data, starts, block_size, x, y, counts, grad, row_losses: (
            (gather_scatter_serial, (weight, x, y, grad, row_losses, counts)),
            (fill_batch, (data, starts, block_size, x, y)))),
    "pair-counts": GradMethod(
        pair_counts_serial, pair_counts_parallel, work=GRAD_WORK["pair-counts"],
        parallel_from=lambda n, v: v * v >= PARALLEL_ROWS_WORK,
        counts_shape=lambda v: (v, v), batch=lambda x, y, counts: PairCountsBatch(counts),
        loop=loops.pair_counts_steps, rows_read=None,
        loop_callees=lambda weight, data, starts, block_size, x, y, counts, grad, row_losses: (
            (counts_grad_serial, (weight, counts, starts.size * block_size, grad, row_losses)),
            (count_batch_pairs, (data, starts, block_size, counts)))),
}


def rows_parallel(vocab_size):
    """Whether per-row kernels (updates, the full-batch gradient) run in parallel."""
    return vocab_size * vocab_size >= PARALLEL_ROWS_WORK


# The kernels of a training step at given sizes: `loop` runs whole chunks of steps in one
# compiled call; when it is None, Python runs each step as fill (the batch's windows, not for
# full batch), loss_grad, update. rows_read: the gradient is that of the rows the batch reads,
# compactly (loss_grad(weight, x, y, grad_rows, row_of, row_losses), then
# update(weight, grad_rows, row_of, state, scalars, s)), not a (V,C) array mostly of zeros.
StepKernels = namedtuple("StepKernels", "loop fill loss_grad update rows_read",
                         defaults=(False,))


def step_kernels(n_positions, vocab_size, grad_method):
    """The kernels of a batch step: serial sizes run compiled loops; parallel ones, whose steps
    take milliseconds, step by step, the batch gathered in parallel from
    PARALLEL_FILL_POSITIONS positions on."""
    method = GRAD_KERNELS[grad_method]
    parallel_grad = method.parallel_from(n_positions, vocab_size)
    if not (parallel_grad or rows_parallel(vocab_size)):
        return StepKernels(method.loop, None, None, None)
    fill = fill_batch_parallel if n_positions >= PARALLEL_FILL_POSITIONS else fill_batch
    if method.rows_read is not None and n_positions < vocab_size:  # rows never read: zeros
        serial, parallel = method.rows_read
        return StepKernels(None, fill, parallel if parallel_grad else serial,
                           update_read_parallel, rows_read=True)
    return StepKernels(None, fill, method.parallel if parallel_grad else method.serial,
                       _update_kernel(vocab_size))


def full_batch_kernels(vocab_size):
    """The kernels of a full-batch step (the gradient from the split's pair counts)."""
    if not rows_parallel(vocab_size):
        return StepKernels(loops.compiled_full_batch_steps, None, None, None)
    return StepKernels(None, None, counts_grad_parallel, _update_kernel(vocab_size))


def _update_kernel(vocab_size):
    return update_parallel if rows_parallel(vocab_size) else update_serial


# The kernel calls that warm a job up, each a list of (kernel, args), in the order of a first
# run on two cores: this process compiles `gradient`, the batch gradient, while a helper process
# (compile_helper) compiles `callees`, the batch's windows and the optimizer's update, into the
# JIT cache; once they are there, this process compiles `loop`, the compiled loop calling them
# all, while the helper goes on with `evaluation`. The two processes' shares take about the
# same time on the seed job; this process then loads the helper's kernels.
WarmUp = namedtuple("WarmUp", "gradient callees loop evaluation")
TinyModel = namedtuple("TinyModel", "weight")  # what an optimizer reads of its model


def warm_up_spec(model, optimizer, data, batch_size, block_size, grad_method, full_batch):
    """What warm_up_calls needs of a job, as JSON values (the helper receives it so)."""
    return [model.weight.dtype.str, data.dtype.str, bool(data.flags.writeable), block_size,
            batch_size, model.vocab_size, grad_method, bool(full_batch), optimizer.kind,
            dict(zip(optimizer.hyperparameter_names(), optimizer.hyperparameters()))]


def warm_up_calls(spec):
    """WarmUp of the job of `spec` (warm_up_spec): its kernels' calls on a two-token problem of
    the same types, with an optimizer of the same kind and hyperparameters."""
    (dtype, data_dtype, writeable, block_size, batch_size, vocab_size, grad_method, full_batch,
     kind, hyperparameters) = spec
    dtype = np.dtype(dtype)
    problem = (dtype, np.dtype(data_dtype), writeable, block_size)
    weight, tiny, starts = compile_helper.tiny_problem(*problem)
    optimizer = make_optimizer(kind, TinyModel(weight), **hyperparameters)
    grad, losses, row_losses = np.zeros_like(weight), np.empty(1), np.empty(2)
    state, scalars = kernel_state(optimizer), step_scalars(optimizer, 1)
    update = (_update_kernel(vocab_size), (weight, grad, state, scalars, 0))
    evaluation = compile_helper.evaluation_call(*problem)
    if full_batch:
        counts = np.ones((2, 2), dtype=np.int64)
        kernels = full_batch_kernels(vocab_size)
        gradient = (kernels.loss_grad or counts_grad_serial,
                    (weight, counts, int(counts.sum()), grad, row_losses))
        loop = (kernels.loop, (weight, grad, state, scalars, counts, losses))
        return WarmUp([gradient], [update], [loop] if kernels.loop else [], [evaluation])
    method = GRAD_KERNELS[grad_method]
    x, y = np.zeros(block_size, np.int64), np.zeros(block_size, np.int64)
    counts = np.zeros(method.counts_shape(2), np.int32)
    kernels = step_kernels(batch_size * block_size, vocab_size, grad_method)
    if kernels.loop is None:
        if kernels.rows_read:
            grad_rows, row_of = np.zeros((block_size + 1, 2), dtype), np.zeros(2, np.int64)
            gradient = (kernels.loss_grad, (weight, x, y, grad_rows, row_of, row_losses))
            update = (kernels.update, (weight, grad_rows, row_of, state, scalars, 0))
        else:
            gradient = (kernels.loss_grad, (weight, x, y, grad, row_losses, counts))
        fill = (kernels.fill, (tiny, starts[0], block_size, x, y))
        return WarmUp([gradient], [fill, update], [], [evaluation])
    gradient, batch = method.loop_callees(weight, tiny, starts[0], block_size, x, y, counts, grad,
                                          row_losses)
    loop = (kernels.loop, (weight, grad, state, scalars, tiny, starts, block_size,
                           method.batch(x, y, counts), losses))
    return WarmUp([gradient], [batch, update], [loop], [evaluation])


def helper_calls(spec):
    """The helper's two shares of warm_up_calls(spec): the loop's callees, then evaluation."""
    plan = warm_up_calls(spec)
    return plan.callees, plan.evaluation


class NumbaEngine:
    name = "numba"

    def __init__(self):
        self._handed_out = {}  # kind -> the last arrays of that kind given to the caller
        self._scratch = {}  # arrays kept between calls: large fresh arrays cost page faults
        self._scalars = None  # (key, scalars) of the last _scalars_of_step

    def steps_per_call(self, n_positions, vocab_size, grad_method):
        """Steps per run_steps call: about CHUNK_WORK elements of work, at most
        CHUNK_MAX_STEPS. n_positions None: full batch, O(V^2) per step."""
        work = (vocab_size ** 2 if n_positions is None
                else GRAD_KERNELS[grad_method].work(n_positions, vocab_size))
        return max(1, min(CHUNK_MAX_STEPS, CHUNK_WORK // work))

    def batches_per_call(self, n_positions, vocab_size):
        """Batches per batch_losses call: about CHUNK_WORK positions (one entry of W read per
        position), at most CHUNK_MAX_STEPS."""
        return max(1, min(CHUNK_MAX_STEPS, CHUNK_WORK // n_positions))

    def batch_bytes(self, n_positions, vocab_size, itemsize, grad_method):
        """A step's batch: its inputs, targets and targets grouped by row (int64 each), and the
        pair counts (int32) of pair-counts; the logits are never built. A batch's loss alone
        (grad_method None) reads the data in place."""
        if grad_method is None:
            return 0
        counts = np.prod(GRAD_KERNELS[grad_method].counts_shape(vocab_size))
        return 3 * 8 * n_positions + 4 * int(counts)

    def warm_up(self, model, optimizer, data, batch_size, block_size, grad_method, full_batch):
        """Compile, or load from the JIT cache, every kernel that training at these sizes and
        batch evaluation call, on a two-token problem of the same types (so that timed work
        never compiles); on a first run, on two cores (warm_up_calls). Model and optimizer are
        left as they are. Returns how many kernels were compiled (0: all came from the cache)."""
        spec = warm_up_spec(model, optimizer, data, batch_size, block_size, grad_method,
                            full_batch)
        plan = warm_up_calls(spec)
        calls = [call for part in plan for call in part]
        compiled = sum(sum(kernel.stats.cache_misses.values()) for kernel, _ in calls)
        helper = compile_helper.start(spec)
        try:
            for kernel, args in plan.gradient:
                kernel(*args)
            compile_helper.wait_for_callees(helper)  # the loop then loads them from the cache
            for kernel, args in plan.loop:
                kernel(*args)
        finally:
            compiled -= compile_helper.finish(helper)
        for kernel, args in [*plan.callees, *plan.evaluation]:  # the helper's, from the cache
            kernel(*args)
        return sum(sum(kernel.stats.cache_misses.values()) for kernel, _ in calls) - compiled

    def forward(self, weight, x, y, grad_method, return_logits):
        """Logits gathered into a new array; with targets, the loss and gradient in one fused
        pass that never builds the (N,C) probabilities: backward() hands the gradient over."""
        vocab_size = weight.shape[0]
        logits = None
        if return_logits or y is None:
            logits = self._fresh("logits", (x.size, vocab_size), weight.dtype)  # (N,C)
            gather_rows(weight, x, logits)
            self._hand_out("logits", logits)
        if y is None:
            return logits, None, None
        method = GRAD_KERNELS[grad_method]
        kernel = method.parallel if method.parallel_from(x.size, vocab_size) else method.serial
        grad = self._fresh("grad", weight.shape, weight.dtype)
        loss = kernel(weight, x, y, grad, self._array("row_losses", (vocab_size,), np.float64),
                      self._array("counts", method.counts_shape(vocab_size), np.int32))
        return logits, loss, grad

    def backward(self, saved):
        self._hand_out("grad", saved)
        return saved

    def _fresh(self, kind, shape, dtype):
        """An array to hand out: one handed out earlier that nothing outside this engine
        refers to any more (so no array a caller holds ever changes), else a new one.
        Reusing spares the page faults of a fresh large array."""
        handed = self._handed_out.setdefault(kind, [])
        for k in range(len(handed)):
            if sys.getrefcount(handed[k]) <= 2:  # the list's reference and the argument's
                old = handed.pop(k)
                if old.shape == shape and old.dtype == dtype:
                    return old
                break
        return np.empty(shape, dtype=dtype)

    def _hand_out(self, kind, array):
        """Remember the last two arrays of a kind given to the caller, for _fresh."""
        self._handed_out[kind] = [*self._handed_out.get(kind, []), array][-2:]

    def _array(self, name, shape, dtype):
        """A scratch array kept between calls (its contents are overwritten by each use)."""
        array = self._scratch.get(name)
        if array is None or array.shape != tuple(shape) or array.dtype != dtype:
            array = self._scratch[name] = np.empty(shape, dtype=dtype)
        return array

    def compiled_update(self, optimizer, weight, grad):
        """Step optimizer.t of the optimizer's formula, compiled."""
        _update_kernel(weight.shape[0])(weight, grad, kernel_state(optimizer),
                                        *self._scalars_of_step(optimizer, optimizer.t))

    def _scalars_of_step(self, optimizer, t):
        """(scalars, s): step_scalars of SCALAR_STEPS steps from the one holding t, and t's row
        in them. They are kept while the optimizer's kind, dtype and hyperparameters stay the
        same (a schedule that changes lr gets new ones), so most steps compute none."""
        first = t - (t - 1) % SCALAR_STEPS
        key = (optimizer.kind, optimizer.model.weight.dtype, first, optimizer.hyperparameters())
        if self._scalars is None or self._scalars[0] != key:
            self._scalars = key, step_scalars(optimizer, first, SCALAR_STEPS)
        return self._scalars[1], t - first

    def run_steps(self, model, optimizer, data, batch_size, block_size, rng, losses):
        """The README's loop fused: the batches drawn as get_batch draws them, then the kernels
        of step_kernels, in one compiled call or step by step from here."""
        weight, starts = model.weight, batches_starts(len(data), block_size, batch_size, rng,
                                                      len(losses))
        data, starts = read_windows(data, starts, block_size)  # a memory map's, copied out
        vocab_size, n_positions = weight.shape[0], batch_size * block_size
        method = GRAD_KERNELS[model.grad_method]
        x = self._array("x", (n_positions,), np.int64)
        y = self._array("y", (n_positions,), np.int64)
        counts = self._array("counts", method.counts_shape(vocab_size), np.int32)
        state, scalars = kernel_state(optimizer), step_scalars(optimizer, optimizer.t + 1,
                                                               len(losses))
        kernels = step_kernels(n_positions, vocab_size, model.grad_method)
        if not kernels.rows_read:
            grad = self._array("grad", weight.shape, weight.dtype)
        if kernels.loop is not None:
            done = kernels.loop(weight, grad, state, scalars, data, starts, block_size,
                                method.batch(x, y, counts), losses)
            optimizer.t += done
            return done
        row_losses = self._array("row_losses", (vocab_size,), np.float64)
        if kernels.rows_read:
            grad_rows = self._array("grad_rows", (n_positions + 1, vocab_size), weight.dtype)
            row_of = self._array("row_of", (vocab_size,), np.int64)

            def loss_grad():
                return kernels.loss_grad(weight, x, y, grad_rows, row_of, row_losses)

            def update(s):
                kernels.update(weight, grad_rows, row_of, state, scalars, s)
        else:
            def loss_grad():
                return kernels.loss_grad(weight, x, y, grad, row_losses, counts)

            def update(s):
                kernels.update(weight, grad, state, scalars, s)
        done = self._stepwise(losses, lambda s: (kernels.fill(data, starts[s], block_size, x, y),
                                                 loss_grad())[1], update)
        optimizer.t += done
        return done

    def full_batch_steps(self, model, optimizer, counts, losses):
        weight = model.weight
        grad = self._array("grad", weight.shape, weight.dtype)
        state, scalars = kernel_state(optimizer), step_scalars(optimizer, optimizer.t + 1,
                                                               len(losses))
        kernels = full_batch_kernels(weight.shape[0])
        if kernels.loop is not None:
            done = kernels.loop(weight, grad, state, scalars, counts, losses)
        else:
            n_positions, row_losses = int(counts.sum()), np.empty(weight.shape[0])
            done = self._stepwise(
                losses, lambda s: kernels.loss_grad(weight, counts, n_positions, grad, row_losses),
                lambda s: kernels.update(weight, grad, state, scalars, s))
        optimizer.t += done
        return done

    @staticmethod
    def _stepwise(losses, loss_and_grad, update):
        """loss_and_grad(s) then update(s), step by step; stops at a non-finite loss."""
        for s in range(len(losses)):
            losses[s] = loss_and_grad(s)
            if not np.isfinite(losses[s]):
                return s
            update(s)
        return len(losses)

    def batch_losses(self, weight, data, starts, block_size):
        losses = np.empty(len(starts))
        batch_losses(weight, *read_windows(data, starts, block_size), block_size, losses)
        return losses

    exact_loss = staticmethod(ops.loss_from_counts)


if __name__ == "__main__":  # the helper process of a first run's warm-up (compile_helper)
    sys.exit(compile_helper.run(sys.argv[1], helper_calls))
