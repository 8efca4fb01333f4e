"""npbigram/stopping.py: SIGTERM (kill, docker stop, Slurm, systemd) and SIGHUP stop a command as
Ctrl-C does, with status 128 + the signal's number: training saves its checkpoint and resumes
exactly; a second signal only says that it is stopping; commands without a save point stop
promptly and leave no partial output. Real signals to real processes."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from npbigram import TrainConfig, Trainer, run
from npbigram.checkpoint import read_checkpoint
from npbigram.cli import main
from npbigram.data.prepared import OUTPUT_FILES, load_prepared

from helpers import DATA, TOKENIZER, signal_when_shown

NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}


def npbigram(*args, cwd):
    return subprocess.run([sys.executable, "-m", "npbigram", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def start(args, cwd, **kwargs):
    """Start `python -m npbigram ARGS` in cwd, its stdout unbuffered."""
    return subprocess.Popen([sys.executable, "-m", "npbigram", *map(str, args)], cwd=cwd,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, **kwargs)


def wait_for_line(process, prefix):
    """Read the process's stdout (text) up to a line starting with `prefix`."""
    for line in process.stdout:
        if line.startswith(prefix):
            return
    raise AssertionError(f"no line starting with {prefix!r}: {process.stderr.read()}")


def same_state(a, b):
    """Whether two checkpoints hold the same weights, optimizer state and batch generator,
    bit for bit."""
    (arrays_a, meta_a), (arrays_b, meta_b) = read_checkpoint(a), read_checkpoint(b)
    return (arrays_a.keys() == arrays_b.keys() and meta_a["rng_state"] == meta_b["rng_state"]
            and all(np.array_equal(arrays_a[k], arrays_b[k]) for k in arrays_a)
            and meta_a["step"] == meta_b["step"])


@pytest.mark.slow
@pytest.mark.parametrize("signum, backend", [(signal.SIGTERM, "numba"), (signal.SIGHUP, "numpy")])
def test_a_stop_signal_saves_the_checkpoint_and_the_run_resumes_exactly(tinyshakespeare, tmp_path,
                                                                       signum, backend):
    """SIGTERM exited 143 with nothing saved since the last evaluation and no resume hint."""
    flags = ["--data", tinyshakespeare, "--eval-interval", "100000", "--eval-iters", "1",
             "--backend", backend]
    process = start(["train", *flags, "--max-iters", "10000000", "--out", "stopped.npz"],
                    tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_line(process, "step 0:")
        time.sleep(0.5)  # into the training steps, between two evaluations
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()  # if the test failed while it ran
    assert process.returncode == 128 + signum, stderr  # 143 for SIGTERM, 129 for SIGHUP
    stopped = read_checkpoint(tmp_path / "stopped.npz")[1]["step"]
    assert stderr.endswith(f"stopped by {NAMES[signum]} at step {stopped}: checkpoint saved to "
                           f"stopped.npz; continue with --resume stopped.npz\n")
    assert "Traceback" not in stderr

    finish = stopped + 30
    resumed = npbigram("train", "--resume", "stopped.npz", "--max-iters", finish, "--out",
                       "resumed.npz", "--sample-tokens", "0", cwd=tmp_path)
    whole = npbigram("train", *flags, "--max-iters", finish, "--out", "whole.npz",
                     "--sample-tokens", "0", cwd=tmp_path)
    assert resumed.returncode == whole.returncode == 0, resumed.stderr + whole.stderr
    assert same_state(tmp_path / "resumed.npz", tmp_path / "whole.npz")


def test_a_second_signal_only_says_that_the_run_is_stopping(tmp_path, monkeypatch, capsys):
    """SIGTERM, then SIGHUP while the run stops (real signals, to this process running the
    command): the run saves, says that it is stopping, and exits with the first's status."""
    train_steps = Trainer.train_steps

    def then_two_signals(self, steps):
        losses = train_steps(self, steps)
        if self.step == 20:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGHUP)
        return losses

    monkeypatch.setattr(Trainer, "train_steps", then_two_signals)
    text = tmp_path / "t.txt"
    text.write_text("to be or not to be, that is the question\n" * 20)
    assert main(["train", "--data", str(text), "--out", str(tmp_path / "c.npz"), "--max-iters",
                 "50", "--eval-interval", "10", "--eval-iters", "2"]) == 143
    assert capsys.readouterr().err == (
        f"npbigram: stopping: saving the checkpoint first\nstopped by SIGTERM at step 20: "
        f"checkpoint saved to {tmp_path / 'c.npz'}; continue with --resume {tmp_path / 'c.npz'}\n")
    assert read_checkpoint(tmp_path / "c.npz")[1]["step"] == 20


