"""Checkpoints: round trip, corruption, exact resume; and the PyTorch state_dict interop."""

import json
import sys

import numpy as np
import pytest
from helpers import model_with_weight, random_weight
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npbigram import (SGD, AdamW, ByteTokenizer, CharTokenizer, TrainConfig, Trainer,
                      load_checkpoint, save_checkpoint)
from npbigram.interop import from_torch_state_dict, to_torch_state_dict

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 40
TOKENIZER = CharTokenizer.from_text(TEXT)
DATA = TOKENIZER.encode(TEXT)


def trained_trainer(backend, steps=5, **config):
    config = TrainConfig(**{"batch_size": 4, "block_size": 8, "max_iters": 60, "eval_interval": 20,
                            "eval_iters": 5, "backend": backend, **config})
    trainer = Trainer(config, DATA, TOKENIZER.vocab_size)
    for _ in range(steps):
        trainer.train_step()
    return trainer


def save_trainer(path, trainer):
    save_checkpoint(path, trainer.model, **trainer.checkpoint_kwargs(TOKENIZER))


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    """The bytes of a checkpoint with every part: weights, tokenizer, AdamW state, rng."""
    path = tmp_path_factory.mktemp("ckpt") / "ckpt.npz"
    save_trainer(path, trained_trainer("numpy"))
    return path.read_bytes()


# ----------------------------------------------------------------------------------------------
# round trip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_round_trip_keeps_everything(tmp_path, backend, dtype, optimizer):
    trainer = trained_trainer(backend, dtype=dtype, optimizer=optimizer)
    path = tmp_path / "ckpt.npz"
    save_trainer(path, trainer)

    checkpoint = load_checkpoint(path, backend=backend)
    assert checkpoint.model.backend == backend
    assert checkpoint.model.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(checkpoint.model.weight, trainer.model.weight)
    assert checkpoint.tokenizer.chars == TOKENIZER.chars
    assert checkpoint.config == trainer.config.to_dict()
    assert checkpoint.step == 5
    rng = np.random.default_rng()
    rng.bit_generator.state = checkpoint.rng_state
    assert rng.random() == trainer.rng.random()
    expected = trainer.optimizer.state_dict()
    assert checkpoint.optimizer_state.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_array_equal(checkpoint.optimizer_state[key], value)

    with np.load(path, allow_pickle=False) as npz:  # plain NumPy reads it
        assert json.loads(str(npz["meta"]))["step"] == 5
        np.testing.assert_array_equal(npz["weight"], trainer.model.weight)


@pytest.mark.parametrize("tokenizer", [None, ByteTokenizer(), CharTokenizer("ab\ud800")])
def test_round_trip_of_a_bare_model(tmp_path, tokenizer):
    vocab_size = 256 if isinstance(tokenizer, ByteTokenizer) else 3
    model = model_with_weight(random_weight(vocab_size, np.float64, 0))
    path = tmp_path / "model.npz"
    model.save(path, tokenizer=tokenizer)
    checkpoint = load_checkpoint(path, backend="numpy")
    np.testing.assert_array_equal(checkpoint.model.weight, model.weight)
    assert (None if checkpoint.tokenizer is None else checkpoint.tokenizer.to_json()) == (
        None if tokenizer is None else tokenizer.to_json())
    assert (checkpoint.step, checkpoint.optimizer_state, checkpoint.rng_state) == (0, None, None)
    np.testing.assert_array_equal(type(model).load(path, backend="numpy").weight, model.weight)


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, checkpoint_bytes):
    path = tmp_path / "ckpt.npz"
    path.write_bytes(checkpoint_bytes)
    model = model_with_weight(random_weight(3, np.float32, 0))
    with pytest.raises(TypeError):
        save_checkpoint(path, model, config={"unserializable": object()})
    assert path.read_bytes() == checkpoint_bytes
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]


# ----------------------------------------------------------------------------------------------
# corruption


def npz_bytes(tmp_path, **arrays):
    path = tmp_path / "foreign.npz"
    np.savez(path, **arrays)
    return path.read_bytes()


def meta_of(checkpoint_bytes, tmp_path):
    path = tmp_path / "good.npz"
    path.write_bytes(checkpoint_bytes)
    with np.load(path) as npz:
        return json.loads(str(npz["meta"])), dict(npz)


def rewritten(tmp_path, checkpoint_bytes, **changes):
    """The checkpoint with some meta fields or arrays replaced."""
    meta, arrays = meta_of(checkpoint_bytes, tmp_path)
    for key, value in changes.items():
        if key in meta:
            meta[key] = value
        else:
            arrays[key] = value
    arrays["meta"] = np.array(json.dumps(meta))
    return npz_bytes(tmp_path, **arrays)


