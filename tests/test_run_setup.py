"""A `npbigram train` run and its files (npbigram/cli/run_setup.py): outputs that never replace what
they should not, checked before any work; checkpoints that know their run (data, settings,
history); --resume P that needs nothing else; the best checkpoint; --log and --sample-tokens."""

import csv
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from npbigram import Trainer, load_checkpoint
from npbigram.tools import plots
from npbigram.cli import main
from npbigram.utils.files import OutputLock, lock_beside

from helpers import ctrl_c_at_step, train_log_lines

TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\n") * 60
SMALL = ["--max-iters", "30", "--eval-interval", "10", "--eval-iters", "5"]
STEP_LINE = re.compile(r"step (\d+): train loss \d+\.\d{4}, val loss \d+\.\d{4}")


@pytest.fixture
def run_folder(tmp_path, monkeypatch):
    """A folder to run in, with the text in data/text.txt."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "text.txt").write_text(TEXT)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def train(capsys, *args):
    """main(["train", *args]) -> (status, stdout, stderr)."""
    status = main(["train", *map(str, args)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def steps_of(stdout):
    return [int(STEP_LINE.fullmatch(line)[1]) for line in stdout.splitlines()
            if STEP_LINE.fullmatch(line)]


# ----------------------------------------------------------------------------------------------
# nothing a user made is overwritten by mistake


def test_resume_continues_in_its_own_checkpoint_and_needs_no_other_flag(run_folder, capsys):
    """`--resume other.npz` without --out replaced ./ckpt.npz, another run's
    3,000-step model, and without --data it tried to download tinyshakespeare."""
    assert train(capsys, "--data", "data/text.txt", *SMALL)[0] == 0  # ./ckpt.npz
    assert train(capsys, "--data", "data/text.txt", *SMALL, "--seed", "7",
                 "--out", "other.npz")[0] == 0
    theirs = (run_folder / "ckpt.npz").read_bytes()
    status, out, err = train(capsys, "--resume", "other.npz", "--max-iters", "50")
    assert status == 0, err
    assert (run_folder / "ckpt.npz").read_bytes() == theirs
    other = load_checkpoint(run_folder / "other.npz")
    assert other.step == 50 and other.config["seed"] == 7
    assert out.startswith("resumed from step 30\nstep 40: ")  # 30: the first run's last
    assert "checkpoint: other.npz" in out


def test_the_interrupt_hint_works_as_printed(run_folder, capsys, monkeypatch):
    """After Ctrl-C, `continue with --resume ck.npz` failed as printed."""
    train_steps = Trainer.train_steps
    ctrl_c_at_step(monkeypatch, 20)
    status, _, err = train(capsys, "--data", "data/text.txt", *SMALL, "--out", "ck.npz")
    assert status == 130
    hint = re.search(r"continue with (--resume \S+)", err)[1]
    monkeypatch.setattr(Trainer, "train_steps", train_steps)
    status, out, err = train(capsys, *hint.split())
    assert status == 0, err
    assert out.startswith("resumed from step 20\nstep 20: ")
    assert train(capsys, "--data", "data/text.txt", *SMALL, "--out", "whole.npz")[0] == 0
    np.testing.assert_array_equal(load_checkpoint(run_folder / "ck.npz").model.weight,
                                  load_checkpoint(run_folder / "whole.npz").model.weight)


def test_out_never_replaces_a_file_that_is_not_a_checkpoint(run_folder, capsys):
    """`--data corpus.txt --out corpus.txt` turned the corpus into a zip."""
    corpus = run_folder / "data" / "text.txt"
    for force in ([], ["--force"]):
        status, out, err = train(capsys, "--data", corpus, "--out", corpus, *force)
        assert status == 1 and out == ""
        assert err == (f"npbigram: error: --out {corpus} exists and is not an npbigram "
                       f"checkpoint: it is left as it is; choose another path\n")
        assert corpus.read_text() == TEXT


def test_a_new_run_replaces_a_checkpoint_only_with_force(run_folder, capsys):
    """A new run silently replaced a trained checkpoint with its step-0
    model."""
    assert train(capsys, "--data", "data/text.txt", *SMALL)[0] == 0
    trained = (run_folder / "ckpt.npz").read_bytes()
    status, out, err = train(capsys, "--data", "data/text.txt", "--max-iters", "10")
    assert status == 1 and out == ""
    assert err == ("npbigram: error: ckpt.npz holds the checkpoint of another run (step 30): "
                   "continue it with --resume ckpt.npz, choose another --out, or replace it "
                   "with --force\n")
    assert (run_folder / "ckpt.npz").read_bytes() == trained
    status, _, err = train(capsys, "--data", "data/text.txt", "--max-iters", "10",
                           "--eval-iters", "5", "--force")
    assert status == 0, err
    assert load_checkpoint(run_folder / "ckpt.npz").step == 10
    assert load_checkpoint(run_folder / "ckpt.best.npz").step == 10  # this run's best


def test_a_best_checkpoint_of_another_run_blocks_a_new_run(run_folder, capsys):
    assert train(capsys, "--data", "data/text.txt", *SMALL)[0] == 0
    os.unlink(run_folder / "ckpt.npz")
    status, _, err = train(capsys, "--data", "data/text.txt", *SMALL)
    assert status == 1 and "ckpt.best.npz holds the checkpoint of another run (step" in err


def test_output_paths_are_checked_before_training(run_folder, capsys):
    """An --out whose parent is a file gave '[Errno 17] File exists' after
    the run."""
    status, out, err = train(capsys, "--data", "data/text.txt", "--out", "data/text.txt/c.npz")
    assert status == 1 and out == ""
    assert err == ("npbigram: error: --out data/text.txt/c.npz: data/text.txt is a file, not a "
                   "directory\n")
    (run_folder / "notes.csv").write_text("my own notes\n")
    status, out, err = train(capsys, "--data", "data/text.txt", "--log", "notes.csv")
    assert status == 1 and out == ""
    assert "--log notes.csv exists and is not a metrics CSV written by npbigram" in err
    assert sorted(p.name for p in run_folder.iterdir()) == ["data", "notes.csv"]


# ----------------------------------------------------------------------------------------------
# a checkpoint knows its run


def test_a_checkpoint_records_its_data_settings_and_history(run_folder, capsys):
    assert train(capsys, "--data", "data/text.txt", *SMALL, "--lr", "0.05")[0] == 0
    checkpoint = load_checkpoint(run_folder / "ckpt.npz")
    text = (run_folder / "data" / "text.txt").read_bytes()
    assert checkpoint.data == {"path": str(run_folder / "data" / "text.txt"),
                               "size": len(text), "sha256": hashlib.sha256(text).hexdigest()}
    assert checkpoint.config["lr"] == 0.05 and checkpoint.config["max_iters"] == 30
    assert [evaluation["step"] for evaluation in checkpoint.history] == [0, 10, 20, 30]
    elapsed = [evaluation["elapsed"] for evaluation in checkpoint.history]
    assert elapsed == sorted(elapsed) and checkpoint.elapsed >= elapsed[-1]
    with np.load(run_folder / "ckpt.npz", allow_pickle=False) as npz:  # plain NumPy reads it
        assert json.loads(str(npz["meta"]))["history"] == checkpoint.history


def rewrite_meta(path, remove=(), **changes):
    """Rewrite the checkpoint at `path` with the keys `remove` of its meta removed, and
    `changes` made."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = dict(npz)
    meta = {key: value for key, value in json.loads(str(arrays["meta"])).items()
            if key not in remove} | changes
    arrays["meta"] = np.array(json.dumps(meta))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_a_checkpoint_missing_a_key_of_its_format_is_refused_in_one_line(run_folder, capsys):
    """Every key of the format is read as written: a checkpoint without its data record,
    history or elapsed time is not one this format wrote."""
    assert train(capsys, "--data", "data/text.txt", *SMALL)[0] == 0
    rewrite_meta(run_folder / "ckpt.npz", remove=("history", "elapsed"))
    with pytest.raises(ValueError, match=r"ckpt.npz is not a valid npbigram checkpoint: its "
                                         r"metadata lacks elapsed, history"):
        load_checkpoint(run_folder / "ckpt.npz")
    status, _, err = train(capsys, "--resume", "ckpt.npz", "--max-iters", "40")
    assert status == 1 and err.count("\n") == 1 and "metadata lacks elapsed, history" in err


