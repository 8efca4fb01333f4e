"""The engines: one interface, two implementations, chosen in one place (ENGINES).

    steps_per_call(n_positions, vocab_size, grad_method) -> how many steps run_steps should run
    batches_per_call(n_positions, vocab_size) -> how many batches batch_losses should take
    batch_bytes(n_positions, vocab_size, itemsize, grad_method) -> memory a batch's step needs
        (grad_method None: a batch's loss alone, as evaluation computes it)
    warm_up(model, optimizer, data, batch_size, block_size, grad_method, full_batch)
        -> compile what training at these sizes runs, before it is timed; kernels compiled
    forward(weight, x, y, grad_method, return_logits) -> (logits (N,C) or None, loss, saved)
    backward(saved) -> dL/dW (V,C), a new array the engine never writes again
    compiled_update(optimizer, weight, grad)  step optimizer.t of the optimizer's formula,
        compiled; None where Optimizer.step runs the formula in NumPy
    run_steps(model, optimizer, data, batch_size, block_size, rng, losses) -> steps done: the
        README's loop (get_batch, model(x, y), model.backward(), optimizer.step()), stopping
        before the update of a non-finite loss
    full_batch_steps(model, optimizer, counts, losses) -> steps done
    batch_losses(weight, data, starts, block_size) -> (S,) mean loss of each batch of windows
    exact_loss(weight, counts) -> the mean loss over every pair counted

"numpy" is the reference, layer by layer over npbigram.ops, and runs the training loop as
written, through the model and the optimizer; "numba" fuses and compiles the same math, the
batches drawn alike (npbigram/engine/*_kernels.py, loops.py) and is imported only when first
used.
"""

import importlib

from ..utils.checks import check_choice

ENGINES = {"numpy": ("npbigram.engine.reference", "NumpyEngine"),
           "numba": ("npbigram.engine.numba_engine", "NumbaEngine")}
BACKENDS = tuple(ENGINES)
DEFAULT_BACKEND = "numba"
# helper processes the numba engine may start: "compile", a process compiling part of a first
# run's kernels beside it (compile_helper.py); on for `python -m npbigram` as a process of its
# own (npbigram.cli.process), off in a library user's process
HELPER_PROCESSES = {"compile": False}
GRAD_METHODS = ("gather-scatter", "pair-counts")  # how a batch's gradient is computed
# elements of work of one batch gradient, by method: (N positions, V tokens) -> work
GRAD_WORK = {"gather-scatter": lambda n, v: n * v, "pair-counts": lambda n, v: n + v * v}


def make_engine(backend):
    """A new engine of the named backend."""
    module, name = ENGINES[check_choice(backend, ENGINES, "backend")]
    return getattr(importlib.import_module(module), name)()
