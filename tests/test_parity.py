"""The NumPy model and optimizers against PyTorch (bigram.py's nn.Embedding + F.cross_entropy +
.backward() and torch.optim), and the hand-derived gradient against finite differences."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from npbigram import SGD, AdamW, get_batch
from npbigram.interop import to_torch_state_dict

from helpers import model_with_weight, random_weight

TOLERANCE = {np.float32: 1e-5, np.float64: 1e-10}
dtypes = st.sampled_from([np.float32, np.float64])
seeds = st.integers(0, 2**32 - 1)


@st.composite
def bigram_batches(draw, max_vocab=300, max_positions=4096):
    """(V, idx, targets): idx and targets (B,T) ids in [0, V), B*T up to max_positions."""
    vocab_size = draw(st.integers(1, max_vocab))
    batch = draw(st.integers(1, 64))
    block = draw(st.integers(1, max_positions // batch))
    ids = hnp.arrays(np.int64, (batch, block), elements=st.integers(0, vocab_size - 1))
    return vocab_size, draw(ids), draw(ids)


def torch_reference(torch, torch_bigram, model):
    """bigram.py's module holding `model`'s weights, in `model`'s dtype."""
    dtype = {np.float32: torch.float32, np.float64: torch.float64}[model.dtype.type]
    reference = torch_bigram(model.vocab_size).to(dtype)
    reference.load_state_dict(to_torch_state_dict(model))
    return reference


@pytest.mark.slow
@settings(deadline=None, max_examples=100)
@given(batch=bigram_batches(), dtype=dtypes, seed=seeds,
       scale=st.one_of(st.just(1e4), st.floats(0, 1e4)), masked=st.sampled_from([0.0, 0.2, 1.0]))
def test_logits_loss_and_gradient_equal_torch(torch, torch_bigram, backend, batch, dtype, seed,
                                              scale, masked):
    """`masked`: the fraction of logits set to -1e30, next tokens made all but impossible."""
    vocab_size, idx, targets = batch
    weight = random_weight(vocab_size, dtype, seed, scale)
    weight[np.random.default_rng((seed, 1)).random(weight.shape) < masked] = -1e30
    model = model_with_weight(weight, backend)
    reference = torch_reference(torch, torch_bigram, model)
    tol = TOLERANCE[dtype]

    logits, loss = model(idx, targets)
    model.backward()
    ref_logits, ref_loss = reference(torch.from_numpy(idx), torch.from_numpy(targets))
    ref_loss.backward()

    np.testing.assert_array_equal(logits, ref_logits.detach().numpy())
    assert np.isfinite(loss)
    assert loss == pytest.approx(ref_loss.item(), rel=tol, abs=tol)
    assert model.grad.dtype == dtype
    np.testing.assert_allclose(model.grad, reference.token_embedding_table.weight.grad.numpy(),
                               rtol=tol, atol=tol)
    logits_only, no_loss = model(idx)
    assert no_loss is None
    np.testing.assert_array_equal(logits_only, reference(torch.from_numpy(idx))[0].detach().numpy())


def run_optimizer_pair(torch, model, optimizer, torch_optimizer, grads):
    """Feed the same gradients to both optimizers; return torch's weights."""
    param = torch_optimizer.param_groups[0]["params"][0]
    for grad in grads:
        model.grad = grad
        optimizer.step()
        param.grad = torch.from_numpy(grad.copy())
        torch_optimizer.step()
    return param.detach().numpy()


@st.composite
def gradient_sequences(draw, dtype, max_steps=25):
    """Gradients of mixed scales, with rows that are zero for a while as unseen tokens are."""
    vocab_size = draw(st.integers(1, 40))
    steps = draw(st.integers(1, max_steps))
    rng = np.random.default_rng(draw(seeds))
    scale = draw(st.sampled_from([1e-6, 1e-3, 1.0, 1e3]))
    grads = []
    for _ in range(steps):
        seen = rng.random((vocab_size, 1)) < 0.7  # rows of tokens absent from this batch
        grads.append((scale * rng.standard_normal((vocab_size, vocab_size)) * seen).astype(dtype))
    return vocab_size, grads


@settings(deadline=None, max_examples=60)
@given(data=st.data(), dtype=dtypes, seed=seeds, lr=st.floats(1e-4, 1.0),
       # beta2 < 0.5 is left out: v then holds little more than the latest g^2, and m / sqrt(v)
       # magnifies float32 rounding differences past 1e-5
       betas=st.tuples(st.floats(0.0, 0.99), st.floats(0.5, 0.9999)),
       eps=st.sampled_from([1e-8, 1e-6, 1e-3]), weight_decay=st.sampled_from([0.0, 1e-2, 0.3]))
