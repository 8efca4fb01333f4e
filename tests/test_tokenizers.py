"""npbigram/tokenizers.py: bigram.py's character vocabulary, bytes, round trips and bad input."""


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from npbigram import ByteTokenizer, CharTokenizer
from npbigram.data import tokenizers
from npbigram.data.tokenizers import tokenizer_from_json

any_text = st.text(st.characters(exclude_categories=()), min_size=1)  # lone surrogates too


# ----------------------------------------------------------------------------------------------
# tokenizers


@given(text=any_text)
@settings(deadline=None, max_examples=200)
def test_char_tokenizer_is_bigram_py_on_any_text(text):
    tokenizer = CharTokenizer.from_text(text)
    chars = sorted(set(text))  # bigram.py
    stoi = {ch: i for i, ch in enumerate(chars)}
    assert tokenizer.chars == "".join(chars)
    assert tokenizer.vocab_size == len(chars)
    ids = tokenizer.encode(text)
    assert ids.dtype == np.int64
    np.testing.assert_array_equal(ids, [stoi[c] for c in text])
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode(ids[None, :]) == text  # (B,T) decodes row after row
    assert tokenizer_from_json(tokenizer.to_json()).chars == tokenizer.chars


@given(data=st.binary())
@settings(deadline=None, max_examples=100)
def test_byte_tokenizer_round_trips_any_bytes(data):
    """Decode replaced bytes that are not UTF-8 by U+FFFD, so sampled bytes
    could not be recovered. decode_bytes gives them back; decode shows them as escapes."""
    tokenizer = ByteTokenizer()
    ids = tokenizer.encode(data)
    np.testing.assert_array_equal(ids, list(data))
    assert tokenizer.decode_bytes(ids) == data
    assert tokenizer.decode(ids) == data.decode("utf-8", errors="backslashreplace")


@given(text=any_text)
@settings(deadline=None, max_examples=100)
def test_char_tokenizer_decode_bytes_is_the_text_in_utf8(text):
    tokenizer = CharTokenizer.from_text(text)
    assert tokenizer.decode_bytes(tokenizer.encode(text)) == text.encode("utf-8", "surrogatepass")


def test_sampling_starts_at_token_0_for_char_and_a_newline_for_byte():
    """A byte model sampled from byte 0, a NUL."""
    assert CharTokenizer.from_text("ab\n").start_id == 0  # bigram.py's start
    assert ByteTokenizer().decode_bytes([ByteTokenizer.start_id]) == b"\n"


@given(text=st.text())
@settings(deadline=None, max_examples=100)
def test_byte_tokenizer_round_trips_any_utf8_text(text):
    tokenizer = tokenizer_from_json(ByteTokenizer().to_json())
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_char_tokenizer_rejects_unknown_characters_and_ids():
    tokenizer = CharTokenizer.from_text("hello world")
    with pytest.raises(ValueError, match=r"character 'X' at position 3 is not in the vocabulary "
                                         r"of 8 characters"):
        tokenizer.encode("helXo")
    with pytest.raises(ValueError, match=r"ids holds id 8 at index \(1,\), outside \[0, 8\)"):
        tokenizer.decode(np.array([0, 8]))
    with pytest.raises(ValueError, match=r"ids holds id -1"):
        tokenizer.decode([-1])
    with pytest.raises(TypeError, match="ids must hold integer token ids, got dtype float64"):
        tokenizer.decode(np.array([1.0]))
    with pytest.raises(TypeError, match="encode takes a str, got bytes"):
        tokenizer.encode(b"hello")
    assert tokenizer.encode("").shape == (0,)
    assert tokenizer.decode([]) == ""


@pytest.mark.parametrize("call, error, message", [
    (lambda: CharTokenizer.from_text(""), ValueError, "cannot build a vocabulary from empty text"),
    (lambda: CharTokenizer.from_text(b"abc"), TypeError, "from_text takes a str, got bytes"),
    (lambda: CharTokenizer(""), ValueError, "needs at least one character"),
    (lambda: CharTokenizer("ba"), ValueError, "must be sorted unique characters"),
    (lambda: CharTokenizer("aab"), ValueError, "must be sorted unique characters"),
    (lambda: ByteTokenizer().encode(3), TypeError, "encode takes str or bytes, got int"),
    (lambda: ByteTokenizer().decode([256]), ValueError, r"outside \[0, 256\)"),
    (lambda: tokenizer_from_json("{"), ValueError, "not a valid tokenizer description"),
    (lambda: tokenizer_from_json('{"kind": "word"}'), ValueError, "unknown tokenizer kind 'word'"),
    (lambda: tokenizer_from_json('{"kind": "char"}'), ValueError, "not a valid tokenizer"),
])
def test_bad_tokenizer_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_long_texts_are_encoded_a_chunk_at_a_time_with_the_same_ids(monkeypatch):
    text = "abcab\u00e9\U0001f600" * 50
    whole = CharTokenizer.from_text(text)
    ids = whole.encode(text)
    monkeypatch.setattr(tokenizers, "ENCODE_CHARS", 16)
    chunked = CharTokenizer.from_text(text)
    assert chunked.chars == whole.chars
    np.testing.assert_array_equal(chunked.encode(text), ids)
    with pytest.raises(ValueError, match="character 'z' at position 37 is not in"):
        chunked.encode(text[:37] + "z" + text[38:])
    assert CharTokenizer("ab").encode("").shape == (0,)
