"""train --snapshots N: the table at up to N evaluations, spread over the run, kept in the
checkpoint (npbigram/train.py kept_evaluations, npbigram/checkpoint.py), capped in bytes
(npbigram/preflight.py check_snapshots), resumed exactly."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from npbigram import TrainConfig, load_checkpoint
from npbigram.checkpoint import read_checkpoint, write_checkpoint
from npbigram.cli import main
from npbigram.preflight import SNAPSHOT_BYTES_LIMIT, training_memory
from npbigram.train import kept_evaluations

from helpers import TEXT, save_trainer, trained_trainer

TRAIN = ["--data", "text.txt", "--max-iters", "100", "--eval-interval", "10", "--eval-iters",
         "2", "--sample-tokens", "0", "--backend", "numpy"]


@pytest.fixture
def text(tmp_path):
    (tmp_path / "text.txt").write_text(TEXT)


@given(evaluations=st.integers(1, 300), limit=st.integers(0, 12))
def test_kept_evaluations_are_few_spread_and_only_ever_dropped(evaluations, limit):
    steps, before = [], set()
    for n in range(evaluations):
        steps.append(10 * n)
        kept = kept_evaluations(steps, limit)
        assert len(kept) <= limit
        assert kept <= before | {steps[-1]}  # what a run kept before, and the newest
        if limit:
            assert steps[-1] in kept
        if limit >= 2:
            assert steps[0] in kept and len(kept) >= min(n + 1, limit / 2)
            assert len(set(np.diff(sorted(kept - {steps[-1]})))) <= 1  # evenly spread
        before = kept


def test_bigram_pys_evaluations_keep_five_tables():
    assert sorted(kept_evaluations(list(range(0, 3001, 300)), 5)) == [0, 1200, 2400, 3000]
    assert sorted(kept_evaluations(list(range(0, 3001, 300)), 11)) == list(range(0, 3001, 300))


def test_train_keeps_the_snapshots_in_the_checkpoint(text, capsys):
    assert main(["train", *TRAIN, "--snapshots", "4"]) == 0
    checkpoint = load_checkpoint("ckpt.npz")
    steps = [step for step, _ in checkpoint.snapshots]
    assert len(steps) == 4 and steps[0] == 0 and steps[-1] == 100
    assert set(steps) <= {evaluation["step"] for evaluation in checkpoint.history}
    np.testing.assert_array_equal(checkpoint.snapshots[-1][1], checkpoint.model.weight)
    assert all(table.dtype == np.float32 for _, table in checkpoint.snapshots)
    with np.load("ckpt.npz", allow_pickle=False) as npz:  # plain arrays, no pickle
        assert npz["snapshots"].shape == (4, *checkpoint.model.weight.shape)


def test_a_resumed_run_keeps_the_snapshots_of_an_uninterrupted_one(text):
    assert main(["train", *TRAIN, "--snapshots", "3", "--out", "whole.npz"]) == 0
    assert main(["train", *TRAIN, "--snapshots", "3", "--max-iters", "40"]) == 0
    assert main(["train", "--resume", "ckpt.npz", "--max-iters", "100"]) == 0
    whole, resumed = load_checkpoint("whole.npz"), load_checkpoint("ckpt.npz")
    assert [s for s, _ in resumed.snapshots] == [s for s, _ in whole.snapshots]
    for (_, a), (_, b) in zip(resumed.snapshots, whole.snapshots):
        np.testing.assert_array_equal(a, b)


def test_snapshots_over_the_cap_are_refused_naming_the_flag_before_any_work(text, capsys):
    vocab_size = len(set(TEXT))
    most = SNAPSHOT_BYTES_LIMIT // (4 * vocab_size ** 2)
    assert main(["train", *TRAIN, "--snapshots", str(most + 1)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"npbigram: error: --snapshots {most + 1:,} would keep ")
    assert f"more than its cap of 64 MiB: use --snapshots {most:,} or fewer" in err
    assert err.count("\n") == 1
    assert not any(path.suffix == ".npz" for path in Path().iterdir())


def test_the_run_memory_counts_the_snapshots():
    parts = training_memory(TrainConfig(snapshots=10), 100)
    assert ("10 snapshots of the table", 10 * 100 * 100 * 4, "lower --snapshots") in parts


def test_a_checkpoint_without_snapshots_loads_with_none(tmp_path):
    save_trainer(tmp_path / "ckpt.npz", trained_trainer("numpy"))
    assert load_checkpoint(tmp_path / "ckpt.npz").snapshots == []


def snapshot_arrays(tmp_path):
    """(arrays, meta) of a checkpoint at step 5 holding one snapshot, to damage."""
    trainer = trained_trainer("numpy", snapshots=2)
    trainer.record_evaluation({"train": 1.0, "val": 1.0})
    save_trainer(tmp_path / "ckpt.npz", trainer)
    arrays, meta = read_checkpoint(tmp_path / "ckpt.npz")
    meta.pop("arrays")
    return arrays, meta


@pytest.mark.parametrize("damage, message", [
    ({"snapshot_steps": [0, 3]}, "snapshots are float32 (1, "),
    ({"snapshot_steps": [7]}, "are not rising within [0, 5]"),
    ({"snapshot_steps": []}, "snapshots are float32 (1, "),
])
def test_damaged_snapshots_are_refused(tmp_path, damage, message):
    arrays, meta = snapshot_arrays(tmp_path)
    write_checkpoint(tmp_path / "bad.npz", arrays, {**meta, **damage})
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_checkpoint(tmp_path / "bad.npz")


def test_a_snapshot_holding_a_nan_is_damage(tmp_path):
    arrays, meta = snapshot_arrays(tmp_path)
    arrays["snapshots"][0, 2, 3] = np.nan
    write_checkpoint(tmp_path / "bad.npz", arrays, meta)
    with pytest.raises(ValueError, match="the snapshot at step 5 holds non-finite values in row 2"):
        load_checkpoint(tmp_path / "bad.npz")
