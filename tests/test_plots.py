"""plots: train --plot and heatmap write valid PNG files, atomically, or fail clearly."""

import sys

import numpy as np
import pytest
from npbigram import BigramLanguageModel, CharTokenizer, run, save_checkpoint
from npbigram.cli import main
from npbigram.plots import MissingMatplotlib, plot_heatmap, plot_losses

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT = "the quick brown fox jumps over the lazy dog.\nThe Lazy Dog sleeps.\n" * 20


def assert_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


@pytest.fixture
def matplotlib():
    return pytest.importorskip("matplotlib")


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT)
    return path


def test_plot_losses_writes_a_png(matplotlib, tmp_path):
    history = [(0, {"train": 4.2, "val": 4.3}), (10, {"train": 3.0, "val": 3.1})]
    path = tmp_path / "loss.png"
    plot_losses(history, path, floor=2.5)
    assert_png(path)


def test_plot_heatmap_side_by_side_writes_a_png(matplotlib, tmp_path):
    labels = ["\\n", "␣", "a", "b"]
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=4)
    path = tmp_path / "heat.png"
    plot_heatmap(probs, labels, path, reference=probs[::-1])
    assert_png(path)
    with pytest.raises(ValueError, match="expected a 4x4 table"):
        plot_heatmap(probs[:3], labels, path)


def test_train_plot_and_distance_from_floor(matplotlib, text_file, tmp_path, capsys):
    plot = tmp_path / "out" / "loss.png"
    argv = ["train", "--data", str(text_file), "--out", str(tmp_path / "ckpt.npz"),
            "--max-iters", "40", "--eval-interval", "15", "--eval-iters", "5", "--backend",
            "numpy", "--plot", str(plot)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "above the floor" in out and f"loss plot: {plot}" in out
    assert_png(plot)


class InterruptAfter20Steps(run.DeferredInterrupt):
    """Ctrl-C, as the training loop sees it, once it has checked 20 times."""

    checks = 0

    @property
    def requested(self):
        self.checks += 1
        return self.checks > 20

    @requested.setter
    def requested(self, value):
        pass


def test_an_interrupted_train_still_plots(matplotlib, text_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(run, "DeferredInterrupt", InterruptAfter20Steps)
    plot = tmp_path / "loss.png"
    argv = ["train", "--data", str(text_file), "--out", str(tmp_path / "ckpt.npz"),
            "--max-iters", "100", "--eval-interval", "15", "--eval-iters", "5", "--backend",
            "numpy", "--plot", str(plot)]
    assert main(argv) == 130
    assert "interrupted at step 20" in capsys.readouterr().err
    assert_png(plot)


def test_heatmap_cli_with_and_without_data(matplotlib, text_file, tmp_path, capsys):
    tokenizer = CharTokenizer.from_text(TEXT)
    checkpoint = tmp_path / "ckpt.npz"
    save_checkpoint(checkpoint, BigramLanguageModel(tokenizer.vocab_size, seed=0, backend="numpy"),
                    tokenizer=tokenizer)
    for extra in ([], ["--data", str(text_file)]):
        out = tmp_path / f"heat{len(extra)}.png"
        assert main(["heatmap", "--checkpoint", str(checkpoint), "--out", str(out), *extra]) == 0
        assert_png(out)
    other = tmp_path / "other.txt"
    other.write_text("XYZ")
    assert main(["heatmap", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "h.png"),
                 "--data", str(other)]) == 1
    assert "is not in the vocabulary" in capsys.readouterr().err


def test_a_destination_that_is_not_png_fails_before_training(matplotlib, text_file, tmp_path,
                                                             capsys):
    assert main(["train", "--data", str(text_file), "--plot", str(tmp_path / "loss.jpg")]) == 1
    assert "should end in .png" in capsys.readouterr().err
    assert not (tmp_path / "ckpt.npz").exists()


def test_missing_matplotlib_is_a_clear_error(text_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    with pytest.raises(MissingMatplotlib, match="pip install 'npbigram\\[plot\\]'"):
        plot_losses([(0, {"train": 1.0, "val": 1.0})], tmp_path / "loss.png")
    assert main(["train", "--data", str(text_file), "--plot", str(tmp_path / "loss.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("npbigram: error: plots need matplotlib")
