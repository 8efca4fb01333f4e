"""npbigram/data/corpus.py: reading a text, the 90/10 split, get_batch's windows, and a
text's pair counts."""


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from npbigram import DatasetError, get_batch, load_corpus, train_val_split
from npbigram.data import corpus
from npbigram.data.corpus import read_text

any_text = st.text(st.characters(exclude_categories=()), min_size=1)  # lone surrogates too


# ----------------------------------------------------------------------------------------------
# reading a corpus


@given(prefix=st.text(),
       bad=st.sampled_from([b"\xff", b"\x80", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80"]),
       suffix=st.sampled_from([b"", b"(", b"abc"]))
@settings(deadline=None, max_examples=50)
def test_non_utf8_bytes_raise_an_error_naming_the_byte_offset(tmp_path_factory, prefix, bad,
                                                                suffix):
    path = tmp_path_factory.mktemp("utf8") / "bad.txt"
    head = prefix.encode("utf-8")
    path.write_bytes(head + bad + suffix)
    message = rf"byte 0x{bad[0]:02x} at byte offset {len(head)} is not valid UTF-8"
    with pytest.raises(ValueError, match=message):
        read_text(path)
    with pytest.raises(ValueError, match=message):
        load_corpus(path)
    tokenizer, ids = load_corpus(path, tokenizer="byte")  # any bytes are fine for this one
    np.testing.assert_array_equal(ids, list(path.read_bytes()))


def test_load_corpus(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("to be or not to be", encoding="utf-8")
    tokenizer, ids = load_corpus(path)
    assert tokenizer.chars == " benort"
    assert tokenizer.decode(ids) == "to be or not to be"
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    for kind in ("char", "byte"):
        with pytest.raises(ValueError, match="empty.txt is empty"):
            load_corpus(empty, kind)
    with pytest.raises(ValueError, match="unknown tokenizer 'word': choose 'char' or 'byte'"):
        load_corpus(path, "word")
    with pytest.raises(DatasetError, match="cannot read .*missing.txt"):
        load_corpus(tmp_path / "missing.txt")


def test_tinyshakespeare_vocabulary(tinyshakespeare):
    tokenizer, ids = load_corpus(tinyshakespeare)
    assert tokenizer.vocab_size == 65
    assert tokenizer.chars == "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    assert len(ids) == 1_115_394
    train, val = train_val_split(ids)
    assert (len(train), len(val)) == (1_003_854, 111_540)


# ----------------------------------------------------------------------------------------------
# split and batches


@given(n=st.integers(0, 1000))
def test_train_val_split_is_the_first_90_percent(n):
    data = np.arange(n)
    train, val = train_val_split(data)
    assert len(train) == int(0.9 * n)  # bigram.py
    np.testing.assert_array_equal(np.concatenate([train, val]), data)


@given(n=st.integers(2, 300), block_size=st.integers(1, 300), batch_size=st.integers(1, 40),
       seed=st.integers(0, 2**32 - 1))
@settings(deadline=None, max_examples=100)
def test_get_batch_returns_windows_and_their_next_tokens(n, block_size, batch_size, seed):
    data = np.arange(n) * 3  # a value tells its position
    rng = np.random.default_rng(seed)
    if n < block_size + 1:
        with pytest.raises(ValueError, match=rf"the split has {n} tokens, fewer than "
                                             rf"block_size \+ 1 = {block_size + 1}"):
            get_batch(data, block_size, batch_size, rng)
        return
    x, y = get_batch(data, block_size, batch_size, rng)
    assert x.shape == y.shape == (batch_size, block_size)
    starts = x[:, 0] // 3
    assert np.all((starts >= 0) & (starts <= n - block_size - 1))
    np.testing.assert_array_equal(x, data[starts[:, None] + np.arange(block_size)])
    np.testing.assert_array_equal(y, data[starts[:, None] + np.arange(1, block_size + 1)])


def test_get_batch_reaches_every_window_including_the_last():
    data = np.arange(12)
    x, _ = get_batch(data, 4, 2000, np.random.default_rng(0))
    assert set(x[:, 0]) == set(range(12 - 4))


def test_get_batch_takes_a_list_and_names_a_bad_generator():
    """A list gave NumPy's 'only integer scalar arrays' TypeError, and rng=0
    an AttributeError."""
    rng = np.random.default_rng(0)
    x, y = get_batch(list(range(20)), 4, 3, rng)
    assert x.shape == y.shape == (3, 4)
    np.testing.assert_array_equal(y, x + 1)
    with pytest.raises(TypeError, match="rng must be a numpy Generator such as "
                                        r"np.random.default_rng\(seed\), got int"):
        get_batch(np.arange(20), 4, 3, rng=0)
    with pytest.raises(TypeError, match="data must be a 1-D sequence of integer token ids"):
        get_batch([[1, 2], [3, 4]], 1, 1, rng)


@pytest.mark.parametrize("block_size, batch_size, message", [
    (4, 0, "batch_size must be at least 1, got 0"),
    (0, 3, "block_size must be at least 1, got 0"),
])
def test_get_batch_refuses_an_empty_batch(block_size, batch_size, message):
    """batch_size=0 returned empty arrays, where the README says empty batches raise."""
    with pytest.raises(ValueError, match=message):
        get_batch(np.arange(20), block_size, batch_size, np.random.default_rng(0))


@pytest.mark.parametrize("vocab_size", [3, 300])  # many chunks; one (a chunk holds V^2)
def test_pair_counts_are_counted_a_chunk_at_a_time_from_any_integer_ids(monkeypatch,
                                                                        vocab_size):
    """A long text's pairs are counted a chunk at a time, so the int64 temporaries never take
    the text's length; narrow ids (a prepared split's uint16 memmap) are widened a chunk at a
    time, before id * V could overflow."""
    ids = np.random.default_rng(0).integers(0, vocab_size, size=1000).astype(np.uint16)
    expected = np.zeros((vocab_size, vocab_size), dtype=np.int64)
    np.add.at(expected, (ids[:-1].astype(np.int64), ids[1:].astype(np.int64)), 1)
    monkeypatch.setattr(corpus, "PAIR_COUNT_CHUNK", 7)
    np.testing.assert_array_equal(corpus.pair_counts(ids, vocab_size), expected)
    assert not corpus.pair_counts(ids[:1], vocab_size).any()
