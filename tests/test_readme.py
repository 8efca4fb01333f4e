"""The README's and the docs' examples run as written after the quick start: the `npbigram`
commands of README.md, docs/cli.md and docs/checkpoints.md in that order, then the README's
Python example and the checkpoint page's, in an empty folder (the default text ships in the
package).

README.zh-CN.md, its Chinese counterpart, has the same shape: the same quick start, the same
commands in the same order, the same Python code (its comments translated), the same command
synopsis, whose every flag the CLI has; the two link to each other from their first line.
docs/cli.md documents every flag of every command, and names none the command lacks."""

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
CLI_DOC, CHECKPOINTS_DOC = ROOT / "docs" / "cli.md", ROOT / "docs" / "checkpoints.md"
RUN_IN_ORDER = (README, CLI_DOC, CHECKPOINTS_DOC)  # each page's commands after the previous'
LEARNING_TOOLS = {"lecture", "gradcheck", "explain", "optimum", "heatmap", "explore"}


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
    """Every `npbigram ...` command of the page's sh blocks, in order (the quick start's
    `.venv/bin/npbigram` included; pip, venv and pytest left out)."""
    commands = []
    for block in code_blocks("sh", readme):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words and words[0] in ("npbigram", ".venv/bin/npbigram"):
                    commands.append(words[1:])
    return commands


def documented_commands():
    """The commands of every page that runs them, in the order a reader meets them."""
    return [command for page in RUN_IN_ORDER for command in readme_commands(page)]


def shown_runs(readme):
    """The commands of readme's plain blocks shown with their output, `$ npbigram ...`."""
    return [shlex.split(line)[2:] for block in code_blocks("", readme)
            for line in block.splitlines() if line.startswith("$ npbigram ")]


def synopsis(readme):
    """The Commands block: its lines, from `npbigram train` to `npbigram --version`."""
    (block,) = [block for block in code_blocks("", readme)
                if block.startswith("npbigram train") and "npbigram --version" in block]
    return block


