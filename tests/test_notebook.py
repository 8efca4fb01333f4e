"""docs/lecture.ipynb and its Chinese twin docs/lecture.zh-CN.ipynb run from top to bottom in a
fresh kernel of this Python, in an empty folder, and show the lecture's numbers; their stored
outputs (so that they read on GitHub) cover every code cell. The twin differs only in its
markdown: the same cells, the same code, the same outputs. Every notebook of docs/ opens
anywhere: its first code cell installs npbigram when the kernel lacks it, and no cell assumes a
working folder or a file beside it (the text ships in the package).

`python tests/test_notebook.py` executes both and stores the new outputs in place."""

import json
import os
import re
import sys
import tempfile
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
NOTEBOOK, CHINESE_NOTEBOOK = DOCS / "lecture.ipynb", DOCS / "lecture.zh-CN.ipynb"
NOTEBOOKS = [NOTEBOOK, CHINESE_NOTEBOOK]
ALL_NOTEBOOKS = sorted(DOCS.glob("*.ipynb"))
INSTALL_CELL = re.compile(r'if importlib\.util\.find_spec\("npbigram"\) is None:\n    subprocess\.'
                          r'check_call\(\[sys\.executable, "-m", "pip", "install", "-q", '
                          r'"npbigram(\[plot\])?"\]\)$')
KERNEL = "npbigram-tests"
LECTURE_OUTPUTS = [  # what the lecture shows, in the order the notebook shows it
    "[24 43 58  5 57  1 46 43]", "(32, 65)", "4.8786",
    "SKIcLT;AcELMoTbvZv C?nq-QE33:CJqkOKH-q;:la!oiywkHjgChzbQ?u!3bLIgwevmyFJGUGp",
    "step 0: train loss 4.7305, val loss 4.7241",
]
# and after training, as PyTorch prints them (float rounding may move a last digit elsewhere)
TRAINED_OUTPUTS = ["step 2700: train loss 2.4738, val loss 2.4911",
                   "MARI he avayokis erceller thour d, myono thishe me tord"]
STEP_LINE = re.compile(r"^step \d+: train loss \d\.\d{4}, val loss \d\.\d{4}$", re.MULTILINE)


def write_kernel_spec(folder):
    """A kernel spec that runs this Python, under folder/kernels/ (put folder first in
    JUPYTER_PATH so that Jupyter finds it)."""
    spec = Path(folder) / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "npbigram tests", "language": "python"}))


def execute(path):
    """The notebook at `path` executed by that kernel in an empty temporary folder, as it runs
    when opened from anywhere (npbigram imported from where this Python finds it)."""
    import nbclient
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as folder:
        nbclient.NotebookClient(notebook, timeout=300, kernel_name=KERNEL, record_timing=False,
                                resources={"metadata": {"path": folder}}).execute()
    return notebook


def merged_outputs(cell):
    """A code cell's outputs with consecutive stream outputs of one stream merged: how a kernel
    splits a cell's printing into stream messages depends on timing."""
    merged = []
    for output in cell.outputs:
        if (output.output_type == "stream" and merged and merged[-1]["output_type"] == "stream"
                and merged[-1]["name"] == output.name):
            merged[-1]["text"] += output.text
        else:
            merged.append(dict(output))
    return merged


def text_outputs(notebook):
    """Everything the code cells printed, in order."""
    return "".join(output.get("text", "") for cell in notebook.cells
                   if cell.cell_type == "code" for output in cell.outputs)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_lecture_notebook_executes_and_shows_the_lectures_numbers(path, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")  # the heatmap; the plot extra
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    write_kernel_spec(tmp_path)
    executed = text_outputs(execute(path))
    positions = [executed.find(expected) for expected in LECTURE_OUTPUTS]
    assert -1 not in positions and positions == sorted(positions), executed
    assert len(STEP_LINE.findall(executed)) == 10


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_stored_notebook_shows_every_output(path):
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs for cell in code_cells[2:])  # all but the install and imports cells
    assert not any(output.output_type == "error" for cell in code_cells for output in cell.outputs)
    stored = text_outputs(notebook)
    assert all(expected in stored for expected in LECTURE_OUTPUTS + TRAINED_OUTPUTS)


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda path: path.name)
def test_every_notebook_installs_npbigram_first_and_assumes_no_working_folder(path):
    import nbformat

    code = [cell.source for cell in nbformat.read(path, as_version=4).cells
            if cell.cell_type == "code"]
    assert INSTALL_CELL.search(code[0]), code[0]
    assert "pip install -e" in code[0]  # what to do in a clone instead
    for source in code[1:]:
        assert not re.search(r"\bcwd\b|NPBIGRAM_DATA|\.\./|open\(|read_text\(", source), source


def test_the_chinese_notebook_has_the_english_ones_code_and_outputs_and_chinese_text():
    """Cell by cell: the same kind, id and metadata; code cells byte for byte, with the same
    stored outputs (the same text, however it was split into stream messages, and the same
    image); markdown cells written in Chinese."""
    import nbformat

    english, chinese = (nbformat.read(path, as_version=4) for path in NOTEBOOKS)
    assert chinese.metadata == english.metadata
    assert len(chinese.cells) == len(english.cells)
    for english_cell, chinese_cell in zip(english.cells, chinese.cells):
        assert (chinese_cell.cell_type, chinese_cell.id, chinese_cell.metadata) == (
            english_cell.cell_type, english_cell.id, english_cell.metadata)
        if english_cell.cell_type == "code":
            assert chinese_cell.source == english_cell.source
            assert merged_outputs(chinese_cell) == merged_outputs(english_cell), english_cell.id
        else:
            assert re.search(r"[\u4e00-\u9fff]", chinese_cell.source), chinese_cell.source


if __name__ == "__main__":
    import nbformat

    with tempfile.TemporaryDirectory() as folder:
        os.environ["JUPYTER_PATH"] = folder
        write_kernel_spec(folder)
        for path in NOTEBOOKS:
            nbformat.write(execute(path), path)
            print(f"executed and stored {path}")
