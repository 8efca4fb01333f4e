"""The default text: tinyshakespeare ships in the package, is checked against its SHA-256
whenever it is read, and is what every command trains on without --data, with no network and
nothing written in the working folder. npbigram's cache folder is the platform's."""

import hashlib
import lzma
import os
import socket
import sys
from pathlib import Path

import pytest
from npbigram import DatasetError, load_checkpoint
from npbigram.cli import main
from npbigram.data import embedded, tinyshakespeare, tinyshakespeare_path
from npbigram.utils.user_cache import user_cache_dir


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    """$XDG_CACHE_HOME in a folder of the test's own."""
    home = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_the_packaged_text_is_tinyshakespeare():
    text = tinyshakespeare()
    assert len(text) == 1_115_394 and len(set(text)) == 65
    assert hashlib.sha256(text.encode()).hexdigest() == embedded.TINYSHAKESPEARE_SHA256
    assert text.startswith("First Citizen:\nBefore we proceed any further, hear me speak.")


def test_its_file_is_written_once_into_the_cache_and_rewritten_when_altered(cache_home):
    path = tinyshakespeare_path()
    assert path == cache_home / "npbigram" / "tinyshakespeare" / "input.txt"
    assert path.read_text(encoding="utf-8") == tinyshakespeare()
    written = path.stat().st_mtime_ns
    assert tinyshakespeare_path() == path and path.stat().st_mtime_ns == written
    path.write_text("First Citizen:\n")  # altered: replaced by the package's copy
    assert tinyshakespeare_path().read_text(encoding="utf-8") == tinyshakespeare()
    assert sorted(p.name for p in path.parent.iterdir()) == ["input.txt"]  # no temporaries


def test_a_damaged_packaged_copy_is_one_clear_error(tmp_path, monkeypatch, cache_home):
    damaged = tmp_path / "damaged.xz"
    damaged.write_bytes(lzma.compress(b"First Citizen:\n"))
    monkeypatch.setattr(embedded, "PACKAGED", damaged)
    with pytest.raises(DatasetError, match=r"SHA-256 [0-9a-f]{64}, expected 86c4e6aa.*reinstall"):
        tinyshakespeare()
    damaged.write_bytes(b"not xz")
    with pytest.raises(DatasetError, match=r"cannot read the packaged tinyshakespeare.*reinstall"):
        tinyshakespeare_path()
    assert not (cache_home / "npbigram" / "tinyshakespeare" / "input.txt").exists()


def test_an_unwritable_cache_says_to_pass_data(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a file: no folder can be made in it
    with pytest.raises(DatasetError, match=r"pass --data PATH"):
        tinyshakespeare_path()


def test_train_without_data_trains_on_it_offline_writing_only_its_outputs(
        cache_home, offline, tmp_path, capsys):
    assert main(["train", "--max-iters", "2", "--eval-iters", "1"]) == 0
    assert "\nstep 0: train loss " in "\n" + capsys.readouterr().out  # after any compile line
    checkpoint = load_checkpoint(tmp_path / "ckpt.npz")
    assert checkpoint.step == 2
    assert Path(checkpoint.data["path"]) == cache_home / "npbigram" / "tinyshakespeare" / "input.txt"
    assert {p.name for p in tmp_path.iterdir()} <= {"ckpt.npz", "ckpt.best.npz", "cache"}


def test_the_lecture_without_data_shows_the_lectures_text(cache_home, offline, capsys):
    assert main(["lecture"]) == 0
    assert capsys.readouterr().out.startswith(
        "text: 1,115,394 characters, vocabulary 65; train 1,003,854, val 111,540\n")


@pytest.mark.parametrize("platform, environ, expected", [
    ("linux", {"XDG_CACHE_HOME": "/xdg"}, "/xdg/npbigram"),
    ("linux", {"XDG_CACHE_HOME": "relative"}, "~/.cache/npbigram"),
    ("linux", {}, "~/.cache/npbigram"),
    ("darwin", {"XDG_CACHE_HOME": "/xdg"}, "~/Library/Caches/npbigram"),
    ("win32", {"LOCALAPPDATA": "/appdata"}, "/appdata/npbigram/Cache"),
    ("win32", {}, "~/AppData/Local/npbigram/Cache"),
])
def test_the_cache_folder_is_the_platforms(platform, environ, expected, monkeypatch):
    for variable in ("XDG_CACHE_HOME", "LOCALAPPDATA"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environ.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setattr(sys, "platform", platform)
    assert user_cache_dir() == Path(os.path.expanduser(expected))