def test_a_checkpoint_without_its_data_record_resumes_with_data(run_folder, capsys):
    """save_checkpoint's data=None: the checkpoint does not say what it was trained on."""
    assert train(capsys, "--data", "data/text.txt", *SMALL)[0] == 0
    rewrite_meta(run_folder / "ckpt.npz", data=None)
    checkpoint = load_checkpoint(run_folder / "ckpt.npz")
    assert checkpoint.data is None and checkpoint.history and checkpoint.elapsed > 0
    status, _, err = train(capsys, "--resume", "ckpt.npz", "--max-iters", "40")
    assert status == 1
    assert err == ("npbigram: error: ckpt.npz does not record the text it was trained on: pass "
                   "it with --data PATH\n")
    status, out, err = train(capsys, "--resume", "ckpt.npz", "--max-iters", "40", "--data",
                             "data/text.txt")
    assert status == 0, err
    assert steps_of(out) == [40]  # step 30's evaluation is in the history


def test_resume_checks_that_the_data_is_unchanged(run_folder, capsys):
    assert train(capsys, "--data", "data/text.txt", *SMALL)[0] == 0
    text = run_folder / "data" / "text.txt"
    shutil.copy(text, run_folder / "copy.txt")
    text.write_text(TEXT.replace("famish", "starve"))
    status, _, err = train(capsys, "--resume", "ckpt.npz", "--max-iters", "40")
    assert status == 1
    assert re.fullmatch(rf"npbigram: error: {text} is not the text ckpt.npz was trained on "
                        rf"\({text}: [\d,]+ bytes, SHA-256 [0-9a-f]{{16}}; this file: [\d,]+ "
                        rf"bytes, SHA-256 [0-9a-f]{{16}}\): use the same text\n", err)
    text.unlink()
    status, _, err = train(capsys, "--resume", "ckpt.npz", "--max-iters", "40")
    assert err == (f"npbigram: error: ckpt.npz was trained on {text}, which no longer exists: "
                   f"pass --data PATH to a copy of it\n")
    status, out, err = train(capsys, "--resume", "ckpt.npz", "--max-iters", "40", "--data",
                             "copy.txt")
    assert status == 0, err


