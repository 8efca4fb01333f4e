"""prepare: streamed train.bin / val.bin and pair counts equal the in-memory path (load_corpus,
train_val_split, ops.pair_counts), the count kernels, overwrite refusal, and a Dask cluster."""

import json
import os

import numba
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import npbigram.data.prepare
from npbigram.cli import main
from npbigram.data.corpus import (
    DatasetError,
    load_corpus,
    pair_counts,
    read_text,
    train_val_split,
)
from npbigram.utils.files import OutputLock
from npbigram.data.count_kernels import add_pair_counts, encode_symbols, mark_present
from npbigram.data.prepare import prepare, resolve_sources
from npbigram.data.prepare_tasks import (
    ByteRange,
    Encoding,
    codepoint_table,
    encode_range,
    split_ranges,
)
from npbigram.data.prepared import OUTPUT_FILES, SPLITS, load_prepared, token_dtype

utf8_text = st.text(st.characters(exclude_categories=("Cs",)))  # any text UTF-8 can encode
small_chunks = st.integers(1, 9)  # so that multi-byte characters straddle chunk boundaries


def write_sources(folder, contents):
    """contents[i] -> folder/part{i}.txt; returns the glob matching them."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, content in enumerate(contents):
        (folder / f"part{i:02d}.txt").write_bytes(content)
    return str(folder / "*.txt")


def assert_matches_in_memory(out_dir, whole, tokenizer):
    """out_dir holds what the in-memory path makes of the bytes `whole` read as one file."""
    (out_dir.parent / "whole.bin").write_bytes(whole)
    tok, ids = load_corpus(out_dir.parent / "whole.bin", tokenizer)
    corpus = load_prepared(out_dir)
    assert corpus.meta["tokenizer"] == json.loads(tok.to_json())
    assert corpus.vocab_size == tok.vocab_size
    for name, expected in zip(SPLITS, train_val_split(ids)):
        assert corpus.splits[name].dtype == token_dtype(tok.vocab_size)
        np.testing.assert_array_equal(corpus.splits[name], expected)
        np.testing.assert_array_equal(corpus.counts[name],
                                      pair_counts(expected, tok.vocab_size))
        assert corpus.meta["tokens"][name] == len(expected)


# ----------------------------------------------------------------------------------------------
# equality with the in-memory path


@pytest.mark.slow
@given(texts=st.lists(utf8_text, min_size=1, max_size=3), chunk_bytes=small_chunks,
       tokenizer=st.sampled_from(["char", "byte"]))
@settings(deadline=None, max_examples=60)
def test_prepare_equals_the_in_memory_path_on_any_text(tmp_path_factory, texts, chunk_bytes,
                                                       tokenizer):
    assume("".join(texts))
    tmp = tmp_path_factory.mktemp("prepare")
    contents = [text.encode() for text in texts]
    prepare(write_sources(tmp / "src", contents), tmp / "out", tokenizer, chunk_bytes=chunk_bytes)
    assert_matches_in_memory(tmp / "out", b"".join(contents), tokenizer)


@given(data=st.lists(st.binary(), min_size=1, max_size=3), chunk_bytes=small_chunks)
@settings(deadline=None, max_examples=30)
def test_byte_tokenizer_prepares_any_bytes(tmp_path_factory, data, chunk_bytes):
    assume(b"".join(data))
    tmp = tmp_path_factory.mktemp("prepare")
    prepare(write_sources(tmp / "src", data), tmp / "out", "byte", chunk_bytes=chunk_bytes)
    assert_matches_in_memory(tmp / "out", b"".join(data), "byte")


def test_tinyshakespeare_in_chunks_equals_the_in_memory_path(tmp_path, tinyshakespeare):
    meta = prepare(tinyshakespeare, tmp_path / "out", chunk_bytes=100_003)  # parallel kernels
    assert_matches_in_memory(tmp_path / "out", tinyshakespeare.read_bytes(), "char")
    assert meta["dtype"] == "uint8" and meta["tokens"] == {"train": 1003854, "val": 111540}
    assert meta["sources"][0]["sha256"] == \
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


def test_files_form_one_stream_in_sorted_order(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    named = {"b.txt": "second ", "a.txt": "first ", "sub/c.txt": "third €"}
    for name, text in named.items():  # created out of order
        (src / name).write_text(text, encoding="utf-8")
    sources = resolve_sources([str(src / "**" / "*.txt"), src / "a.txt"])  # a.txt twice: once
    assert sources == sorted(str((src / n).resolve()) for n in named)
    meta = prepare(sources, tmp_path / "out", chunk_bytes=2)
    assert [s["path"] for s in meta["sources"]] == sources
    assert_matches_in_memory(tmp_path / "out", "first second third €".encode(), "char")


def test_sources_that_match_nothing_or_hold_no_text_are_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"no file matches .*missing"):
        resolve_sources(str(tmp_path / "missing*.txt"))
    with pytest.raises(DatasetError, match=r"a directory: pass a pattern such as"):
        resolve_sources(tmp_path)
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(DatasetError, match="no text to prepare"):
        prepare(tmp_path / "empty.txt", tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------
# UTF-8 errors and dtypes


@given(before=utf8_text, junk=st.binary(min_size=1, max_size=6), after=utf8_text,
       chunk_bytes=small_chunks)
@settings(deadline=None, max_examples=80)
def test_invalid_utf8_names_the_file_and_offset_like_read_text(tmp_path_factory, before, junk,
                                                               after, chunk_bytes):
    tmp = tmp_path_factory.mktemp("invalid")
    (tmp / "a_valid.txt").write_text("fine", encoding="utf-8")
    bad = tmp / "b_bad.txt"
    bad.write_bytes(before.encode() + junk + after.encode())
    try:
        read_text(bad)
    except ValueError as e:
        expected = str(e)
    else:
        return  # the junk happened to be valid UTF-8
    with pytest.raises(ValueError) as raised:
        prepare(str(tmp / "*.txt"), tmp / "out", chunk_bytes=chunk_bytes)
    assert str(raised.value) == expected
    assert not (tmp / "out").exists()


@pytest.mark.parametrize("vocab_size, dtype", [(1, "uint8"), (256, "uint8"), (257, "uint16"),
                                               (65536, "uint16"), (65537, "uint32")])
def test_token_dtype_is_the_narrowest(vocab_size, dtype):
    assert token_dtype(vocab_size) == np.dtype(dtype)


@pytest.mark.parametrize("n_chars", [256, 257, 65537])
def test_a_large_vocabulary_gets_wider_ids(tmp_path, n_chars):
    codepoints = [cp for cp in range(0x20, 0x20 + n_chars + 2048) if not 0xD800 <= cp < 0xE000]
    text = "".join(map(chr, codepoints[:n_chars])) * 2
    (tmp_path / "big.txt").write_text(text, encoding="utf-8")
    meta = prepare(tmp_path / "big.txt", tmp_path / "out", chunk_bytes=1000)
    assert meta["dtype"] == token_dtype(n_chars).name and meta["vocab_size"] == n_chars
    if n_chars > 4096:  # above MAX_COUNTED_VOCAB no (V,V) counts are written
        assert meta["counts"] is None and load_prepared(tmp_path / "out").counts is None
        _, ids = load_corpus(tmp_path / "big.txt")
        for name, expected in zip(SPLITS, train_val_split(ids)):
            np.testing.assert_array_equal(load_prepared(tmp_path / "out").splits[name], expected)
    else:
        assert_matches_in_memory(tmp_path / "out", text.encode(), "char")


def test_split_ranges_cut_only_between_characters(tmp_path):
    text = "".join(chr(cp) for cp in (0x41, 0xE9, 0x20AC, 0x1F600) * 50)  # 1 to 4 byte chars
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    raw = path.read_bytes()
    for range_bytes in (4, 5, 7, 64):
        ranges = split_ranges(str(path), len(raw), range_bytes)
        assert [r.start for r in ranges[1:]] == [r.end for r in ranges[:-1]]
        assert ranges[0].start == 0 and ranges[-1].end == len(raw)
        assert "".join(raw[r.start:r.end].decode() for r in ranges) == text


def test_a_character_missing_from_the_vocabulary_means_the_file_changed(tmp_path):
    (tmp_path / "t.txt").write_text("abcab", encoding="utf-8")
    encoding = Encoding(np.array([ord("a"), ord("b")], dtype=np.uint32), np.dtype(np.uint8), 4,
                        2)
    with pytest.raises(ValueError, match=r"changed while being prepared: character 'c'"):
        list(encode_range(ByteRange(str(tmp_path / "t.txt"), 0, 5), encoding))


# ----------------------------------------------------------------------------------------------
# output directory


def test_prepare_refuses_to_overwrite_another_corpus(tmp_path):
    (tmp_path / "one.txt").write_text("one corpus", encoding="utf-8")
    (tmp_path / "two.txt").write_text("another corpus", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    prepare(tmp_path / "one.txt", out)
    before = {name: (out / name).read_bytes() for name in OUTPUT_FILES}
    prepare(tmp_path / "one.txt", out)  # the same corpus again: allowed
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        prepare(tmp_path / "two.txt", out)
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        prepare(tmp_path / "one.txt", out, tokenizer="byte")
    (tmp_path / "one.txt").write_text("One corpus", encoding="utf-8")  # same size, new SHA-256
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        prepare(tmp_path / "one.txt", out)
    assert {name: (out / name).read_bytes() for name in OUTPUT_FILES} == before
    assert sorted(os.listdir(out)) == sorted([*OUTPUT_FILES, "notes.txt"])  # no temporaries
    prepare(tmp_path / "two.txt", out, force=True)
    replaced = load_prepared(out)
    assert replaced.tokenizer.decode(replaced.splits["train"]) == "another corp"
    assert (out / "notes.txt").read_text() == "mine"


def test_prepare_refuses_files_it_did_not_write(tmp_path):
    (tmp_path / "t.txt").write_text("text", encoding="utf-8")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "train.bin").write_bytes(b"nanoGPT's")
    with pytest.raises(FileExistsError, match=r"holds train.bin"):
        prepare(tmp_path / "t.txt", tmp_path / "out")
    assert (tmp_path / "out" / "train.bin").read_bytes() == b"nanoGPT's"


@pytest.mark.parametrize("again", [False, True])
def test_a_prepare_stopped_before_its_meta_json_is_redone_without_force(tmp_path, monkeypatch,
                                                                        again):
    """A prepare killed after writing its ids but before meta.json (or, on a rerun, after
    removing the old meta.json) left a folder that a plain rerun refused until --force."""
    text = tmp_path / "t.txt"
    text.write_text("hello world, hello prepare\n" * 10, encoding="utf-8")
    out = tmp_path / "out"
    if again:
        prepare(text, out)
    atomic_write_bytes = npbigram.data.prepare.atomic_write_bytes

    def killed_at_meta_json(path, payload, *args):
        if path.name == "meta.json":
            raise KeyboardInterrupt
        atomic_write_bytes(path, payload, *args)

    monkeypatch.setattr(npbigram.data.prepare, "atomic_write_bytes", killed_at_meta_json)
    with pytest.raises(KeyboardInterrupt):
        prepare(text, out)
    monkeypatch.undo()
    assert "train.bin" in os.listdir(out) and "meta.json" not in os.listdir(out)
    prepare(text, out)
    assert sorted(os.listdir(out)) == sorted(OUTPUT_FILES)
    np.testing.assert_array_equal(load_prepared(out).splits["val"],
                                  train_val_split(load_corpus(text)[1])[1])


def test_one_prepare_at_a_time_writes_a_folder(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("text", encoding="utf-8")
    with OutputLock(tmp_path / "out" / ".prepare.lock", "--out out"):  # another prepare's
        assert main(["prepare", "--data", str(tmp_path / "t.txt"), "--out",
                     str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == (
        f"npbigram: error: --out {tmp_path / 'out'} is being written by another npbigram "
        f"process (PID {os.getpid()}): wait for it to finish, or choose another path\n")
    assert not (tmp_path / "out").exists()
    with pytest.raises(DatasetError):  # a folder made for the lock is gone after a failure
        prepare(tmp_path / "missing*.txt", tmp_path / "new")
    (tmp_path / "t.txt").write_bytes(b"\xff")
    with pytest.raises(ValueError, match="is not valid UTF-8"):
        prepare(tmp_path / "t.txt", tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_load_prepared_checks_the_files_against_meta(tmp_path):
    (tmp_path / "t.txt").write_text("hello world, hello prepare\n" * 10, encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(DatasetError, match="not a prepared folder"):
        load_prepared(out)
    prepare(tmp_path / "t.txt", out)
    train = (out / "train.bin").read_bytes()
    (out / "train.bin").write_bytes(train[:-1])
    with pytest.raises(DatasetError, match=r"train.bin has \d+ bytes, but meta.json says"):
        load_prepared(out)
    (out / "train.bin").write_bytes(train[:5] + bytes([200]) + train[6:])
    with pytest.raises(DatasetError, match=r"holds id 200 near token 0, outside the vocabulary"):
        load_prepared(out)
    (out / "train.bin").write_bytes(train)
    np.save(out / "val_counts.npy", np.zeros((3, 3), dtype=np.int64))
    with pytest.raises(DatasetError, match=r"val_counts.npy holds int64 \(3, 3\) pair counts"):
        load_prepared(out)
    meta = json.loads((out / "meta.json").read_text())
    (out / "meta.json").write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(DatasetError, match="version 99"):
        load_prepared(out)


def test_progress_bars_count_every_byte(tmp_path):
    (tmp_path / "t.txt").write_text("progress " * 1000, encoding="utf-8")
    bars = []

    class Bar:
        def __init__(self, total, desc, unit, unit_scale):
            self.total, self.desc, self.done, self.closed = total, desc, 0, False
            bars.append(self)

        def update(self, n):
            self.done += n

        def close(self):
            self.closed = True

    prepare(tmp_path / "t.txt", tmp_path / "out", progress=Bar, chunk_bytes=777)
    assert [(b.desc, b.total, b.done, b.closed) for b in bars] == \
        [("scan", 9000, 9000, True), ("encode", 9000, 9000, True)]


# ----------------------------------------------------------------------------------------------
# kernels


@given(tokens=hnp.arrays(st.sampled_from([np.uint8, np.uint16, np.uint32]), st.integers(0, 200),
                         elements=st.integers(0, 6)),
       previous=st.integers(-1, 6), cuts=st.lists(st.integers(0, 200), max_size=4))
@settings(deadline=None, max_examples=200)
def test_add_pair_counts_streamed_equals_bincount(tokens, previous, cuts):
    stream = tokens if previous < 0 else np.concatenate([[previous], tokens])
    stream = stream.astype(np.int64)
    expected = np.bincount(stream[:-1] * 7 + stream[1:], minlength=49).reshape(7, 7)
    counts = np.zeros((7, 7), dtype=np.int64)
    for piece in np.split(tokens, sorted(c for c in cuts if c <= tokens.size)):
        previous = add_pair_counts(piece, counts, previous)
    np.testing.assert_array_equal(counts, expected)
    assert previous == (stream[-1] if stream.size else -1)


@pytest.mark.parametrize("vocab_size, dtype", [(65, np.uint8), (300, np.uint16)])
def test_add_pair_counts_is_identical_for_one_and_two_threads(vocab_size, dtype):
    tokens = np.random.default_rng(0).integers(0, vocab_size, size=2_000_003).astype(dtype)
    original = numba.get_num_threads()
    results = []
    try:
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(threads)
            counts = np.zeros((vocab_size, vocab_size), dtype=np.int64)
            add_pair_counts(tokens, counts, previous=3)
            results.append(counts)
    finally:
        numba.set_num_threads(original)
    expected = pair_counts(np.concatenate([[3], tokens]).astype(np.int64), vocab_size)
    for counts in results:
        np.testing.assert_array_equal(counts, expected)


def test_add_pair_counts_rejects_ids_outside_the_table():
    with pytest.raises(ValueError, match="must be < the vocabulary size 4"):
        add_pair_counts(np.array([0, 4], dtype=np.uint8), np.zeros((4, 4), dtype=np.int64))
    with pytest.raises(TypeError, match="1-d array of uint8, uint16, uint32"):
        add_pair_counts(np.array([0, 1]), np.zeros((4, 4), dtype=np.int64))


def test_encode_symbols_and_mark_present():
    table = codepoint_table(np.array([ord(" "), ord("a"), 0x20AC], dtype=np.uint32))
    symbols = np.array([ord("a"), 0x20AC, ord(" ")] * 30000, dtype=np.uint32)  # parallel
    out = np.empty(symbols.size, dtype=np.uint8)
    assert encode_symbols(symbols, table, out) == -1
    np.testing.assert_array_equal(out, [1, 2, 0] * 30000)
    symbols[70000] = ord("b")
    assert encode_symbols(symbols, table, out) == 70000
    assert encode_symbols(np.frombuffer(b"a a", dtype=np.uint8), table, out[:3]) == -1
    with pytest.raises(ValueError, match="outside the table of 256 symbols"):
        encode_symbols(np.array([300], dtype=np.uint32), table[:256], out[:1])
    present = np.zeros(256, dtype=np.bool_)
    mark_present(np.frombuffer(b"abca", dtype=np.uint8), present)
    assert np.flatnonzero(present).tolist() == [97, 98, 99]


# ----------------------------------------------------------------------------------------------
# Dask


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        yield cluster


@pytest.mark.slow
@pytest.mark.parametrize("tokenizer", ["char", "byte"])
def test_dask_output_is_the_local_output_byte_for_byte(tmp_path, dask_cluster, tokenizer):
    rng = np.random.default_rng(7)
    alphabet = np.array(list("abc \n") + ["é", "€", "😀", "ß"])
    shards = ["".join(rng.choice(alphabet, size=int(rng.integers(0, 3000)))) for _ in range(8)]
    data = write_sources(tmp_path / "src", [s.encode() for s in shards])
    local = prepare(data, tmp_path / "local", tokenizer, chunk_bytes=1000)
    remote = prepare(data, tmp_path / "dask", tokenizer, scheduler=dask_cluster.scheduler_address,
                     chunk_bytes=100, range_bytes=997)  # most shards cut into several ranges
    assert remote == local
    for name in OUTPUT_FILES:
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    assert_matches_in_memory(tmp_path / "dask", "".join(shards).encode(), tokenizer)


def test_dask_reports_invalid_utf8_like_a_local_run(tmp_path, dask_cluster):
    distributed = pytest.importorskip("distributed")
    data = write_sources(tmp_path / "src", ["fine €".encode() * 100,
                                            b"ok" * 700 + b"\xe2\x82" + b"z" * 100])
    with pytest.raises(ValueError) as local:
        prepare(data, tmp_path / "local", chunk_bytes=64)
    with distributed.Client(dask_cluster, set_as_default=False) as client:
        with pytest.raises(ValueError) as remote:
            prepare(data, tmp_path / "dask", scheduler=client, range_bytes=256)
        assert client.status == "running"  # a client passed in is left open
    assert str(remote.value) == str(local.value)
    assert "part01.txt: byte 0xe2 at byte offset 1400 is not valid UTF-8" in str(local.value)


# ----------------------------------------------------------------------------------------------
# training, optimum and heatmap from a prepared folder


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_training_from_a_prepared_folder_is_training_from_the_text(tmp_path, capsys, backend):
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 300 + "é∑\n")
    main(["prepare", "--data", str(text), "--out", str(tmp_path / "prepared")])
    assert "as uint8, vocabulary" in capsys.readouterr().out
    runs = {}
    for name, data in (("text", text), ("prepared", tmp_path / "prepared")):
        for flags in (["--eval-iters", "5"], ["--full-batch", "--max-iters", "30"]):
            out = tmp_path / f"{name}{len(flags)}.npz"
            assert main(["train", "--data", str(data), "--out", str(out), "--max-iters", "60",
                         "--backend", backend, *flags]) == 0
            runs[name, len(flags)] = capsys.readouterr().out
            np.testing.assert_array_equal(np.load(out)["weight"],
                                          np.load(tmp_path / f"text{len(flags)}.npz")["weight"])

    def printed(output):  # what the runs print, but for timing and their checkpoints' names
        return [line for line in output.splitlines()
                if not line.startswith(("trained ", "best val loss", "compiled kernels"))]
    assert printed(runs["text", 2]) == printed(runs["prepared", 2])


def test_optimum_and_heatmap_read_a_prepared_folder(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("abracadabra, said the cat. " * 100)
    main(["prepare", "--data", str(text), "--out", str(tmp_path / "p"), "--tokenizer", "byte"])
    capsys.readouterr()
    assert main(["optimum", "--data", str(tmp_path / "p")]) == 0
    from_folder = capsys.readouterr().out.split("\n", 1)[1]
    assert main(["optimum", "--data", str(text), "--tokenizer", "byte"]) == 0
    assert capsys.readouterr().out.split("\n", 1)[1] == from_folder
    assert main(["optimum", "--data", str(tmp_path / "p"), "--tokenizer", "char"]) == 1
    assert "prepared with the byte tokenizer" in capsys.readouterr().err
