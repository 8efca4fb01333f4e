"""Tokenizers, UTF-8 errors, the split, batches, id checks, and the download (local server)."""

import hashlib
import http.server
import socket
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from npbigram import (ByteTokenizer, CharTokenizer, DatasetError, ensure_dataset, get_batch,
                      load_corpus, train_val_split)
from npbigram.data import atomic_output, check_ids, download, read_text, tokenizer_from_json

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
    tokenizer = ByteTokenizer()
    ids = tokenizer.encode(data)
    np.testing.assert_array_equal(ids, list(data))
    assert tokenizer.decode(ids) == data.decode("utf-8", errors="replace")


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


# ----------------------------------------------------------------------------------------------
# check_ids


@given(ids=hnp.arrays(hnp.integer_dtypes() | hnp.unsigned_integer_dtypes(),
                      hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=5)),
       vocab_size=st.integers(1, 300))
@settings(deadline=None, max_examples=200)
def test_check_ids_accepts_exactly_the_ids_in_range(ids, vocab_size):
    in_range = bool(np.all((ids >= 0) & (ids < vocab_size)))
    if in_range:
        checked = check_ids(ids, vocab_size, "idx")
        assert checked.dtype == np.int64
        np.testing.assert_array_equal(checked, ids)
    else:
        with pytest.raises(ValueError, match=rf"idx holds id -?\d+ at index \(\d+, \d+\), "
                                             rf"outside \[0, {vocab_size}\)"):
            check_ids(ids, vocab_size, "idx")


# ----------------------------------------------------------------------------------------------
# download, from a server on 127.0.0.1

PAYLOAD = b"First Citizen:\nBefore we proceed any further, hear me speak.\n" * 50
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path == "/input.txt":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/dropped.txt":  # the connection drops after half the file
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.close_connection = True
        elif self.path == "/error.txt":
            self.send_error(500, "Internal Server Error")
        else:
            self.send_error(404, "Not Found")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    """Base URL of an HTTP server on an ephemeral port; server.requests lists the paths asked."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def url_of(server, path):
    return f"http://127.0.0.1:{server.server_port}{path}"


def unreachable_url():
    """A URL on a port that was free a moment ago: nothing listens there."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/input.txt"


def test_download_writes_the_checked_file(server, tmp_path):
    dest = tmp_path / "data" / "tinyshakespeare" / "input.txt"
    assert download(url_of(server, "/input.txt"), dest, PAYLOAD_SHA256, timeout=10) == dest
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.parent.iterdir()) == ["input.txt"]  # no temporary left


def test_ensure_dataset_downloads_only_when_missing(server, tmp_path):
    dest = tmp_path / "input.txt"
    url = url_of(server, "/input.txt")
    asked = len(server.requests)
    assert ensure_dataset(dest, url, PAYLOAD_SHA256, timeout=10) == dest
    assert ensure_dataset(dest, url, PAYLOAD_SHA256, timeout=10) == dest
    assert len(server.requests) == asked + 1
    assert dest.read_bytes() == PAYLOAD


@pytest.mark.parametrize("path, sha256, message", [
    ("/input.txt", "0" * 64, f"its SHA-256 is {PAYLOAD_SHA256}, expected {'0' * 64}; "
                             "nothing was written"),
    ("/error.txt", PAYLOAD_SHA256, "HTTP 500 Internal Server Error"),
    ("/missing.txt", PAYLOAD_SHA256, "HTTP 404 Not Found"),
    ("/dropped.txt", PAYLOAD_SHA256, "IncompleteRead"),
])
def test_failed_download_leaves_nothing_behind(server, tmp_path, path, sha256, message):
    dest = tmp_path / "data" / "input.txt"
    url = url_of(server, path)
    with pytest.raises(DatasetError, match=rf"could not download|downloaded {url}") as failure:
        ensure_dataset(dest, url, sha256, timeout=10)
    assert message in str(failure.value)
    assert f"download it yourself from {url} and pass --data PATH" in str(failure.value)
    assert list(tmp_path.iterdir()) == []  # not even the folder


def test_unreachable_url_is_a_clear_error(tmp_path):
    url = unreachable_url()
    dest = tmp_path / "input.txt"
    with pytest.raises(DatasetError, match=r"could not download .*are you offline\?"):
        download(url, dest, PAYLOAD_SHA256, timeout=10)
    assert list(tmp_path.iterdir()) == []


def test_failed_download_keeps_an_existing_file(server, tmp_path):
    dest = tmp_path / "input.txt"
    dest.write_bytes(b"previous")
    with pytest.raises(DatasetError, match="SHA-256"):
        download(url_of(server, "/input.txt"), dest, "0" * 64, timeout=10)
    assert dest.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["input.txt"]


def test_atomic_output_replaces_the_file_only_on_success(tmp_path):
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_output(dest) as f:
            f.write(b"half of the new")
            raise RuntimeError("boom")
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    with atomic_output(dest) as f:
        f.write(b"new")
    assert dest.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
