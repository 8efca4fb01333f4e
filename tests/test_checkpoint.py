"""Checkpoints (npbigram/checkpoint.py, and the model's save_checkpoint/load_checkpoint): round trip and corruption."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from npbigram import ByteTokenizer, CharTokenizer, load_checkpoint, save_checkpoint

from helpers import (
    TOKENIZER,
    model_with_weight,
    random_weight,
    save_trainer,
    trained_trainer,
)

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
    assert rng.random() == trainer.batch_rng.random()
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
    save_checkpoint(path, model, tokenizer=tokenizer)
    checkpoint = load_checkpoint(path, backend="numpy")
    np.testing.assert_array_equal(checkpoint.model.weight, model.weight)
    assert (None if checkpoint.tokenizer is None else checkpoint.tokenizer.to_json()) == (
        None if tokenizer is None else tokenizer.to_json())
    assert (checkpoint.step, checkpoint.optimizer_state, checkpoint.rng_state) == (0, None, None)


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
    "negative step": (lambda tmp, good: rewritten(tmp, good, step=-5),
                      "not a valid .*step must be >= 0, got -5"),
    "negative elapsed": (lambda tmp, good: rewritten(tmp, good, elapsed=-1.0),
                         "elapsed must be a finite number >= 0, got -1.0"),
    "history past the step": (lambda tmp, good: _with_history(tmp, good, [0, 20]),
                              "evaluation at step 20 is out of order"),
    "history out of order": (lambda tmp, good: _with_history(tmp, good, [3, 3]),
                             "evaluation at step 3 is out of order"),
    "non-finite weights": (lambda tmp, good: _with_nonfinite(tmp, good, "weight", [3, 17]),
                           r"the weights hold non-finite values in rows 3, 17 \(of 30\): the "
                           r"checkpoint is damaged"),
    "non-finite optimizer state": (lambda tmp, good: _with_nonfinite(tmp, good, "opt_m", [0]),
                                   r"the optimizer's m holds non-finite values in row 0 "
                                   r"\(of 30\)"),
    "missing moments": (lambda tmp, good: _without(tmp, good, "opt_v"), "opt_v"),
}


def _with_history(tmp_path, checkpoint_bytes, steps):
    """The checkpoint (at step 5) with evaluations at `steps`."""
    history = [{"step": step, "train": 3.0, "val": 3.1, "elapsed": 0.5} for step in steps]
    return rewritten(tmp_path, checkpoint_bytes, history=history)


def _with_nonfinite(tmp_path, checkpoint_bytes, key, rows):
    """The checkpoint with a NaN in array `key` at each of `rows`, an infinity in the last."""
    meta, arrays = meta_of(checkpoint_bytes, tmp_path)
    table = arrays[key].copy()
    table[rows, 1] = np.nan
    table[rows[-1], 2] = np.inf
    return rewritten(tmp_path, checkpoint_bytes, **{key: table})


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


def test_a_missing_checkpoint_is_a_file_not_found_error(tmp_path):
    """It was a ValueError."""
    with pytest.raises(FileNotFoundError, match="checkpoint .*nope.npz does not exist"):
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
