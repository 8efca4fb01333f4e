"""npbigram/limits.py: memory checked before any work, in training and in gradcheck; gradcheck's
progress on a terminal."""

import os
import subprocess
import sys

import pytest
from npbigram import TrainConfig, Trainer, limits
from npbigram.cli import main
from npbigram.limits import InsufficientMemory, check_memory
from npbigram.train import training_memory

from helpers import open_terminal, read_terminal

GB = 10**9


@pytest.fixture
def eight_gb(monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: 8 * GB)


def test_check_memory_names_the_largest_part_and_what_to_change(eight_gb):
    check_memory("a job", [("small", 1 * GB, "nothing")])
    with pytest.raises(InsufficientMemory) as failure:
        check_memory("a job", [("weights", 2 * GB, "fewer tokens"), ("a batch", 7 * GB,
                                                                       "lower --batch-size")])
    assert str(failure.value) == ("a job needs about 9.0 GB of memory (a batch: 7.0 GB), more "
                                  "than the 8.0 GB available: lower --batch-size")


def test_unknown_available_memory_checks_nothing(monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: None)
    check_memory("a job", [("everything", 10**15, "less")])


def test_available_memory_is_known_here():
    assert limits.available_memory() > 0


def test_a_huge_batch_is_refused_before_any_work(tinyshakespeare, tmp_path, capsys, eight_gb):
    """--batch-size 100000000 was accepted, and the kernel killed the
    process at 24 GB without a message."""
    out = tmp_path / "ckpt.npz"
    assert main(["train", "--data", str(tinyshakespeare), "--batch-size", "100000000",
                 "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and not out.exists()
    assert captured.err.startswith("npbigram: error: training needs about ")
    assert captured.err.endswith(" GB of memory (training steps on batches of 800,000,000 "
                                 "positions: 20.8 GB), more than the 8.0 GB available: lower "
                                 "--batch-size or --block-size\n")


def test_the_estimate_covers_the_model_a_chunk_and_an_evaluation():
    config = TrainConfig(batch_size=4096, block_size=256, eval_iters=200)
    model, largest = training_memory(config, 4096)
    assert model[1] == 4 * 4 * 4096**2  # float32 weights, gradient, AdamW's two moments
    assert largest == ("the pair counts of the splits", 5 * 8 * 4096**2,
                       "use a text with fewer distinct tokens (this one has 4,096)")
    assert training_memory(config, 65)[1][0] == "training steps on batches of 1,048,576 positions"
    reference = training_memory(TrainConfig(batch_size=4096, block_size=256, backend="numpy"),
                                4096)[1]
    assert reference[1] > 6 * 4 * 4096 * 2**20  # the NumPy engine holds (N,V) logits


def test_the_trainer_itself_refuses(eight_gb):
    with pytest.raises(InsufficientMemory, match="lower --eval-iters"):
        Trainer(TrainConfig(eval_iters=10**10), [0, 1] * 100, 2)


@pytest.mark.parametrize("argv, message", [
    (["--vocab", "100000"], "GB of memory (the 100,000x100,000 table, gradients and errors: "
                            "640.0 GB), more than the 8.0 GB available: lower --vocab (or use a "
                            "text with fewer characters)"),
    (["--vocab", "2000", "--batch", "10000", "--block", "64"], "lower --batch or --block"),
])
def test_gradcheck_too_large_for_memory_is_refused(capsys, eight_gb, argv, message):
    """gradcheck --vocab 100000 printed numpy's _ArrayMemoryError
    traceback."""
    assert main(["gradcheck", *argv]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("npbigram: error: ")
    assert message in captured.err


def test_gradcheck_shows_its_progress_on_a_terminal():
    """gradcheck --vocab 2000 --batch 64 --block 64 ran over 20 s with no
    progress shown."""
    controller, terminal = open_terminal()
    process = subprocess.Popen([sys.executable, "-m", "npbigram", "gradcheck", "--vocab", "300",
                                "--batch", "16", "--block", "16"],
                               stdout=subprocess.PIPE, stderr=terminal)
    os.close(terminal)
    try:
        shown = read_terminal(controller, b"entry", timeout=120)
    finally:
        process.kill()
        process.wait()
        os.close(controller)
    assert b"gradcheck:" in shown and b"/90.0k" in shown
