"""Every relative link of every Markdown file in the repository leads somewhere: the file or
folder exists, and a #fragment names a heading of the Markdown file it points into, by GitHub's
rules for heading anchors (Chinese headings included). Links to the web are not followed."""

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_FOLDERS = {"build", "dist", "node_modules", "results"}  # generated, never committed

INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]*(?:\([^()\s]*\))?[^()\s<>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HTML_TARGET = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)
HTML_ANCHOR = re.compile(r"""<a\b[^>]*?\b(?:name|id)\s*=\s*["']([^"']+)["']""", re.I)
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def markdown_files(root=ROOT):
    """The repository's Markdown files: README*, docs/, benchmarks/ and any other, leaving out
    hidden folders (.git, a quick start's .venv) and generated ones."""
    return sorted(path for path in root.rglob("*.md")
                  if not any(part.startswith(".") or part in SKIPPED_FOLDERS
                             or part.endswith(".egg-info")
                             for part in path.relative_to(root).parts[:-1]))


def outside_code(text):
    """(line number, line) of the text outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) \
                    and not line.strip()[len(match.group(1)):]:
                fence = None
        else:
            yield number, line


def prose_lines(text):
    """(line number, line) outside fenced code, inline code blanked out."""
    for number, line in outside_code(text):
        yield number, re.sub(r"(`+)(?:(?!\1).)+?\1", lambda m: " " * len(m.group()), line)


def heading_text(markdown):
    """A heading's text as GitHub renders it: links and images as their text, code and
    emphasis markers and HTML tags dropped."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.replace("`", "")
    return re.sub(r"(\*{1,3}|(?<!\w)_{1,3}|_{1,3}(?!\w))", "", text)


def slug(text):
    """GitHub's anchor of a heading: lower case, every character dropped but letters, marks,
    numbers, `_`, `-` and spaces, then each space a hyphen (github-slugger's rule)."""
    kept = "".join(char for char in text.lower()
                   if unicodedata.category(char)[0] in "LMN" or char in "_- ")
    return kept.replace(" ", "-")


def anchors(path):
    """Every anchor a Markdown file has: its headings' slugs, a repeated one numbered `-1`,
    `-2`, ... as GitHub does, and the names and ids of its HTML anchors."""
    found, seen = set(), {}
    text = path.read_text(encoding="utf-8")
    for _, line in prose_lines(text):
        found.update(HTML_ANCHOR.findall(line))
    for _, line in outside_code(text):  # headings keep their inline code
        heading = HEADING.match(line)
        if heading:
            base = slug(heading_text(heading.group(2)))
            count = seen.get(base, 0)
            found.add(base if count == 0 else f"{base}-{count}")
            seen[base] = count + 1
    return found


def links(path):
    """(line number, target) of every link, image and reference definition outside code."""
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        for pattern in (INLINE_LINK, REFERENCE_DEFINITION, HTML_TARGET):
            for target in pattern.findall(line):
                yield number, target


def link_problem(source, target, root=ROOT):
    """Why the link `target` of the Markdown file `source` is broken, or None."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("//"):
        return None  # http:, https:, mailto: ...: the web is not followed
    file_part, _, fragment = target.partition("#")
    destination = (source.parent / unquote(file_part)).resolve() if file_part else source
    if not destination.exists():
        return f"{file_part} does not exist"
    if root.resolve() not in (destination, *destination.parents):
        return f"{file_part} is outside the repository"
    if fragment:
        if destination.is_dir() or destination.suffix != ".md":
            return f"#{fragment} points into {file_part}, which is not a Markdown file"
        if unquote(fragment) not in anchors(destination):
            return f"#{fragment} is no heading of {destination.relative_to(root.resolve())}"
    return None


@pytest.mark.parametrize("path", markdown_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_and_anchor_of_a_markdown_file_resolves(path):
    broken = [f"{path.relative_to(ROOT)}:{number}: ({target}): {problem}"
              for number, target in links(path)
              if (problem := link_problem(path, target)) is not None]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_markdown_files_checked_include_the_readmes_and_the_docs():
    names = {str(path.relative_to(ROOT)) for path in markdown_files()}
    assert {"README.md", "README.zh-CN.md", "docs/cli.md", "docs/data.md",
            "docs/checkpoints.md", "docs/architecture.md", "benchmarks/README.md"} <= names


def test_anchors_follow_githubs_rules_for_headings(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# The `npbigram` command\n## A run's settings in a file\n"
                    "## Training: `npbigram train`\n## 快速开始\n## 一页纸看懂模型：W\n"
                    "## Notes\n## Notes\n```\n# not a heading\n```\n<a name=\"here\"></a>\n",
                    encoding="utf-8")
    assert anchors(page) == {"the-npbigram-command", "a-runs-settings-in-a-file",
                             "training-npbigram-train", "快速开始", "一页纸看懂模型w", "notes",
                             "notes-1", "here"}


def test_a_broken_link_is_reported_with_its_reason(tmp_path):
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "page.md"
    page.write_text("# Page\nSee [a](../missing.md), [b](page.md#nowhere), [c](#page), "
                    "[d](https://example.com/x), `[e](not-a-link.md)`, ![f](pic.png).\n"
                    "```\n[g](inside-code.md)\n```\n[h]: other.md\n", encoding="utf-8")
    problems = {target: link_problem(page, target, tmp_path) for _, target in links(page)}
    assert problems == {"../missing.md": "../missing.md does not exist",
                        "page.md#nowhere": "#nowhere is no heading of docs/page.md",
                        "#page": None, "https://example.com/x": None,
                        "pic.png": "pic.png does not exist",
                        "other.md": "other.md does not exist"}
