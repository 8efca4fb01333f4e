"""Tokenize a corpus once, streaming, into nanoGPT-style train.bin / val.bin (read by np.memmap),
each split's pair counts and meta.json (the format is docs/data.md's). The semantics are
bigram.py's, as if the source files, in sorted order, were one text read whole.

Two streaming passes, in memory bounded by a few chunks and the (V,V) tables:
    1. scan    the code points present (the vocabulary), the token count N, each file's SHA-256
    2. encode  the token ids chunk by chunk, appended to train.bin then val.bin, each split's
               pairs counted on the way (SplitCounter)
Given a Dask scheduler, both passes run as tasks over byte ranges (prepare_dask) and the client
writes the same bytes. Every file is written to a temporary name and renamed when done; one
prepare at a time writes a folder (a lock), and an unfinished one is redone without --force.
"""

import glob
import json
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path

import numpy as np

from ..utils.files import OutputLock, atomic_output, atomic_write_bytes
from .corpus import DatasetError, train_val_split
from .prepare_tasks import (
    CHUNK_BYTES,
    CODEPOINTS,
    ByteRange,
    Encoding,
    SplitCounter,
    encode_range,
    scan_range,
)
from .prepared import (
    BIN_FILES,
    COUNT_FILES,
    FORMAT,
    MAX_COUNTED_VOCAB,
    META_FILE,
    OUTPUT_FILES,
    SPLITS,
    TOKEN_DTYPES,
    VERSION,
    token_dtype,
)
from .tokenizers import ByteTokenizer, CharTokenizer, decode_codepoints

RANGE_BYTES = 64 << 20  # bytes per Dask task
LOCK_FILE = ".prepare.lock"  # held while a prepare writes the folder
# written before any output file, removed after meta.json
UNFINISHED_FILE = ".prepare-unfinished"


def resolve_sources(data):
    """The files `data` names, as sorted absolute paths: a path, a glob pattern ('**' recurses),
    or a list of them. A pattern matching no file is an error."""
    items = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    if not items:
        raise DatasetError("no data files given")
    found = set()
    for item in map(os.fspath, items):
        files = [m for m in glob.glob(item, recursive=True) if os.path.isfile(m)]
        if os.path.isfile(item):  # a file whose name happens to contain glob characters
            files = [item]
        if not files:
            hint = f" (a directory: pass a pattern such as {item}/*.txt)" \
                if os.path.isdir(item) else ""
            raise DatasetError(f"no file matches {item!r}{hint}")
        found.update(os.path.abspath(f) for f in files)
    return sorted(found)


def prepare(data, out_dir, tokenizer="char", scheduler=None, progress=None, force=False,
            chunk_bytes=CHUNK_BYTES, range_bytes=RANGE_BYTES):
    """Tokenize the files `data` names (see resolve_sources) into out_dir; returns the meta dict.

    tokenizer: "char" or "byte". scheduler: None to run here, or a Dask scheduler address or
    distributed.Client (tasks over byte ranges of about range_bytes). progress: None or a
    tqdm-like class, one bar per pass. force: replace a prepared corpus of other sources.
    chunk_bytes: bytes read at a time (the memory bound)."""
    if tokenizer not in ("char", "byte"):
        raise ValueError(f"unknown tokenizer {tokenizer!r}: choose 'char' or 'byte'")
    if isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, int) or chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be a positive int, got {chunk_bytes!r}")
    files = [(path, os.path.getsize(path)) for path in resolve_sources(data)]
    out_dir, total_bytes = Path(out_dir), sum(size for _, size in files)
    with OutputLock(out_dir / LOCK_FILE, f"--out {out_dir}"):
        _check_replaceable(out_dir, tokenizer, [{"path": p, "size": s} for p, s in files], force)
        runner = _LocalRunner(chunk_bytes) if scheduler is None else _dask_runner(
            scheduler, chunk_bytes, range_bytes)
        with closing(runner):
            with _progress_bar(progress, total_bytes, "scan") as advance:
                ranges, scans, file_digests = runner.scan(files, tokenizer, advance)
            n_tokens = sum(scan.n_tokens for scan in scans)
            if n_tokens == 0:
                raise DatasetError(f"{', '.join(p for p, _ in files)}: no text to prepare")
            vocab_codepoints, tok = _vocabulary(tokenizer, scans)
            n_train = len(train_val_split(range(n_tokens))[0])
            # a file scanned as one range has its range's digest; split files were hashed apart
            digests = {r.path: scan.sha256 for r, scan in zip(ranges, scans) if scan.sha256}
            digests |= file_digests
            sources = [{"path": p, "size": s, "sha256": digests[p]} for p, s in files]
            _check_replaceable(out_dir, tokenizer, sources, force)
            meta = _describe(tok, n_train, n_tokens - n_train, sources)
            encoding = Encoding(vocab_codepoints, TOKEN_DTYPES[meta["dtype"]], n_train,
                                tok.vocab_size if meta["counts"] else None)
            with _progress_bar(progress, total_bytes, "encode") as advance:
                pieces = runner.encode(ranges, scans, encoding, advance)
                _write_outputs(out_dir, meta, encoding, pieces)
    return meta


