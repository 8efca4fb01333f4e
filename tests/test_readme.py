"""The README's examples run as written after the quick start: its `npbigram` commands in order,
then its Python example, in a folder laid out as a fresh clone beside ../shared/data.

README.zh-CN.md, its Chinese counterpart, shows the same quick start, the same commands in the
same order (its own learning-tool commands run after them), the same Python code (its comments
translated) and the same command synopsis, whose every flag the CLI has; the two link to each
other from their first line."""

import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from npbigram.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
README, CHINESE_README = ROOT / "README.md", ROOT / "README.zh-CN.md"


def code_blocks(language, readme=README):
    """The code blocks of readme fenced as language ("" for a plain fence), in order."""
    blocks, fence = [], None
    for line in readme.read_text(encoding="utf-8").splitlines(keepends=True):
        if fence is None and line.startswith("```"):
            fence, lines = line[3:].strip(), []
        elif fence is not None and line.rstrip() == "```":
            if fence == language:
                blocks.append("".join(lines))
            fence = None
        elif fence is not None:
            lines.append(line)
    return blocks


def readme_commands(readme=README):
    """Every `npbigram ...` command of the README's sh blocks, in order (the quick start's
    `.venv/bin/npbigram` included; pip, venv and pytest left out)."""
    commands = []
    for block in code_blocks("sh", readme):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words and words[0] in ("npbigram", ".venv/bin/npbigram"):
                    commands.append(words[1:])
    return commands


def shown_runs(readme):
    """The commands of readme's plain blocks shown with their output, `$ npbigram ...`."""
    return [shlex.split(line)[2:] for block in code_blocks("", readme)
            for line in block.splitlines() if line.startswith("$ npbigram ")]


def synopsis(readme):
    """The Command line block: its lines, from `npbigram train` to `npbigram --version`."""
    (block,) = [block for block in code_blocks("", readme)
                if block.startswith("npbigram train") and "npbigram --version" in block]
    return block


def run_npbigram(command, folder):
    return subprocess.run([sys.executable, "-m", "npbigram", *command], cwd=folder,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})


@pytest.fixture(scope="module")
def clone(tinyshakespeare, tmp_path_factory):
    """clone/ beside shared/data/tinyshakespeare/input.txt, as the quick start has it."""
    root = tmp_path_factory.mktemp("readme")
    (root / "shared" / "data" / "tinyshakespeare").mkdir(parents=True)
    (root / "shared" / "data" / "tinyshakespeare" / "input.txt").symlink_to(tinyshakespeare)
    (root / "clone").mkdir()
    return root / "clone"


@pytest.fixture(scope="module")
def readme_run(clone):
    """Every command the README shows, run in the clone in order: (command, result) each."""
    pytest.importorskip("matplotlib")  # the quick start's test extra installs it
    return [(command, run_npbigram(command, clone)) for command in readme_commands()]


def test_the_readme_has_the_quick_start_and_the_workflow():
    commands = [command[0] for command in readme_commands()]
    assert commands[0] == "train" and {"eval", "sample", "--version"} <= set(commands)


@pytest.mark.slow
def test_the_readme_commands_run_as_written_after_the_quick_start(clone, readme_run):
    """Every command the README shows runs as written, in order."""
    for command, result in readme_run:
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


def test_each_readme_links_to_the_other_from_its_first_line():
    first_lines = [readme.read_text(encoding="utf-8").splitlines()[0]
                   for readme in (README, CHINESE_README)]
    assert "(README.zh-CN.md)" in first_lines[0] and "(README.md)" in first_lines[1]


@pytest.mark.slow
def test_the_chinese_readme_shows_the_english_commands_and_its_own_run_after_them(clone,
                                                                                  readme_run):
    """The same quick start; the English README's commands in the same order (already run,
    in the clone); then every command only the Chinese README shows runs as written there."""
    assert code_blocks("sh", CHINESE_README)[:2] == code_blocks("sh", README)[:2]
    english, chinese = readme_commands(), readme_commands(CHINESE_README)
    assert [command for command in chinese if command in english] == english
    own = [command for command in chinese if command not in english]
    assert own  # the learning tools
    for command in own:
        result = run_npbigram(command, clone)
        assert result.returncode == 0, (command, result.stderr)


def test_the_chinese_readme_python_example_is_the_english_one():
    """The same code, comments aside (the Chinese one's are translated), so the English
    example's run covers it."""
    (english,), (chinese,) = code_blocks("python"), code_blocks("python", CHINESE_README)
    assert ast.dump(ast.parse(chinese)) == ast.dump(ast.parse(english))


def test_the_commands_shown_with_their_output_parse():
    for readme in (README, CHINESE_README):
        runs = shown_runs(readme)
        assert {"lecture", "train"} <= {command[0] for command in runs}
        for command in runs:
            build_parser().parse_args(command)  # exits 2 on a flag the CLI lacks


def help_flags(command, capsys):
    """The flags `npbigram *command --help` lists."""
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    return set(re.findall(r"--[a-z][a-z-]*", capsys.readouterr().out))


def test_the_synopsis_is_the_same_in_both_readmes_and_names_only_flags_the_cli_has(capsys):
    block = synopsis(CHINESE_README)
    assert block == synopsis(README)
    flags = {}
    for line in block.splitlines():
        if line.startswith("npbigram "):  # `npbigram SUBCOMMAND ...`, or `npbigram --version`
            word = line.split()[1]
            command = () if word.startswith("--") else (word,)
        flags.setdefault(command, set()).update(re.findall(r"--[a-z][a-z-]*", line))
    for command, named in flags.items():
        assert named <= help_flags(command, capsys), command
