"""explain: per-position losses that average to the model's loss, and a faithful sampling trace."""

import os
import re
import subprocess
import sys
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pytest
from npbigram import BigramLanguageModel, ByteTokenizer, CharTokenizer, save_checkpoint
from npbigram.cli import main
from npbigram.data.corpus import load_corpus
from npbigram.tools import plots
from npbigram.tools.explain import (
    char_label,
    explain_gradient,
    explain_text,
    token_labels,
    trace_generation,
)

TEXT = "hello world\nhold the door\n"


def table_lines(lines):
    """The numbered rows of a printed table: indented, starting with the position or step."""
    return [line for line in lines if line.startswith(" ") and line.split()[0].isdigit()]


@pytest.fixture
def small(tmp_path):
    """A random-init model over TEXT's characters, saved with its tokenizer."""
    tokenizer = CharTokenizer.from_text(TEXT)
    model = BigramLanguageModel(tokenizer.vocab_size, seed=4, backend="numpy")
    path = tmp_path / "small.npz"
    save_checkpoint(path, model, tokenizer=tokenizer)
    return model, tokenizer, path


def test_per_position_losses_average_to_the_model_loss(small):
    model, tokenizer, _ = small
    ids = tokenizer.encode("hello door")
    explanation = explain_text(model, ids)
    _, loss = model(ids[None, :-1], ids[None, 1:])
    assert len(explanation.nll) == len(ids) - 1
    assert explanation.nll.mean() == pytest.approx(loss, rel=1e-6)
    assert explanation.loss == loss
    np.testing.assert_allclose(explanation.probs.sum(axis=1), 1, rtol=1e-6)
    p_target = explanation.probs[np.arange(len(ids) - 1), ids[1:]]
    np.testing.assert_allclose(-np.log(p_target), explanation.nll, rtol=1e-5)


