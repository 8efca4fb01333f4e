"""npbigram/train.py: the Trainer's configuration, exact resume from a checkpoint."""


import numpy as np
import pytest
from npbigram import TrainConfig, Trainer, load_checkpoint

from helpers import save_trainer, trained_trainer

# ----------------------------------------------------------------------------------------------
# resume


# ----------------------------------------------------------------------------------------------
# configuration


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


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(batch_size=0), ValueError, "batch_size must be at least 1, got 0"),
    (dict(block_size=-1), ValueError, "block_size must be at least 1, got -1"),
    (dict(eval_iters=0), ValueError, "eval_iters must be at least 1, got 0"),
    (dict(max_iters=-1), ValueError, "max_iters must be >= 0, got -1"),
    (dict(block_size=8.0), TypeError, "block_size must be an int, got float"),
    (dict(seed="1337"), TypeError, "seed must be an int, got str"),
    (dict(optimizer="adam"), ValueError, "optimizer must be one of adamw, sgd, got 'adam'"),
    (dict(init="ones"), ValueError, "init must be one of normal, zeros, got 'ones'"),
    (dict(eval="full"), ValueError, "eval must be one of estimate, exact, got 'full'"),
    (dict(dtype="float16"), ValueError, "dtype must be one of float32, float64, got 'float16'"),
    (dict(backend="jax"), ValueError, "backend must be one of numpy, numba, got 'jax'"),
])
def test_bad_train_config(kwargs, error, message):
    with pytest.raises(error, match=message):
        TrainConfig(**kwargs)


@pytest.mark.parametrize("length, split", [(9, "train"), (11, "val"), (80, "val")])
def test_corpus_shorter_than_block_size_plus_one(length, split):
    """block_size 8 needs 9 tokens in each split; 90 tokens give the val split exactly 9."""
    with pytest.raises(ValueError, match=rf"the {split} split has \d+ tokens, fewer than "
                                         rf"block_size \+ 1 = 9"):
        Trainer(TrainConfig(backend="numpy"), np.arange(length) % 5, 5)
    Trainer(TrainConfig(backend="numpy"), np.arange(90) % 5, 5).train_step()


# ----------------------------------------------------------------------------------------------
# --backend numpy runs the README's loop


def test_numpy_training_runs_get_batch_forward_backward_and_step_once_a_step(monkeypatch,
                                                                             tmp_path):
    """`npbigram train --backend numpy`: each step is get_batch, model(x, y), model.backward()
    and opt.step(), as the README's loop reads."""
    from npbigram.cli import main
    from npbigram.engine import reference
    from npbigram.model import BigramLanguageModel
    from npbigram.optim import Optimizer

    calls = []

    def spy(owner, name):
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)
        monkeypatch.setattr(owner, name, counted)

    for owner, name in ((reference, "get_batch"), (BigramLanguageModel, "forward"),
                        (BigramLanguageModel, "backward"), (Optimizer, "step")):
        spy(owner, name)
    (tmp_path / "tiny.txt").write_text("the quick brown fox jumps over the lazy dog. " * 20)
    assert main(["train", "--data", "tiny.txt", "--backend", "numpy", "--max-iters", "7",
                 "--eval-iters", "1", "--eval-interval", "100", "--sample-tokens", "0"]) == 0
    assert calls == ["get_batch", "forward", "backward", "step"] * 7
