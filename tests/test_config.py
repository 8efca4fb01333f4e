"""npbigram/cli/config.py: `npbigram train --config run.toml` and `--print-config`; training
from the printed file reproduces the run bit for bit."""

import dataclasses
import functools
import math
import os
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from npbigram import TrainConfig, load_checkpoint
from npbigram.cli import build_parser, main
from npbigram.cli.common import CommandError, flag
from npbigram.cli.config import SETTINGS, read_config, toml_text, tomllib
from npbigram.cli.run_setup import RunOptions

from helpers import one_line_error

TEXT = "the quick brown fox jumps over the lazy dog.\nTHE END\n" * 30
BATCHES = ["--batch-size", "4", "--eval-iters", "2"]
SMALL = [*BATCHES, "--max-iters", "20", "--eval-interval", "10", "--sample-tokens", "0"]
RUNS = {  # flag sets whose runs the printed settings must reproduce
    "adamw, numba": [*SMALL, "--lr", "0.05", "--seed", "7"],
    "sgd with nesterov momentum": [*SMALL, "--backend", "numpy", "--optimizer", "sgd",
                                   "--momentum", "0.9", "--nesterov", "--lr", "0.3"],
    "full batch, exact, float64": [*SMALL[len(BATCHES):], "--backend", "numpy", "--full-batch",
                                   "--eval", "exact", "--dtype", "float64", "--max-iters", "15"],
    "torch's random numbers, pair counts": [*SMALL, "--backend", "numpy", "--rng", "torch",
                                            "--grad", "pair-counts", "--init", "zeros"],
}


@pytest.fixture
def text(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT)
    return str(path)


def printed(capsys, argv):
    capsys.readouterr()
    assert main(["train", "--print-config", *argv]) == 0
    return capsys.readouterr().out


def assert_same_run(a, b):
    """Two checkpoints of the same run: weights, optimizer state, random state, settings and
    losses identical (only the seconds it took may differ)."""
    a, b = load_checkpoint(a), load_checkpoint(b)
    assert a.model.weight.dtype == b.model.weight.dtype
    np.testing.assert_array_equal(a.model.weight, b.model.weight)
    assert a.optimizer_state.keys() == b.optimizer_state.keys()
    for name, value in a.optimizer_state.items():
        np.testing.assert_array_equal(value, b.optimizer_state[name])
    assert (a.rng_state, a.config, a.step, a.data) == (b.rng_state, b.config, b.step, b.data)
    strip = lambda history: [{**evaluation, "elapsed": 0} for evaluation in history]  # noqa: E731
    assert strip(a.history) == strip(b.history)


# ----------------------------------------------------------------------------------------------
# the round trip


@pytest.mark.parametrize("run", RUNS)
def test_training_from_the_printed_settings_reproduces_the_run(run, text, tmp_path, capsys):
    flags = ["--data", text, *RUNS[run]]
    assert main(["train", *flags, "--out", "first.npz"]) == 0
    (tmp_path / "run.toml").write_text(printed(capsys, flags))
    assert main(["train", "--config", "run.toml", "--out", "again.npz"]) == 0
    assert_same_run("first.npz", "again.npz")

    (tmp_path / "checkpoint.toml").write_text(printed(capsys, ["--checkpoint", "first.npz"]))
    assert tomllib.loads((tmp_path / "checkpoint.toml").read_text()) == tomllib.loads(
        (tmp_path / "run.toml").read_text())
    assert main(["train", "--config", "checkpoint.toml", "--out", "from_checkpoint.npz"]) == 0
    assert_same_run("first.npz", "from_checkpoint.npz")


def test_a_resumed_runs_settings_continue_it_as_resume_does(text, tmp_path, capsys):
    flags = ["--data", text, *SMALL, "--backend", "numpy"]
    assert main(["train", *flags, "--out", "short.npz"]) == 0
    assert main(["train", *flags, "--max-iters", "30", "--out", "whole.npz"]) == 0
    settings = printed(capsys, ["--resume", "short.npz", "--max-iters", "30", "--out", "long.npz"])
    assert 'resume = "short.npz"' in settings and "max_iters = 30" in settings
    (tmp_path / "resume.toml").write_text(settings)
    assert main(["train", "--config", "resume.toml"]) == 0
    assert_same_run("long.npz", "whole.npz")


def test_the_settings_of_an_export_are_its_checkpoints(text, capsys):
    pytest.importorskip("safetensors")
    assert main(["train", "--data", text, *SMALL, "--backend", "numpy", "--out", "c.npz"]) == 0
    assert main(["export", "--checkpoint", "c.npz", "--out", "c.safetensors"]) == 0
    assert (printed(capsys, ["--checkpoint", "c.safetensors"])
            == printed(capsys, ["--checkpoint", "c.npz"]))