def test_resume_rejects_settings_that_conflict_and_accepts_those_that_may_change(run_folder,
                                                                                 capsys):
    """--seed and --init were silently ignored on resume."""
    assert train(capsys, "--data", "data/text.txt", *SMALL, "--lr", "0.02")[0] == 0
    status, out, err = train(capsys, "--resume", "ckpt.npz", "--seed", "7", "--init", "zeros",
                             "--tokenizer", "byte", "--max-iters", "40")
    assert status == 1 and out == ""
    assert err == ("npbigram: error: --init zeros, --seed 7, --tokenizer byte: ckpt.npz was "
                   "trained with --init normal, --seed 1337, --tokenizer char, and a resumed "
                   "run keeps its settings (it may change --max-iters, --eval-interval, "
                   "--sample-tokens, --snapshots, --out, --plot, --log, --threads); drop them, "
                   "or start a new run\n")
    status, out, err = train(capsys, "--resume", "ckpt.npz", "--lr", "0.02", "--seed", "1337",
                             "--max-iters", "45", "--eval-interval", "15", "--threads", "1")
    assert status == 0, err
    assert steps_of(out) == [45]
    checkpoint = load_checkpoint(run_folder / "ckpt.npz")
    assert (checkpoint.step, checkpoint.config["eval_interval"]) == (45, 15)


