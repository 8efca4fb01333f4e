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
        at a non-finite loss
    full_batch_steps(model, optimizer, counts, losses) -> steps done
    batch_losses(weight, data, starts, block_size) -> (S,) mean loss of each batch of windows
    exact_loss(weight, counts) -> the mean loss over every pair counted

"numpy" is the reference, layer by layer over npbigram.ops, and runs the training loop as
written, through the model and the optimizer; "numba" runs each step as one compiled pass over
the rows of W (kernels.py), the batches drawn alike, and is imported only when first used.
"""

import importlib

from ..utils.checks import check_choice

ENGINES = {"numpy": ("npbigram.engine.reference", "NumpyEngine"),
           "numba": ("npbigram.engine.numba_engine", "NumbaEngine")}
BACKENDS = tuple(ENGINES)
DEFAULT_BACKEND = "numba"
# how a batch's gradient is summed: "gather-scatter" adds each position's (p - onehot)/N into
# the row it read, in position order, as PyTorch does; "pair-counts" computes (n_i p - C_i)/N
# per row from the batch's pair counts (the same gradient, rounded once); "auto", the default,
# is the pair-count formula, which is never slower (see grad_rule)
GRAD_METHODS = ("auto", "gather-scatter", "pair-counts")
# elements of work of one batch gradient, by method: (N positions, V tokens) -> work
GRAD_WORK = {"gather-scatter": lambda n, v: n * v, "pair-counts": lambda n, v: n + v * v}


def grad_rule(grad_method):
    """The rule a gradient method computes with: "auto" is "pair-counts" at every size (its
    O(N + V^2) per step is never more than gather/scatter's O(N V)), so a run's numbers depend
    on its settings only, never on the machine; the other two are themselves."""
    return "pair-counts" if grad_method == "auto" else grad_method


def make_engine(backend):
    """A new engine of the named backend."""
    module, name = ENGINES[check_choice(backend, ENGINES, "backend")]
    return getattr(importlib.import_module(module), name)()