# ----------------------------------------------------------------------------------------------
# what is printed


def test_the_printed_settings_are_the_runs_and_train_nothing(tmp_path, capsys):
    settings = tomllib.loads(printed(capsys, []))
    defaults = {name: value for name, value in dataclasses.asdict(TrainConfig()).items()
                if value is not None and value is not False}  # switches off: not printed
    assert settings == {"tokenizer": "char", **defaults}  # bigram.py's run
    assert "# data: not given, so tinyshakespeare" in printed(capsys, [])
    assert os.listdir(tmp_path) == []  # nothing downloaded, locked or written
    full = tomllib.loads(printed(capsys, ["--full-batch", "--eval", "exact", "--threads", "2",
                                          "--out", "f.npz", "--force"]))
    assert full["lr"] == 0.5 and full["max_iters"] == 1000 and full["full_batch"] is True
    assert not {"batch_size", "block_size", "eval_iters", "grad"} & set(full)  # no effect
    assert (full["threads"], full["out"], full["force"]) == (2, "f.npz", True)


def test_a_prepared_folder_keeps_its_own_tokenizer(text, capsys):
    assert main(["prepare", "--data", text, "--out", "prepared", "--tokenizer", "byte"]) == 0
    settings = tomllib.loads(printed(capsys, ["--data", "prepared"]))
    assert settings["data"] == "prepared" and "tokenizer" not in settings
    assert main(["train", "--data", "prepared", *SMALL, "--backend", "numpy"]) == 0
    assert tomllib.loads(printed(capsys, ["--checkpoint", "ckpt.npz"]))["tokenizer"] == "byte"


def test_a_checkpoint_without_its_data_record_says_so(capsys):
    from npbigram import BigramLanguageModel, save_checkpoint

    save_checkpoint("bare.npz", BigramLanguageModel(3, backend="numpy"), config={"lr": 0.5})
    text = printed(capsys, ["--checkpoint", "bare.npz"])
    assert "# data: bare.npz does not record its text, give it with data = PATH" in text
    assert tomllib.loads(text)["lr"] == 0.5 and "data" not in tomllib.loads(text)


def test_command_line_flags_override_the_file_wherever_they_stand(tmp_path, capsys):
    (tmp_path / "run.toml").write_text('lr = 1\nseed = 5\noptimizer = "sgd"\nnesterov = false\n'
                                       'data = "other.txt"\n')
    for argv in (["--config", "run.toml", "--lr", "0.25"], ["--lr", "0.25", "--config",
                                                              "run.toml"]):
        settings = tomllib.loads(printed(capsys, argv))
        assert (settings["lr"], settings["seed"], settings["optimizer"]) == (0.25, 5, "sgd")
        assert settings["data"] == "other.txt" and "nesterov" not in settings


def test_every_setting_is_a_flag_and_a_key(capsys):
    """The flags of train and the keys of a --config file are one table: the fields of
    RunOptions and TrainConfig."""
    fields = [field.name for settings in (RunOptions, TrainConfig)
              for field in dataclasses.fields(settings)]
    assert list(SETTINGS) == fields
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    flags = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", capsys.readouterr().out))
    assert flags == {*map(flag, fields), "--help", "--config", "--print-config", "--checkpoint"}


def test_a_key_takes_its_settings_type(tmp_path, capsys):
    (tmp_path / "new.toml").write_text('lr = 3\nmomentum = 1\noptimizer = "sgd"\n'
                                       'nesterov = true\nfull_batch = false\n')
    assert read_config("new.toml") == {"lr": 3, "momentum": 1, "optimizer": "sgd",
                                       "nesterov": True}  # a switch set false: not given
    settings = tomllib.loads(printed(capsys, ["--config", "new.toml"]))
    assert (settings["lr"], settings["momentum"], settings["nesterov"]) == (3.0, 1.0, True)
    assert isinstance(settings["lr"], float) and "full_batch" not in settings


def test_a_bad_lr_is_one_message_naming_the_flag_the_key_or_the_parameter(tmp_path, capsys):
    problem = "lr must be a positive finite number, got 0.0"
    assert one_line_error(capsys, ["train", "--lr", "0"]) == f"npbigram: error: --{problem}\n"
    (tmp_path / "run.toml").write_text("lr = 0\n")
    assert one_line_error(capsys, ["train", "--config", "run.toml"]) == (
        f"npbigram: error: --config run.toml: {problem}\n")
    with pytest.raises(ValueError) as error:
        TrainConfig(lr=0)
    assert str(error.value) == problem