def test_max_iters_at_or_below_the_checkpoints_step_does_nothing(run_folder, capsys):
    """It printed 'trained 0 steps in 0.000 s (nan tokens/s)'."""
    assert train(capsys, "--data", "data/text.txt", *SMALL)[0] == 0
    before = {path.name: path.read_bytes() for path in run_folder.iterdir() if path.is_file()}
    for max_iters in ([], ["--max-iters", "30"], ["--max-iters", "20"]):
        status, out, err = train(capsys, "--resume", "ckpt.npz", *max_iters)
        assert (status, err) == (0, "")
        limit = max_iters[1] if max_iters else "30"
        assert out == (f"ckpt.npz is at step 30, and --max-iters {limit} asks for no more: "
                       f"nothing to do (raise --max-iters to train on)\n")
    assert {path.name: path.read_bytes() for path in run_folder.iterdir()
            if path.is_file()} == before


def test_a_resumed_plot_draws_the_whole_history(run_folder, capsys, monkeypatch):
    """A resumed --plot started at the resume step."""
    pytest.importorskip("matplotlib")
    plotted = []
    monkeypatch.setattr(plots, "plot_losses",
                        lambda history, path, **kwargs: plotted.append(history))
    assert train(capsys, "--data", "data/text.txt", *SMALL)[0] == 0
    status, _, err = train(capsys, "--resume", "ckpt.npz", "--max-iters", "50", "--plot",
                           "loss.png")
    assert status == 0, err
    assert [step for step, _ in plotted[0]] == [0, 10, 20, 30, 40, 50]


# ----------------------------------------------------------------------------------------------
# the best checkpoint, the metrics log, the sample


def test_the_best_checkpoint_is_the_lowest_val_loss_seen(run_folder, capsys):
    """Training learns that a is followed by b, which the val split (all a) contradicts: the
    val loss rises, and the best checkpoint stays at step 0."""
    (run_folder / "ab.txt").write_text("ab" * 900 + "a" * 200)
    status, out, err = train(capsys, "--data", "ab.txt", *SMALL, "--out", "ab.npz",
                             "--block-size", "4")
    assert status == 0, err
    last, best = load_checkpoint(run_folder / "ab.npz"), load_checkpoint(run_folder / "ab.best.npz")
    vals = [evaluation["val"] for evaluation in last.history]
    assert vals == sorted(vals) and vals[0] < vals[-1]
    assert (last.step, best.step) == (30, 0)
    assert best.history == last.history[:1]
    assert f"best val loss {vals[0]:.4f} at step 0: ab.best.npz" in out
    for command in (["sample", "--max-new-tokens", "5"], ["explain", "abba"], ["eval"]):
        assert main([command[0], "--checkpoint", "ab.best.npz", *command[1:]]) == 0


def test_resuming_into_another_out_keeps_the_best_beside_it(run_folder, capsys):
    (run_folder / "ab.txt").write_text("ab" * 900 + "a" * 200)
    assert train(capsys, "--data", "ab.txt", *SMALL, "--out", "ab.npz", "--block-size", "4")[0] == 0
    status, _, err = train(capsys, "--resume", "ab.npz", "--max-iters", "40", "--out", "on.npz")
    assert status == 0, err
    assert load_checkpoint(run_folder / "on.best.npz").step == 0
    assert load_checkpoint(run_folder / "ab.npz").step == 30


