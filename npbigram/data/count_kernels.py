"""Compiled kernels of corpus preparation: which symbols occur, table lookups, pair counts.

    present[s]   = True for each symbol s in symbols            mark_present     (n,) -> (S,)
    out[i]       = table[symbols[i]]  (symbols -> token ids)    encode_symbols
    counts[a, b] += #{i : (tokens[i], tokens[i+1]) = (a, b)}    add_pair_counts  (n,) -> (V,V)

(add_pair_counts adds to a table kept across a streamed corpus; npbigram.ops.count_pairs counts
a batch's (inputs, targets) into a new one.) The parallel kernels split their input into a
number of chunks fixed by the sizes (never by the thread count); a chunk of add_pair_counts
fills its own private (V,V) table, and the tables are summed in chunk order. The results are
integers, so they are exact: identical for any thread count. (mark_present is serial: it
stores without loading, at over a gigabyte per second.)

add_pair_counts works on a stream fed chunk by chunk: `previous`, the token before tokens[0]
(-1 for none), adds the pair that straddles two streamed chunks. Inside a call, the parallel
chunks split the pair indices i (not the tokens), so the pair (tokens[hi-1], tokens[hi]) at
the border of two parallel chunks is counted by the chunk that owns index hi - 1.

numba does no bounds checks: the Python wrappers check ids before the kernels run.
"""

import numpy as np
from numba import njit, prange

from ..engine.runtime import JIT as jit

PARALLEL_CHUNKS = 16  # a large input is split into this many chunks, each with its own table
PARALLEL_MIN_ITEMS = 1 << 16  # below this many items a kernel runs as one chunk
PAIRS_PER_TABLE_ENTRY = 8  # a chunk of add_pair_counts covers >= 8 V^2 pairs: summing its
#                            table costs at most an eighth of the counting


def _chunks_for(n_items, table_size=1):
    """How many chunks a kernel splits n_items into: a function of the sizes only."""
    if n_items < PARALLEL_MIN_ITEMS:
        return 1
    return max(1, min(PARALLEL_CHUNKS, n_items // (PAIRS_PER_TABLE_ENTRY * table_size)))


@njit(**jit)
def _mark_present(symbols, present):
    for i in range(symbols.size):
        present[symbols[i]] = True  # a store without a load: no dependency between symbols


def mark_present(symbols, present):
    """present[s] = True for every symbol s in symbols (n,) uint8 or uint32; present (S,) bool,
    S > every symbol, is updated in place."""
    symbols = _contiguous(symbols, (np.uint8, np.uint32), "symbols")
    if present.dtype != np.bool_ or present.ndim != 1 or not present.flags.c_contiguous:
        raise ValueError("present must be a contiguous 1-d bool array")
    _check_symbols(symbols, present.size)
    _mark_present(symbols, present)


@njit(**jit)
def _encode_serial(symbols, table, out):
    """out = table[symbols]; returns the OR of the tokens: negative iff some token is -1."""
    ored = np.int32(0)
    for i in range(symbols.size):
        token = table[symbols[i]]
        ored |= token  # no early exit: the loop stays branch-free
        out[i] = token
    return ored


@njit(parallel=True, **jit)
def _encode_parallel(symbols, table, out, chunks):
    negative = np.zeros(chunks, dtype=np.bool_)
    n = symbols.size
    for k in prange(chunks):
        # on slices, so that LLVM sees each loop start at 0: twice as fast as indexing [lo, hi)
        lo, hi = k * n // chunks, (k + 1) * n // chunks
        negative[k] = _encode_serial(symbols[lo:hi], table, out[lo:hi]) < 0
    return negative.any()


def encode_symbols(symbols, table, out):
    """out[i] = table[symbols[i]] for symbols (n,) uint8 bytes or uint32 code points, with
    table (S,) int32 holding each symbol's token id, or -1 for a symbol outside the vocabulary.
    S must exceed every symbol: 256 covers any byte, 0x110000 any Unicode code point.
    out (n,) uint8, uint16 or uint32, wide enough for every id in the table.

    Returns the index of the first symbol without a token, else -1 (`out` then holds
    garbage where symbols had no token)."""
    symbols = _contiguous(symbols, (np.uint8, np.uint32), "symbols")
    table = _contiguous(table, (np.int32,), "table")
    if out.shape != symbols.shape or out.dtype not in (np.uint8, np.uint16, np.uint32) \
            or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"out must be a writable contiguous uint8, uint16 or uint32 array of "
                         f"shape {symbols.shape}")
    _check_symbols(symbols, table.size)
    if not _encode_parallel(symbols, table, out, _chunks_for(symbols.size)):
        return -1
    return int(np.argmax(table[symbols] < 0))


@njit(**jit)
def _add_pair_counts_serial(tokens, counts):
    """counts[a, b] += 1 for each pair (tokens[i], tokens[i+1])."""
    current = tokens[0]
    for i in range(1, tokens.size):
        following = tokens[i]
        counts[current, following] += 1
        current = following


@njit(parallel=True, **jit)
def _add_pair_counts_parallel(tokens, counts, chunks):
    n_pairs = tokens.size - 1
    vocab_size = counts.shape[0]
    private = np.zeros((chunks, vocab_size, vocab_size), dtype=np.int64)
    for k in prange(chunks):
        lo, hi = k * n_pairs // chunks, (k + 1) * n_pairs // chunks  # pairs lo .. hi-1
        _add_pair_counts_serial(tokens[lo:hi + 1], private[k])
    for k in range(chunks):
        counts += private[k]


def add_pair_counts(tokens, counts, previous=-1):
    """counts[a, b] += how many times b follows a in tokens (n,), plus the pair
    (previous, tokens[0]) when previous >= 0: the stream's token before this chunk.

    tokens uint8, uint16 or uint32 ids < V; counts (V,V) int64, updated in place.
    Returns the token the next chunk follows: tokens[-1] (previous when tokens is empty)."""
    tokens = _contiguous(tokens, (np.uint8, np.uint16, np.uint32), "tokens")
    vocab_size = counts.shape[0]
    if counts.dtype != np.int64 or counts.shape != (vocab_size, vocab_size) \
            or not counts.flags.c_contiguous or not counts.flags.writeable:
        raise ValueError(f"counts must be a writable contiguous (V,V) int64 array, "
                         f"got {counts.dtype} {counts.shape}")
    if tokens.size == 0:
        return previous
    if int(tokens.max()) >= vocab_size or previous >= vocab_size:
        raise ValueError(f"token ids must be < the vocabulary size {vocab_size}")
    if previous >= 0:
        counts[previous, tokens[0]] += 1
    n_pairs = tokens.size - 1
    chunks = _chunks_for(n_pairs, vocab_size * vocab_size)
    if chunks == 1:
        _add_pair_counts_serial(tokens, counts)
    else:
        _add_pair_counts_parallel(tokens, counts, chunks)
    return int(tokens[-1])


def _check_symbols(symbols, table_size):
    """Every symbol must index the table: bytes need 256 entries, code points their maximum."""
    largest = 255 if symbols.dtype == np.uint8 else (int(symbols.max()) if symbols.size else 0)
    if largest >= table_size:
        raise ValueError(f"symbol {largest} is outside the table of {table_size} symbols")


def _contiguous(array, dtypes, name):
    if not isinstance(array, np.ndarray) or array.ndim != 1 or array.dtype not in dtypes:
        allowed = ", ".join(np.dtype(d).name for d in dtypes)
        raise TypeError(f"{name} must be a 1-d array of {allowed}")
    return np.ascontiguousarray(array)
