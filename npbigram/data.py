"""Text in, token ids out: tokenizers, the train/val split, batches, and the dataset download.

As in bigram.py: the vocabulary is the sorted set of characters in the text, the first 90% of
the ids train and the last 10% validate, and a batch is B random windows of T+1 tokens
(inputs x = window[:T], targets y = window[1:]).
"""

import hashlib
import http.client
import json
import math
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

TINYSHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
TINYSHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
DEFAULT_DATA_PATH = Path("data") / "tinyshakespeare" / "input.txt"

ID_DTYPE = np.int64  # token ids everywhere, like torch.long


class DatasetError(RuntimeError):
    """The dataset could not be read or fetched; the message says what to do instead."""


# ----------------------------------------------------------------------------------------------
# tokenizers


class CharTokenizer:
    """Character-level tokenizer of bigram.py: vocabulary = sorted(set(text)).

    encode and decode are vectorized through the text's UTF-32 code points, so the 1.1 MB
    tinyshakespeare encodes in milliseconds.
    """

    kind = "char"

    def __init__(self, chars):
        chars = "".join(chars)
        if len(chars) == 0:
            raise ValueError("a character vocabulary needs at least one character")
        codepoints = _codepoints(chars)
        if np.any(codepoints[1:] <= codepoints[:-1]):  # not np.diff: unsigned, it wraps around
            raise ValueError("the vocabulary must be sorted unique characters")
        self.chars = chars
        self._codepoints = codepoints  # (V,) sorted, so encode is a binary search

    @classmethod
    def from_text(cls, text):
        """The vocabulary of `text`: its sorted unique characters."""
        if not isinstance(text, str):
            raise TypeError(f"from_text takes a str, got {type(text).__name__}")
        if len(text) == 0:
            raise ValueError("cannot build a vocabulary from empty text")
        return cls(_decode_codepoints(np.unique(_codepoints(text))))

    @property
    def vocab_size(self):
        return len(self.chars)

    def encode(self, text):
        """str -> (len(text),) int64 ids; a character outside the vocabulary is a ValueError."""
        if not isinstance(text, str):
            raise TypeError(f"encode takes a str, got {type(text).__name__}")
        codepoints = _codepoints(text)
        ids = np.searchsorted(self._codepoints, codepoints)
        ids_in_range = np.minimum(ids, self.vocab_size - 1)
        unknown = self._codepoints[ids_in_range] != codepoints
        if np.any(unknown):
            pos = int(np.argmax(unknown))
            raise ValueError(
                f"character {text[pos]!r} at position {pos} is not in the vocabulary "
                f"of {self.vocab_size} characters"
            )
        return ids.astype(ID_DTYPE)

    def decode(self, ids):
        """ids -> str."""
        ids = check_ids(ids, self.vocab_size, "ids", ndim=None, allow_empty=True)
        return _decode_codepoints(self._codepoints[ids.reshape(-1)])

    def to_json(self):
        return json.dumps({"kind": self.kind, "chars": self.chars})


class ByteTokenizer:
    """Byte-level tokenizer: vocabulary 0..255, reads any file. decode replaces invalid UTF-8."""

    kind = "byte"
    vocab_size = 256

    def encode(self, text):
        """str (encoded as UTF-8) or bytes -> (n,) int64 ids."""
        if isinstance(text, str):
            text = text.encode("utf-8")
        if not isinstance(text, (bytes, bytearray)):
            raise TypeError(f"encode takes str or bytes, got {type(text).__name__}")
        return np.frombuffer(bytes(text), dtype=np.uint8).astype(ID_DTYPE)

    def decode(self, ids):
        ids = check_ids(ids, self.vocab_size, "ids", ndim=None, allow_empty=True)
        return ids.reshape(-1).astype(np.uint8).tobytes().decode("utf-8", errors="replace")

    def to_json(self):
        return json.dumps({"kind": self.kind})


def tokenizer_from_json(text):
    """Rebuild a tokenizer saved by `to_json` (as stored in checkpoints)."""
    try:
        spec = json.loads(text)
        kind = spec["kind"]
        if kind == "char":
            return CharTokenizer(spec["chars"])
        if kind == "byte":
            return ByteTokenizer()
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"not a valid tokenizer description: {e}") from None
    raise ValueError(f"unknown tokenizer kind {kind!r}")


