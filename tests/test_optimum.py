"""optimum: the floor is the loss of the count-based table, and no table goes below it."""

import math

import numpy as np
import pytest
from npbigram import BigramLanguageModel, ops
from npbigram.cli import main
from npbigram.data.corpus import load_corpus, train_val_split
from npbigram.tools.optimum import (
    bigram_optimum,
    count_logits,
    count_probs,
    distance_from_floor,
    floor_loss,
)

TEXT_IDS = np.array([0, 1, 2, 0, 1, 1, 2, 0, 2, 2, 1, 0, 1, 3])  # id 4 never occurs
VOCAB = 5


def conditional_entropy(counts):
    """H = -sum_ij (C_ij / N) ln(C_ij / n_i), written out independently of optimum.py."""
    total = counts.sum()
    h = 0.0
    for i, row in enumerate(counts):
        for c in row:
            if c:
                h -= c / total * math.log(c / row.sum())
    return h


def test_floor_is_the_conditional_entropy_and_the_count_table_loss():
    counts = ops.pair_counts(TEXT_IDS, VOCAB)
    assert floor_loss(counts) == pytest.approx(conditional_entropy(counts), rel=1e-12)
    model = BigramLanguageModel.from_weight(count_logits(counts), backend="numpy")
    _, loss = model(TEXT_IDS[None, :-1], TEXT_IDS[None, 1:])  # the model's own loss
    assert loss == pytest.approx(floor_loss(counts), rel=1e-12)


def test_no_table_goes_below_the_floor_and_the_gradient_vanishes_at_the_counts():
    counts = ops.pair_counts(TEXT_IDS, VOCAB)
    floor = floor_loss(counts)
    rng = np.random.default_rng(0)
    best = count_logits(counts)
    for _ in range(50):
        assert ops.loss_from_counts(rng.normal(size=(VOCAB, VOCAB)), counts) > floor
        nearby = best + 0.01 * rng.normal(size=best.shape)
        assert ops.loss_from_counts(nearby, counts) >= floor - 1e-12
    model = BigramLanguageModel.from_weight(best, backend="numpy")
    model(TEXT_IDS[None, :-1], TEXT_IDS[None, 1:])
    np.testing.assert_allclose(model.backward(), 0, atol=1e-15)  # (n_i softmax(W_i) - C_i) / N


def test_count_probs_rows_and_smoothing():
    counts = ops.pair_counts(TEXT_IDS, VOCAB)
    probs = count_probs(counts)
    np.testing.assert_allclose(probs.sum(axis=1), 1)
    np.testing.assert_allclose(probs[4], 1 / VOCAB)  # a row never seen is uniform
    np.testing.assert_allclose(probs[0], counts[0] / counts[0].sum())
    smoothed = count_probs(counts, k=1)
    np.testing.assert_allclose(smoothed[0], (counts[0] + 1) / (counts[0].sum() + VOCAB))
    assert np.all(smoothed > 0)
    for bad_k in (-1, math.nan, math.inf):
        with pytest.raises(ValueError, match="smoothing k"):
            count_probs(counts, k=bad_k)


def test_unsmoothed_val_loss_is_infinite_when_val_has_unseen_pairs():
    ids = np.array([0, 1] * 9 + [1, 1])  # val = [1, 1]: the pair (1, 1) never occurs in train
    unsmoothed = bigram_optimum(ids, 2, k=0)
    assert unsmoothed.val_pairs_unseen == 1 and unsmoothed.smoothed_val_loss == math.inf
    assert math.isfinite(bigram_optimum(ids, 2, k=0.5).smoothed_val_loss)
    with pytest.raises(ValueError, match="too few"):
        bigram_optimum(ids[:5], 2)


def test_tinyshakespeare_floor(tinyshakespeare, capsys):
    tokenizer, ids = load_corpus(tinyshakespeare)
    result = bigram_optimum(ids, tokenizer.vocab_size)
    assert round(result.floor, 4) == 2.4519
    train_counts = ops.pair_counts(train_val_split(ids)[0], tokenizer.vocab_size)
    assert result.floor == pytest.approx(conditional_entropy(train_counts), rel=1e-12)
    assert result.floor < result.smoothed_val_loss < math.log(tokenizer.vocab_size)
    assert main(["optimum", "--data", str(tinyshakespeare)]) == 0
    assert "floor:   2.4519 nats" in capsys.readouterr().out


def test_distance_from_floor_is_zero_for_the_count_table():
    counts = ops.pair_counts(TEXT_IDS, VOCAB)
    assert "0.0000 above the floor" in distance_from_floor(count_logits(counts), counts)
    assert "0.0000 above" not in distance_from_floor(np.zeros((VOCAB, VOCAB)), counts)


def test_cli_bad_input(tmp_path, capsys):
    path = tmp_path / "tiny.txt"
    path.write_text("ab")
    assert main(["optimum", "--data", str(path)]) == 1
    assert "too few" in capsys.readouterr().err
    path.write_text("abcabcabcabcabcabcabcabc")
    assert main(["optimum", "--data", str(path), "--k", "-1"]) == 1
    assert "smoothing k" in capsys.readouterr().err


def test_a_table_at_the_floor_is_not_reported_below_it():
    """A table at the floor, whose loss rounding put 2e-16 below it, was
    "-0.0000 above the floor"."""
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 5, size=50)
    counts = ops.pair_counts(ids, 5)
    weight = count_logits(counts) + 10 * rng.normal(size=(5, 1))  # the same softmax per row
    assert ops.loss_from_counts(weight, counts) < floor_loss(counts)  # by rounding
    message = distance_from_floor(weight, counts)
    assert "-0.0000" not in message and ": 0.0000 above the floor" in message


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN arithmetic is the point
def test_distance_from_floor_is_never_nan():
    """A NaN loss printed as '0.0000 above the floor'."""
    counts = ops.pair_counts(TEXT_IDS, VOCAB)
    weight = np.zeros((VOCAB, VOCAB))
    weight[2, 3] = np.nan
    line = distance_from_floor(weight, counts)
    assert "above the floor" not in line and "the weights hold non-finite values" in line
