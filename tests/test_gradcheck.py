"""gradcheck: the hand-derived gradient agrees with finite differences, and a wrong one does not."""

import re

import numpy as np
import pytest
from npbigram import BigramLanguageModel, ops
from npbigram.cli import main
from npbigram.data.corpus import load_corpus
from npbigram.tools.gradcheck import check_gradient, gradient_check


def test_hand_derived_gradient_passes_on_random_ids():
    result = gradient_check()  # V=65, B=4, T=8, seed 0
    assert result.analytic.shape == (65, 65)
    assert result.max_rel_error < 1e-6


def test_hand_derived_gradient_passes_on_tinyshakespeare(tinyshakespeare):
    tokenizer, ids = load_corpus(tinyshakespeare)
    result = gradient_check(tokenizer.vocab_size, batch_size=4, block_size=8, seed=3, data=ids)
    assert result.max_rel_error < 1e-6


def test_rows_no_position_reads_have_zero_gradient_and_zero_error():
    idx = np.array([[1, 1, 2]])
    targets = np.array([[2, 0, 1]])
    model = BigramLanguageModel(5, seed=0, dtype=np.float64, backend="numpy")
    result = check_gradient(model, idx, targets)
    unread = [0, 3, 4]
    assert np.all(result.analytic[unread] == 0) and np.all(result.numeric[unread] == 0)
    assert np.all(result.rel_error[unread] == 0)


class AssignInsteadOfAdd(BigramLanguageModel):
    """Embedding backward as dW[idx] = dlogits: with repeated ids, the last position wins."""

    def backward(self):
        _, idx, targets, probs = self._saved  # the NumPy engine saves (method, x, y, probs)
        dlogits = ops.cross_entropy_backward(probs, targets)  # (N,C)
        self.grad = np.zeros_like(self.weight)
        self.grad[idx.reshape(-1)] = dlogits
        return self.grad


class MissingMean(BigramLanguageModel):
    """dL/dlogits = p - onehot(y), forgetting the 1/N of the mean."""

    def backward(self):
        return super().backward() * len(self._saved[2])


class MissingOnehot(BigramLanguageModel):
    """dL/dlogits = p / N, forgetting the -onehot(y) from the target's logit."""

    def backward(self):
        _, idx, _, probs = self._saved
        self.grad = ops.embedding_backward(probs / len(probs), idx, self.vocab_size)
        return self.grad


@pytest.mark.parametrize("wrong_model", [AssignInsteadOfAdd, MissingMean, MissingOnehot])
def test_a_wrong_gradient_is_caught(wrong_model):
    idx = np.array([[3, 1, 3, 3], [0, 1, 2, 3]])  # id 3 read three times, id 1 twice
    targets = np.array([[1, 3, 3, 0], [2, 2, 3, 1]])
    model = wrong_model(6, seed=1, dtype=np.float64, backend="numpy")
    result = check_gradient(model, idx, targets)
    assert result.max_rel_error > 0.1
    i, j = result.worst
    assert i in idx  # the error sits in a row the batch reads


def test_cli_reports_error_and_location(capsys):
    assert main(["gradcheck", "--vocab", "11", "--batch-size", "3", "--block-size", "5"]) == 0
    out = capsys.readouterr().out
    assert "max relative error" in out and "at W[" in out and "OK" in out


@pytest.mark.parametrize("sizes", [["--batch-size", "3", "--block-size", "5"],
                                   ["--batch", "3", "--block", "5"]])
def test_cli_takes_trains_size_flags(sizes, capsys):
    """gradcheck takes train's --batch-size and --block-size (and, as every flag, a unique
    prefix of them)."""
    assert main(["gradcheck", "--vocab", "11", *sizes]) == 0
    assert "batch B=3 T=5 of random ids in [0, 11)" in capsys.readouterr().out


def test_cli_names_characters_with_data(tmp_path, capsys):
    path = tmp_path / "text.txt"
    path.write_text("to be or not to be, that is the question\n")
    assert main(["gradcheck", "--data", str(path), "--batch-size", "2", "--block-size", "6"]) == 0
    assert "(current " in capsys.readouterr().out


def test_cli_exits_nonzero_above_the_threshold(capsys):
    assert main(["gradcheck", "--vocab", "7", "--threshold", "1e-30"]) == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--batch", "0"], "--batch-size must be at least 1"),
    (["--block-size", "0"], "--block-size must be at least 1"),
    (["--vocab", "0"], "--vocab must be at least 1"),
    (["--eps", "0"], "eps must be a positive number"),
    (["--vocab", "5", "--data", "x.txt"], "--vocab sets the vocabulary of random data"),
    (["--data", "/nonexistent/file.txt"], "cannot read"),
])
def test_cli_bad_input_is_a_clear_error(argv, message, capsys):
    assert main(["gradcheck", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("npbigram: error: ") and message in err


@pytest.mark.parametrize("kwargs, advice", [
    (dict(vocab_size=100_000), "lower vocab_size (or use a text with fewer characters)"),
    (dict(vocab_size=2000, batch_size=10_000, block_size=64), "lower batch_size or block_size"),
])
def test_the_api_names_its_arguments_when_memory_is_short(monkeypatch, kwargs, advice):
    """It said 'lower --vocab', a flag of the command line, to a caller of the function."""
    from npbigram.utils import limits

    monkeypatch.setattr(limits, "available_memory", lambda: limits.Available(8 * limits.GB))
    with pytest.raises(limits.InsufficientMemory, match=re.escape(advice)):
        gradient_check(**kwargs)


def test_a_block_longer_than_the_text_is_named_as_the_flag(tmp_path, capsys):
    (tmp_path / "short.txt").write_text("abcdefghij")
    assert main(["gradcheck", "--data", str(tmp_path / "short.txt"), "--block-size", "50"]) == 1
    assert capsys.readouterr().err == ("npbigram: error: the split has 10 tokens, fewer than "
                                       "--block-size + 1 = 51: use a longer text or a smaller "
                                       "--block-size\n")
