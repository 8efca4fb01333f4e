"""A corpus as bigram.py reads it: a file's ids, the 90/10 train/val split, and batches of
B random windows of T+1 tokens (inputs x = window[:T], targets y = window[1:])."""

import mmap
import os
from pathlib import Path

import numpy as np

from .. import ops
from ..utils.checks import ID_DTYPE, SettingError, check_count
from .tokenizers import TOKENIZERS, decode_utf8

PAIR_COUNT_CHUNK = 1 << 20  # pairs that pair_counts counts at a time (at least V^2)


class DatasetError(RuntimeError):
    """The dataset could not be read or fetched; the message says what to do instead."""


def read_bytes(path):
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror or e}") from None


def read_text(path):
    """Read a UTF-8 file; bytes that are not UTF-8 raise ValueError naming the byte offset."""
    return decode_utf8(read_bytes(path), path)


def load_corpus(path, tokenizer="char"):
    """Read `path` and tokenize it: returns (tokenizer, ids) with ids a (n,) int64 array.
    tokenizer: a name in npbigram.data.tokenizers.TOKENIZERS, fitted to the file."""
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {tokenizer!r}: choose "
                         + " or ".join(repr(kind) for kind in TOKENIZERS))
    raw = read_bytes(path)
    if not raw:
        raise ValueError(f"{path} is empty")
    return TOKENIZERS[tokenizer].from_corpus(raw, path)


def encode_file(tokenizer, path):
    """The ids of a file under an existing tokenizer (a checkpoint's)."""
    return tokenizer.encode_bytes(read_bytes(path), path)


def train_val_split(data):
    """bigram.py's split: the first 90% trains, the rest validates."""
    n = int(0.9 * len(data))
    return data[:n], data[n:]


def pair_counts(ids, vocab_size):
    """C[i,j] = how many times token j follows token i in `ids`.   (n,) -> (V,V) int64
    ids of any integer type, counted pair_count_chunk(V) pairs at a time."""
    counts = np.zeros((vocab_size, vocab_size), dtype=np.int64)
    chunk = pair_count_chunk(vocab_size)
    for first in range(0, len(ids) - 1, chunk):
        window = np.asarray(ids[first:first + chunk + 1], dtype=np.int64)
        counts += ops.count_pairs(window[:-1], window[1:], vocab_size)
    return counts


def pair_count_chunk(vocab_size):
    """Pairs pair_counts counts at a time: at least V^2, so each chunk's (V,V) bincount costs
    no more than its pairs."""
    return max(PAIR_COUNT_CHUNK, vocab_size ** 2)


def pair_count_bytes(vocab_size):
    """pair_counts' temporaries: a chunk's ids, keys and their sum (int64), and its bincount."""
    return 8 * (3 * pair_count_chunk(vocab_size) + vocab_size ** 2)


def split_pair_counts(train, val, vocab_size):
    """{'train': C, 'val': C}: the pair counts (V,V) of each split of ids."""
    return {name: pair_counts(split, vocab_size)
            for name, split in (("train", train), ("val", val))}


def check_window_fits(split_size, block_size, split="the split"):
    """A split must hold at least one window of T+1 tokens."""
    if split_size < block_size + 1:
        raise SettingError("block_size", lambda who: (
            f"{split} has {split_size} tokens, fewer than {who} + 1 = {block_size + 1}: use a "
            f"longer text or a smaller {who}"))


def batch_starts(split_size, block_size, batch_size, rng):
    """The first index of each of B windows of T+1 tokens, uniform over [0, n - T): (B,)."""
    check_window_fits(split_size, block_size)
    return rng.integers(0, split_size - block_size, size=batch_size)


def batches_starts(split_size, block_size, batch_size, rng, batches):
    """The starts of `batches` batches, one batch_starts draw after another, as that many
    get_batch calls draw them: (S,B) int64, checked to lie in [0, n - T) (compiled kernels
    read data[start + T] unchecked)."""
    starts = np.empty((batches, batch_size), dtype=np.int64)
    for s in range(batches):
        starts[s] = batch_starts(split_size, block_size, batch_size, rng)
    high = split_size - block_size
    if starts.size and (starts.min() < 0 or starts.max() >= high):
        raise ValueError(f"batch starts outside [0, {high})")
    return starts


def get_batch(data, block_size, batch_size, rng):
    """B random windows of T+1 tokens: x (B,T) inputs and y (B,T) next-token targets.
    data: (n,) token ids (an array or a list); rng: a numpy Generator (np.random.default_rng),
    or anything drawing as its integers() does (npbigram.randomness.torch_rng.TorchGenerator)."""
    data = np.asarray(data)
    if data.ndim != 1 or data.dtype == bool or data.dtype.kind not in "iu":
        raise TypeError(f"data must be a 1-D sequence of integer token ids, got "
                        f"{data.ndim}-D {data.dtype}")
    check_count(block_size, "block_size", minimum=1)
    check_count(batch_size, "batch_size", minimum=1)  # an empty batch has no loss
    if not callable(getattr(rng, "integers", None)):
        raise TypeError(f"rng must be a numpy Generator such as np.random.default_rng(seed), "
                        f"got {type(rng).__name__}")
    starts = batch_starts(len(data), block_size, batch_size, rng)  # (B,)
    return windows(data, starts, block_size)


def windows(data, starts, block_size):
    """x[b] = data[starts[b] : starts[b] + T], y[b] the same shifted by one: (B,T) int64 each
    (whatever unsigned type data holds, as a prepared corpus's memmap does)."""
    tokens, local_starts = read_windows(data, starts, block_size)
    window = local_starts[:, None] + np.arange(block_size)  # (B,T)
    return (np.asarray(tokens[window], dtype=ID_DTYPE),
            np.asarray(tokens[window + 1], dtype=ID_DTYPE))


def read_windows(data, starts, block_size):
    """(tokens, local_starts) with tokens[local_starts[i] + t] = data[starts[i] + t] for
    t = 0..T, starts of any shape. Data in a memory-mapped file (a prepared split) is read
    with os.pread, T+1 tokens a window, so that the windows are all the memory it takes (a page
    touched through the map brings its neighbours into the resident set); other data is
    returned as it is, with starts."""
    position = _file_position(data)
    if position is None:
        return data, starts
    path, first_byte = position
    itemsize = data.dtype.itemsize
    window_bytes = (block_size + 1) * itemsize
    offsets = first_byte + starts.reshape(-1) * itemsize  # of each window in the file
    with open(path, "rb", buffering=0) as f:
        read = bytearray().join([os.pread(f.fileno(), window_bytes, offset)
                                 for offset in offsets.tolist()])
    if len(read) != starts.size * window_bytes:
        raise DatasetError(f"{path} became shorter while it was read: prepare the corpus again")
    tokens = np.frombuffer(read, dtype=data.dtype)
    tokens.flags.writeable = data.flags.writeable  # compiled kernels specialise on it
    width = block_size + 1
    local_starts = np.arange(0, starts.size * width, width, dtype=np.int64)
    return tokens, local_starts.reshape(starts.shape)


def _file_position(data):
    """(path, offset in bytes of data[0]) of a 1-D contiguous array whose memory is an
    np.memmap's mapping of a file; None for any other data (or where os.pread is missing)."""
    owner = data
    while isinstance(owner, np.ndarray) and not isinstance(owner.base, mmap.mmap):
        owner = owner.base  # a view's base, down to the array made on the mapping
    if not (isinstance(owner, np.memmap) and hasattr(os, "pread") and data.ndim == 1
            and data.flags.c_contiguous):
        return None
    return owner.filename, owner.offset + data.ctypes.data - owner.ctypes.data