def _vocabulary(tokenizer, scans):
    """(vocab code points or None, tokenizer): the char vocabulary is every code point present."""
    if tokenizer == "byte":
        return None, ByteTokenizer()
    present = np.zeros(CODEPOINTS, dtype=np.bool_)
    for scan in scans:
        present[scan.codepoints] = True
    vocab_codepoints = np.flatnonzero(present).astype(np.uint32)
    return vocab_codepoints, CharTokenizer(decode_codepoints(vocab_codepoints))


def _describe(tok, n_train, n_val, sources):
    return {
        "format": FORMAT,
        "version": VERSION,
        "tokenizer": json.loads(tok.to_json()),
        "vocab_size": tok.vocab_size,
        "dtype": token_dtype(tok.vocab_size).name,
        "byte_order": "little",
        "tokens": {"train": n_train, "val": n_val},
        "files": dict(BIN_FILES),
        "counts": dict(COUNT_FILES) if tok.vocab_size <= MAX_COUNTED_VOCAB else None,
        "sources": sources,
    }


def _write_outputs(out_dir, meta, encoding, pieces):
    """Write the splits of the token stream `pieces` ((tokens, counted) in stream order) and
    their pair counts, then meta.json. The old meta.json goes before any rename, so a crash
    never leaves a meta.json describing other files."""
    counter = SplitCounter(encoding.counted_vocab, encoding.n_train)
    n_tokens = meta["tokens"]["train"] + meta["tokens"]["val"]
    atomic_write_bytes(out_dir / UNFINISHED_FILE, b"npbigram prepare has not finished here\n")
    with ExitStack() as renames:  # atomic_output renames its file when the stack closes
        bins = [renames.enter_context(atomic_output(out_dir / BIN_FILES[s])) for s in SPLITS]
        # a writer thread writes each piece while the next is encoded (a piece stays valid
        # that long)
        writer = renames.enter_context(ThreadPoolExecutor(max_workers=1))
        written = None  # the write in flight
        for tokens, counted in pieces:
            parts = counter.add(tokens, counted)
            if written is not None:
                written.result()
            written = writer.submit(_write_parts, bins, parts)
        if written is not None:
            written.result()
        if counter.position != n_tokens:
            raise DatasetError(f"the sources changed while being prepared: {counter.position} "
                               f"tokens instead of the {n_tokens} scanned")
        for split, name in enumerate(SPLITS if meta["counts"] else ()):
            counts_file = renames.enter_context(atomic_output(out_dir / COUNT_FILES[name]))
            np.save(counts_file, counter.counts[split], allow_pickle=False)
        (out_dir / META_FILE).unlink(missing_ok=True)
    atomic_write_bytes(out_dir / META_FILE, (json.dumps(meta, indent=2) + "\n").encode())
    (out_dir / UNFINISHED_FILE).unlink()


def _write_parts(bins, parts):
    for split, part in parts:
        bins[split].write(part)


def _check_replaceable(out_dir, tokenizer, sources, force):
    """Refuse to overwrite output files in out_dir unless they are a prepared corpus of the same
    sources (the keys of `sources`) and tokenizer, or an earlier prepare's unfinished output,
    or force is set."""
    existing = [name for name in OUTPUT_FILES if (out_dir / name).exists()]
    unfinished = (out_dir / UNFINISHED_FILE).exists() and not (out_dir / META_FILE).exists()
    if force or not existing or unfinished:
        return
    keys = sources[0].keys()
    try:
        old = json.loads((out_dir / META_FILE).read_text())
        same = old["tokenizer"]["kind"] == tokenizer and \
            [{k: s[k] for k in keys} for s in old["sources"]] == sources
    except (OSError, ValueError, KeyError, TypeError):
        same = False
    if not same:
        raise FileExistsError(
            f"{out_dir} already holds {', '.join(existing)}, not a prepared corpus of these "
            f"sources with the {tokenizer} tokenizer; refusing to overwrite: choose another "
            f"output directory, or force (--force) the replacement")


@contextmanager
def _progress_bar(progress, total, desc):
    """Yield an advance(n_bytes) callback (None without a progress class)."""
    if progress is None:
        yield None
        return
    bar = progress(total=total, desc=desc, unit="B", unit_scale=True)
    try:
        yield bar.update
    finally:
        bar.close()


class _LocalRunner:
    """The passes in this process, one range per file, streamed chunk by chunk."""

    def __init__(self, chunk_bytes):
        self.chunk_bytes = chunk_bytes

    def scan(self, files, tokenizer, advance):
        """(ranges, their RangeScans, {path: SHA-256} of files split over several ranges)."""
        ranges = [ByteRange(path, 0, size) for path, size in files]
        return ranges, [scan_range(r, tokenizer, self.chunk_bytes, advance) for r in ranges], {}

    def encode(self, ranges, scans, encoding, advance):
        """The token stream as (tokens, counted) pieces; counted None: the caller counts."""
        for byte_range in ranges:
            for tokens in encode_range(byte_range, encoding, self.chunk_bytes, advance):
                yield tokens, None

    def close(self):
        pass


def _dask_runner(scheduler, chunk_bytes, range_bytes):
    from .prepare_dask import (
        DaskRunner,  # Dask is optional: imported only when asked for
    )
    return DaskRunner(scheduler, chunk_bytes, range_bytes)

