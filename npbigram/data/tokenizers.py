"""Tokenizers: text in, token ids out, and back. TOKENIZERS is the one registry that the CLI's
--tokenizer choices, the corpus loader and checkpoint metadata all read; a tokenizer is a class
with CharTokenizer's attributes and methods, added there.
"""

import json

import numpy as np

from ..utils.checks import ID_DTYPE, check_ids

ENCODE_CHARS = 1 << 22  # characters a char tokenizer encodes at a time


class CharTokenizer:
    """Character-level tokenizer of bigram.py: vocabulary = sorted(set(text)), encoded through
    the text's UTF-32 code points, ENCODE_CHARS characters at a time."""

    kind = "char"
    unit = "character"  # what a token is, for "bits per character"
    start_id = 0  # bigram.py samples from token 0 (a newline in tinyshakespeare)
    bytes_per_byte = 13  # reading a file's peak memory per byte: bytes, text, int64 ids

    def __init__(self, chars):
        chars = "".join(chars)
        if len(chars) == 0:
            raise ValueError("a character vocabulary needs at least one character")
        codepoints = codepoints_of(chars)
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
        return cls(decode_codepoints(np.unique(np.concatenate(
            [np.unique(codepoints_of(part)) for part in _parts(text)]))))

    @classmethod
    def from_corpus(cls, raw, name):
        """The vocabulary of a UTF-8 file's text and the text's ids; bytes that are not UTF-8
        raise ValueError naming the byte offset."""
        text = decode_utf8(raw, name)
        tokenizer = cls.from_text(text)
        return tokenizer, tokenizer.encode(text)

    @classmethod
    def from_spec(cls, spec):
        return cls(spec["chars"])

    @property
    def vocab_size(self):
        return len(self.chars)

    def encode(self, text):
        """str -> (len(text),) int64 ids; a character outside the vocabulary is a ValueError."""
        if not isinstance(text, str):
            raise TypeError(f"encode takes a str, got {type(text).__name__}")
        ids = np.empty(len(text), dtype=ID_DTYPE)
        for first, part in zip(range(0, len(text), ENCODE_CHARS), _parts(text)):
            codepoints = codepoints_of(part)
            part_ids = ids[first:first + len(part)]
            part_ids[...] = np.searchsorted(self._codepoints, codepoints)
            np.minimum(part_ids, self.vocab_size - 1, out=part_ids)  # a known id is below V
            unknown = self._codepoints[part_ids] != codepoints
            if np.any(unknown):
                pos = first + int(np.argmax(unknown))
                raise ValueError(
                    f"character {text[pos]!r} at position {pos} is not in the vocabulary "
                    f"of {self.vocab_size} characters"
                )
        return ids

    def encode_bytes(self, raw, name):
        """The ids of a UTF-8 file's bytes under this vocabulary; errors name the file."""
        text = decode_utf8(raw, name, advice="a character tokenizer reads UTF-8 text only")
        try:
            return self.encode(text)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None

    def decode(self, ids):
        """ids -> str."""
        ids = check_ids(ids, self.vocab_size, "ids", ndim=None, allow_empty=True)
        return decode_codepoints(self._codepoints[ids.reshape(-1)])

    def decode_bytes(self, ids):
        """ids -> the UTF-8 bytes of their text."""
        return self.decode(ids).encode("utf-8", "surrogatepass")

    def token_texts(self):
        """What each id stands for, as text: (V,) list of str."""
        return list(self.chars)

    def to_json(self):
        return json.dumps({"kind": self.kind, "chars": self.chars})


class ByteTokenizer:
    """Byte-level tokenizer: vocabulary 0..255, reads any file. decode shows bytes that are not
    UTF-8 as \\xNN escapes; decode_bytes gives the bytes themselves."""

    kind = "byte"
    unit = "byte"
    start_id = ord("\n")  # sampling starts at a line's start (byte 0 is a NUL)
    bytes_per_byte = 9  # the file's bytes and their int64 ids
    vocab_size = 256

    @classmethod
    def from_corpus(cls, raw, name):
        """The file's bytes are its ids."""
        tokenizer = cls()
        return tokenizer, tokenizer.encode_bytes(raw, name)

    @classmethod
    def from_spec(cls, spec):
        return cls()

    def encode(self, text):
        """str (encoded as UTF-8) or bytes -> (n,) int64 ids."""
        if isinstance(text, str):
            text = text.encode("utf-8")
        if not isinstance(text, (bytes, bytearray)):
            raise TypeError(f"encode takes str or bytes, got {type(text).__name__}")
        return np.frombuffer(bytes(text), dtype=np.uint8).astype(ID_DTYPE)

    def encode_bytes(self, raw, name):
        """A file's bytes are its ids."""
        return self.encode(raw)

    def decode(self, ids):
        """ids -> str: their bytes as UTF-8, a byte that is not UTF-8 as a \\xNN escape."""
        return self.decode_bytes(ids).decode("utf-8", errors="backslashreplace")

    def decode_bytes(self, ids):
        """ids -> bytes."""
        ids = check_ids(ids, self.vocab_size, "ids", ndim=None, allow_empty=True)
        return ids.reshape(-1).astype(np.uint8).tobytes()

    def token_texts(self):
        """What each id stands for, as text: the ASCII character, or a \\xNN escape (a byte
        above 0x7f is part of a UTF-8 sequence, no character alone)."""
        return [chr(b) if b < 0x80 else f"\\x{b:02x}" for b in range(256)]

    def to_json(self):
        return json.dumps({"kind": self.kind})


TOKENIZERS = {"char": CharTokenizer, "byte": ByteTokenizer}


def tokenizer_from_json(text):
    """Rebuild a tokenizer saved by `to_json` (as stored in checkpoints)."""
    try:
        spec = json.loads(text)
        kind = spec["kind"]
        if kind in TOKENIZERS:
            return TOKENIZERS[kind].from_spec(spec)
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"not a valid tokenizer description: {e}") from None
    raise ValueError(f"unknown tokenizer kind {kind!r}")


BYTE_TOKENIZER_ADVICE = "use the byte tokenizer (--tokenizer byte) for arbitrary files"


def decode_utf8(raw, name, advice=BYTE_TOKENIZER_ADVICE):
    """raw bytes -> str; bytes that are not UTF-8 raise ValueError naming `name` and the offset,
    followed by `advice`."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{name}: byte 0x{raw[e.start]:02x} at byte offset {e.start} is not valid UTF-8 "
            f"({e.reason}); {advice}"
        ) from None


def _parts(text):
    """`text` in slices of ENCODE_CHARS characters, one at a time (an empty text: one empty)."""
    return (text[first:first + ENCODE_CHARS] for first in range(0, max(len(text), 1),
                                                                  ENCODE_CHARS))


def codepoints_of(text):
    # surrogatepass: a str may hold lone surrogates, and they are characters like any other
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def decode_codepoints(codepoints):
    return np.asarray(codepoints, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")
