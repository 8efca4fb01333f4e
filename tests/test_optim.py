"""npbigram/optim/ and their kernels (npbigram/engine/kernels.py): NumPy and numba
give the same bits, and both equal torch.optim."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from npbigram import SGD, AdamW, BigramLanguageModel, TrainConfig

from helpers import TOLERANCE, dtypes, model_with_weight, random_weight


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["adamw", "sgd"])
@pytest.mark.parametrize("vocab_size", [9, 600])  # serial and parallel kernels
def check_against_torch(torch, make, torch_make, dtype, vocab_size, seed, steps):
    """`steps` updates with the same random gradients on the NumPy and numba backends
    (make(model)) and on torch (torch_make([w])): the backends agree bit for bit, and
    with torch within float tolerance."""
    rng = np.random.default_rng(seed)
    models = [BigramLanguageModel(vocab_size, seed=seed, dtype=dtype, backend=b)
              for b in ("numpy", "numba")]
    opts = [make(model) for model in models]
    w = torch.tensor(models[0].weight.copy(), requires_grad=True)
    torch_opt = torch_make([w])
    for _ in range(steps):
        grad = rng.standard_normal((vocab_size, vocab_size)).astype(dtype)
        for model, opt in zip(models, opts):
            model.grad = grad.copy()
            opt.step()
        w.grad = torch.tensor(grad)
        torch_opt.step()
    np.testing.assert_array_equal(models[1].weight, models[0].weight)
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(models[1].weight, w.detach().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["adamw", "sgd"])
@pytest.mark.parametrize("vocab_size", [9, 600])  # serial and parallel kernels
def test_optimizer_kernels_equal_numpy_bitwise_and_torch(torch, kind, dtype, vocab_size):
    make = {"adamw": AdamW, "sgd": SGD}[kind]
    torch_make = {"adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[kind]
    check_against_torch(torch, lambda model: make(model, lr=0.05),
                        lambda params: torch_make(params, lr=0.05), dtype, vocab_size, 4, 5)


# ----------------------------------------------------------------------------------------------
# SGD with torch's momentum, dampening, nesterov and weight decay

sgd_options = st.fixed_dictionaries({
    "lr": st.sampled_from([0.01, 0.1, 0.5]),
    "momentum": st.sampled_from([0.0, 0.5, 0.9]),
    "dampening": st.sampled_from([0.0, 0.1]),
    "nesterov": st.booleans(),
    "weight_decay": st.sampled_from([0.0, 1e-3, 0.05]),
}).filter(lambda o: not o["nesterov"] or (o["momentum"] > 0 and o["dampening"] == 0))


@settings(deadline=None, max_examples=30)
@given(options=sgd_options, dtype=dtypes, vocab_size=st.sampled_from([1, 7, 33]),
       seed=st.integers(0, 2**16))
def test_sgd_equals_torch_on_both_backends(torch, options, dtype, vocab_size, seed):
    check_against_torch(torch, lambda model: SGD(model, **options),
                        lambda params: torch.optim.SGD(params, **options), dtype, vocab_size,
                        seed, 25)


def test_sgd_momentum_state_resumes_exactly():
    model, copy = (BigramLanguageModel(5, seed=1, dtype=np.float64) for _ in range(2))
    first, second = (SGD(m, lr=0.1, momentum=0.9, nesterov=True) for m in (model, copy))
    for opt in (first, second):
        opt.model.grad = np.ones((5, 5))
        opt.step()
    resumed = SGD(BigramLanguageModel(5, seed=1, dtype=np.float64), lr=0.1, momentum=0.9,
                  nesterov=True)
    resumed.model.weight = copy.weight.copy()
    resumed.load_state_dict(second.state_dict())
    for opt in (first, resumed):
        opt.model.grad = np.full((5, 5), 0.5)
        opt.step()
    np.testing.assert_array_equal(resumed.model.weight, first.model.weight)
    assert sorted(first.state) == ["momentum_buffer"] and SGD(model).state == {}


@pytest.mark.parametrize("options, message", [
    (dict(nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (dict(nesterov=True, momentum=0.9, dampening=0.1),
     "Nesterov momentum requires a momentum and zero dampening"),
    (dict(momentum=-0.5), "momentum must be a finite number >= 0"),
    (dict(weight_decay=-1.0), "weight_decay must be a finite number >= 0"),
])
def test_sgd_rejects_what_torch_rejects(torch, options, message):
    with pytest.raises(ValueError, match=message):
        SGD(BigramLanguageModel(3), **options)
    with pytest.raises(ValueError):
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, **options)
    with pytest.raises(ValueError, match="dampening must be a finite number >= 0"):
        SGD(BigramLanguageModel(3), dampening=float("nan"))


# ----------------------------------------------------------------------------------------------
# hyperparameters and state


@pytest.mark.parametrize("optimizer", [AdamW, SGD])
@pytest.mark.parametrize("lr, error, message", [
    (0, ValueError, "lr must be a positive finite number, got 0"),
    (-1e-3, ValueError, "lr must be a positive finite number, got -0.001"),
    (math.nan, ValueError, "lr must be a positive finite number, got nan"),
    (math.inf, ValueError, "lr must be a positive finite number, got inf"),
    ("0.1", TypeError, "lr must be a number, got str"),
    (True, TypeError, "lr must be a number, got bool"),
])
def test_non_positive_learning_rate(model, optimizer, lr, error, message):
    with pytest.raises(error, match=message):
        optimizer(model, lr=lr)
    with pytest.raises(error, match=message):
        TrainConfig(lr=lr)


@pytest.mark.parametrize("kwargs, message", [
    (dict(betas=(0.9, 1.0)), r"betas must lie in \[0, 1\)"),
    (dict(betas=(-0.1, 0.9)), r"betas must lie in \[0, 1\)"),
    (dict(eps=-1e-8), "eps and weight_decay must be >= 0"),
    (dict(weight_decay=math.nan), "eps and weight_decay must be >= 0"),
])
def test_bad_adamw_hyperparameters(model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdamW(model, **kwargs)


def test_optimizer_state_round_trips_through_state_dict(backend):
    model = model_with_weight(random_weight(5, np.float64, 0), backend)
    for make in (lambda m: AdamW(m, lr=0.1, betas=(0.8, 0.99), weight_decay=0.1),
                 lambda m: SGD(m, lr=0.3)):
        original, copy = make(model), make(model_with_weight(model.weight, backend))
        model.grad = np.ones((5, 5))
        original.step()
        copy.load_state_dict(original.state_dict())
        for key, value in original.state_dict().items():
            np.testing.assert_array_equal(copy.state_dict()[key], value)
    with pytest.raises(ValueError, match=r"optimizer state has shape \(5, 5\), model has \(2, 2\)"):
        AdamW(model_with_weight(np.zeros((2, 2)))).load_state_dict(AdamW(model).state_dict())


@pytest.fixture
def model(backend):
    return BigramLanguageModel(7, seed=0, backend=backend)


@pytest.mark.parametrize("kind", ["adamw", "sgd"])
def test_a_learning_rate_changed_between_steps_is_used_by_the_next_step(kind):
    """A schedule that sets opt.lr between steps (the compiled update keeps steps' scalars
    computed ahead): the numba backend follows it bit for bit as the NumPy formula does, within
    a block of precomputed steps and across the boundary of two."""
    make = {"adamw": AdamW, "sgd": lambda m, lr: SGD(m, lr=lr, momentum=0.9)}[kind]
    rng = np.random.default_rng(0)
    models = [BigramLanguageModel(7, seed=0, backend=b) for b in ("numpy", "numba")]
    opts = [make(model, lr=1e-2) for model in models]
    for step in range(1, 300):
        grad = rng.standard_normal((7, 7)).astype(np.float32)
        for model, opt in zip(models, opts):
            if step in (3, 255, 257, 290):
                opt.lr = 1e-2 / step
            model.grad = grad.copy()
            opt.step()
        assert models[1].weight.tobytes() == models[0].weight.tobytes(), step
