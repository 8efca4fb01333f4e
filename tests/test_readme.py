"""The README's examples run as written after the quick start: its `npbigram` commands in order,
then its Python example, in a folder laid out as a fresh clone beside ../shared/data."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def code_blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), re.DOTALL)


def readme_commands():
    """Every `npbigram ...` command of the README's sh blocks, in order (the quick start's
    `.venv/bin/npbigram` included; pip, venv and pytest left out)."""
    commands = []
    for block in code_blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words and words[0] in ("npbigram", ".venv/bin/npbigram"):
                    commands.append(words[1:])
    return commands


@pytest.fixture(scope="module")
def clone(tinyshakespeare, tmp_path_factory):
    """clone/ beside shared/data/tinyshakespeare/input.txt, as the quick start has it."""
    root = tmp_path_factory.mktemp("readme")
    (root / "shared" / "data" / "tinyshakespeare").mkdir(parents=True)
    (root / "shared" / "data" / "tinyshakespeare" / "input.txt").symlink_to(tinyshakespeare)
    (root / "clone").mkdir()
    return root / "clone"


def test_the_readme_has_the_quick_start_and_the_workflow():
    commands = [command[0] for command in readme_commands()]
    assert commands[0] == "train" and {"eval", "sample", "--version"} <= set(commands)


def test_the_readme_commands_run_as_written_after_the_quick_start(clone):
    """Every command the README shows runs as written, in order."""
    pytest.importorskip("matplotlib")  # the quick start's test extra installs it
    for command in readme_commands():
        result = subprocess.run([sys.executable, "-m", "npbigram", *command], cwd=clone,
                                capture_output=True, text=True, timeout=600,
                                env={**os.environ, "PYTHONIOENCODING": "utf-8"})
        assert result.returncode == 0, (command, result.stderr)
    assert {"ckpt.npz", "ckpt.best.npz", "full.npz", "full.best.npz", "full.csv",
            "full.png"} <= {path.name for path in clone.iterdir()}


def test_the_readme_python_example_runs_as_written(clone, monkeypatch, capsys):
    """It opened data/tinyshakespeare/input.txt, which the quick start
    never creates."""
    (block,) = code_blocks("python")
    monkeypatch.chdir(clone)
    exec(compile(block, str(README), "exec"), {})
    assert (clone / "api.npz").exists()
    assert len(capsys.readouterr().out) > 500
