"""plots: train --plot and heatmap write valid PNG files, atomically, or fail clearly."""

import errno
import sys
import tempfile
import warnings

import numpy as np
import pytest
from npbigram import BigramLanguageModel, CharTokenizer, save_checkpoint
from npbigram.tools import plots
from npbigram.cli import main
from npbigram.tools.explain import token_labels
from npbigram.tools.plots import MissingMatplotlib, plot_heatmap, plot_losses

from helpers import ctrl_c_at_step

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


def test_an_interrupted_train_still_plots(matplotlib, text_file, tmp_path, monkeypatch, capsys):
    ctrl_c_at_step(monkeypatch, 20)
    plot = tmp_path / "loss.png"
    argv = ["train", "--data", str(text_file), "--out", str(tmp_path / "ckpt.npz"),
            "--max-iters", "100", "--eval-interval", "15", "--eval-iters", "5", "--backend",
            "numpy", "--plot", str(plot)]
    assert main(argv) == 130
    assert "interrupted at step 20" in capsys.readouterr().err
    assert_png(plot)


@pytest.mark.slow
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
    # the hint was pip install 'npbigram[plot]', which no index has
    with pytest.raises(MissingMatplotlib, match=r"pip install matplotlib \(or, in npbigram's "
                                                r"source folder, pip install -e '\.\[plot\]'\)"):
        plot_losses([(0, {"train": 1.0, "val": 1.0})], tmp_path / "loss.png")
    assert main(["train", "--data", str(text_file), "--plot", str(tmp_path / "loss.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("npbigram: error: plots need matplotlib")


def test_a_plot_path_that_cannot_be_written_fails_before_training(matplotlib, text_file,
                                                                  tmp_path, monkeypatch, capsys):
    """A read-only --plot path failed after the whole run, naming a
    temporary file."""
    (tmp_path / "ro").mkdir()
    temporary_file = tempfile.TemporaryFile

    def read_only_folder(*args, dir=None, **kwargs):
        if str(dir).endswith("ro"):
            raise OSError(errno.EROFS, "Read-only file system")
        return temporary_file(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only_folder)
    out, plot = tmp_path / "ckpt.npz", tmp_path / "ro" / "l.png"
    assert main(["train", "--data", str(text_file), "--out", str(out), "--plot", str(plot)]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"npbigram: error: cannot write --plot {plot}: Read-only file system\n"
    assert captured.out == "" and not out.exists()


CHINESE = "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n"


def chinese_checkpoint(tmp_path):
    tokenizer = CharTokenizer.from_text(CHINESE)
    path = tmp_path / "zh.npz"
    save_checkpoint(path, BigramLanguageModel(tokenizer.vocab_size, seed=0, backend="numpy"),
                    tokenizer=tokenizer)
    return path, token_labels(tokenizer)


def test_chinese_heatmap_without_a_cjk_font_labels_code_points_without_warnings(
        matplotlib, tmp_path, monkeypatch, capsys):
    """heatmap printed 68 'Glyph ... missing from font(s) DejaVu Sans Mono'
    warnings and drew boxes."""
    monkeypatch.setattr(plots, "installed_fonts", lambda: [])  # no font has the glyphs
    path, labels = chinese_checkpoint(tmp_path)
    drawn, _ = plots._drawable(labels)
    assert drawn[labels.index("床")] == "U+5E8A" and drawn[labels.index("\\n")] == "\\n"
    out = tmp_path / "heat.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["heatmap", "--checkpoint", str(path), "--out", str(out)]) == 0
    assert capsys.readouterr().err == ""
    assert_png(out)


@pytest.mark.slow
def test_chinese_heatmap_uses_an_installed_font_with_the_glyphs(matplotlib, tmp_path):
    path, labels = chinese_checkpoint(tmp_path)
    if not any(set("床前明月光") <= plots._glyphs(font) for font in plots.installed_fonts()):
        pytest.skip("no installed font has Chinese glyphs (e.g. apt-get install fonts-noto-cjk)")
    drawn, font = plots._drawable(labels)
    assert drawn == labels and set(CHINESE) - {"\n"} <= plots._glyphs(font.get_file())
    out = tmp_path / "heat.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["heatmap", "--checkpoint", str(path), "--out", str(out)]) == 0
    assert_png(out)
