"""`npbigram eval` (npbigram/cli/evaluation.py): the exact loss of a checkpoint over every pair
of a text, in nats and bits per character."""

import math
import re

import numpy as np
import pytest
from npbigram import load_checkpoint, ops, train_val_split
from npbigram.cli import main
from npbigram.data.corpus import load_corpus, pair_counts

LINE = re.compile(r"(\w+): +(\d+\.\d{4}) nats = (\d+\.\d{4}) bits per (\w+), the mean over all "
                  r"([\d,]+) pairs")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval")
    text = folder / "text.txt"
    text.write_text("to be, or not to be, that is the question:\n" * 50)
    assert main(["train", "--data", str(text), "--out", str(folder / "ckpt.npz"), "--max-iters",
                 "40", "--eval-interval", "20", "--eval-iters", "5", "--sample-tokens", "0"]) == 0
    return folder, text


def results(stdout):
    return {m[1]: (float(m[2]), float(m[3]), m[4], int(m[5].replace(",", "")))
            for m in map(LINE.fullmatch, stdout.splitlines()[1:])}


def test_eval_scores_each_split_of_the_checkpoints_own_data(trained, capsys):
    folder, text = trained
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(folder / "ckpt.npz")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"{folder / 'ckpt.npz'} (step 40) on {text}:"
    weight = load_checkpoint(folder / "ckpt.npz").model.weight
    _, ids = load_corpus(text)
    for name, split in zip(("train", "val"), train_val_split(ids)):
        nats = ops.loss_from_counts(weight, pair_counts(split, weight.shape[0]))
        assert results(out)[name] == (round(nats, 4), round(nats / math.log(2), 4),
                                      "character", len(split) - 1)


def test_eval_on_a_file_and_of_the_best_checkpoint(trained, capsys):
    folder, text = trained
    other = folder / "other.txt"
    other.write_text("or not to be\n")
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(folder / "ckpt.best.npz"), "--data",
                 str(other)]) == 0
    weight = load_checkpoint(folder / "ckpt.best.npz").model.weight
    _, ids = load_corpus(text)
    other_ids = load_checkpoint(folder / "ckpt.npz").tokenizer.encode(other.read_text())
    nats = ops.loss_from_counts(weight, pair_counts(other_ids, weight.shape[0]))
    assert results(capsys.readouterr().out) == {
        "all": (round(nats, 4), round(nats / math.log(2), 4), "character", 12)}


def test_eval_of_a_byte_model_counts_bits_per_byte(tmp_path, capsys):
    data = tmp_path / "bytes.bin"
    data.write_bytes(bytes(range(256)) * 20)
    assert main(["train", "--data", str(data), "--tokenizer", "byte", "--out",
                 str(tmp_path / "b.npz"), "--max-iters", "5", "--eval-iters", "2",
                 "--sample-tokens", "0"]) == 0
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(tmp_path / "b.npz")]) == 0
    assert {unit for _, _, unit, _ in results(capsys.readouterr().out).values()} == {"byte"}


def test_eval_errors_are_one_line(trained, tmp_path, capsys):
    folder, _ = trained
    for argv, message in [
        (["--checkpoint", str(tmp_path / "none.npz")], "does not exist"),
        (["--checkpoint", str(folder / "ckpt.npz"), "--data", str(tmp_path / "none.txt")],
         "cannot read"),
    ]:
        assert main(["eval", *argv]) == 1
        err = capsys.readouterr().err
        assert err.startswith("npbigram: error: ") and message in err and err.count("\n") == 1
    bad = tmp_path / "bad.txt"
    bad.write_text("XYZ")
    assert main(["eval", "--checkpoint", str(folder / "ckpt.npz"), "--data", str(bad)]) == 1
    assert "is not in the vocabulary" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    ("", "empty.txt holds 0 tokens: no pair to score (it needs at least 2)"),
    ("t", "empty.txt holds 1 token: no pair to score (it needs at least 2)"),
])
def test_a_text_without_a_pair_is_refused_before_anything_is_printed(trained, tmp_path, capsys,
                                                                     content, message):
    """It printed the header, then 'the all text of empty.txt holds 0 tokens'."""
    folder, _ = trained
    (tmp_path / "empty.txt").write_text(content)
    assert main(["eval", "--checkpoint", str(folder / "ckpt.npz"), "--data", "empty.txt"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == f"npbigram: error: {message}\n"


def test_a_folder_given_as_the_text_is_named_as_one(trained, tmp_path, capsys):
    """It said 'Is a directory'."""
    folder, _ = trained
    (tmp_path / "adir").mkdir()
    assert main(["eval", "--checkpoint", str(folder / "ckpt.npz"), "--data", "adir"]) == 1
    assert capsys.readouterr().err == ("npbigram: error: --data adir is a folder: eval scores a "
                                       "text file\n")


def test_a_checkpoint_with_non_finite_weights_is_refused_naming_the_rows(trained, tmp_path,
                                                                         capsys):
    """An all-inf checkpoint evaluated to 'train: nan nats', and one NaN trained on (--resume)
    to 'exact train loss nan ...: 0.0000 above the floor'."""
    folder, _ = trained
    with np.load(folder / "ckpt.npz", allow_pickle=False) as npz:
        arrays = dict(npz)
    arrays["weight"][[3, 7]] = np.inf
    np.savez(tmp_path / "bad.npz", **arrays)
    for argv in (["eval", "--checkpoint", "bad.npz"],
                 ["train", "--resume", "bad.npz", "--max-iters", "60"]):
        assert main(argv) == 1
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err == ("npbigram: error: bad.npz: the weights hold non-finite values in "
                                "rows 3, 7 (of 16): the checkpoint is damaged\n")
