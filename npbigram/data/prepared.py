"""A folder written by npbigram.data.prepare, read back: its tokenizer, each split's ids as a
read-only np.memmap, and each split's stored pair counts. This side imports no kernel."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .corpus import DatasetError, load_corpus, train_val_split
from .tokenizers import tokenizer_from_json

FORMAT = "npbigram-prepared"
VERSION = 1
SPLITS = ("train", "val")
BIN_FILES = {"train": "train.bin", "val": "val.bin"}
COUNT_FILES = {"train": "train_counts.npy", "val": "val_counts.npy"}
META_FILE = "meta.json"
OUTPUT_FILES = (*BIN_FILES.values(), *COUNT_FILES.values(), META_FILE)
TOKEN_DTYPES = {"uint8": np.dtype("<u1"), "uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}
MAX_COUNTED_VOCAB = 4096  # pair counts are written up to this V: two (V,V) int64 tables of 128 MB
CHECK_TOKENS = 1 << 24  # load_prepared checks the ids this many at a time


def token_dtype(vocab_size):
    """The narrowest unsigned type holding ids 0..V-1: uint8, uint16 or uint32 (little-endian)."""
    for dtype in TOKEN_DTYPES.values():
        if vocab_size <= 1 << (8 * dtype.itemsize):
            return dtype
    raise ValueError(f"a vocabulary of {vocab_size} tokens does not fit 32-bit ids")


@dataclass
class PreparedCorpus:
    """A prepared directory: tokenizer, splits {"train", "val"} as read-only (n,) memmaps of
    the narrow dtype (ids checked < vocab_size), their pair counts {"train", "val"} (V,V)
    int64 (None above MAX_COUNTED_VOCAB), and meta."""

    tokenizer: object
    splits: dict
    counts: dict
    meta: dict

    @property
    def vocab_size(self):
        return self.tokenizer.vocab_size


def load_prepared(directory):
    """Open a directory written by prepare, checking meta.json against the files: sizes, count
    shapes and totals, and every id < vocab_size (one pass over the memmaps)."""
    directory = Path(directory)
    meta = _read_meta(directory)
    tok = tokenizer_from_json(json.dumps(meta["tokenizer"]))
    vocab_size = meta["vocab_size"]
    if tok.vocab_size != vocab_size or meta["dtype"] != token_dtype(vocab_size).name:
        raise DatasetError(f"{directory / META_FILE}: vocab_size {vocab_size} and dtype "
                           f"{meta['dtype']} do not match its {tok.vocab_size}-token tokenizer")
    dtype = TOKEN_DTYPES[meta["dtype"]]
    splits = {name: _open_split(directory / meta["files"][name], meta["tokens"][name], dtype,
                                vocab_size) for name in SPLITS}
    counts = None if meta["counts"] is None else {
        name: _load_counts(directory / meta["counts"][name], meta["tokens"][name], vocab_size)
        for name in SPLITS}
    return PreparedCorpus(tok, splits, counts, meta)


def meta_path(directory):
    """The meta.json of a folder that npbigram prepare wrote, or a DatasetError saying that
    the folder is not one."""
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise DatasetError(f"{directory} is not a prepared folder (no {META_FILE}): run "
                           f"npbigram prepare --data FILE --out {directory}, or name a text file")
    return path


def _read_meta(directory):
    path = meta_path(directory)
    try:
        meta = json.loads(path.read_text())
        if meta["format"] != FORMAT or meta["version"] != VERSION:
            raise DatasetError(f"{path}: format {meta['format']!r} version {meta['version']}, "
                               f"expected {FORMAT!r} version {VERSION}: prepare it again")
        if meta["byte_order"] != "little" or meta["dtype"] not in TOKEN_DTYPES:
            raise ValueError(f"dtype {meta['dtype']!r}, byte order {meta['byte_order']!r}")
        for name in SPLITS:
            for key in ("files", "counts") if meta["counts"] is not None else ("files",):
                if Path(meta[key][name]).name != meta[key][name]:
                    raise ValueError(f"{key} {meta[key][name]!r} is not a plain file name")
            if isinstance(meta["tokens"][name], bool) or not isinstance(meta["tokens"][name], int)\
                    or meta["tokens"][name] < 0:
                raise ValueError(f"tokens {meta['tokens'][name]!r}")
        return meta
    except (ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"{path} is not a valid prepared-corpus description ({e!r})") from None


def _open_split(path, n_tokens, dtype, vocab_size):
    expected = n_tokens * dtype.itemsize
    size = path.stat().st_size if path.is_file() else None
    if size != expected:
        found = "is missing" if size is None else f"has {size} bytes"
        raise DatasetError(f"{path} {found}, but meta.json says {n_tokens} tokens of "
                           f"{dtype.name} ({expected} bytes): prepare the corpus again")
    if n_tokens == 0:
        return np.empty(0, dtype=dtype)  # np.memmap cannot map an empty file
    if vocab_size < 1 << (8 * dtype.itemsize):  # ids of the full type's range need no check
        # read, not mapped: the check leaves no pages in this process's resident set
        with open(path, "rb") as f:
            for start in range(0, n_tokens, CHECK_TOKENS):
                largest = int(np.fromfile(f, dtype=dtype, count=CHECK_TOKENS).max())
                if largest >= vocab_size:
                    raise DatasetError(f"{path} holds id {largest} near token {start}, outside "
                                       f"the vocabulary of {vocab_size}: prepare the corpus "
                                       f"again")
    return np.memmap(path, dtype=dtype, mode="r", shape=(n_tokens,))


def _load_counts(path, n_tokens, vocab_size):
    try:
        counts = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot read the pair counts {path}: {e}") from None
    if counts.dtype != np.int64 or counts.shape != (vocab_size, vocab_size) \
            or counts.sum() != max(n_tokens - 1, 0) or counts.min() < 0:
        raise DatasetError(f"{path} holds {counts.dtype} {counts.shape} pair counts summing to "
                           f"{counts.sum()}; expected int64 ({vocab_size}, {vocab_size}) "
                           f"summing to {max(n_tokens - 1, 0)}: prepare the corpus again")
    return counts


def load_training_data(path, tokenizer=None):
    """(tokenizer, (train, val), counts) of a text file (tokenized in memory with `tokenizer`,
    default char; counts None) or of a folder prepare wrote (its own tokenizer, memmaps, and
    its stored pair counts {'train': C, 'val': C}, None above MAX_COUNTED_VOCAB)."""
    if Path(path).is_dir():
        corpus = load_prepared(path)
        if tokenizer is not None and tokenizer != corpus.tokenizer.kind:
            raise ValueError(f"{path} was prepared with the {corpus.tokenizer.kind} tokenizer, "
                             f"not {tokenizer}: drop --tokenizer or prepare it again")
        return corpus.tokenizer, (corpus.splits["train"], corpus.splits["val"]), corpus.counts
    tokenizer, ids = load_corpus(path, tokenizer or "char")
    return tokenizer, train_val_split(ids), None
