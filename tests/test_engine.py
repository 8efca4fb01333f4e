"""The numba engine (npbigram/kernels.py) against the NumPy reference (npbigram/ops.py) and
PyTorch: the exp, the fused loss+gradient kernels, pair counts, the optimizer kernels, the
fused training loop, determinism across thread counts, id validation, and --full-batch."""

import os

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from npbigram import (SGD, AdamW, BigramLanguageModel, TrainConfig, Trainer, get_batch, kernels,
                      load_corpus, ops)
from npbigram.cli import main
from npbigram.train import FULL_BATCH_DEFAULTS, TrainingDiverged

TOLERANCE = {np.float32: 1e-5, np.float64: 1e-10}
dtypes = st.sampled_from([np.float32, np.float64])


@numba.njit
def exp_f32_map(x):
    out = np.empty_like(x)
    for k in range(x.size):
        out[k] = kernels.exp_f32(x[k])
    return out


def ulp_error(x):
    """|exp_f32(x) - exp(x)| in units of the float32 spacing at exp(x) (float64 reference)."""
    exact = np.exp(x.astype(np.float64))
    spacing = np.spacing(np.abs(exact.astype(np.float32))).astype(np.float64)
    spacing = np.maximum(spacing, 2.0**-149)  # the subnormals' spacing
    return np.abs(exp_f32_map(x).astype(np.float64) - exact) / spacing


# ----------------------------------------------------------------------------------------------
# exp


def test_exp_is_within_2_ulp_over_the_float32_range():
    """Every 61st float32 bit pattern whose exp is finite and not 0 (about 37 million)."""
    bits = np.arange(0, 2**32, 61, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = x[np.isfinite(x) & (x > -104.0) & (x < 88.72)]
    assert ulp_error(x).max() <= 2.0


@settings(deadline=None, max_examples=300)
@given(x=st.floats(-110, 89, width=32))
def test_exp_matches_float64_exp_anywhere(x):
    x = np.array([x], dtype=np.float32)
    with np.errstate(over="ignore"):
        overflows = np.isinf(np.exp(x.astype(np.float64)).astype(np.float32)[0])
        if overflows:
            assert np.isinf(exp_f32_map(x)[0])
        else:
            assert ulp_error(x)[0] <= 2.0


def test_exp_edges():
    x = np.array([0.0, -0.0, 1.0, -1.0, 88.72, 88.73, 100.0, 3e38, np.inf,
                  -103.9, -104.0, -110.0, -1e30, -np.inf, np.nan], dtype=np.float32)
    y = exp_f32_map(x)
    assert y[0] == 1.0 and y[1] == 1.0
    assert np.isfinite(y[4]) and np.all(np.isinf(y[5:9]))  # no overflow before inf
    assert 0 < y[9] < 2.0**-126  # subnormal, not flushed
    assert np.all(y[10:14] == 0.0)  # exactly 0 for large negative inputs
    assert np.isnan(y[14])


# ----------------------------------------------------------------------------------------------
# the loss+gradient kernels


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


def run_kernel(kernel, weight, x, y):
    pair_counts = "pair_counts" in kernel.__name__
    grad = np.full_like(weight, np.nan)  # every entry must be written
    loss = kernel(weight, x, y, grad, np.empty(weight.shape[0]),
                  kernels.counts_scratch(pair_counts, weight.shape[0]))
    return loss, grad


GRAD_KERNELS = [kernels.gather_scatter_serial, kernels.gather_scatter_parallel,
                kernels.pair_counts_serial, kernels.pair_counts_parallel]


@settings(deadline=None, max_examples=60)
@given(case=weight_and_batch())
def test_fused_kernels_equal_the_numpy_reference(case):
    weight, x, y = case
    tol = TOLERANCE[weight.dtype.type]
    ref_loss, ref_grad = reference_loss_grad(weight, x, y)
    for kernel in GRAD_KERNELS:
        loss, grad = run_kernel(kernel, weight, x, y)
        assert loss == pytest.approx(ref_loss, rel=tol, abs=tol), kernel.__name__
        np.testing.assert_allclose(grad, ref_grad, rtol=tol, atol=tol, err_msg=kernel.__name__)


@settings(deadline=None, max_examples=40)
@given(case=weight_and_batch())
def test_serial_and_parallel_kernels_agree_bit_for_bit(case):
    weight, x, y = case
    for serial, parallel in ((kernels.gather_scatter_serial, kernels.gather_scatter_parallel),
                             (kernels.pair_counts_serial, kernels.pair_counts_parallel)):
        loss_s, grad_s = run_kernel(serial, weight, x, y)
        loss_p, grad_p = run_kernel(parallel, weight, x, y)
        assert loss_s == loss_p
        np.testing.assert_array_equal(grad_s, grad_p)


def test_a_fresh_compile_gives_the_same_bits_as_the_cached_kernel():
    """No fast-math sum, so inlining differently (callees from the cache cannot be inlined,
    fresh ones can) changes no bit."""
    rng = np.random.default_rng(8)
    weight = rng.standard_normal((65, 65)).astype(np.float32)
    x, y = rng.integers(0, 65, 5000), rng.integers(0, 65, 5000)
    for kernel in (kernels.gather_scatter_parallel, kernels.pair_counts_serial):
        fresh = numba.njit(error_model="numpy")(kernel.py_func)
        loss, grad = run_kernel(kernel, weight, x, y)
        loss_fresh, grad_fresh = run_kernel(fresh, weight, x, y)
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
    for kernel in (kernels.gather_scatter_serial, kernels.pair_counts_serial):
        loss, grad = run_kernel(kernel, weight, x, y)
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
    _, grad = run_kernel(kernels.pair_counts_serial, weight, x, y)
    np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-15)
    assert np.all(grad[[0, 2, 4, 5, 6]] == 0)


