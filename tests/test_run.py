"""npbigram/run.py: the run loop. Ctrl-C within a chunk of work, evaluation included, and never
a traceback; the kernels' compilation timed apart from training; honest timing lines."""

import io
import os
import re
import signal

import pytest
from npbigram import TrainConfig, Trainer, load_checkpoint, run
from npbigram.utils import progress
from npbigram.cli import main
from npbigram.utils.progress import Progress

from helpers import DATA, TOKENIZER, signal_when_shown, terminal_output


def long_evaluation_trainer(eval_iters=10**6):
    config = TrainConfig(batch_size=32, block_size=8, max_iters=100, eval_iters=eval_iters)
    return Trainer(config, DATA, TOKENIZER.vocab_size)


def test_ctrl_c_during_a_long_evaluation_stops_it_after_the_current_chunk(monkeypatch):
    """Ctrl-C was ignored during a long evaluation (--eval-iters 10000000:
    still running 15 s later), as all its batches were one compiled call."""
    trainer = long_evaluation_trainer()
    engine, calls, saves = trainer.model.engine, [], []
    batch_losses = engine.batch_losses

    def then_ctrl_c(*args):
        calls.append(len(args[2]))  # the batches of this call
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return batch_losses(*args)

    monkeypatch.setattr(engine, "batch_losses", then_ctrl_c)
    outcome = run.run_training(trainer, saves.append, log=lambda line: None)
    assert outcome.stop_signal == signal.SIGINT and trainer.step == 0
    assert len(calls) == 1 and calls[0] < 10**6  # the evaluation stopped after its first chunk
    assert saves == [False] and trainer.history == []  # saved, without the unfinished evaluation


def test_an_evaluation_in_chunks_gives_the_same_bits(monkeypatch):
    """Chunking never changes the batches or the losses (the mean of the per-batch means)."""
    whole = long_evaluation_trainer(eval_iters=500)
    monkeypatch.setattr(whole.model.engine, "batches_per_call", lambda n, v: 10**9)
    chunked = long_evaluation_trainer(eval_iters=500)
    monkeypatch.setattr(chunked.model.engine, "batches_per_call", lambda n, v: 7)
    assert whole.evaluate() == chunked.evaluate()


class FakeClock:
    """time.perf_counter that advances only when told to."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_compilation_is_reported_on_its_own_line_and_not_counted_as_training(monkeypatch):
    """A cold run's 'trained 3000 steps in 3.704 s' included the kernels'
    compilation."""
    clock = FakeClock()
    monkeypatch.setattr(run.time, "perf_counter", clock)
    trainer = long_evaluation_trainer(eval_iters=2)

    def compile_for_a_minute():
        clock.now += 60.0
        return 3

    monkeypatch.setattr(trainer, "warm_up", compile_for_a_minute)
    lines = []
    outcome = run.run_training(trainer, lambda best: None, log=lines.append)
    assert lines[0] == "compiled kernels in 60.0 s"
    assert (outcome.compiled, outcome.compile_seconds) == (3, 60.0)
    assert outcome.train_seconds == 0.0  # the fake clock stood still while training
    assert trainer.elapsed == 0.0
    monkeypatch.setattr(trainer, "warm_up", lambda: 0)  # loaded from the cache: nothing said
    trainer.config.max_iters = 200
    lines.clear()
    run.run_training(trainer, lambda best: None, log=lines.append)
    assert not any(line.startswith("compiled") for line in lines)


def test_full_batch_reports_pairs_per_second_of_gradient_evaluation(tmp_path, capsys):
    """--full-batch reported '13,864,557,141 tokens/s'."""
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 40)
    assert main(["train", "--data", str(text), "--out", str(tmp_path / "c.npz"), "--full-batch",
                 "--max-iters", "50"]) == 0
    out = capsys.readouterr().out
    assert "tokens/s" not in out
    assert re.search(r"^trained 50 steps in \d+\.\d{3} s \([\d,]+ pairs/s of gradient "
                     r"evaluation: each step's gradient is exact over all 1,619 train pairs, "
                     r"from their counts\); checkpoint: .*c.npz$", out, re.MULTILINE)


def test_a_second_ctrl_c_during_evaluation_prints_no_traceback_and_the_checkpoint_is_saved(
        tinyshakespeare, tmp_path):
    """A second Ctrl-C printed a KeyboardInterrupt traceback and no
    checkpoint was written."""
    status, stdout, stderr = signal_when_shown(  # stderr a terminal: the bars show the loop
        ["train", "--data", tinyshakespeare, "--eval-iters", "10000000", "--out", "long.npz",
         "--max-iters", "100"], tmp_path, b"evaluating step 0",
        [signal.SIGINT, signal.SIGINT], until=b"continue with")
    assert status == 130
    assert b"Traceback" not in stderr and b"KeyboardInterrupt" not in stderr
    assert b"interrupted at step 0: checkpoint saved to long.npz" in stderr
    assert b"step 0:" not in stdout  # the abandoned evaluation printed nothing
    assert load_checkpoint(tmp_path / "long.npz").step == 0


@pytest.mark.parametrize("phase", ["loading"])
def test_ctrl_c_before_training_is_one_line_and_status_130(tmp_path, monkeypatch, capsys, phase):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("npbigram.cli.training.load_training_data", interrupted)
    text = tmp_path / "t.txt"
    text.write_text("abc" * 100)
    assert main(["train", "--data", str(text), "--out", str(tmp_path / "c.npz")]) == 130
    assert capsys.readouterr().err == "npbigram: interrupted\n"


def test_progress_on_a_pipe_is_a_line_every_few_seconds():
    """On a pipe a bar would be carriage returns: a line once the work has run PROGRESS_SECONDS
    since the last, none for work that ends sooner."""
    stream, now = io.StringIO(), [0.0]
    with Progress(400, "evaluating step 0", ("batch", "batches"), stream=stream,
                  clock=lambda: now[0]) as progress:
        for seconds in (1, 3, 6, 8, 12):
            now[0] = seconds
            progress.update(40)
    assert stream.getvalue() == ("evaluating step 0: 120/400 batches, 6 s\n"
                                 "evaluating step 0: 200/400 batches, 12 s\n")


def test_an_evaluation_shows_its_progress_on_a_pipe(tinyshakespeare, tmp_path, monkeypatch,
                                                     capsys):
    """A run's evaluations (200 batches of 8*10^8 positions took minutes) printed nothing
    until they ended."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(progress, "PROGRESS_SECONDS", 0.0)  # as if each chunk took seconds
    assert main(["train", "--data", str(tinyshakespeare), "--max-iters", "3",
                 "--eval-interval", "2", "--sample-tokens", "0"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert "evaluating step 0: 200/400 batches, 0 s" in lines
    assert "evaluating step 2: 400/400 batches, 0 s" in lines
    assert "train: 3/3 steps, 0 s" in lines


def test_an_evaluation_shows_a_bar_on_a_terminal(tinyshakespeare, tmp_path):
    """On a terminal, `train --eval-iters 2000000` showed `train: 0%| | 0/3000` for minutes."""
    shown = terminal_output(["train", "--data", tinyshakespeare, "--eval-iters", "2000000"],
                            b"batch/s", cwd=tmp_path)
    assert b"evaluating step 0:" in shown and b"/4000000" in shown
