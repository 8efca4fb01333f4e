"""The work of `prepare`, one byte range of one file at a time, in-process or on Dask workers:

    pass 1, scan_range:   n_tokens, the code points present, and the SHA-256 of the bytes
    pass 2, encode_range: the token ids, chunk by chunk, in the narrow dtype

A range begins and ends at a character boundary (split_ranges), so it decodes on its own; its
chunks are decoded incrementally (a UTF-8 sequence cut by a chunk boundary waits in the
decoder). A chunk of ASCII with no sequence pending skips decoding: its bytes are code points.
"""

import codecs
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from .count_kernels import add_pair_counts, encode_symbols, mark_present
from .tokenizers import codepoints_of

CHUNK_BYTES = 4 << 20  # bytes read at a time
CODEPOINTS = 0x110000  # every Unicode code point is below this
UTF8_DECODER = codecs.getincrementaldecoder("utf-8")


@dataclass(frozen=True)
class ByteRange:
    """Bytes [start, end) of the file at path (an absolute path, readable by every worker)."""

    path: str
    start: int
    end: int


@dataclass
class RangeScan:
    """Pass 1's result for one range."""

    n_tokens: int  # characters (char tokenizer) or bytes (byte tokenizer)
    codepoints: np.ndarray  # (k,) uint32 sorted code points present; empty for bytes
    sha256: object  # hex SHA-256 of the range's bytes, or None when not asked for


def split_ranges(path, size, range_bytes):
    """Cut a file of `size` bytes into ranges of about range_bytes, each cut moved back to the
    start of a character: onto a byte that is not a UTF-8 continuation byte (0b10xxxxxx). Where
    four continuation bytes in a row leave no character start (the file is not UTF-8 there),
    the cut stays: the scan reports the error at the same offset as a whole-file decode."""
    cuts = [0]
    with open(path, "rb") as f:
        for nominal in range(range_bytes, size, range_bytes):
            f.seek(nominal - 3)
            around = f.read(4)  # bytes nominal-3 .. nominal
            back = next((k for k in range(4) if not 0x80 <= around[3 - k] < 0xC0), 0)
            if nominal - back > cuts[-1]:
                cuts.append(nominal - back)
    cuts.append(size)
    return [ByteRange(path, a, b) for a, b in pairwise(cuts)]


def read_chunks(byte_range, chunk_bytes=CHUNK_BYTES):
    """Yield (file offset, chunk) of the range, chunk a (m,) uint8 view of one reused buffer:
    valid until the next chunk is read."""
    buffer = np.empty(min(chunk_bytes, byte_range.end - byte_range.start), dtype=np.uint8)
    offset = byte_range.start
    with open(byte_range.path, "rb") as f:
        f.seek(offset)
        while offset < byte_range.end:
            want = min(buffer.size, byte_range.end - offset)
            got = f.readinto(memoryview(buffer)[:want])
            if got == 0:
                raise ValueError(f"{byte_range.path} ended at byte {offset}, before byte "
                                 f"{byte_range.end}: it changed while being prepared")
            yield offset, buffer[:got]
            offset += got


def pending_bytes(decoder):
    """How many bytes of an unfinished UTF-8 sequence the decoder holds."""
    return len(decoder.getstate()[0])


def _chunk_codepoints(decoder, chunk, offset, path):
    """The code points (uint32) of the characters the chunk completes, decoded incrementally:
    a sequence cut off at the chunk's end waits in the decoder for the next chunk."""
    pending = pending_bytes(decoder)
    return codepoints_of(_decode(decoder, memoryview(chunk), offset - pending, path))


def finish_decoding(decoder, end, path):
    """At the end of a range: a sequence still pending is cut off, an error."""
    _decode(decoder, b"", end - pending_bytes(decoder), path, final=True)


def _decode(decoder, chunk, offset, path, final=False):
    """decoder.decode; offset is the file offset of the decoder's first pending byte."""
    try:
        return decoder.decode(chunk, final)
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{path}: byte 0x{e.object[e.start]:02x} at byte offset {offset + e.start} is not "
            f"valid UTF-8 ({e.reason}); use the byte tokenizer (--tokenizer byte) for "
            f"arbitrary files"
        ) from None


def scan_range(byte_range, tokenizer, chunk_bytes=CHUNK_BYTES, advance=None, sha256=True):
    """Pass 1 over one range: its token count, code points present (char) and, if sha256, its
    SHA-256, hashed by a second thread while this one finds the code points (both release the
    GIL). advance(n_bytes), if given, is called after each chunk."""
    digest = hashlib.sha256() if sha256 else None
    n_tokens = 0
    present = np.zeros(CODEPOINTS if tokenizer == "char" else 0, dtype=np.bool_)
    bytes_seen = np.zeros(256, dtype=np.bool_)
    decoder = UTF8_DECODER()
    with ThreadPoolExecutor(max_workers=1) as hasher:
        for offset, chunk in read_chunks(byte_range, chunk_bytes):
            hashed = None if digest is None else hasher.submit(digest.update, chunk)
            if tokenizer == "byte":
                n_tokens += chunk.size
            else:
                bytes_seen[:] = False
                mark_present(chunk, bytes_seen)
                if pending_bytes(decoder) == 0 and not bytes_seen[0x80:].any():
                    present[:0x80] |= bytes_seen[:0x80]  # ASCII: each byte is a code point
                    n_tokens += chunk.size
                else:
                    codepoints = _chunk_codepoints(decoder, chunk, offset, byte_range.path)
                    mark_present(codepoints, present)
                    n_tokens += codepoints.size
            if hashed is not None:
                hashed.result()  # before the buffer is read into again
            if advance is not None:
                advance(chunk.size)
    if tokenizer == "char":
        finish_decoding(decoder, byte_range.end, byte_range.path)
    return RangeScan(n_tokens, np.flatnonzero(present).astype(np.uint32),
                     None if digest is None else digest.hexdigest())