@pytest.mark.parametrize("grad", ["gather-scatter", "pair-counts"])
def test_model_backends_agree_and_backward_hands_back_the_fused_gradient(grad):
    rng = np.random.default_rng(1)
    xb, yb = rng.integers(0, 65, (32, 8)), rng.integers(0, 65, (32, 8))
    numpy_model, numba_model = (BigramLanguageModel(65, seed=3, backend=b, grad=grad)
                                for b in ("numpy", "numba"))
    logits_np, loss_np = numpy_model(xb, yb)
    logits_nb, loss_nb = numba_model(xb, yb)
    np.testing.assert_array_equal(logits_nb, logits_np)
    assert loss_nb == pytest.approx(loss_np, rel=1e-6)
    np.testing.assert_allclose(numba_model.backward(), numpy_model.backward(), atol=1e-8)
    assert numba_model(xb, yb, return_logits=False)[0] is None
    np.testing.assert_array_equal(numba_model(xb)[0], numpy_model(xb)[0])


def test_forward_leaves_grad_alone_until_backward():
    rng = np.random.default_rng(2)
    model = BigramLanguageModel(20, seed=0)
    model(rng.integers(0, 20, (4, 5)), rng.integers(0, 20, (4, 5)))
    first = model.backward().copy()
    model(rng.integers(0, 20, (4, 5)), rng.integers(0, 20, (4, 5)))
    np.testing.assert_array_equal(model.grad, first)
    assert not np.array_equal(model.backward(), first)