def test_a_signal_during_the_compilation_waits_for_it_then_saves(monkeypatch):
    """A signal raised inside numba's compiler can leave its locks taken: it waits."""
    config = TrainConfig(batch_size=4, block_size=8, max_iters=100, eval_iters=2)
    trainer = Trainer(config, DATA, TOKENIZER.vocab_size)

    def compiles_through_a_sigterm():
        os.kill(os.getpid(), signal.SIGTERM)
        return 1

    monkeypatch.setattr(trainer, "warm_up", compiles_through_a_sigterm)
    saves = []
    outcome = run.run_training(trainer, saves.append, log=lambda line: None)
    assert (outcome.stop_signal, outcome.compiled, trainer.step) == (signal.SIGTERM, 1, 0)
    assert saves == [False]


def test_gradcheck_stops_at_once_on_sighup(tmp_path):
    """A command without a save point: status 129 (the process used to die of the signal)."""
    status, stdout, stderr = signal_when_shown(
        ["gradcheck", "--vocab", "300", "--batch-size", "16", "--block-size", "16"], tmp_path,
        b"gradcheck:", [signal.SIGHUP], until=b"SIGHUP")
    assert status == 129
    assert stdout == b"" and b"npbigram: stopped by SIGHUP" in stderr
    assert b"Traceback" not in stderr


def test_eval_stops_on_sigterm_with_status_143(tmp_path, monkeypatch, capsys):
    text = tmp_path / "t.txt"
    text.write_text("to be or not to be, that is the question\n" * 20)
    assert main(["train", "--data", str(text), "--out", str(tmp_path / "c.npz"), "--max-iters",
                 "10", "--eval-iters", "2", "--sample-tokens", "0"]) == 0
    capsys.readouterr()

    def killed(*args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the signal interrupts it

    monkeypatch.setattr("npbigram.cli.evaluation.ops.loss_from_counts", killed)
    assert main(["eval", "--checkpoint", str(tmp_path / "c.npz")]) == 143
    assert capsys.readouterr().err == "npbigram: stopped by SIGTERM\n"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored for the caller


class SignalsWhenCollected:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs here, where Python ignores what it raises
            pass


def test_a_signal_that_lands_in_a_destructor_still_stops_the_command(monkeypatch, capsys):
    """A SIGTERM during numba's compilation landed in an object's __del__: Python printed
    'Exception ignored in ... __del__' and the command ran on, deaf to further signals."""
    def collects_then_works(args):
        SignalsWhenCollected()
        time.sleep(20)  # a stop signal interrupts it
        return 0

    monkeypatch.setattr("npbigram.cli.tools.run_gradcheck", collects_then_works)
    assert main(["gradcheck"]) == 143
    assert capsys.readouterr().err == "npbigram: stopped by SIGTERM\n"


@pytest.mark.slow
def test_a_signal_whose_exception_was_dropped_is_raised_again(monkeypatch, capsys):
    """C code that clears any error (an attribute lookup) can drop what a handler raised: the
    command ran on, deaf to further signals."""
    def drops_the_first_stop(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(20)
        except KeyboardInterrupt:
            pass  # dropped
        os.kill(os.getpid(), signal.SIGTERM)  # at once: only says that it is stopping
        time.sleep(20)  # the signal comes again, and interrupts it
        return 0

    monkeypatch.setattr("npbigram.cli.tools.run_gradcheck", drops_the_first_stop)
    assert main(["gradcheck"]) == 143
    assert capsys.readouterr().err == "npbigram: stopping\nnpbigram: stopped by SIGTERM\n"


# prepare, slowed down: a pause after each piece of ids written, and small chunks
SLOW_PREPARE = """
import functools, sys, time
import npbigram.data.prepare as prepare
write_parts = prepare._write_parts

def slowly(bins, parts):
    write_parts(bins, parts)
    print("wrote", flush=True)
    time.sleep(0.01)

prepare._write_parts = slowly
prepare.prepare = functools.partial(prepare.prepare, chunk_bytes=1000)
from npbigram.cli import main
sys.exit(main())
"""


@pytest.mark.slow
def test_sigterm_during_prepare_leaves_no_temporary_and_a_rerun_redoes_it(tmp_path):
    """A SIGTERM left a 250 MB hidden .train.bin.*.tmp, and a folder that a rerun refused until
    --force."""
    text = tmp_path / "t.txt"
    text.write_text("the quick brown fox jumps over the lazy dog\n" * 5000)
    args = ["prepare", "--data", text, "--out", "out"]
    process = subprocess.Popen([sys.executable, "-c", SLOW_PREPARE, *map(str, args)],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        wait_for_line(process, "wrote")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, stderr
    assert stderr == "npbigram: stopped by SIGTERM\n"
    left = os.listdir(tmp_path / "out")
    assert not [name for name in left if name.endswith((".tmp", ".lock")) or name in OUTPUT_FILES]
    again = npbigram(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert sorted(os.listdir(tmp_path / "out")) == sorted(OUTPUT_FILES)
    assert load_prepared(tmp_path / "out").meta["tokens"]["train"] == int(0.9 * len(
        text.read_text()))