FOREIGN = {
    "empty file": (lambda tmp, good: b"", "not an .npz"),
    "text file": (lambda tmp, good: b"step 0: train loss 4.1744\n", "not a readable"),
    "single .npy array": (lambda tmp, good: _npy_bytes(tmp), "not an .npz"),
    "other npz": (lambda tmp, good: npz_bytes(tmp, a=np.zeros(3)), r"it has keys \['a'\]"),
    "meta not JSON": (lambda tmp, good: npz_bytes(tmp, weight=np.zeros((2, 2)),
                                                  meta=np.array("{oops")), "not a valid"),
    "unknown format": (lambda tmp, good: rewritten(tmp, good, format="other-2"),
                       "unknown format 'other-2'"),
    "weight shape": (lambda tmp, good: rewritten(tmp, good, weight=np.zeros((3, 3), np.float32)),
                     r"weight is float32 \(3, 3\), expected float32"),
    "weight dtype": (lambda tmp, good: rewritten(tmp, good, weight=np.zeros((30, 30))),
                     r"weight is float64 \(30, 30\), expected float32"),
    "tokenizer size": (lambda tmp, good: rewritten(tmp, good, tokenizer=ByteTokenizer().to_json()),
                       "tokenizer has 256 tokens, weight 30"),
    "bad step": (lambda tmp, good: rewritten(tmp, good, step="five"), "not a valid"),
    "bad config": (lambda tmp, good: rewritten(tmp, good, config=[1, 2]), "not a valid"),
    "missing moments": (lambda tmp, good: _without(tmp, good, "opt_v"), "opt_v"),
}


def _npy_bytes(tmp_path):
    np.save(tmp_path / "array.npy", np.zeros((30, 30), np.float32))
    return (tmp_path / "array.npy").read_bytes()


def _without(tmp_path, checkpoint_bytes, key):
    meta, arrays = meta_of(checkpoint_bytes, tmp_path)
    del arrays[key]
    return npz_bytes(tmp_path, **arrays)


@pytest.mark.parametrize("name", FOREIGN)
def test_foreign_or_malformed_files_are_a_clear_value_error(tmp_path, checkpoint_bytes, name):
    make, message = FOREIGN[name]
    path = tmp_path / "ckpt.npz"
    path.write_bytes(make(tmp_path, checkpoint_bytes))
    with pytest.raises(ValueError, match=message) as failure:
        load_checkpoint(path, backend="numpy")
    assert str(path) in str(failure.value)


def test_a_missing_checkpoint_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="checkpoint .*nope.npz does not exist"):
        load_checkpoint(tmp_path / "nope.npz")