def test_first_citizen_line_per_position_averages_to_model_loss(tinyshakespeare, tmp_path,
                                                                capsys):
    tokenizer, _ = load_corpus(tinyshakespeare)
    model = BigramLanguageModel(tokenizer.vocab_size, seed=1337, backend="numpy")
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, model, tokenizer=tokenizer)
    assert main(["explain", "--checkpoint", str(path), "First Citizen:"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in table_lines(lines)]
    assert [row[0] for row in rows] == [str(t) for t in range(13)]
    assert [(row[1], row[2]) for row in rows][:6] == [
        ("F", "i"), ("i", "r"), ("r", "s"), ("s", "t"), ("t", "␣"), ("␣", "C")]
    printed_nll = np.array([float(row[4]) for row in rows])
    ids = tokenizer.encode("First Citizen:")
    _, loss = model(ids[None, :-1], ids[None, 1:])
    assert printed_nll.mean() == pytest.approx(loss, abs=1e-3)  # printed to 3 decimals
    assert f"{loss:.4f}" in lines[-1]


def test_trace_draws_what_generate_draws(small):
    model, tokenizer, _ = small
    context = tokenizer.encode("he")
    steps = trace_generation(model, context, 30, np.random.default_rng(7))
    generated = model.generate(context[None, :], 30, seed=7)[0, len(context):]
    assert [step.drawn for step in steps] == list(generated)
    assert list(steps[1].context) == [*context, steps[0].drawn]  # the context grows by one
    for step in steps:
        np.testing.assert_allclose(step.probs.sum(), 1)


def test_cli_generate_trace(small, capsys):
    _, _, path = small
    assert main(["explain", "--checkpoint", str(path), "--generate", "5", "--seed", "0",
                 "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    step_lines = table_lines(out.splitlines())
    assert len(step_lines) == 5
    assert step_lines[0].split()[1] == "[0]"  # starts from token 0, as bigram.py
    assert "text: " in out


def test_labels_escape_control_characters():
    assert char_label("\n") == "\\n"
    assert char_label(" ") == "␣"
    assert char_label("\t") == "\\t"
    assert char_label("\x07") == "\\x07"
    assert char_label("é") == "é"
    assert token_labels(CharTokenizer("\n ab")) == ["\\n", "␣", "a", "b"]
    byte_labels = token_labels(ByteTokenizer())
    assert len(byte_labels) == 256 and byte_labels[65] == "A" and byte_labels[200] == "\\xc8"


@pytest.mark.parametrize("argv, message", [
    ([], "give a TEXT to explain"),
    (["h"], "at least two tokens"),
    (["hello?"], "'?' at position 5 is not in the vocabulary"),
    (["hello", "--top-k", "0"], "--top-k must be at least 1"),
    (["hello", "--generate", "-1"], "--generate must be >= 0"),
])
def test_cli_bad_input_is_a_clear_error(small, argv, message, capsys):
    _, _, path = small
    assert main(["explain", "--checkpoint", str(path), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("npbigram: error: ") and message in err


def test_cli_missing_checkpoint(tmp_path, capsys):
    assert main(["explain", "--checkpoint", str(tmp_path / "none.npz"), "hi"]) == 1
    assert "does not exist" in capsys.readouterr().err


CHINESE = "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\nLi Bai\n"


def columns(text):
    """Terminal columns of text, counted independently: wide and fullwidth characters take 2."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def test_chinese_rows_align_by_display_width(tmp_path, capsys):
    """Columns were padded by code points, so every Chinese row was
    misaligned in a terminal."""
    tokenizer = CharTokenizer.from_text(CHINESE)
    path = tmp_path / "zh.npz"
    save_checkpoint(path, BigramLanguageModel(tokenizer.vocab_size, seed=0, backend="numpy"),
                    tokenizer=tokenizer)
    assert main(["explain", "--checkpoint", str(path), "床前a明月i光，",  # wide and narrow
                 "--generate", "4", "--seed", "0"]) == 0
    lines = table_lines(capsys.readouterr().out.splitlines())
    assert len(lines) == 7 + 4
    number = re.compile(r"\d\.\d{4}  ")  # p(next) or p(drew), the column after the labels
    ends = {columns(line[:number.search(line).end()]) for line in lines[:7]}
    assert len(ends) == 1
    ends = {columns(line[:number.search(line).end()]) for line in lines[7:]}
    assert len(ends) == 1


def test_explain_on_an_ascii_terminal_escapes_what_it_cannot_show(tinyshakespeare, tmp_path):
    """explain failed on an ASCII-only stdout because of the ␣ label."""
    tokenizer, _ = load_corpus(tinyshakespeare)
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, BigramLanguageModel(tokenizer.vocab_size, seed=0, backend="numpy"),
                    tokenizer=tokenizer)
    result = subprocess.run([sys.executable, "-m", "npbigram", "explain", "--checkpoint",
                             str(path), "To be"], capture_output=True,
                            env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in table_lines(result.stdout.decode("ascii").splitlines())]
    assert [(row[1], row[2]) for row in rows] == [("T", "o"), ("o", "\\x20"), ("\\x20", "b"),
                                                  ("b", "e")]


def test_the_traced_text_of_a_byte_model_escapes_each_byte_once(tmp_path, capsys):
    """It showed a byte that is not UTF-8 as '\\\\x80' (the escape escaped again)."""
    weight = np.full((256, 256), -30.0, dtype=np.float32)
    weight[10, 0x80] = weight[0x80, ord("\\")] = weight[ord("\\"), 10] = 30.0  # \n \x80 \\ \n
    model = BigramLanguageModel.from_weight(weight, backend="numpy")
    save_checkpoint(tmp_path / "b.npz", model, tokenizer=ByteTokenizer())
    assert main(["explain", "--checkpoint", str(tmp_path / "b.npz"), "--generate", "3",
                 "--seed", "0"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "text: '\\n\\x80\\\\\\n'"


# the gradient: explain --grad, its pictures, and the script that draws docs/gradients.md's

DOCS = Path(__file__).resolve().parent.parent / "docs"


def assert_drawn_png(path):
    """A PNG image with something drawn in it: not one flat color."""
    image = pytest.importorskip("matplotlib.image").imread(path)  # (H,W,channels) in [0,1]
    assert path.read_bytes()[:8] == plots.PNG_SIGNATURE
    not_white = (image[..., :3] < 0.9).any(axis=-1).mean()
    assert image.shape[0] > 200 and 0.01 < not_white < 0.9


def test_the_explained_gradient_is_the_models(small):
    model, tokenizer, _ = small
    ids = tokenizer.encode("hello world\nhold")  # 'l' and 'o' are read several times
    logits, _ = model(ids[None, :-1], ids[None, 1:])
    gradient = explain_gradient(logits, ids[:-1], ids[1:])
    np.testing.assert_allclose(gradient.grad, model.backward(), atol=1e-7)
    n = len(ids) - 1
    push = gradient.position_gradient(3)  # p - onehot at position 3
    assert push[ids[4]] == pytest.approx(gradient.probs[3, ids[4]] - 1)
    np.testing.assert_allclose(gradient.dlogits.sum(axis=1), 0, atol=1e-12)
    unread = np.setdiff1d(np.arange(tokenizer.vocab_size), ids[:-1])
    assert (gradient.grad[unread] == 0).all()
    (read_by_l,) = np.nonzero(ids[:-1] == tokenizer.encode("l")[0])
    assert len(read_by_l) == 4 and gradient.reads[ids[2]] == 4
    np.testing.assert_allclose(gradient.grad[ids[2]], gradient.dlogits[read_by_l].sum(axis=0))
    assert gradient.dlogits[0] * n == pytest.approx(gradient.position_gradient(0))


def test_cli_grad_shows_one_position_and_the_rows_read(small, capsys):
    _, tokenizer, path = small
    assert main(["explain", "--checkpoint", str(path), "--grad", "hello world",
                 "--position", "2", "--top-k", "3"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("position 2 reads 'l' and is scored on 'l'")
    assert "(p - onehot('l')) / 10" in lines[0]
    bars = lines[2:6]  # the target first, then the 3 most likely others
    assert bars[0].split()[0] == "l" and "|" in bars[0] and bars[0].rstrip().endswith("|")
    assert all(re.search(r"\+0\.\d{4} +\|", line) for line in bars[1:])  # pushed down
    assert "the other " in lines[6]
    rows = {line[3:].split()[0]: (line[1], int(line[3:].split()[1])) for line in lines
            if re.match(r" [ *] \S+ +\d+  ", line)}
    labels = token_labels(tokenizer)
    read, reads = np.unique(tokenizer.encode("hello worl"), return_counts=True)  # the inputs
    assert rows == {labels[i]: ("*" if k > 1 else " ", k) for i, k in zip(read, reads)}
    assert rows["l"] == ("*", 3) and rows["o"] == ("*", 2)
    assert f"the other {tokenizer.vocab_size - len(read)} rows are exactly 0" in out
    assert "keep only one position's row in 'l', 'o'" in out


def test_cli_grad_on_an_ascii_terminal_draws_bars_with_hashes(small):
    _, _, path = small
    result = subprocess.run([sys.executable, "-m", "npbigram", "explain", "--checkpoint",
                             str(path), "--grad", "hold the door"], capture_output=True,
                            env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode("ascii")
    assert "#|" in out and "\\x20" in out


@pytest.mark.parametrize("argv, message", [
    (["hello", "--position", "1"], "--position belongs to --grad"),
    (["hello", "--out", "g.png"], "--out belongs to --grad"),
    (["--generate", "3", "--grad"], "--grad shows the gradient of a TEXT's loss"),
    (["h", "--grad"], "the gradient needs at least one position: two tokens"),
    (["hello", "--grad", "--position", "4"], "--position 4 is outside the 4 positions, 0 to 3"),
    (["hello", "--grad", "--position", "-1"], "--position must be >= 0"),
    (["hello", "--grad", "--out", "g.txt"], "should end in .png"),
])
def test_cli_grad_bad_input_is_a_clear_error(small, argv, message, capsys):
    _, _, path = small
    assert main(["explain", "--checkpoint", str(path), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("npbigram: error: ") and message in err


@pytest.mark.slow
def test_cli_grad_out_draws_both_pictures(small, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    _, _, path = small
    out = tmp_path / "pictures" / "grad.png"
    assert main(["explain", "--checkpoint", str(path), "--grad", "hello world", "--out",
                 str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {out}"
    assert_drawn_png(out)
    assert main(["explain", "--checkpoint", str(path), "--grad", "hold", "--out",
                 str(out)]) == 0  # a PNG is replaced


def test_cli_grad_out_never_replaces_what_is_not_a_png(small, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    _, _, path = small
    notes = tmp_path / "notes.png"
    notes.write_text("my notes")
    assert main(["explain", "--checkpoint", str(path), "--grad", "hello", "--out",
                 str(notes)]) == 1
    assert "exists and is not a PNG image" in capsys.readouterr().err
    assert notes.read_text() == "my notes"


def test_chinese_gradient_pictures_without_a_cjk_font_draw_without_warnings(tmp_path,
                                                                            monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(plots, "installed_fonts", lambda: [])  # no font has the glyphs
    tokenizer = CharTokenizer.from_text(CHINESE)
    ids = tokenizer.encode("床前明月光，疑是地上霜。\n举头望明月")
    model = BigramLanguageModel(tokenizer.vocab_size, seed=0, backend="numpy")
    logits, _ = model(ids[None, :-1], ids[None, 1:])
    gradient = explain_gradient(logits, ids[:-1], ids[1:])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph warns
        plots.plot_gradient(gradient, 2, token_labels(tokenizer), tmp_path / "zh.png")
    assert_drawn_png(tmp_path / "zh.png")


@pytest.mark.slow
def test_the_docs_pictures_script_draws_both_pictures(tinyshakespeare, tmp_path):
    pytest.importorskip("matplotlib")
    result = subprocess.run([sys.executable, str(DOCS / "pictures.py"), "--data",
                             str(tinyshakespeare), "--out-dir", str(tmp_path / "out")],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for name in ("grad_position.png", "grad_batch.png"):
        assert f"wrote {tmp_path / 'out' / name}" in result.stdout
        assert_drawn_png(tmp_path / "out" / name)
        assert (DOCS / name).is_file() and f"({name})" in (DOCS / "gradients.md").read_text()


def test_the_learning_tools_run_on_numpy_without_numba(small, tinyshakespeare, tmp_path):
    """explain, gradcheck, heatmap, optimum, explore and lecture run on the NumPy engine: the
    same numbers, and a first run imports no numba, so it compiles nothing."""
    path = small[2]
    commands = [["explain", "hello", "--checkpoint", path, "--generate", "3", "--seed", "0"],
                ["explain", "hello", "--grad", "--checkpoint", path],
                ["gradcheck", "--vocab", "5"],
                ["heatmap", "--checkpoint", path, "--out", tmp_path / "heat.png"],
                ["optimum", "--data", tinyshakespeare],
                ["explore", "--checkpoint", path, "--out", tmp_path / "page.html"],
                ["lecture", "--data", tinyshakespeare]]
    script = ("import contextlib, io, sys; from npbigram.cli import main\n"
              "for argv in eval(sys.argv[1]):\n"
              "    with contextlib.redirect_stdout(io.StringIO()):\n"
              "        assert main(argv) == 0, argv\n"
              "print(sorted(name for name in sys.modules if name.split('.')[0] == 'numba'))")
    done = subprocess.run([sys.executable, "-c", script,
                           repr([[str(word) for word in argv] for argv in commands])],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"