def test_a_run_checks_its_settings_once_in_trainconfig(text, monkeypatch):
    """The optimizer's own check (its API's boundary) is not run again on a run's settings: not
    by the memory estimate, not by the Trainer making the optimizer."""
    from npbigram.optim import AdamW

    @functools.wraps(AdamW.check_hyperparameters)
    def checked_again(*args, **kwargs):
        raise AssertionError("the optimizer checked a TrainConfig's hyperparameters again")

    monkeypatch.setattr(AdamW, "check_hyperparameters", staticmethod(checked_again))
    assert main(["train", "--data", text, *SMALL, "--backend", "numpy", "--lr", "0.05",
                 "--weight-decay", "0.1"]) == 0
    assert load_checkpoint("ckpt.npz").optimizer_state["weight_decay"] == 0.1


# ----------------------------------------------------------------------------------------------
# bad files


BAD_CONFIGS = [
    ('bach_size = 4\nfoo = 1\n', "--config run.toml: unknown keys 'bach_size', 'foo'; the keys "
                                 "are the flags of npbigram train with _ for -: data, "),
    ('batch-size = 4\n', "unknown key 'batch-size'"),
    ('config = "other.toml"\n', "unknown key 'config'"),
    ('print_config = true\n', "unknown key 'print_config'"),
    ('checkpoint = "c.npz"\n', "unknown key 'checkpoint'"),
    ('[train]\nlr = 1\n', "unknown key 'train'"),
    ('batch_size = "4"\n', "--config run.toml: batch_size must be an int, got str '4'"),
    ('batch_size = 4.0\n', "batch_size must be an int, got float 4.0"),
    ('batch_size = true\n', "batch_size must be an int, got bool True"),
    ('lr = "fast"\n', "lr must be a number, got str 'fast'"),
    ('full_batch = 1\n', "full_batch must be a bool, got int 1"),
    ('data = 3\n', "data must be a string, got int 3"),
    ('seed = [1, 2]\n', "seed must be an int, got list [1, 2]"),
    ('optimizer = "adam"\n', "--config run.toml: optimizer must be one of adamw, sgd, got 'adam'"),
    ('threads = 0\n', "--config run.toml: threads must be at least 1, got 0"),
    ('lr = \n', "--config run.toml is not valid TOML: "),
    (b'data = "\xff"\n', "--config run.toml is not valid TOML: "),
    ('batch_size = 0\n', "--config run.toml: batch_size must be at least 1, got 0"),
]


@pytest.mark.parametrize("payload, message", BAD_CONFIGS)
def test_a_bad_config_is_one_line_naming_the_key_and_the_file(payload, message, tmp_path,
                                                              capsys):
    path = tmp_path / "run.toml"
    path.write_bytes(payload if isinstance(payload, bytes) else payload.encode())
    for argv in (["train", "--config", "run.toml"], ["train", "--print-config", "--config",
                                                     "run.toml"]):
        assert message in one_line_error(capsys, argv)
    assert sorted(os.listdir(tmp_path)) == ["run.toml"]


def test_a_missing_config_and_a_checkpoint_without_print_config_are_errors(tmp_path, capsys):
    assert "--config nothing.toml does not exist" in one_line_error(
        capsys, ["train", "--config", "nothing.toml"])
    assert ("--checkpoint c.npz goes with --print-config (the settings of the run that wrote "
            "it); to continue that run, use --resume c.npz") in one_line_error(
        capsys, ["train", "--checkpoint", "c.npz"])
    with pytest.raises(CommandError, match="unknown key 'x'"):
        (tmp_path / "x.toml").write_text("x = 1\n")
        read_config("x.toml")


# ----------------------------------------------------------------------------------------------
# the TOML writer


scalars = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1),
                    st.floats(allow_nan=False), st.text())
tables = st.dictionaries(st.from_regex(r"[A-Za-z0-9_-]+", fullmatch=True), scalars)


@given(tables)
def test_toml_text_reads_back_equal(table):
    assert tomllib.loads(toml_text(table, ["# a comment"])) == table


def test_toml_text_escapes_what_a_string_cannot_hold():
    hard = 'a "quoted" \\path\\ with\ttab\nnewline \x00\x1b\x7f é 中 🙂'
    assert tomllib.loads(toml_text({"s": hard})) == {"s": hard}
    assert math.isnan(tomllib.loads(toml_text({"x": math.nan}))["x"])
    assert tomllib.loads(toml_text({"x": -math.inf, "y": 1e-300, "z": -0.0})) == {
        "x": -math.inf, "y": 1e-300, "z": 0.0}
    with pytest.raises(ValueError, match="data: .* is not valid Unicode"):
        toml_text({"data": "caf\udce9.txt"})  # a file name that is not UTF-8
    with pytest.raises(ValueError, match="not a bare TOML key"):
        toml_text({"a b": 1})