@given(cut=st.integers(0, 10**6))
@settings(deadline=None, max_examples=60,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_truncated_checkpoint_is_a_value_error(tmp_path, checkpoint_bytes, cut):
    cut %= len(checkpoint_bytes)
    path = tmp_path / "truncated.npz"
    path.write_bytes(checkpoint_bytes[:cut])
    with pytest.raises(ValueError, match="truncated.npz is not a"):
        load_checkpoint(path, backend="numpy")


@given(position=st.integers(0, 10**6), flip=st.integers(1, 255))
@settings(deadline=None, max_examples=150,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_corrupted_checkpoint_is_an_error_or_loads_the_same(tmp_path, checkpoint_bytes,
                                                              position, flip):
    """A flipped byte is caught (CRC, structure) unless it lies where nothing is read."""
    corrupt = bytearray(checkpoint_bytes)
    corrupt[position % len(corrupt)] ^= flip
    path = tmp_path / "corrupt.npz"
    path.write_bytes(bytes(corrupt))
    good = tmp_path / "good.npz"
    good.write_bytes(checkpoint_bytes)
    try:
        checkpoint = load_checkpoint(path, backend="numpy")
    except ValueError as e:
        assert "corrupt.npz is not a" in str(e)
        return
    expected = load_checkpoint(good, backend="numpy")
    np.testing.assert_array_equal(checkpoint.model.weight, expected.model.weight)
    assert checkpoint.optimizer_state.keys() == expected.optimizer_state.keys()
    for key, value in expected.optimizer_state.items():
        np.testing.assert_array_equal(checkpoint.optimizer_state[key], value)
    assert (checkpoint.config, checkpoint.step, checkpoint.rng_state) == (
        expected.config, expected.step, expected.rng_state)


# ----------------------------------------------------------------------------------------------
# resume


@pytest.mark.parametrize("optimizer, dtype, eval_mode", [
    ("adamw", "float32", "estimate"), ("adamw", "float64", "exact"), ("sgd", "float32", "exact"),
])
def test_resume_continues_exactly(tmp_path, backend, optimizer, dtype, eval_mode):
    """Stop after 25 steps, save, restore in a fresh Trainer: the same losses to the bit."""
    settings_ = dict(optimizer=optimizer, dtype=dtype, eval=eval_mode)
    uninterrupted = trained_trainer(backend, steps=0, **settings_)
    losses = [uninterrupted.train_step() for _ in range(60)]
    first = trained_trainer(backend, steps=0, **settings_)
    resumed_losses = [first.train_step() for _ in range(25)]
    path = tmp_path / "ckpt.npz"
    save_trainer(path, first)
    first.train_step()  # work after the checkpoint is lost

    second = trained_trainer(backend, steps=0, **settings_)
    second.restore(load_checkpoint(path, backend=backend))
    assert second.step == 25
    resumed_losses += [second.train_step() for _ in range(35)]

    assert resumed_losses == losses
    np.testing.assert_array_equal(second.model.weight, uninterrupted.model.weight)
    assert second.evaluate() == uninterrupted.evaluate()


def test_restore_rejects_another_vocabulary_or_optimizer(tmp_path, checkpoint_bytes):
    path = tmp_path / "ckpt.npz"
    path.write_bytes(checkpoint_bytes)
    checkpoint = load_checkpoint(path, backend="numpy")
    other = Trainer(TrainConfig(backend="numpy"), np.arange(100) % 40, 40)
    with pytest.raises(ValueError, match="checkpoint vocabulary 30 does not match the data's 40"):
        other.restore(checkpoint)
    sgd = trained_trainer("numpy", steps=0, optimizer="sgd")
    with pytest.raises(ValueError, match="checkpoint optimizer 'adamw' does not match 'sgd'"):
        sgd.restore(checkpoint)


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


# ----------------------------------------------------------------------------------------------
# PyTorch interop


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_dict_loads_into_bigram_py_and_back(torch, torch_bigram, backend, dtype):
    model = model_with_weight(random_weight(65, dtype, 0), backend)
    state_dict = to_torch_state_dict(model)
    assert list(state_dict) == ["token_embedding_table.weight"]
    reference = torch_bigram(65).to({np.float32: torch.float32, np.float64: torch.float64}[dtype])
    reference.load_state_dict(state_dict)  # strict: exactly bigram.py's keys and shapes
    idx = np.random.default_rng(0).integers(0, 65, (4, 8))
    np.testing.assert_array_equal(reference(torch.from_numpy(idx))[0].detach().numpy(),
                                  model(idx)[0])

    exported = model.weight.copy()
    model.weight += 1.0  # the exported tensor is a copy
    np.testing.assert_array_equal(state_dict["token_embedding_table.weight"].numpy(), exported)

    back = from_torch_state_dict(reference.state_dict(), backend=backend)
    assert (back.vocab_size, back.dtype, back.backend) == (65, np.dtype(dtype), backend)
    np.testing.assert_array_equal(back.weight, exported)
    with torch.no_grad():
        reference.token_embedding_table.weight.zero_()  # the imported array is a copy
    assert np.any(back.weight != 0)


def test_state_dict_of_a_trained_torch_model_imports(torch, torch_bigram):
    torch.manual_seed(0)
    reference = torch_bigram(10)  # float32, with requires_grad parameters
    state = from_torch_state_dict(reference.state_dict(), dtype=np.float64, backend="numpy")
    assert state.dtype == np.float64
    np.testing.assert_array_equal(state.weight,
                                  reference.token_embedding_table.weight.detach().double().numpy())
    half = {"token_embedding_table.weight": torch.ones(3, 3, dtype=torch.float16)}
    assert from_torch_state_dict(half, dtype=np.float32, backend="numpy").weight.sum() == 9


@pytest.mark.parametrize("make_state, error, message", [
    (lambda t: {}, ValueError, r"missing \['token_embedding_table.weight'\]"),
    (lambda t: {"token_embedding_table.weight": t.zeros(2, 2), "lm_head.weight": t.zeros(2, 2)},
     ValueError, r"unexpected \['lm_head.weight'\]"),
    (lambda t: {"weight": t.zeros(2, 2)}, ValueError, "not a bigram.py state_dict"),
    (lambda t: {"token_embedding_table.weight": t.zeros(2, 3)}, ValueError,
     r"must be a square \(V, V\) table with V >= 1, got shape \(2, 3\)"),
    (lambda t: {"token_embedding_table.weight": t.zeros(4)}, ValueError, r"got shape \(4,\)"),
    (lambda t: {"token_embedding_table.weight": t.zeros(0, 0)}, ValueError, r"got shape \(0, 0\)"),
    (lambda t: {"token_embedding_table.weight": np.zeros((2, 2))}, TypeError,
     "must be a torch.Tensor, got ndarray"),
    (lambda t: {"token_embedding_table.weight": t.zeros(2, 2, dtype=t.float16)}, TypeError,
     r"has dtype torch.float16: pass dtype="),
])
def test_bad_state_dicts(torch, make_state, error, message):
    with pytest.raises(error, match=message):
        from_torch_state_dict(make_state(torch), backend="numpy")


def test_interop_without_torch_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    model = model_with_weight(np.zeros((2, 2)))
    with pytest.raises(ImportError, match="PyTorch interop needs torch: pip install torch"):
        to_torch_state_dict(model)
    with pytest.raises(ImportError, match="PyTorch interop needs torch"):
        from_torch_state_dict({})
