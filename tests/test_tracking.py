"""docs/tracking.md's example runs as written, with a fake TensorBoard writer: after_evaluation
sees each evaluation of bigram.py's schedule once, after its save, and the writer receives its
losses as scalars at its step. No tracker is a dependency."""

import re
import sys
import types
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "tracking.md"


class FakeSummaryWriter:
    """TensorBoard's writer as the example uses it: add_scalar(tag, value, step) and close()."""

    def __init__(self, log_dir):
        self.log_dir, self.scalars, self.closed = log_dir, [], False

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def close(self):
        self.closed = True


def test_the_tracking_example_writes_each_evaluations_losses(monkeypatch):
    (block,) = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    tensorboard = types.ModuleType("torch.utils.tensorboard")
    tensorboard.SummaryWriter = FakeSummaryWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", tensorboard)
    monkeypatch.setitem(sys.modules, "torch.utils", types.ModuleType("torch.utils"))
    monkeypatch.setitem(sys.modules, "torch", types.ModuleType("torch"))
    namespace = {}
    exec(compile(block, str(DOC), "exec"), namespace)
    writer, history = namespace["writer"], namespace["trainer"].history
    assert writer.closed and writer.log_dir == "runs/bigram"
    assert [e["step"] for e in history] == [*range(0, 3000, 300), 3000]  # bigram.py's, and the last
    assert writer.scalars == [(f"loss/{split}", e[split], e["step"])
                              for e in history for split in ("train", "val")]
    assert history[0]["train"] > 4.0 and history[-1]["train"] < 2.6  # it trained