def test_log_writes_every_evaluation_of_the_run(run_folder, capsys):
    assert train(capsys, "--data", "data/text.txt", *SMALL, "--log", "metrics.csv")[0] == 0
    status, _, err = train(capsys, "--resume", "ckpt.npz", "--max-iters", "50", "--log",
                           "metrics.csv")
    assert status == 0, err
    with open(run_folder / "metrics.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["step", "train_loss", "val_loss", "elapsed_seconds"]
    history = load_checkpoint(run_folder / "ckpt.npz").history
    assert [[int(r[0]), float(r[1]), float(r[2]), float(r[3])] for r in rows[1:]] == [
        [e["step"], round(e["train"], 6), round(e["val"], 6), round(e["elapsed"], 3)]
        for e in history]
    assert [int(row[0]) for row in rows[1:]] == [0, 10, 20, 30, 40, 50]


@pytest.mark.parametrize("tokens", [0, 7])
def test_sample_tokens_sets_the_final_sample(run_folder, capsys, tokens):
    status, out, err = train(capsys, "--data", "data/text.txt", *SMALL,
                             "--sample-tokens", tokens)
    assert status == 0, err
    lines = train_log_lines(out)
    sample = "\n".join(lines[4:[i for i, line in enumerate(lines)
                                 if line.startswith("trained 30 steps")][0]])
    assert len(sample) == (0 if tokens == 0 else 1 + tokens)


def test_a_resumed_run_keeps_the_runs_sample_tokens(run_folder, capsys):
    """--resume printed a 500-token sample after a run started with --sample-tokens 0."""
    assert train(capsys, "--data", "data/text.txt", *SMALL, "--sample-tokens", "0")[0] == 0
    status, out, err = train(capsys, "--resume", "ckpt.npz", "--max-iters", "40")
    assert status == 0, err
    assert out.split("\n")[2].startswith("trained 10 steps")  # resumed, step 30, then no sample


def test_a_folder_that_is_not_prepared_is_named_as_such(run_folder, capsys):
    """It said 'cannot read .../meta.json'."""
    (run_folder / "adir").mkdir()
    status, out, err = train(capsys, "--data", "adir", *SMALL)
    assert status == 1 and out == ""
    assert err == ("npbigram: error: adir is not a prepared folder (no meta.json): run npbigram "
                   "prepare --data FILE --out adir, or name a text file\n")


def test_full_batch_on_a_short_text_needs_only_a_pair_per_split(run_folder, capsys):
    """On a 12-character text it advised --block-size, which full batch does not use."""
    (run_folder / "short.txt").write_text("hello world!")
    status, out, err = train(capsys, "--data", "short.txt", "--full-batch", "--max-iters", "10",
                             "--sample-tokens", "0")
    assert status == 0, err
    (run_folder / "shorter.txt").write_text("hello worl")  # the val split: one token
    status, out, err = train(capsys, "--data", "shorter.txt", "--full-batch", "--out", "b.npz")
    assert status == 1
    assert err == "npbigram: error: the val split has 1 token, no pair: use a longer text\n"


def test_a_text_of_one_character_prints_no_negative_zero(run_folder, capsys):
    """It printed 'exact train loss -0.0000 ... above the floor -0.0000'."""
    (run_folder / "one.txt").write_text("a" * 40)
    status, out, err = train(capsys, "--data", "one.txt", "--block-size", "2", "--batch-size",
                             "2", "--max-iters", "5", "--sample-tokens", "0")
    assert status == 0, err
    assert "-0.0" not in out
    assert out.split("\n")[-2] == ("exact train loss 0.0000 over all 35 train pairs: 0.0000 "
                                   "above the floor 0.0000 that no bigram can beat (npbigram "
                                   "optimum)")


def test_the_last_step_is_evaluated_whatever_the_interval(run_folder, capsys):
    """With --eval-interval above --max-iters the last step was never evaluated, so the best
    checkpoint was the random step-0 model."""
    status, out, err = train(capsys, "--data", "data/text.txt", "--max-iters", "40",
                             "--eval-interval", "1000", "--eval-iters", "5", "--sample-tokens", "0")
    assert status == 0, err
    assert steps_of(out) == [0, 40]
    assert train_log_lines(out)[1].startswith("step 40: ")  # the log's last line
    assert load_checkpoint(run_folder / "ckpt.best.npz").step == 40
    assert [e["step"] for e in load_checkpoint(run_folder / "ckpt.npz").history] == [0, 40]


# ----------------------------------------------------------------------------------------------
# outputs of their own: distinct paths, and one run at a time on each


@pytest.mark.parametrize("flags, message", [
    (["--out", "y.npz", "--log", "y.best.npz"],
     "--log y.best.npz is the same file as the best checkpoint y.best.npz of --out y.npz"),
    (["--out", "x.npz", "--log", "x.npz", "--force"],
     "--log x.npz is the same file as --out x.npz"),
    (["--out", "x.npz", "--plot", "link.png"], "--plot link.png is the same file as --out x.npz"),
    (["--log", "m.csv", "--plot", "data/../m.csv"],
     "--log m.csv is the same file as --plot data/../m.csv"),
])
def test_every_output_of_a_run_has_a_path_of_its_own(run_folder, capsys, flags, message):
    """--out y.npz --log y.best.npz exited 0 and y.best.npz held the CSV; --out x.npz --log x.npz
    --force lost the metrics silently."""
    os.symlink("x.npz", run_folder / "link.png")
    status, out, err = train(capsys, "--data", "data/text.txt", *SMALL, *flags)
    assert (status, out) == (1, "")
    assert err == f"npbigram: error: {message}: every output needs a path of its own\n"
    assert sorted(p.name for p in run_folder.iterdir()) == ["data", "link.png"]


def start_train(folder, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "npbigram", "train", "--data", "data/text.txt", *args],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.mark.slow
def test_a_run_refuses_the_outputs_of_a_run_still_writing_them(run_folder):
    """Two overlapping runs on one --out both exited 0: same.npz held run A, same.best.npz run
    B."""
    first = start_train(run_folder, "--max-iters", "100000000", "--eval-interval", "100000",
                        "--eval-iters", "1", "--out", "same.npz", "--log", "a.csv")
    try:
        log = (line for line in first.stdout if not line.startswith("compiled kernels in "))
        assert next(log).startswith("step 0:")  # after the line of a cold JIT cache's compilation
        for flags, busy in [(["--out", "same.npz"], "--out same.npz"),
                            (["--out", "same.npz", "--force", "--seed", "7"], "--out same.npz"),
                            (["--out", "same.best.npz"], "--out same.best.npz"),
                            (["--out", "b.npz", "--log", "a.csv"], "--log a.csv")]:
            second = subprocess.run([sys.executable, "-m", "npbigram", "train", "--data",
                                     "data/text.txt", *flags], cwd=run_folder, capture_output=True,
                                    text=True, timeout=120)
            assert second.returncode == 1
            assert second.stderr == (f"npbigram: error: {busy} is being written by another "
                                     f"npbigram process (PID {first.pid}): wait for it to finish, "
                                     f"or choose another path\n")
        first.send_signal(signal.SIGTERM)
        _, stderr = first.communicate(timeout=120)
    finally:
        first.kill()  # if the test failed while it ran
    assert first.returncode == 143, stderr
    assert load_checkpoint(run_folder / "same.npz").config["seed"] == 1337
    assert load_checkpoint(run_folder / "same.best.npz").config["seed"] == 1337
    assert sorted(p.name for p in run_folder.iterdir()) == [
        "a.csv", "data", "same.best.npz", "same.npz"]  # no lock file left, nor b.npz
    with OutputLock(lock_beside(run_folder / "same.npz"), "--out same.npz"):
        pass  # free once the run ended


def test_a_lock_file_that_a_killed_run_left_blocks_nobody(run_folder, capsys):
    killed = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                            capture_output=True, text=True)
    (run_folder / ".ckpt.npz.lock").write_text(killed.stdout)
    assert train(capsys, "--data", "data/text.txt", *SMALL)[0] == 0
    assert sorted(p.name for p in run_folder.iterdir()) == ["ckpt.best.npz", "ckpt.npz", "data"]


def test_a_full_disk_during_training_says_what_failed_and_what_is_saved(run_folder, capsys,
                                                                       monkeypatch):
    """A full disk printed the raw '[Errno 28] No space left on device: ...'."""
    savez, writes = np.savez, []

    def fills_the_disk(*args, **kwargs):
        writes.append(1)
        if len(writes) == 3:  # step 0 wrote c.npz and c.best.npz; step 10's c.npz fails
            raise OSError(errno.ENOSPC, "No space left on device")
        return savez(*args, **kwargs)

    monkeypatch.setattr(np, "savez", fills_the_disk)
    status, _, err = train(capsys, "--data", "data/text.txt", *SMALL, "--out", "c.npz")
    assert status == 1
    assert err == ("npbigram: error: could not write the checkpoint c.npz: no space left on "
                   "device; the previous c.npz is unchanged. The run stopped at step 10; c.npz "
                   "holds step 0: continue with --resume c.npz\n")
    assert load_checkpoint(run_folder / "c.npz").step == 0
    assert sorted(p.name for p in run_folder.iterdir()) == ["c.best.npz", "c.npz", "data"]
