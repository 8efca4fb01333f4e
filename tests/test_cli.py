"""The `npbigram` command end to end on tinyshakespeare: train, resume, Ctrl-C, sample, errors."""

import math
import os
import re
import signal
import subprocess
import sys
import unicodedata
from pathlib import Path

import numba
import numpy as np
import pytest
from npbigram import BigramLanguageModel, load_checkpoint, save_checkpoint
from npbigram.cli import main
from npbigram.engine import runtime

from helpers import open_terminal, read_terminal

STEP_LINE = re.compile(r"step (\d+): train loss (\d+\.\d{4}), val loss (\d+\.\d{4})")
TIME_LINE = re.compile(r"trained (\d+) steps in \d+\.\d{3} s \(([\d,]+) tokens/s\); "
                       r"checkpoint: (.+)")
PREAMBLE = re.compile(r"resumed from step \d+|compiled kernels in \d+\.\d s")
SMALL = ["--max-iters", "30", "--eval-interval", "10", "--eval-iters", "5"]


def npbigram(*args, cwd):
    """Run `python -m npbigram ARGS` in cwd; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "npbigram", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def after_preamble(lines):
    """The lines of a `npbigram train` log after those of a resume or a compilation (a run on
    a cold JIT cache)."""
    while lines and PREAMBLE.fullmatch(lines[0]):
        lines = lines[1:]
    return lines


def parse_train_output(stdout):
    """(step lines, sample text, time line match) of a finished `npbigram train`: evaluations
    (after the lines of a resume or a compilation), then the sample, then the time line (other
    reports may follow it)."""
    lines = after_preamble(stdout.split("\n"))
    steps = [line for line in lines if STEP_LINE.fullmatch(line)]
    assert lines[: len(steps)] == steps
    time_lines = [i for i, line in enumerate(lines) if TIME_LINE.fullmatch(line)]
    assert len(time_lines) == 1, stdout
    sample = "\n".join(lines[len(steps):time_lines[0]])
    return steps, sample, TIME_LINE.fullmatch(lines[time_lines[0]])


@pytest.fixture(scope="module")
def small_run(tinyshakespeare, tmp_path_factory):
    """A 30-step training run: (CompletedProcess, checkpoint path)."""
    folder = tmp_path_factory.mktemp("small")
    result = npbigram("train", "--data", tinyshakespeare, *SMALL, "--out", "ckpt.npz", cwd=folder)
    assert result.returncode == 0, result.stderr
    return result, folder / "ckpt.npz"


# ----------------------------------------------------------------------------------------------
# train


@pytest.mark.slow
def test_bigram_py_default_run(tinyshakespeare, tmp_path):
    """bigram.py's job: 3000 steps, 10 evaluations, a 500-character sample, the time taken."""
    result = npbigram("train", "--data", tinyshakespeare, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    steps, sample, time_line = parse_train_output(result.stdout)
    matches = [STEP_LINE.fullmatch(line) for line in steps]
    assert [int(m[1]) for m in matches] == [*range(0, 3000, 300), 3000]  # and the last step
    losses = np.array([[float(m[2]), float(m[3])] for m in matches])
    assert 4.4 < losses[0].min() and losses[0].max() < 4.9  # ln 65 + 1/2 for N(0,1) logits
    assert losses[-1].max() < 2.6  # bigram.py reaches about 2.5
    assert np.all(losses[1:] < losses[0])
    assert len(sample) == 501  # token 0 ('\n') and 500 new characters
    assert set(sample) <= set(tinyshakespeare.read_text())
    assert time_line[1] == "3000" and time_line[3] == "ckpt.npz"
    assert load_checkpoint(tmp_path / "ckpt.npz").step == 3000


@pytest.mark.slow
def test_small_run_is_deterministic_and_saves_a_checkpoint(small_run, tinyshakespeare, tmp_path):
    result, checkpoint_path = small_run
    steps, sample, time_line = parse_train_output(result.stdout)
    assert [STEP_LINE.fullmatch(line)[1] for line in steps] == ["0", "10", "20", "30"]
    assert time_line[1] == "30"
    checkpoint = load_checkpoint(checkpoint_path)
    assert checkpoint.step == 30 and checkpoint.config["max_iters"] == 30
    again = npbigram("train", "--data", tinyshakespeare, *SMALL, "--out", "again.npz", cwd=tmp_path)
    assert parse_train_output(again.stdout)[:2] == (steps, sample)


@pytest.mark.slow
def test_resume_finishes_like_an_uninterrupted_run(small_run, tinyshakespeare, tmp_path):
    first, first_checkpoint = small_run  # steps 0-29
    resumed = npbigram("train", "--data", tinyshakespeare, "--resume", first_checkpoint,
                       "--max-iters", "50", "--out", "resumed.npz", cwd=tmp_path)
    whole = npbigram("train", "--data", tinyshakespeare, *SMALL, "--max-iters", "50",
                     "--out", "whole.npz", cwd=tmp_path)
    assert resumed.returncode == whole.returncode == 0, resumed.stderr + whole.stderr
    first_steps, _, _ = parse_train_output(first.stdout)
    resumed_steps, resumed_sample, resumed_time = parse_train_output(resumed.stdout)
    whole_steps, whole_sample, _ = parse_train_output(whole.stdout)
    assert first_steps + resumed_steps == whole_steps
    assert resumed_sample == whole_sample
    assert resumed_time[1] == "20"
    np.testing.assert_array_equal(load_checkpoint(tmp_path / "resumed.npz").model.weight,
                                  load_checkpoint(tmp_path / "whole.npz").model.weight)


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_exits_130_and_resumes_exactly(tinyshakespeare, tmp_path):
    flags = ["--data", tinyshakespeare, "--eval-interval", "100", "--eval-iters", "1"]
    process = subprocess.Popen(
        [sys.executable, "-m", "npbigram", "train", *map(str, flags), "--max-iters", "10000000",
         "--out", "interrupted.npz"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    printed = []
    for line in process.stdout:  # wait until training runs: past the second evaluation
        printed.append(line)
        if line.startswith("step 100:"):
            break
    process.send_signal(signal.SIGINT)
    # the rest through the file the loop read from: it may hold lines read ahead, which
    # communicate() (reading the pipe itself) would miss; stderr is small enough to wait
    rest, stderr = process.stdout.read(), process.stderr.read()
    assert process.wait(timeout=120) == 130, stderr
    stopped = load_checkpoint(tmp_path / "interrupted.npz").step
    assert stopped >= 100
    assert (f"interrupted at step {stopped}: checkpoint saved to interrupted.npz; "
            f"continue with --resume interrupted.npz") in stderr
    interrupted_steps = "".join(printed) + rest

    finish = str(stopped + 30)
    resumed = npbigram("train", *flags, "--resume", "interrupted.npz", "--max-iters", finish,
                       "--out", "resumed.npz", cwd=tmp_path)
    whole = npbigram("train", *flags, "--max-iters", finish, "--out", "whole.npz", cwd=tmp_path)
    assert resumed.returncode == whole.returncode == 0, resumed.stderr + whole.stderr
    resumed_steps, resumed_sample, _ = parse_train_output(resumed.stdout)
    whole_steps, whole_sample, _ = parse_train_output(whole.stdout)
    assert after_preamble(interrupted_steps.splitlines()) + resumed_steps == whole_steps
    assert resumed_sample == whole_sample
    np.testing.assert_array_equal(load_checkpoint(tmp_path / "resumed.npz").model.weight,
                                  load_checkpoint(tmp_path / "whole.npz").model.weight)


def test_init_zeros_starts_at_ln_vocab_size(tinyshakespeare, tmp_path, capsys):
    assert main(["train", "--data", str(tinyshakespeare), "--init", "zeros", "--max-iters", "1",
                 "--eval-iters", "3", "--out", str(tmp_path / "zeros.npz")]) == 0
    steps, _, _ = parse_train_output(capsys.readouterr().out)  # after a compilation's line
    ln_v = f"{math.log(65):.4f}"
    assert steps[0] == f"step 0: train loss {ln_v}, val loss {ln_v}"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow and inf - inf are the point
def test_divergence_stops_with_an_error_and_keeps_the_last_good_checkpoint(tinyshakespeare,
                                                                           tmp_path, capsys):
    out = tmp_path / "ckpt.npz"
    assert main(["train", "--data", str(tinyshakespeare), "--lr", "1e30", "--eval-iters", "1",
                 "--out", str(out)]) == 1
    assert re.search(r"npbigram: error: the loss became (nan|inf) at step \d+; stopped without "
                     r"saving it, the last good checkpoint is .*ckpt.npz", capsys.readouterr().err)
    checkpoint = load_checkpoint(out)
    assert checkpoint.step == 0 and np.all(np.isfinite(checkpoint.model.weight))


def write(tmp_path, name, payload):
    path = tmp_path / name
    path.write_bytes(payload)
    return str(path)


TRAIN_ERRORS = [  # each names the flag typed (they named the config's fields: batch_size)
    (["--lr", "0"], "--lr must be a positive finite number, got 0.0"),
    (["--lr", "-0.1"], "--lr must be a positive finite number, got -0.1"),
    (["--lr", "nan"], "--lr must be a positive finite number, got nan"),
    (["--max-iters", "-1"], "--max-iters must be >= 0, got -1"),
    (["--block-size", "0"], "--block-size must be at least 1, got 0"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--eval-interval", "0"], "--eval-interval must be at least 1, got 0"),
    (["--weight-decay", "-1"], "--weight-decay must be a finite number >= 0, got -1.0"),
    (["--optimizer", "adam"], "--optimizer must be one of adamw, sgd, got 'adam'"),
    (["--block-size", "200000"], r"the val split has 111540 tokens, fewer than --block-size \+ 1"),
    # NumPy's "expected non-negative integer", naming nothing
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--sample-tokens", "-1"], "--sample-tokens must be >= 0, got -1"),
    (["--threads", "0"], "--threads must be at least 1, got 0"),
    # settings that a full-batch run ignored silently
    (["--full-batch", "--batch-size", "64"], "--batch-size would have no effect: --full-batch "
                                             "with --eval exact samples no batches"),
    (["--full-batch", "--block-size", "4"], "--block-size would have no effect"),
    (["--full-batch", "--grad", "pair-counts"], "--grad would have no effect: --full-batch takes "
                                                "the gradient from the train split's pair counts"),
    (["--eval", "exact", "--eval-iters", "9"], "--eval-iters would have no effect: --eval exact "
                                               "evaluates the whole splits"),
]


@pytest.mark.parametrize("flags, message", TRAIN_ERRORS)
def test_bad_train_flags_exit_1_with_a_message(tinyshakespeare, tmp_path, capsys, flags, message):
    out = str(tmp_path / "ckpt.npz")
    assert main(["train", "--data", str(tinyshakespeare), *flags, "--out", out]) == 1
    assert re.search("npbigram: error: " + message, capsys.readouterr().err)
    assert not os.path.exists(out)


@pytest.mark.parametrize("payload, flags, message", [
    (b"hello world", [], r"the val split has 2 tokens, fewer than --block-size \+ 1 = 9"),
    (b"tiny", [], r"the train split has 3 tokens, fewer than --block-size \+ 1 = 9"),
    (b"caf\xc3\xa9 \xff", [], r"byte 0xff at byte offset 6 is not valid UTF-8.*--tokenizer byte"),
    (b"", [], "is empty"),
])
def test_bad_corpus_exits_1_with_a_message(tmp_path, capsys, payload, flags, message):
    data = write(tmp_path, "input.txt", payload)
    assert main(["train", "--data", data, *flags, "--out", str(tmp_path / "c.npz")]) == 1
    assert re.search("npbigram: error: .*" + message, capsys.readouterr().err)


def test_unwritable_checkpoint_path_exits_1(tinyshakespeare, tmp_path, capsys):
    assert main(["train", "--data", str(tinyshakespeare), "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (f"npbigram: error: --out {tmp_path} is a directory, "
                                       f"not a file\n")
    assert list(tmp_path.iterdir()) == []  # no temporary file left


def test_missing_data_file_exits_1(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nope.txt")]) == 1
    assert re.search(r"npbigram: error: cannot read .*nope.txt", capsys.readouterr().err)


def test_bad_resume_exits_1(small_run, tmp_path, capsys):
    corpus = write(tmp_path, "other.txt", b"a different corpus with another vocabulary\n" * 20)
    corrupt = write(tmp_path, "corrupt.npz", small_run[1].read_bytes()[:500])
    for args, message in [
        (["--data", corpus, "--resume", str(small_run[1])],
         "other.txt is not the text .*ckpt.npz was trained on"),
        (["--data", corpus, "--resume", corrupt], "corrupt.npz is not a readable npbigram"),
    ]:
        assert main(["train", *args, "--out", str(tmp_path / "c.npz")]) == 1
        assert re.search(message, capsys.readouterr().err)


# ----------------------------------------------------------------------------------------------
# sample


@pytest.mark.slow
def test_sample_continues_a_prompt_reproducibly(small_run, tmp_path):
    checkpoint = small_run[1]
    args = ["sample", "--checkpoint", checkpoint, "--prompt", "ROMEO:", "--max-new-tokens", "40",
            "--seed", "3", "--num-samples", "2"]
    result = npbigram(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    samples = result.stdout[:-1].split("\n" + "-" * 40 + "\n")
    assert len(samples) == 2
    assert all(s.startswith("ROMEO:") and len(s) == 46 for s in samples)
    assert npbigram(*args, cwd=tmp_path).stdout == result.stdout


def test_sample_top_k_1_is_greedy(small_run, capsys):
    checkpoint = load_checkpoint(small_run[1])
    assert main(["sample", "--checkpoint", str(small_run[1]), "--max-new-tokens", "30",
                 "--top-k", "1"]) == 0
    text = capsys.readouterr().out[:-1]
    ids = checkpoint.tokenizer.encode(text)
    np.testing.assert_array_equal(ids[1:], checkpoint.model.weight[ids[:-1]].argmax(axis=1))


def test_sample_prompt_outside_the_vocabulary_exits_1(small_run, tmp_path):
    result = npbigram("sample", "--checkpoint", small_run[1], "--prompt", "ROMEO~", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == ("npbigram: error: character '~' at position 5 is "
                                              "not in the vocabulary of 65 characters")


@pytest.mark.parametrize("flags, message", [
    (["--temperature", "0"], "temperature must be a positive finite number, got 0.0"),
    (["--max-new-tokens", "-1"], "max_new_tokens must be >= 0, got -1"),
    (["--top-k", "0"], "--top-k must be at least 1, got 0"),
    (["--top-k", "-1"], "--top-k must be at least 1, got -1"),  # it said ">= 0"
    (["--seed", "-1"], "--seed must be >= 0, got -1"),  # it named no flag
    (["--num-samples", "0"], "--num-samples must be at least 1, got 0"),
])
def test_bad_sample_flags_exit_1(small_run, capsys, flags, message):
    assert main(["sample", "--checkpoint", str(small_run[1]), *flags]) == 1
    assert capsys.readouterr().err == f"npbigram: error: {message}\n"


def test_sample_needs_a_readable_checkpoint_with_a_tokenizer(tmp_path, capsys):
    assert main(["sample", "--checkpoint", str(tmp_path / "missing.npz")]) == 1
    assert "does not exist" in capsys.readouterr().err
    bare = tmp_path / "bare.npz"
    save_checkpoint(bare, BigramLanguageModel(3, backend="numpy"))
    assert main(["sample", "--checkpoint", str(bare)]) == 1
    assert "holds no tokenizer" in capsys.readouterr().err


def test_cli_train_flags(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 40)
    out = str(tmp_path / "ckpt.npz")
    assert main(["train", "--data", str(text), "--out", out, "--full-batch", "--max-iters", "50",
                 "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "step 0:" in printed and "trained 50 steps" in printed
    assert main(["train", "--data", str(text), "--out", out, "--threads", "99"]) == 1
    assert "NUMBA_NUM_THREADS" in capsys.readouterr().err
    runtime.set_threads(numba.config.NUMBA_NUM_THREADS)


def test_sgd_with_momentum_trains_and_optimizer_flags_are_checked(tinyshakespeare, tmp_path,
                                                                  capsys):
    out = str(tmp_path / "sgd.npz")
    assert main(["train", "--data", str(tinyshakespeare), "--out", out, "--optimizer", "sgd",
                 "--momentum", "0.9", "--lr", "0.5", "--eval-iters", "20"]) == 0
    steps = parse_train_output(capsys.readouterr().out)[0]
    train_losses = [float(STEP_LINE.fullmatch(line).group(2)) for line in steps]
    assert train_losses[-1] < 2.6 < 4.5 < train_losses[0]  # from ~4.7 to near the floor
    checkpoint = load_checkpoint(out)
    assert checkpoint.optimizer_state["momentum"] == 0.9
    assert checkpoint.optimizer_state["momentum_buffer"].shape == (65, 65)
    for flags, message in ((["--momentum", "0.9"], "momentum does not apply to the adamw"),
                           (["--optimizer", "sgd", "--nesterov"], "Nesterov momentum requires")):
        assert main(["train", "--data", str(tinyshakespeare), "--out", out, "--force",
                     *flags]) == 1
        assert message in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# byte-level text, pipes and terminals, --version


@pytest.fixture(scope="module")
def byte_model(tmp_path_factory):
    """A byte model of a binary file full of NUL and ESC bytes: (folder, checkpoint)."""
    folder = tmp_path_factory.mktemp("bytes")
    rng = np.random.default_rng(0)
    (folder / "binary.dat").write_bytes(bytes(rng.choice([0, 0, 27, 10, 65, 0xff, 0xc3], 20000)))
    result = npbigram("train", "--data", "binary.dat", "--tokenizer", "byte", "--out", "b.npz",
                      "--max-iters", "200", "--eval-iters", "5", "--sample-tokens", "0",
                      cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder, folder / "b.npz"


@pytest.mark.slow
def test_byte_samples_start_at_a_newline_and_keep_their_bytes(byte_model):
    """Sampling started from token 0, a NUL byte, and bytes that are not
    UTF-8 became U+FFFD."""
    folder, checkpoint_path = byte_model
    args = ["sample", "--checkpoint", checkpoint_path, "--max-new-tokens", "300", "--seed", "5"]
    piped = subprocess.run([sys.executable, "-m", "npbigram", *map(str, args)], cwd=folder,
                           capture_output=True)
    assert piped.returncode == 0, piped.stderr
    model = load_checkpoint(checkpoint_path).model
    expected = bytes(model.generate(np.array([[10]]), 300, seed=5)[0].astype(np.uint8))
    assert piped.stdout == expected + b"\n"  # raw bytes to a pipe
    assert b"\x00" in expected and b"\xff" in expected
    assert npbigram(*args, "--out", "s.bin", cwd=folder).returncode == 0
    assert (folder / "s.bin").read_bytes() == expected + b"\n"  # and to --out FILE
    again = npbigram(*args, "--out", "s.bin", cwd=folder)
    assert again.returncode == 1 and "--out s.bin exists: replace it with --force" in again.stderr
    assert npbigram(*args, "--out", "s.bin", "--force", cwd=folder).returncode == 0


def test_a_terminal_sees_control_bytes_escaped(byte_model):
    """Raw control bytes went to the terminal (^@^OClid l, ...)."""
    folder, checkpoint_path = byte_model
    controller, terminal = open_terminal()
    process = subprocess.Popen(
        [sys.executable, "-m", "npbigram", "sample", "--checkpoint", str(checkpoint_path),
         "--max-new-tokens", "300", "--seed", "5"], stdout=terminal, stderr=subprocess.PIPE)
    os.close(terminal)
    try:
        shown = read_terminal(controller, b"\r\n\r\n", timeout=60)  # the last newline
        process.wait(timeout=60)
    finally:
        os.close(controller)
    assert process.returncode == 0
    expected = bytes(load_checkpoint(checkpoint_path).model.generate(
        np.array([[10]]), 300, seed=5)[0].astype(np.uint8))
    assert b"\x00" not in shown and b"\x1b" not in shown
    text = expected.decode("utf-8", "backslashreplace")
    escaped = "".join(f"\\x{ord(ch):02x}" if unicodedata.category(ch) == "Cc" and ch not in "\n\t"
                      else ch for ch in text)
    assert shown.replace(b"\r\n", b"\n") == escaped.encode() + b"\n"


def test_the_train_sample_of_a_byte_model_starts_at_a_newline(byte_model, tmp_path):
    folder, _ = byte_model
    result = subprocess.run([sys.executable, "-m", "npbigram", "train", "--data", "binary.dat",
                             "--tokenizer", "byte", "--out", tmp_path / "c.npz", "--max-iters",
                             "20", "--eval-iters", "2", "--sample-tokens", "30"], cwd=folder,
                            capture_output=True)
    assert result.returncode == 0, result.stderr
    lines = after_preamble(result.stdout.decode("latin-1").split("\n"))
    assert lines[2] == ""  # the sample starts at a newline, after 'step 0/20: ...'


@pytest.mark.slow
def test_a_closed_pipe_ends_sample_quietly(small_run, tmp_path):
    """`sample ... | head -c 10` printed 'npbigram: error: [Errno 32]
    Broken pipe'."""
    process = subprocess.Popen(
        [sys.executable, "-m", "npbigram", "sample", "--checkpoint", str(small_run[1]),
         "--max-new-tokens", "20000", "--num-samples", "50"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert len(process.stdout.read(10)) == 10
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 141  # as a process that SIGPIPE ended
    assert stderr == b""


def test_heatmap_of_a_file_that_is_not_utf8_gives_advice_that_applies(small_run, tmp_path,
                                                                      capsys):
    """heatmap --data /bin/ls suggested --tokenizer byte, which heatmap does
    not have."""
    pytest.importorskip("matplotlib")
    binary = write(tmp_path, "binary.dat", b"abc\xff\xfe")
    assert main(["heatmap", "--checkpoint", str(small_run[1]), "--out",
                 str(tmp_path / "h.png"), "--data", binary]) == 1
    assert capsys.readouterr().err == (
        f"npbigram: error: {binary}: byte 0xff at byte offset 3 is not valid UTF-8 (invalid "
        f"start byte); a character tokenizer reads UTF-8 text only\n")


def test_version_comes_from_one_place(capsys):
    """There was no __version__."""
    import npbigram

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"npbigram {npbigram.__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+", npbigram.__version__)
    setup = (Path(npbigram.__file__).parent.parent / "setup.cfg").read_text()
    assert "version = attr: npbigram.__version__" in setup


def test_a_command_line_that_cannot_be_parsed_exits_2_as_the_readme_says(capsys):
    """The README promised status 1 for every failure; argparse's errors exit 2."""
    readme = " ".join((Path(__file__).resolve().parent.parent / "README.md").read_text().split())
    assert "prints the usage and `npbigram train: error: ...` with status 2" in readme
    for argv in (["train", "--batch-size", "x"], ["train", "--no-such-flag"], ["nope"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        assert "error: " in capsys.readouterr().err
