"""The engine interface (npbigram/engine/): the numba engine against the NumPy reference
through the model and the Trainer, the fused training steps, determinism across thread counts,
and --full-batch, and the warm-up that compiles before training is timed."""

import json
import subprocess
import sys

import numba
import numpy as np
import pytest
from npbigram import (
    BigramLanguageModel,
    TrainConfig,
    Trainer,
    get_batch,
    load_corpus,
    ops,
)
from npbigram.engine.runtime import set_threads
from npbigram.optim import AdamW, make_optimizer
from npbigram.train import FULL_BATCH_DEFAULTS, TrainingDiverged


@pytest.mark.parametrize("grad", ["auto", "gather-scatter", "pair-counts"])
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
    model = BigramLanguageModel(30, seed=fused.config.seed, grad=fused.config.grad)
    opt = AdamW(model, lr=fused.config.lr)
    rng = np.random.default_rng((fused.config.seed, 1))  # the trainer's batch generator
    losses = []
    for _ in range(20):
        losses.append(model(*get_batch(fused.train_data, 8, 32, rng))[1])
        model.backward()
        opt.step()
    np.testing.assert_array_equal(fused.train_steps(20), losses)
    np.testing.assert_array_equal(fused.model.weight, model.weight)


@pytest.mark.parametrize("optimizer, hyperparameters", [
    ("adamw", {"lr": 1e-2}), ("sgd", {"lr": 0.1, "momentum": 0.9})])
@pytest.mark.parametrize("grad", ["gather-scatter", "pair-counts"])
def test_steps_at_a_large_vocabulary_equal_the_public_api(optimizer, hyperparameters, grad):
    """At V = 600 a 32x8 batch reads at most 256 rows: the Trainer's steps update every row in
    one parallel pass (rows no position reads with g = 0), where the public API hands out the
    whole (V,C) gradient and then updates: the same bits."""
    data = np.random.default_rng(8).integers(0, 600, 20000)
    fused = Trainer(TrainConfig(optimizer=optimizer, grad=grad, **hyperparameters), data, 600)
    model = BigramLanguageModel(600, seed=fused.config.seed, grad=grad)
    opt = make_optimizer(optimizer, model, **hyperparameters)
    rng = np.random.default_rng((fused.config.seed, 1))  # the trainer's batch generator
    losses = []
    for _ in range(6):
        losses.append(model(*get_batch(fused.train_data, 8, 32, rng), return_logits=False)[1])
        model.backward()
        opt.step()
    np.testing.assert_array_equal(fused.train_steps(6), losses)
    assert fused.model.weight.tobytes() == model.weight.tobytes()


def test_a_diverging_loop_stops_before_the_bad_update(backend):
    t = trainer(backend, lr=1.0)
    t.model.weight[3, 0] = np.nan
    with pytest.raises(TrainingDiverged):
        t.train_steps(50)
    assert t.step == t.optimizer.t < 50


SIZES = [dict(batch_size=32, block_size=8),  # the serial kernel
         dict(batch_size=512, block_size=64),  # parallel gather/scatter
         dict(batch_size=4096, block_size=64)]  # parallel pair-count tables


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("grad", ["gather-scatter", "pair-counts"])
def test_weights_are_bitwise_identical_for_1_and_2_threads(size, grad):
    """Also at V = 600, where the gradient rows and the optimizer run in parallel."""
    results = []
    for threads in (1, 2, 1):
        set_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        for vocab_size in (30, 600):
            data = np.random.default_rng(7).integers(0, vocab_size, 40000)
            t = Trainer(TrainConfig(grad=grad, **size), data, vocab_size)
            results.append((t.train_steps(3), t.model.weight))
    set_threads(numba.config.NUMBA_NUM_THREADS)
    first_run = results[:2]
    for k, (losses, weight) in enumerate(results[2:]):
        np.testing.assert_array_equal(losses, first_run[k % 2][0])
        np.testing.assert_array_equal(weight, first_run[k % 2][1])


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


def test_a_gradient_the_caller_keeps_never_changes(backend):
    rng = np.random.default_rng(3)
    model = BigramLanguageModel(20, seed=0, backend=backend)
    batches = [(rng.integers(0, 20, (4, 5)), rng.integers(0, 20, (4, 5))) for _ in range(6)]
    model(*batches[0])
    kept = model.backward()
    kept_copy = kept.copy()
    seen = set()
    for xb, yb in batches[1:]:
        model(xb, yb)
        seen.add(id(model.backward()))
    np.testing.assert_array_equal(kept, kept_copy)
    assert id(kept) not in seen


def test_logits_the_caller_keeps_never_change():
    rng = np.random.default_rng(4)
    model = BigramLanguageModel(20, seed=0)
    xb, yb = rng.integers(0, 20, (4, 5)), rng.integers(0, 20, (4, 5))
    kept, _ = model(xb, yb)
    kept_copy = kept.copy()
    kept_3d, _ = model(xb)
    kept_3d_copy = kept_3d.copy()
    for _ in range(4):
        model.weight += 1.0
        logits, _ = model(xb, yb)
        np.testing.assert_array_equal(logits, model.weight[xb.reshape(-1)])
        logits, _ = model(xb)
    np.testing.assert_array_equal(kept, kept_copy)
    np.testing.assert_array_equal(kept_3d, kept_3d_copy)


WARM_UP_SCRIPT = """
import json, sys
import numpy as np
from npbigram import TrainConfig, Trainer
from npbigram.engine import fastmath, kernels

settings, vocab_size = json.loads(sys.argv[1]), int(sys.argv[2])
data = np.random.default_rng(0).integers(0, vocab_size, 300_000)
trainer = Trainer(TrainConfig(max_iters=10, eval_iters=3, **settings), data, vocab_size)

def signatures():
    return {f"{module.__name__}.{name}": len(kernel.signatures)
            for module in (fastmath, kernels)
            for name, kernel in vars(module).items() if hasattr(kernel, "signatures")}

trainer.warm_up()
warm = signatures()
trainer.train_steps(2)
trainer.evaluate()
print(json.dumps({name: count - warm[name] for name, count in signatures().items()
                  if count != warm[name]}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("settings, vocab_size", [
    ({}, 65),  # bigram.py's run: the serial kernel, sorting the batch
    ({"grad": "gather-scatter", "dtype": "float64"}, 65),
    ({"batch_size": 512, "block_size": 64}, 65),  # pair-count tables
    ({"optimizer": "sgd", "momentum": 0.9, "lr": 0.1}, 65),
    ({"optimizer": "sgd", "lr": 0.1}, 65),
    ({"batch_size": 512, "block_size": 256, "grad": "gather-scatter"}, 65),  # parallel
    ({"batch_size": 4, "block_size": 8}, 600),  # the parallel kernel
    ({"full_batch": True, "eval": "exact", "lr": 0.5}, 65),
    ({"full_batch": True, "eval": "exact", "lr": 0.5}, 600),  # parallel full batch
])
def test_warm_up_compiles_every_kernel_that_training_runs(settings, vocab_size):
    """The training time included the kernels' compilation. After
    Trainer.warm_up (a tiny problem of the same types), training and evaluating compile nothing
    more: checked in a fresh process, where nothing else compiled them first."""
    result = subprocess.run([sys.executable, "-c", WARM_UP_SCRIPT, json.dumps(settings),
                             str(vocab_size)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {}
