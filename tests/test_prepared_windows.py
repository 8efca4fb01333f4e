"""Minibatches from a prepared folder: windows read out of the ids file into a buffer of just
those windows, so that no page of its memory map becomes resident, with the same batches,
losses and weights as training from the text in memory."""

import os
from pathlib import Path

import numpy as np
import pytest

import npbigram.data.corpus
import npbigram.engine.numba_engine
from npbigram.data.corpus import load_corpus, read_windows
from npbigram.data.prepare import prepare
from npbigram.data.prepared import BIN_FILES, load_training_data
from npbigram.engine.numba_engine import CHUNK_MAX_STEPS
from npbigram.train import TrainConfig, Trainer

SMAPS = Path("/proc/self/smaps")
needs_smaps = pytest.mark.skipif(not SMAPS.is_file(), reason="no /proc/self/smaps")


@pytest.fixture
def text_and_folder(tmp_path):
    """A 400 KB text of random words (many pages of ids) and the folder prepare made of it."""
    rng = np.random.default_rng(0)
    words = np.array(["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "é∑"])
    text = tmp_path / "text.txt"
    text.write_text(" ".join(rng.choice(words, size=80_000)) + "\n")
    prepare(str(text), tmp_path / "prepared")
    return text, tmp_path / "prepared"


def resident_kb(path):
    """Kilobytes of this process's mappings of `path` that are resident (smaps' Rss)."""
    total, in_mapping = 0, False
    for line in SMAPS.read_text().splitlines():
        if line[:1].isdigit() or line[:1] in "abcdef":  # a mapping's header line
            in_mapping = line.endswith(str(path))
        elif in_mapping and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


@pytest.mark.parametrize("shape", [(5,), (3, 7), (2, 0)])
@pytest.mark.parametrize("dtype", ["<u1", "<u2", "<u4"])
def test_read_windows_reads_the_windows_of_a_map_and_nothing_more(tmp_path, shape, dtype,
                                                                  monkeypatch):
    ids = np.random.default_rng(0).integers(0, 200, size=10_000).astype(dtype)
    ids.tofile(tmp_path / "ids.bin")
    mapped = np.memmap(tmp_path / "ids.bin", dtype=dtype, mode="r", shape=ids.shape)
    reads = []  # bytes asked for by each read
    real_pread = os.pread

    def pread(fd, n, offset):
        reads.append(n)
        return real_pread(fd, n, offset)
    monkeypatch.setattr(os, "pread", pread)
    block_size = 6
    starts = np.random.default_rng(1).integers(0, len(ids) - block_size, size=shape)
    tokens, local = read_windows(mapped, starts, block_size)
    window_bytes = (block_size + 1) * np.dtype(dtype).itemsize
    assert reads == [window_bytes] * starts.size  # each window once, nothing around it
    assert tokens.nbytes == starts.size * window_bytes  # the buffer is all that is held
    assert type(tokens) is np.ndarray and tokens.dtype == dtype
    assert not tokens.flags.writeable and local.shape == starts.shape
    for t in range(block_size + 1):
        np.testing.assert_array_equal(tokens[local + t], ids[starts + t])
    if SMAPS.is_file():
        assert resident_kb(tmp_path / "ids.bin") == 0
    assert read_windows(ids, starts, block_size)[0] is ids  # an array in memory is used in place
    view_starts = starts % (len(ids) - 3 - block_size)
    view_tokens, view_local = read_windows(np.asarray(mapped[3:]), view_starts, block_size)
    for t in range(block_size + 1):  # a view of the map is read from the file too
        np.testing.assert_array_equal(view_tokens[view_local + t], ids[3:][view_starts + t])
    assert len(reads) == 2 * starts.size


@pytest.mark.slow
@needs_smaps
@pytest.mark.parametrize("grad", ["gather-scatter", "pair-counts"])
def test_training_from_a_folder_is_training_in_memory_with_no_page_resident(
        text_and_folder, backend, grad, monkeypatch):
    copies = []  # (windows asked for, tokens copied) of every read

    def recorded(data, starts, block_size):
        tokens, local = read_windows(data, starts, block_size)
        if tokens is not data:
            copies.append((starts.size, tokens.size))
        return tokens, local
    monkeypatch.setattr(npbigram.data.corpus, "read_windows", recorded)
    monkeypatch.setattr(npbigram.engine.numba_engine, "read_windows", recorded)
    text, folder = text_and_folder
    config = TrainConfig(batch_size=16, block_size=8, eval_iters=30, backend=backend, grad=grad)
    tokenizer, ids = load_corpus(text)
    _, splits, counts = load_training_data(folder)
    trainers = {"memory": Trainer(config, ids, tokenizer.vocab_size),
                "folder": Trainer(config, None, tokenizer.vocab_size, splits=splits,
                                  counts=counts)}
    results = {}
    for name, trainer in trainers.items():
        trainer.warm_up()
        losses = [trainer.train_steps(steps) for steps in (1, 40, 300)]
        results[name] = trainer.model.weight, np.concatenate(losses), trainer.evaluate()
    np.testing.assert_array_equal(results["folder"][0], results["memory"][0])
    np.testing.assert_array_equal(results["folder"][1], results["memory"][1])
    assert results["folder"][2] == results["memory"][2]
    for split in BIN_FILES.values():  # no page of the map was touched
        assert resident_kb(folder / split) == 0
    assert copies and all(copied == asked * (8 + 1) for asked, copied in copies)
    assert max(asked for asked, _ in copies) <= CHUNK_MAX_STEPS * config.batch_size