def _codepoints(text):
    # surrogatepass: a str may hold lone surrogates, and they are characters like any other
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def _decode_codepoints(codepoints):
    return np.asarray(codepoints, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")


# ----------------------------------------------------------------------------------------------
# validation (numba does no bounds checks: every kernel's ids pass through check_ids first)


def check_ids(ids, vocab_size, name, ndim=2, allow_empty=False):
    """Return `ids` as an int64 array after checking type, shape and range [0, vocab_size)."""
    if isinstance(ids, np.ndarray):
        arr = ids
    else:
        try:
            arr = np.asarray(ids)
        except (ValueError, TypeError) as e:
            raise TypeError(f"{name} must be an integer array: {e}") from None
    if arr.dtype == bool or arr.dtype.kind not in "iu":
        if arr.size == 0 and arr.dtype.kind == "f" and allow_empty:
            arr = arr.astype(ID_DTYPE)
        else:
            raise TypeError(f"{name} must hold integer token ids, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions (B, T), got shape {arr.shape}")
    if arr.size == 0:
        if allow_empty:
            return arr.astype(ID_DTYPE)
        raise ValueError(f"{name} is empty (shape {arr.shape}): a batch needs at least one token")
    # one pass: seen as unsigned 64-bit, a negative id is huge, so max < V means all are in [0, V)
    wide = arr.astype(np.int64 if arr.dtype.kind == "i" else np.uint64, copy=False)
    if int(wide.view(np.uint64).max()) >= vocab_size:
        lo, hi = int(arr.min()), int(arr.max())
        bad = lo if lo < 0 else hi
        where = np.unravel_index(int(np.argmax(arr == bad)), arr.shape)
        raise ValueError(
            f"{name} holds id {bad} at index {tuple(int(i) for i in where)}, "
            f"outside [0, {vocab_size}) for vocab_size {vocab_size}"
        )
    return np.ascontiguousarray(arr, dtype=ID_DTYPE)


def check_positive(value, name):
    """Return `value` as a float after checking that it is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return float(value)


# ----------------------------------------------------------------------------------------------
# corpus, split, batches


def read_text(path):
    """Read a UTF-8 file; bytes that are not UTF-8 raise ValueError naming the byte offset."""
    raw = _read_bytes(path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{path}: byte 0x{raw[e.start]:02x} at byte offset {e.start} is not valid UTF-8 "
            f"({e.reason}); use the byte tokenizer (--tokenizer byte) for arbitrary files"
        ) from None


def load_corpus(path, tokenizer="char"):
    """Read `path` and tokenize it: returns (tokenizer, ids) with ids a (n,) int64 array."""
    if tokenizer == "char":
        text = read_text(path)
        if not text:
            raise ValueError(f"{path} is empty")
        tok = CharTokenizer.from_text(text)
        return tok, tok.encode(text)
    if tokenizer == "byte":
        raw = _read_bytes(path)
        if not raw:
            raise ValueError(f"{path} is empty")
        tok = ByteTokenizer()
        return tok, tok.encode(raw)
    raise ValueError(f"unknown tokenizer {tokenizer!r}: choose 'char' or 'byte'")


def _read_bytes(path):
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror or e}") from None


def train_val_split(data, train_fraction=0.9):
    """bigram.py's split: the first 90% trains, the rest validates."""
    n = int(train_fraction * len(data))
    return data[:n], data[n:]


def get_batch(data, block_size, batch_size, rng):
    """B random windows of T+1 tokens: x (B,T) inputs and y (B,T) next-token targets."""
    if len(data) < block_size + 1:
        raise ValueError(
            f"the split has {len(data)} tokens, fewer than block_size + 1 = {block_size + 1}"
        )
    starts = rng.integers(0, len(data) - block_size, size=batch_size)  # (B,)
    window = starts[:, None] + np.arange(block_size)  # (B,T)
    return data[window], data[window + 1]


# ----------------------------------------------------------------------------------------------
# download


def ensure_dataset(path=DEFAULT_DATA_PATH, url=TINYSHAKESPEARE_URL,
                   sha256=TINYSHAKESPEARE_SHA256, timeout=30):
    """Return `path`, downloading it from `url` first if it does not exist."""
    path = Path(path)
    if not path.exists():
        download(url, path, sha256, timeout=timeout)
    return path


def download(url, dest, sha256, timeout=30):
    """Fetch `url`, check its SHA-256, and write it to `dest` atomically."""
    dest = Path(dest)
    hint = f"download it yourself from {url} and pass --data PATH"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            payload = response.read()
    except urllib.error.HTTPError as e:
        raise DatasetError(f"could not download {url}: HTTP {e.code} {e.reason}; {hint}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise DatasetError(f"could not download {url} ({reason}); are you offline? {hint}") from None
    digest = hashlib.sha256(payload).hexdigest()
    if digest != sha256:
        raise DatasetError(
            f"downloaded {url} but its SHA-256 is {digest}, expected {sha256}; "
            f"nothing was written; {hint}"
        )
    atomic_write_bytes(dest, payload)
    return dest


def atomic_write_bytes(dest, payload):
    """Write through a temporary file in the same folder, then rename: never a torn file."""
    with atomic_output(dest) as f:
        f.write(payload)


class atomic_output:
    """Context manager yielding a binary file that replaces `dest` only when the block succeeds."""

    def __init__(self, dest):
        self.dest = Path(dest)

    def __enter__(self):
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.dest.name}.", suffix=".tmp",
                                        dir=self.dest.parent)
        self.file = os.fdopen(fd, "wb")
        return self.file

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.file.flush()
                os.fsync(self.file.fileno())
            self.file.close()
            if exc_type is None:
                os.replace(self.tmp, self.dest)
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)
        return False
