"""Shared fixtures: PyTorch as the reference, and the tinyshakespeare corpus."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINYSHAKESPEARE_CANDIDATES = [
    os.environ.get("NPBIGRAM_DATA"),
    ROOT / "data" / "tinyshakespeare" / "input.txt",
    ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt",
]


def _skip_or_fail(reason):
    if os.environ.get("NPBIGRAM_REQUIRE_TORCH") == "1":
        pytest.fail(f"{reason}, and NPBIGRAM_REQUIRE_TORCH=1 forbids skipping")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def torch():
    """The torch module; skips without torch unless NPBIGRAM_REQUIRE_TORCH=1, then fails."""
    try:
        import torch
    except ImportError:
        _skip_or_fail("torch is not installed")
    torch.set_num_threads(2)
    return torch


@pytest.fixture(scope="session")
def tinyshakespeare():
    """Path of the tinyshakespeare text ($NPBIGRAM_DATA, data/, or ../shared/data/)."""
    for candidate in TINYSHAKESPEARE_CANDIDATES:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    _skip_or_fail("tinyshakespeare not found (set NPBIGRAM_DATA)")
