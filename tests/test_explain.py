"""explain: per-position losses that average to the model's loss, and a faithful sampling trace."""

import os
import re
import subprocess
import sys
import unicodedata

import numpy as np
import pytest
from npbigram import BigramLanguageModel, ByteTokenizer, CharTokenizer, save_checkpoint
from npbigram.cli import main
from npbigram.data.corpus import load_corpus
from npbigram.tools.explain import char_label, explain_text, token_labels, trace_generation

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
