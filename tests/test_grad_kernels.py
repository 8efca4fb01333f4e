"""npbigram/engine/kernels.py: the one-pass step's loss and gradient (the public API's forward)
against the NumPy reference (npbigram/ops.py) and PyTorch, serial against parallel, grouped by a
sort or by pair-count tables in one chunk or many, compiled against cached."""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from npbigram import BigramLanguageModel, ops
from npbigram.engine.kernels import steps_parallel, steps_serial
from npbigram.engine.numba_engine import no_update

from helpers import TOLERANCE, dtypes


@st.composite
def weight_and_batch(draw, max_vocab=80, max_positions=600):
    """(W (V,V), x (N,), y (N,)) with ids in [0, V) and W at scale up to 1e3."""
    dtype = draw(dtypes)
    vocab_size = draw(st.integers(1, max_vocab))
    n = draw(st.integers(1, max_positions))
    ids = hnp.arrays(np.int64, n, elements=st.integers(0, vocab_size - 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([0.0, 1.0, 30.0, 1e3]))
    weight = (scale * rng.standard_normal((vocab_size, vocab_size))).astype(dtype)
    return weight, draw(ids), draw(ids)


def reference_loss_grad(weight, x, y):
    """ops.py, layer by layer."""
    logits = ops.embedding_forward(weight, x)  # (N,C)
    loss, probs = ops.cross_entropy_forward(logits, y)
    grad = ops.embedding_backward(ops.cross_entropy_backward(probs, y), x, weight.shape[0])
    return float(loss), grad


def run_kernel(kernel, weight, x, y, rule="gather-scatter", chunks=1, tables=False):
    """The kernel's loss and gradient of the batch x, y (N,), as windows of one position split
    into `chunks` chunks, grouped by pair-count tables or by the sort."""
    vocab_size = weight.shape[0]
    grad = np.full_like(weight, np.nan)  # every entry must be written
    loss, empty = np.empty(1), np.empty((0, 0), weight.dtype)
    pairs = np.empty((chunks if tables else 0, vocab_size, vocab_size), np.int32)
    kernel(weight, empty, empty, no_update(weight.dtype), 0, x, y, 0,
           np.arange(x.size, dtype=np.int64).reshape(1, -1), 1, pairs, chunks, False,
           rule == "pair-counts", grad, loss)
    return loss[0], grad


# (kernel, rule, chunks, tables): every way a step groups and sums, serial and parallel
GRAD_KERNELS = [(kernel, rule, chunks, tables)
                for kernel, chunks in ((steps_serial, 1), (steps_parallel, 3))
                for rule, tables in (("gather-scatter", False), ("pair-counts", False),
                                     ("pair-counts", True))]


@settings(deadline=None, max_examples=60)
@given(case=weight_and_batch())
def test_fused_kernels_equal_the_numpy_reference(case):
    weight, x, y = case
    tol = TOLERANCE[weight.dtype.type]
    ref_loss, ref_grad = reference_loss_grad(weight, x, y)
    for kernel, *how in GRAD_KERNELS:
        loss, grad = run_kernel(kernel, weight, x, y, *how)
        assert loss == pytest.approx(ref_loss, rel=tol, abs=tol), (kernel.__name__, how)
        np.testing.assert_allclose(grad, ref_grad, rtol=tol, atol=tol, err_msg=str(how))


@settings(deadline=None, max_examples=40)
@given(case=weight_and_batch())
def test_serial_and_parallel_kernels_agree_bit_for_bit(case):
    weight, x, y = case
    for rule in ("gather-scatter", "pair-counts"):
        loss_s, grad_s = run_kernel(steps_serial, weight, x, y, rule)
        for chunks, tables in ((1, False), (4, False), (1, True), (4, True)):
            if tables and rule == "gather-scatter":
                continue  # gather/scatter needs each row's positions in order: the sort
            loss_p, grad_p = run_kernel(steps_parallel, weight, x, y, rule, chunks, tables)
            assert loss_s == loss_p
            np.testing.assert_array_equal(grad_s, grad_p)


@pytest.mark.slow
@pytest.mark.parametrize("kernel, parallel, rule", [(steps_parallel, True, "gather-scatter"),
                                                    (steps_serial, False, "pair-counts")])
def test_a_fresh_compile_gives_the_same_bits_as_the_cached_kernel(kernel, parallel, rule):
    """No fast-math sum, so inlining differently (callees from the cache cannot be inlined,
    fresh ones can) changes no bit."""
    rng = np.random.default_rng(8)
    weight = rng.standard_normal((65, 65)).astype(np.float32)
    x, y = rng.integers(0, 65, 5000), rng.integers(0, 65, 5000)
    fresh = numba.njit(error_model="numpy", parallel=parallel)(kernel.py_func)
    loss, grad = run_kernel(kernel, weight, x, y, rule)
    loss_fresh, grad_fresh = run_kernel(fresh, weight, x, y, rule)
    assert loss == loss_fresh
    np.testing.assert_array_equal(grad, grad_fresh)


@settings(deadline=None, max_examples=30)
@given(case=weight_and_batch(max_vocab=40, max_positions=300))
def test_pair_counts_and_gather_scatter_equal_torch(torch, case):
    weight, x, y = case
    tol = TOLERANCE[weight.dtype.type]
    w = torch.tensor(weight, requires_grad=True)
    torch_loss = torch.nn.functional.cross_entropy(w[torch.from_numpy(x)], torch.from_numpy(y))
    torch_loss.backward()
    for rule in ("gather-scatter", "pair-counts"):
        loss, grad = run_kernel(steps_serial, weight, x, y, rule)
        assert loss == pytest.approx(torch_loss.item(), rel=tol, abs=tol)
        np.testing.assert_allclose(grad, w.grad.numpy(), rtol=tol, atol=tol)


def test_pair_counts_gradient_is_the_count_formula():
    """dW_i = (n_i softmax(W_i) - C_i) / N, zero for rows no position reads."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((7, 7))
    x, y = np.array([1, 1, 3, 1, 3]), np.array([2, 2, 0, 5, 3])
    counts = np.zeros((7, 7))
    np.add.at(counts, (x, y), 1)
    expected = (counts.sum(1, keepdims=True) * ops.softmax(weight) - counts) / len(x)
    _, grad = run_kernel(steps_serial, weight, x, y, "pair-counts")
    np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-15)
    assert np.all(grad[[0, 2, 4, 5, 6]] == 0)
    for grad_method in ("pair-counts", "gather-scatter"):  # the NumPy reference's two forms
        model = BigramLanguageModel(7, dtype=np.float64, backend="numpy", grad=grad_method)
        model.weight = weight.copy()
        model(x[None], y[None])
        np.testing.assert_allclose(model.backward(), expected, rtol=1e-12, atol=1e-17)
