"""Helpers shared by the test modules."""

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import numpy as np
import pytest
from hypothesis import strategies as st
from npbigram import (
    BigramLanguageModel,
    CharTokenizer,
    TrainConfig,
    Trainer,
    save_checkpoint,
)


def skip_or_fail(reason, required_by="NPBIGRAM_REQUIRE_TORCH"):
    """Skip the test, or fail it when the environment variable `required_by` is 1 (CI sets
    NPBIGRAM_REQUIRE_TORCH and NPBIGRAM_REQUIRE_BROWSER, so that nothing it needs is skipped)."""
    if os.environ.get(required_by) == "1":
        pytest.fail(f"{reason}, and {required_by}=1 forbids skipping")
    pytest.skip(reason)


def model_with_weight(weight, backend="numpy"):
    """A BigramLanguageModel holding a copy of `weight` (V,V) in weight's dtype."""
    return BigramLanguageModel.from_weight(np.array(weight), backend=backend)


def random_weight(vocab_size, dtype, seed, scale=1.0):
    """A (V,V) table of N(0, scale^2) entries."""
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal((vocab_size, vocab_size))).astype(dtype)


TOLERANCE = {np.float32: 1e-5, np.float64: 1e-10}  # against PyTorch and the NumPy reference
dtypes = st.sampled_from([np.float32, np.float64])


# a small training run, for checkpoint and resume tests
TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 40
TOKENIZER = CharTokenizer.from_text(TEXT)
DATA = TOKENIZER.encode(TEXT)


def trained_trainer(backend, steps=5, **config):
    config = TrainConfig(**{"batch_size": 4, "block_size": 8, "max_iters": 60, "eval_interval": 20,
                            "eval_iters": 5, "backend": backend, **config})
    trainer = Trainer(config, DATA, TOKENIZER.vocab_size)
    for _ in range(steps):
        trainer.train_step()
    return trainer


def save_trainer(path, trainer):
    save_checkpoint(path, trainer.model, **trainer.checkpoint_kwargs(TOKENIZER))


def train_log_lines(stdout):
    """The lines of a `npbigram train` log without the one a first run on a cold JIT cache
    starts with ("compiled kernels in 2.5 s"): the same lines whatever the cache holds."""
    return [line for line in stdout.split("\n") if not line.startswith("compiled kernels in ")]


def one_line_error(capsys, argv):
    """The error line of `npbigram ARGV`, run in this process, which must fail with status 1
    and one line, 'npbigram: error: ...'."""
    from npbigram.cli import main

    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("npbigram: error: ") and err.count("\n") == 1, err
    return err


def ctrl_c_at_step(monkeypatch, step):
    """Send this process Ctrl-C (SIGINT) once a Trainer has trained `step` steps, as a user
    would while `npbigram train` runs in it."""
    train_steps = Trainer.train_steps

    def then_ctrl_c(self, steps):
        losses = train_steps(self, steps)
        if self.step == step:
            os.kill(os.getpid(), signal.SIGINT)
        return losses

    monkeypatch.setattr(Trainer, "train_steps", then_ctrl_c)


def open_terminal():
    """(controller, terminal) file descriptors of a pseudo-terminal of 24 x 100 characters (a
    terminal without a size shows no progress bar)."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    return controller, terminal


def terminal_output(argv, pattern, cwd, timeout=120):
    """What `npbigram argv`, run in `cwd` with stderr on a pseudo-terminal, shows there until
    `pattern` (bytes) appears or `timeout` seconds pass; the process is then killed."""
    controller, terminal = open_terminal()
    process = subprocess.Popen([sys.executable, "-m", "npbigram", *map(str, argv)], cwd=cwd,
                               stdout=subprocess.PIPE, stderr=terminal)
    os.close(terminal)
    try:
        return read_terminal(controller, pattern, timeout)
    finally:
        process.kill()
        process.wait()
        os.close(controller)


def read_terminal(fd, pattern, timeout):
    """Read a pseudo-terminal until `pattern` (bytes) appears or `timeout` seconds pass; returns
    what was read."""
    seen, deadline = b"", time.monotonic() + timeout
    while pattern not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.5)[0]:
            try:
                seen += os.read(fd, 4096)
            except OSError:  # the other side closed
                break
    return seen


def signal_when_shown(args, cwd, shown, signals, until):
    """Run `python -m npbigram ARGS` in cwd with stderr a terminal (so that progress bars show);
    once `shown` (bytes) appears there, send `signals` 50 ms apart. Returns (status, stdout,
    what the terminal showed after `shown`, up to `until`)."""
    controller, terminal = open_terminal()
    process = subprocess.Popen([sys.executable, "-m", "npbigram", *map(str, args)], cwd=cwd,
                               stdout=subprocess.PIPE, stderr=terminal)
    os.close(terminal)
    try:
        assert shown in read_terminal(controller, shown, timeout=120)
        for i, signum in enumerate(signals):
            time.sleep(0.05 * (i > 0))
            process.send_signal(signum)
        stderr = read_terminal(controller, until, timeout=120)  # drained: a full pty blocks
        stdout, _ = process.communicate(timeout=120)
    finally:
        process.kill()
        os.close(controller)
    return process.returncode, stdout, stderr