def file_sha256(path, chunk_bytes=CHUNK_BYTES):
    """SHA-256 of a whole file (for a file whose ranges were scanned apart)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def codepoint_table(vocab_codepoints):
    """(CODEPOINTS,) int32: the token id of each code point in the vocabulary, -1 elsewhere."""
    table = np.full(CODEPOINTS, -1, dtype=np.int32)
    table[vocab_codepoints] = np.arange(len(vocab_codepoints), dtype=np.int32)
    return table


@dataclass(frozen=True)
class Encoding:
    """What pass 2 needs to know of the whole corpus, found by pass 1."""

    vocab_codepoints: object  # (V,) uint32 sorted code points of the char vocabulary; None: bytes
    dtype: np.dtype  # of the token ids
    n_train: int  # the first n_train tokens of the stream train
    counted_vocab: object  # V when the pairs are counted, None when (V,V) tables are too large


def encode_range(byte_range, encoding, chunk_bytes=CHUNK_BYTES, advance=None):
    """Pass 2 over one range: yield its token ids chunk by chunk, (m,) arrays of
    encoding.dtype in two buffers taken in turn, so a chunk stays valid while the next one is
    encoded. advance(n_bytes) as in scan_range."""
    char = encoding.vocab_codepoints is not None
    if char:
        table = codepoint_table(encoding.vocab_codepoints)
        ascii_table = table[:256].copy()
        ascii_table[0x80:] = -1  # a byte >= 0x80 is part of a longer sequence: decode the chunk
    decoder = UTF8_DECODER()
    # + the bytes of a sequence the decoder holds back from the previous chunk
    buffers = np.empty((2, min(chunk_bytes, byte_range.end - byte_range.start) + 4),
                       dtype=encoding.dtype)
    for k, (offset, chunk) in enumerate(read_chunks(byte_range, chunk_bytes)):
        tokens = buffers[k % 2, :chunk.size]
        if not char:
            tokens[:] = chunk  # the byte tokenizer's ids are the bytes
        elif pending_bytes(decoder) or encode_symbols(chunk, ascii_table, tokens) >= 0:
            codepoints = _chunk_codepoints(decoder, chunk, offset, byte_range.path)
            tokens = buffers[k % 2, :codepoints.size]
            missing = encode_symbols(codepoints, table, tokens)
            if missing >= 0:
                raise ValueError(f"{byte_range.path} changed while being prepared: character "
                                 f"{chr(codepoints[missing])!r} near byte offset {offset} was "
                                 f"not in it when the vocabulary was scanned")
        yield tokens
        if advance is not None:
            advance(chunk.size)
    if char:
        finish_decoding(decoder, byte_range.end, byte_range.path)


class SplitCounter:
    """Routes a token stream, fed in order, to its splits (token p trains if p < n_train) and
    counts each split's pairs as corpus.pair_counts(split) does: the pair straddling the border
    is in neither. counted_vocab None: the tokens are only routed (counts is None)."""

    def __init__(self, counted_vocab, n_train, position=0):
        self.n_train = n_train
        self.position = position  # stream index of the next token
        self.counts = None if counted_vocab is None else [
            np.zeros((counted_vocab, counted_vocab), dtype=np.int64) for _ in range(2)]
        self.previous = [-1, -1]  # last token of each split so far

    def add(self, tokens, counted=None):
        """Count the pairs of the next tokens (m,); returns [(split 0 train / 1 val, part)].
        counted: the (train, val) counts of the pairs inside `tokens`, when a task has counted
        them already; then only the pair joining tokens to the stream before it is added."""
        cut = min(max(self.n_train - self.position, 0), tokens.size)
        parts = [(split, part) for split, part in ((0, tokens[:cut]), (1, tokens[cut:]))
                 if part.size]
        self.position += tokens.size
        if self.counts is None:
            return parts
        for split, part in parts:
            if counted is None:
                self.previous[split] = add_pair_counts(part, self.counts[split],
                                                       self.previous[split])
            else:
                if self.previous[split] >= 0:
                    self.counts[split][self.previous[split], part[0]] += 1
                self.previous[split] = int(part[-1])
        if counted is not None:
            for split in range(2):
                self.counts[split] += counted[split]
        return parts


def encode_range_task(byte_range, encoding, n_tokens, position, chunk_bytes=CHUNK_BYTES):
    """Pass 2 as one task: the range's n_tokens ids (starting at stream index `position`) and
    the (train, val) counts of the pairs inside them, for SplitCounter.add(tokens, counted)."""
    tokens = np.empty(n_tokens, dtype=encoding.dtype)
    counter = SplitCounter(encoding.counted_vocab, encoding.n_train, position)
    filled = 0
    for chunk_tokens in encode_range(byte_range, encoding, chunk_bytes):
        if filled + chunk_tokens.size > n_tokens:
            break
        tokens[filled:filled + chunk_tokens.size] = chunk_tokens
        counter.add(chunk_tokens)
        filled += chunk_tokens.size
    if filled != n_tokens:
        raise ValueError(f"{byte_range.path} changed while being prepared: bytes "
                         f"{byte_range.start}..{byte_range.end} no longer hold {n_tokens} tokens")
    return tokens, counter.counts
