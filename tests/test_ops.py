"""npbigram/ops.py, the model's math, layer by layer: each forward against PyTorch, each backward
against PyTorch's autograd and against central finite differences of its forward, and the
pair-count forms (counts_backward, loss_from_counts) against the per-position ones they group.
Then the same math through the model, on every backend. Read it beside ops.py."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from npbigram import BigramLanguageModel, ops
from npbigram.data.corpus import pair_counts

from helpers import TOLERANCE, dtypes, model_with_weight, random_weight

seeds = st.integers(0, 2**32 - 1)


@st.composite
def table_and_batch(draw, dtype=dtypes, max_vocab=30, max_positions=64, max_scale=1e4):
    """(W (V,V), x (N,), y (N,)): ids in [0, V), W of N(0, s^2) entries, s from 0 up to
    max_scale (softmax rows from flat to one-hot), in float32 or float64."""
    vocab_size = draw(st.integers(1, max_vocab))
    ids = hnp.arrays(np.int64, draw(st.integers(1, max_positions)),
                     elements=st.integers(0, vocab_size - 1))
    scale = draw(st.sampled_from([s for s in (0.0, 1.0, 30.0, 1e4) if s <= max_scale]))
    weight = random_weight(vocab_size, draw(dtype), draw(seeds), scale)
    return weight, draw(ids), draw(ids)


def central_differences(f, x, h=1e-6):
    """d f / d x by (f(x + h) - f(x - h)) / 2h, one entry of x (float64) at a time."""
    numeric = np.empty_like(x)
    for i in np.ndindex(*x.shape):
        saved = x[i]
        x[i] = saved + h
        plus = f(x)
        x[i] = saved - h
        minus = f(x)
        x[i] = saved
        numeric[i] = (plus - minus) / (2 * h)
    return numeric


def as_torch(torch, array, requires_grad=False):
    return torch.tensor(array, requires_grad=requires_grad)


# ----------------------------------------------------------------------------------------------
# embedding: logits = W[idx], dW = the scatter-add of dlogits into the rows read


@settings(deadline=None, max_examples=30)
@given(case=table_and_batch(), seed=seeds)
def test_embedding_forward_and_backward_equal_torch(torch, case, seed):
    weight, x, _ = case
    tol = TOLERANCE[weight.dtype.type]
    idx = x.reshape(1, -1)  # (B,T)
    logits = ops.embedding_forward(weight, idx)
    w = as_torch(torch, weight, requires_grad=True)
    torch_logits = torch.nn.functional.embedding(torch.from_numpy(idx), w)
    np.testing.assert_array_equal(logits, torch_logits.detach().numpy())
    assert logits.shape == (*idx.shape, weight.shape[1])  # (B,T,C)
    dlogits = np.random.default_rng(seed).standard_normal(logits.shape).astype(weight.dtype)
    torch_logits.backward(torch.from_numpy(dlogits))
    dweight = ops.embedding_backward(dlogits, idx, weight.shape[0])
    assert dweight.dtype == weight.dtype
    np.testing.assert_allclose(dweight, w.grad.numpy(), rtol=tol, atol=tol)


def test_embedding_backward_sums_the_gradients_of_a_row_read_twice():
    dlogits = np.array([[1.0, 2.0], [10.0, 20.0], [100.0, 200.0]])  # (N,C)
    np.testing.assert_array_equal(ops.embedding_backward(dlogits, np.array([2, 0, 2]), 4),
                                  [[10, 20], [0, 0], [101, 202], [0, 0]])


@settings(deadline=None, max_examples=20)
@given(case=table_and_batch(dtype=st.just(np.float64), max_vocab=6, max_positions=12,
                           max_scale=30.0), seed=seeds)
def test_embedding_backward_equals_finite_differences(case, seed):
    """The gradient of sum(G * embedding_forward(W, idx)) with respect to W (weights within
    30, so that the differences' rounding, about |W| 1e-16 / h, stays far below 1e-7)."""
    weight, x, _ = case
    upstream = np.random.default_rng(seed).standard_normal((len(x), weight.shape[1]))  # G
    numeric = central_differences(lambda w: (upstream * ops.embedding_forward(w, x)).sum(),
                                  weight.copy())
    np.testing.assert_allclose(ops.embedding_backward(upstream, x, weight.shape[0]), numeric,
                               rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------------------------
# softmax and cross-entropy: loss = mean -log p[y], dlogits = (p - onehot(y)) / N


@settings(deadline=None, max_examples=30)
@given(case=table_and_batch())
def test_softmax_and_log_softmax_equal_torch_at_any_scale(torch, case):
    logits = case[0]
    tol = TOLERANCE[logits.dtype.type]
    probs, logp = ops.softmax(logits), ops.log_softmax(logits)
    assert np.all(np.isfinite(logp))  # the row max is subtracted before exp
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=tol)
    np.testing.assert_allclose(probs, torch.softmax(as_torch(torch, logits), -1).numpy(),
                               rtol=tol, atol=tol)
    np.testing.assert_allclose(logp, torch.log_softmax(as_torch(torch, logits), -1).numpy(),
                               rtol=tol, atol=tol)


@settings(deadline=None, max_examples=30)
@given(case=table_and_batch())
def test_cross_entropy_forward_and_backward_equal_torch(torch, case):
    weight, x, y = case
    tol = TOLERANCE[weight.dtype.type]
    logits = weight[x]  # (N,C)
    loss, probs = ops.cross_entropy_forward(logits, y)
    np.testing.assert_allclose(probs, ops.softmax(logits), rtol=tol, atol=tol)
    torch_logits = as_torch(torch, logits, requires_grad=True)
    torch_loss = torch.nn.functional.cross_entropy(torch_logits, torch.from_numpy(y))
    torch_loss.backward()
    assert np.isfinite(loss)
    assert loss == pytest.approx(torch_loss.item(), rel=tol, abs=tol)
    dlogits = ops.cross_entropy_backward(probs, y)
    np.testing.assert_allclose(dlogits, torch_logits.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dlogits.sum(axis=1), 0.0, atol=tol)  # softmax rows minus one-hot


@settings(deadline=None, max_examples=20)
@given(case=table_and_batch(dtype=st.just(np.float64), max_vocab=8, max_positions=12),
       scale=st.floats(0.0, 5.0))
def test_cross_entropy_backward_equals_finite_differences(case, scale):
    weight, x, y = case
    logits = scale * weight[x] / max(1.0, np.abs(weight).max())  # (N,C), entries within scale
    _, probs = ops.cross_entropy_forward(logits, y)
    numeric = central_differences(lambda z: ops.cross_entropy_forward(z, y)[0], logits.copy())
    np.testing.assert_allclose(ops.cross_entropy_backward(probs, y), numeric,
                               rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------------------------
# the pair-count forms: the loss and gradient of a batch from its (input, target) pair counts


@settings(deadline=None, max_examples=30)
@given(case=table_and_batch())
def test_counts_backward_and_loss_from_counts_equal_the_per_position_forms(case):
    weight, x, y = case
    vocab_size, tol = weight.shape[0], TOLERANCE[weight.dtype.type]
    counts = ops.count_pairs(x, y, vocab_size)
    expected = np.zeros((vocab_size, vocab_size), dtype=np.int64)
    np.add.at(expected, (x, y), 1)
    np.testing.assert_array_equal(counts, expected)
    loss, probs = ops.cross_entropy_forward(ops.embedding_forward(weight, x), y)
    per_position = ops.embedding_backward(ops.cross_entropy_backward(probs, y), x, vocab_size)
    grouped = ops.counts_backward(ops.softmax(weight), counts)
    assert grouped.dtype == weight.dtype
    np.testing.assert_allclose(grouped, per_position, rtol=tol, atol=tol)
    assert ops.loss_from_counts(weight, counts) == pytest.approx(loss, rel=tol, abs=tol)


@settings(deadline=None, max_examples=20)
@given(case=table_and_batch(dtype=st.just(np.float64), max_vocab=6, max_positions=20),
       scale=st.floats(0.0, 5.0))
def test_counts_backward_is_the_gradient_of_loss_from_counts(case, scale):
    weight, x, y = case
    weight = scale * weight / max(1.0, np.abs(weight).max())
    counts = ops.count_pairs(x, y, weight.shape[0])
    numeric = central_differences(lambda w: ops.loss_from_counts(w, counts), weight.copy())
    np.testing.assert_allclose(ops.counts_backward(ops.softmax(weight), counts), numeric,
                               rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------------------------
# the same math through the model, on every backend


def test_forward_without_targets_returns_rows_of_the_table(backend):
    model = BigramLanguageModel(7, seed=0, backend=backend)
    idx = np.array([[0, 6, 6], [3, 2, 1]])
    logits, loss = model(idx)
    assert loss is None
    assert logits.shape == (2, 3, 7)
    np.testing.assert_array_equal(logits, model.weight[idx])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(vocab_size=st.integers(1, 300), batch=st.integers(1, 8), block=st.integers(1, 64))
@settings(deadline=None, max_examples=25)
def test_init_zeros_gives_step_0_loss_ln_v(backend, dtype, vocab_size, batch, block):
    """Every logit equal: p = 1/V everywhere, so every position's loss is ln V, and their mean
    is ln V up to the rounding of a sum of B*T equal terms."""
    model = BigramLanguageModel(vocab_size, init="zeros", dtype=dtype, backend=backend)
    rng = np.random.default_rng(vocab_size)
    idx, targets = rng.integers(0, vocab_size, size=(2, batch, block))
    _, loss = model(idx, targets)
    assert loss == pytest.approx(math.log(vocab_size), rel=1e-6 if dtype == np.float32 else 1e-13,
                                 abs=1e-15)
    counts = pair_counts(rng.integers(0, vocab_size, 50), vocab_size)
    assert ops.loss_from_counts(model.weight, counts) == pytest.approx(math.log(vocab_size),
                                                                       rel=1e-15, abs=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_give_finite_correct_loss_and_gradient(backend, dtype):
    weight = np.array([[1e4, -1e4, 0.0],
                       [-1e30, 0.0, -1e30],
                       [-1e30, -1e30, -1e30]], dtype=dtype)
    model = model_with_weight(weight, backend)
    cases = [  # (token, next token, exact loss)
        (0, 0, 0.0),  # log(1 + e^-1e4 + e^-2e4) underflows to 0
        (0, 1, 2e4),
        (0, 2, 1e4),
        (1, 1, 0.0),
        (1, 0, 1e30),
        (2, 1, math.log(3)),  # a row of equal -1e30 logits is uniform
    ]
    for token, target, expected in cases:
        _, loss = model(np.array([[token]]), np.array([[target]]))
        assert loss == pytest.approx(expected, rel=1e-6, abs=1e-6), (token, target)
        grad = model.backward()
        assert np.all(np.isfinite(grad))
        np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-6)  # softmax rows minus one-hot
    idx = np.array([[c[0] for c in cases]])
    _, loss = model(idx, np.array([[c[1] for c in cases]]))
    assert loss == pytest.approx(np.mean([c[2] for c in cases]), rel=1e-6)
