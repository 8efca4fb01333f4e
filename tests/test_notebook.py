"""docs/lecture.ipynb runs from top to bottom in a fresh kernel of this Python and shows the
lecture's numbers; its stored outputs (so that it reads on GitHub) cover every code cell.

`python tests/test_notebook.py` executes it and stores the new outputs in place."""

import json
import os
import re
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "docs" / "lecture.ipynb"
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


def execute(path=NOTEBOOK):
    """The notebook at `path` (the lecture's) executed by that kernel, in its folder as
    Jupyter runs it."""
    import nbclient
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name=KERNEL, record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    return notebook


def text_outputs(notebook):
    """Everything the code cells printed, in order."""
    return "".join(output.get("text", "") for cell in notebook.cells
                   if cell.cell_type == "code" for output in cell.outputs)


def test_lecture_notebook_executes_and_shows_the_lectures_numbers(tinyshakespeare, tmp_path,
                                                                  monkeypatch):
    pytest.importorskip("matplotlib")  # the heatmap; the plot extra
    monkeypatch.setenv("NPBIGRAM_DATA", str(tinyshakespeare))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    write_kernel_spec(tmp_path)
    executed = text_outputs(execute())
    positions = [executed.find(expected) for expected in LECTURE_OUTPUTS]
    assert -1 not in positions and positions == sorted(positions), executed
    assert len(STEP_LINE.findall(executed)) == 10


def test_stored_notebook_shows_every_output():
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs for cell in code_cells[1:])  # all but the imports print something
    assert not any(output.output_type == "error" for cell in code_cells for output in cell.outputs)
    stored = text_outputs(notebook)
    assert all(expected in stored for expected in LECTURE_OUTPUTS + TRAINED_OUTPUTS)


if __name__ == "__main__":
    import tempfile

    import nbformat

    with tempfile.TemporaryDirectory() as folder:
        os.environ["JUPYTER_PATH"] = folder
        write_kernel_spec(folder)
        nbformat.write(execute(), NOTEBOOK)
    print(f"executed and stored {NOTEBOOK}")
