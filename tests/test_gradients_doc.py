"""docs/gradients.md's Python snippets run as written, each on its own, and their checks hold;
those that import torch need it (skipped without it, failing under NPBIGRAM_REQUIRE_TORCH=1)."""

import re
from pathlib import Path

import pytest

GRADIENTS = Path(__file__).resolve().parent.parent / "docs" / "gradients.md"


def snippets():
    """(section heading, code) of every ```python block, in the page's order."""
    found, heading = [], None
    for part in re.split(r"(^## [^\n]*$|^```python\n.*?^```$)", GRADIENTS.read_text(),
                         flags=re.MULTILINE | re.DOTALL):
        if part.startswith("## "):
            heading, count = part[3:], 0
        elif part.startswith("```python"):
            count += 1
            found.append(pytest.param(part[len("```python\n"):-3],
                                      id=f"{heading.split('.')[0]}-{count}"))
    return found


def test_every_new_section_has_a_snippet():
    ids = [param.id for param in snippets()]
    assert {"13-1", "14-1", "15-1"} <= set(ids)
    assert len([i for i in ids if i.startswith("16-")]) == 6  # one per confusion answered


@pytest.mark.parametrize("code", snippets())
def test_the_snippet_runs(code, request, capsys):
    if re.search(r"^import torch", code, flags=re.MULTILINE):
        request.getfixturevalue("torch")
    exec(compile(code, str(GRADIENTS), "exec"), {"__name__": "snippet"})
    out = capsys.readouterr().out
    # a comment after a print that starts with a value ([..., '...', or an error's words) shows
    # what it prints, up to an optional ": explanation"
    for printed in re.findall(r"print\(.*\)\s+# ([\['{o0-9].*)", code):
        assert printed.split(": ")[0].rstrip() in out, printed