# ----------------------------------------------------------------------------------------------
# optimizers


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["adamw", "sgd"])
@pytest.mark.parametrize("vocab_size", [9, 600])  # serial and parallel kernels
def test_optimizer_kernels_equal_numpy_bitwise_and_torch(torch, kind, dtype, vocab_size):
    rng = np.random.default_rng(4)
    models = [BigramLanguageModel(vocab_size, seed=5, dtype=dtype, backend=b)
              for b in ("numpy", "numba")]
    make = {"adamw": AdamW, "sgd": SGD}[kind]
    opts = [make(model, lr=0.05) for model in models]
    w = torch.tensor(models[0].weight.copy(), requires_grad=True)
    torch_opt = {"adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[kind]([w], lr=0.05)
    for _ in range(5):
        grad = rng.standard_normal((vocab_size, vocab_size)).astype(dtype)
        for model, opt in zip(models, opts):
            model.grad = grad.copy()
            opt.step()
        w.grad = torch.tensor(grad)
        torch_opt.step()
    np.testing.assert_array_equal(models[1].weight, models[0].weight)
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(models[1].weight, w.detach().numpy(), rtol=tol, atol=tol)


# ----------------------------------------------------------------------------------------------
# the training loop

TEXT_IDS = np.random.default_rng(6).integers(0, 30, 5000)


def trainer(backend="numba", **config):
    return Trainer(TrainConfig(backend=backend, eval_iters=4, **config), TEXT_IDS, 30)


@pytest.mark.parametrize("grad", ["gather-scatter", "pair-counts"])
@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_fused_loop_equals_step_by_step_and_the_numpy_trainer(grad, optimizer):
    fused, stepwise, reference = (trainer(backend, grad=grad, optimizer=optimizer)
                                  for backend in ("numba", "numba", "numpy"))
    losses = fused.train_steps(40)
    np.testing.assert_array_equal([stepwise.train_step() for _ in range(40)], losses)
    np.testing.assert_array_equal(stepwise.model.weight, fused.model.weight)
    assert fused.step == stepwise.step == 40 and fused.optimizer.t == 40
    np.testing.assert_allclose(reference.train_steps(40), losses, rtol=1e-5)
    np.testing.assert_allclose(reference.model.weight, fused.model.weight, atol=1e-4)
    np.testing.assert_allclose(list(fused.evaluate().values()),
                               list(reference.evaluate().values()), rtol=1e-5)


def test_the_fused_loop_equals_the_public_api_on_the_same_batches():
    fused = trainer()
    model = BigramLanguageModel(30, seed=fused.config.seed)
    opt = AdamW(model, lr=fused.config.lr)
    rng = np.random.default_rng((fused.config.seed, 1))  # the trainer's batch generator
    losses = []
    for _ in range(20):
        losses.append(model(*get_batch(fused.train_data, 8, 32, rng))[1])
        model.backward()
        opt.step()
    np.testing.assert_array_equal(fused.train_steps(20), losses)
    np.testing.assert_array_equal(fused.model.weight, model.weight)


def test_a_diverging_loop_stops_before_the_bad_update():
    t = trainer(lr=1.0)
    t.model.weight[3, 0] = np.nan
    with pytest.raises(TrainingDiverged):
        t.train_steps(50)
    assert t.step == t.optimizer.t < 50


SIZES = [dict(batch_size=32, block_size=8),  # serial kernels in one compiled call
         dict(batch_size=512, block_size=64)]  # parallel gather/scatter, step by step


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("grad", ["gather-scatter", "pair-counts"])
def test_weights_are_bitwise_identical_for_1_and_2_threads(size, grad):
    """Also at V = 600, where the gradient rows and the optimizer run in parallel."""
    results = []
    for threads in (1, 2, 1):
        kernels.set_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        for vocab_size in (30, 600):
            data = np.random.default_rng(7).integers(0, vocab_size, 40000)
            t = Trainer(TrainConfig(grad=grad, **size), data, vocab_size)
            results.append((t.train_steps(3), t.model.weight))
    kernels.set_threads(numba.config.NUMBA_NUM_THREADS)
    first_run = results[:2]
    for k, (losses, weight) in enumerate(results[2:]):
        np.testing.assert_array_equal(losses, first_run[k % 2][0])
        np.testing.assert_array_equal(weight, first_run[k % 2][1])


def test_set_threads_checks_its_argument():
    with pytest.raises(ValueError, match="NUMBA_NUM_THREADS"):
        kernels.set_threads(numba.config.NUMBA_NUM_THREADS + 1)
    with pytest.raises(ValueError):
        kernels.set_threads(0)
    with pytest.raises(TypeError):
        kernels.set_threads(1.5)


# ----------------------------------------------------------------------------------------------
# validation before every kernel


@pytest.mark.parametrize("bad", [-1, 30, 2**40])
def test_out_of_range_ids_raise_before_any_kernel(bad):
    model = BigramLanguageModel(30, seed=0)
    ok = np.zeros((2, 3), dtype=np.int64)
    broken = ok.copy()
    broken[1, 2] = bad
    for args in ((broken,), (broken, ok), (ok, broken)):
        with pytest.raises(ValueError, match="outside"):
            model(*args)
    with pytest.raises(ValueError, match="outside"):
        Trainer(TrainConfig(), np.append(TEXT_IDS, bad), 30)


# ----------------------------------------------------------------------------------------------
# full batch


def test_full_batch_defaults_reach_the_target_losses(tinyshakespeare):
    tokenizer, ids = load_corpus(tinyshakespeare)
    t = Trainer(TrainConfig(**FULL_BATCH_DEFAULTS, full_batch=True), ids, tokenizer.vocab_size)
    losses = t.train_steps(t.config.max_iters)
    exact = t.exact_losses()
    assert exact["train"] <= 2.4540 and exact["val"] <= 2.4860
    assert losses[-1] == pytest.approx(ops.loss_from_counts(
        t.model.weight, t.split_counts()["train"]), abs=0.01)  # the exact loss, a step earlier


def test_full_batch_backends_agree():
    fused, reference = (trainer(backend, full_batch=True, lr=0.3) for backend in ("numba", "numpy"))
    np.testing.assert_allclose(fused.train_steps(30), reference.train_steps(30), rtol=1e-5)
    np.testing.assert_allclose(fused.model.weight, reference.model.weight, atol=1e-4)


def test_cli_train_flags(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 40)
    out = str(tmp_path / "ckpt.npz")
    assert main(["train", "--data", str(text), "--out", out, "--full-batch", "--max-iters", "50",
                 "--threads", "1", "--grad", "pair-counts"]) == 0
    printed = capsys.readouterr().out
    assert "step 0:" in printed and "trained 50 steps" in printed
    assert main(["train", "--data", str(text), "--out", out, "--threads", "99"]) == 1
    assert "NUMBA_NUM_THREADS" in capsys.readouterr().err
    kernels.set_threads(numba.config.NUMBA_NUM_THREADS)


# ----------------------------------------------------------------------------------------------
# the JIT cache location


def test_cache_falls_back_to_a_user_folder_when_the_package_is_read_only(monkeypatch, tmp_path):
    package_cache = os.path.join(os.path.dirname(kernels.__file__), "__pycache__")
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    real_writable = kernels._writable
    monkeypatch.setattr(kernels, "_writable",
                        lambda path: str(path) != package_cache and real_writable(path))
    assert kernels._cache_location() == (str(tmp_path / "npbigram" / "numba"), True)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert kernels._cache_location() == (str(tmp_path / "mine"), True)
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setattr(kernels, "_writable", lambda path: False)
    with pytest.warns(RuntimeWarning, match="NUMBA_CACHE_DIR"):
        assert kernels._cache_location() == (None, False)