def test_adamw_steps_equal_torch(torch, backend, data, dtype, seed, lr, betas, eps, weight_decay):
    vocab_size, grads = data.draw(gradient_sequences(dtype))
    model = model_with_weight(random_weight(vocab_size, dtype, seed), backend)
    param = torch.nn.Parameter(torch.from_numpy(model.weight.copy()))
    hyper = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    expected = run_optimizer_pair(torch, model, AdamW(model, **hyper),
                                  torch.optim.AdamW([param], **hyper), grads)
    tol = 1e-9 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(model.weight, expected, rtol=tol, atol=tol)


def test_adamw_defaults_25_float64_steps_within_1e9(torch, backend):
    rng = np.random.default_rng(0)
    model = model_with_weight(random_weight(65, np.float64, 1), backend)
    param = torch.nn.Parameter(torch.from_numpy(model.weight.copy()))
    grads = [rng.standard_normal((65, 65)) for _ in range(25)]
    expected = run_optimizer_pair(torch, model, AdamW(model), torch.optim.AdamW([param]), grads)
    np.testing.assert_allclose(model.weight, expected, rtol=0, atol=1e-9)


@settings(deadline=None, max_examples=30)
@given(data=st.data(), dtype=dtypes, seed=seeds, lr=st.floats(1e-4, 10.0))
def test_sgd_steps_equal_torch(torch, backend, data, dtype, seed, lr):
    vocab_size, grads = data.draw(gradient_sequences(dtype))
    model = model_with_weight(random_weight(vocab_size, dtype, seed), backend)
    param = torch.nn.Parameter(torch.from_numpy(model.weight.copy()))
    expected = run_optimizer_pair(torch, model, SGD(model, lr=lr),
                                  torch.optim.SGD([param], lr=lr), grads)
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(model.weight, expected, rtol=tol, atol=tol * np.abs(grads).max())


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind, optimizer_class, lr", [("adamw", AdamW, 1e-2), ("sgd", SGD, 1.0)])
def test_100_training_steps_on_identical_batches_end_equal(torch, torch_bigram, backend, dtype,
                                                           kind, optimizer_class, lr):
    """bigram.py's loop, batch for batch, in NumPy and in torch."""
    vocab_size, block_size, batch_size = 65, 8, 32
    rng = np.random.default_rng(7)
    zipf = 1.0 / np.arange(1, vocab_size + 1)  # skewed like text: some tokens rarely seen
    data = rng.choice(vocab_size, size=20_000, p=zipf / zipf.sum())
    model = model_with_weight(random_weight(vocab_size, dtype, 1337), backend)
    reference = torch_reference(torch, torch_bigram, model)
    optimizer = optimizer_class(model, lr=lr)
    torch_optimizer = getattr(torch.optim, {"adamw": "AdamW", "sgd": "SGD"}[kind])(
        reference.parameters(), lr=lr)

    losses, ref_losses = [], []
    for _ in range(100):
        xb, yb = get_batch(data, block_size, batch_size, rng)
        _, loss = model(xb, yb)
        model.backward()
        optimizer.step()
        losses.append(loss)
        _, ref_loss = reference(torch.from_numpy(xb), torch.from_numpy(yb))
        torch_optimizer.zero_grad(set_to_none=True)
        ref_loss.backward()
        torch_optimizer.step()
        ref_losses.append(ref_loss.item())

    tol = TOLERANCE[dtype]
    assert losses[-1] < losses[0]
    np.testing.assert_allclose(losses, ref_losses, rtol=tol, atol=tol)
    np.testing.assert_allclose(model.weight,
                               reference.token_embedding_table.weight.detach().numpy(),
                               rtol=tol, atol=tol)


@settings(deadline=None, max_examples=40)
@given(batch=bigram_batches(max_vocab=12, max_positions=64), seed=seeds,
       scale=st.floats(0.0, 5.0))
def test_gradient_equals_central_finite_differences_float64(batch, seed, scale):
    vocab_size, idx, targets = batch
    model = model_with_weight(random_weight(vocab_size, np.float64, seed, scale))
    model(idx, targets)
    grad = model.backward().copy()
    h = 1e-6
    numeric = np.empty_like(grad)
    weight = model.weight
    for i, j in np.ndindex(*weight.shape):
        saved = weight[i, j]
        weight[i, j] = saved + h
        loss_plus = model(idx, targets)[1]
        weight[i, j] = saved - h
        loss_minus = model(idx, targets)[1]
        weight[i, j] = saved
        numeric[i, j] = (loss_plus - loss_minus) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
