"""Shared fixtures: every test in its own temporary folder, PyTorch as the reference, and the
tinyshakespeare corpus."""

import pytest
from npbigram.data.embedded import tinyshakespeare_bytes
from npbigram.engine import BACKENDS

from helpers import save_trainer, skip_or_fail, trained_trainer


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    """Every test runs in its own empty folder: what the folder pytest starts in holds (a
    quick start's ckpt.npz, data/) never changes a result, and nothing is written there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def torch():
    """The torch module; skips without torch unless NPBIGRAM_REQUIRE_TORCH=1, then fails."""
    try:
        import torch
    except ImportError:
        skip_or_fail("torch is not installed")
    torch.set_num_threads(2)
    return torch


@pytest.fixture(scope="session")
def tinyshakespeare(tmp_path_factory):
    """Path of a copy of the tinyshakespeare text the package ships (checked against its
    SHA-256), in the session's temporary folder."""
    path = tmp_path_factory.mktemp("tinyshakespeare") / "input.txt"
    path.write_bytes(tinyshakespeare_bytes())
    return path


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request):
    """Each compute backend in turn (session-scoped, so hypothesis tests may use it)."""
    return request.param


@pytest.fixture(scope="session")
def torch_bigram(torch):
    """bigram.py's BigramLanguageModel (npbigram.reference_torch): the module that the
    benchmarks' PyTorch port of bigram.py (benchmarks/bigram_torch.py) trains."""
    from npbigram.reference_torch import BigramLanguageModel

    return BigramLanguageModel


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    """The bytes of a checkpoint with every part: weights, tokenizer, AdamW state, rng."""
    path = tmp_path_factory.mktemp("ckpt") / "ckpt.npz"
    save_trainer(path, trained_trainer("numpy"))
    return path.read_bytes()