def run_npbigram(command, folder):
    return subprocess.run([sys.executable, "-m", "npbigram", *command], cwd=folder,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """An empty folder to run in: the quick start needs no file beside it."""
    return tmp_path_factory.mktemp("clone")


@pytest.fixture(scope="module")
def readme_run(clone):
    """Every command the README and the docs show, run in the clone in order: (command,
    result) each."""
    pytest.importorskip("matplotlib")  # the quick start's test extra installs it
    return [(command, run_npbigram(command, clone)) for command in documented_commands()]


def test_the_readme_has_the_quick_start_and_the_learning_tools_and_the_docs_the_workflow():
    assert readme_commands()[0][0] == "train"  # the quick start
    assert LEARNING_TOOLS <= {command[0] for command in readme_commands()}
    assert {"eval", "sample", "--version", "export"} <= {command[0]
                                                         for command in documented_commands()}


@pytest.mark.slow
def test_the_documented_commands_run_as_written_after_the_quick_start(clone, readme_run):
    """Every command the README, docs/cli.md and docs/checkpoints.md show runs as written, in
    order."""
    for command, result in readme_run:
        assert result.returncode == 0, (command, result.stderr)
    assert {"ckpt.npz", "ckpt.best.npz", "full.npz", "full.best.npz", "full.csv", "full.png",
            "heat.png", "explore.html", "lecture.npz", "model.safetensors"} <= {
        path.name for path in clone.iterdir()}


@pytest.mark.slow
def test_the_readme_python_example_runs_as_written(clone, monkeypatch, capsys):
    """In an empty folder: it reads the text the package ships."""
    (block,) = code_blocks("python")
    monkeypatch.chdir(clone)
    exec(compile(block, str(README), "exec"), {})
    assert (clone / "api.npz").exists()
    assert len(capsys.readouterr().out) > 500


@pytest.mark.slow
def test_the_checkpoint_pages_python_runs_after_the_readmes(clone, readme_run, monkeypatch,
                                                            capsys, torch):
    """docs/checkpoints.md's Python blocks, in the README example's namespace (its model,
    tokenizer and optimizer), in the clone after the commands: save, read by hand, interop."""
    monkeypatch.chdir(clone)
    namespace = {}
    exec(compile(code_blocks("python")[0], str(README), "exec"), namespace)
    for block in code_blocks("python", CHECKPOINTS_DOC):
        exec(compile(block, str(CHECKPOINTS_DOC), "exec"), namespace)
    assert namespace["W"].shape == (65, 65) and namespace["meta"]["step"] > 0
    assert namespace["model"].weight.shape == (65, 65)
    assert "'val'" in capsys.readouterr().out.splitlines()[-1]


def test_each_readme_links_to_the_other_from_its_first_line():
    first_lines = [readme.read_text(encoding="utf-8").splitlines()[0]
                   for readme in (README, CHINESE_README)]
    assert "(README.zh-CN.md)" in first_lines[0] and "(README.md)" in first_lines[1]


def test_the_chinese_readme_has_the_english_ones_shape():
    """The same quick start, the same commands in the same order (so the English run covers
    them), the same sections in the same order."""
    assert code_blocks("sh", CHINESE_README)[:2] == code_blocks("sh", README)[:2]
    assert readme_commands(CHINESE_README) == readme_commands()

    def sections(readme):
        return [line for line in readme.read_text(encoding="utf-8").splitlines()
                if line.startswith("## ")]

    assert len(sections(CHINESE_README)) == len(sections(README))


def test_the_readmes_stay_a_front_door():
    for readme in (README, CHINESE_README):
        assert len(readme.read_text(encoding="utf-8").splitlines()) <= 300, readme.name


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


def help_text(command, capsys):
    """What `npbigram *command --help` prints."""
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    return capsys.readouterr().out


def help_flags(command, capsys):
    """The flags `npbigram *command --help` lists."""
    return set(re.findall(r"--[a-z][a-z-]*", help_text(command, capsys)))


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


def subcommands(capsys):
    """The subcommands `npbigram --help` lists."""
    listing = help_text((), capsys).split("positional arguments:")[1].split("options:")[0]
    return re.findall(r"^ {4}([a-z]+)\b", listing, re.M)


def cli_doc_flag_tables():
    """{subcommand: the flags of the first column of the flag tables in its section of
    docs/cli.md}; a section is headed by `npbigram NAME` and runs to the next heading of its
    level or above."""
    tables, current = {}, []  # current: (level, command) of the open sections
    for line in CLI_DOC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^(#+) ", line)
        if heading:
            level = len(heading.group(1))
            current = [(lvl, cmd) for lvl, cmd in current if lvl < level]
            named = re.search(r"`npbigram ([a-z]+)`", line)
            if named:
                current.append((level, named.group(1)))
        elif line.startswith("| `") and current:
            first_cell = line.split(" | ")[0]
            for _, command in current:
                tables.setdefault(command, set()).update(re.findall(r"--[a-z][a-z-]*",
                                                                    first_cell))
    return tables


def test_the_cli_page_documents_every_flag_of_every_command(capsys):
    """Each command's section of docs/cli.md has a table row for each of its flags (an
    alias aside: a row names the first spelling), and no row for a flag the command lacks."""
    tables = cli_doc_flag_tables()
    for command in subcommands(capsys):
        text = help_text((command,), capsys)
        spellings = [re.findall(r"--[a-z][a-z-]*", line.strip().split("  ")[0])
                     for line in text.split("options:")[1].splitlines()
                     if line.startswith("  -")]  # an option's line, not a wrapped help line
        firsts = {names[0] for names in spellings if names} - {"--help"}
        documented = tables.get(command, set())
        assert firsts <= documented, (command, firsts - documented)
        assert documented <= help_flags((command,), capsys), command
