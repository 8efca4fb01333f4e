"""npbigram/data/safetensors_format.py and `npbigram export`: a model as safetensors, loadable
by bigram.py's PyTorch model, read back by every command that takes --checkpoint."""

import json
import os
import re
import sys

import numpy as np
import pytest
from npbigram import BigramLanguageModel, load_checkpoint
from npbigram.cli import main
from npbigram.data.safetensors_format import is_exported, is_safetensors_file

from helpers import one_line_error

safetensors_numpy = pytest.importorskip("safetensors.numpy")

KEY = "token_embedding_table.weight"
TEXT = "the quick brown fox jumps over the lazy dog.\nTHE END\n" * 30
SMALL_RUN = ["--backend", "numpy", "--batch-size", "4", "--max-iters", "20", "--eval-interval",
             "10", "--eval-iters", "2", "--sample-tokens", "0"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A small training run's checkpoint and its export: (folder, ckpt.npz, model.safetensors)."""
    folder = tmp_path_factory.mktemp("run")
    (folder / "text.txt").write_text(TEXT)
    checkpoint, exported = folder / "ckpt.npz", folder / "model.safetensors"
    assert main(["train", "--data", str(folder / "text.txt"), *SMALL_RUN,
                 "--out", str(checkpoint)]) == 0
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(exported)]) == 0
    return folder, checkpoint, exported


def test_export_loads_into_bigram_py_with_the_same_logits(run, torch, torch_bigram):
    import safetensors.torch

    _, checkpoint_path, exported = run
    state_dict = safetensors.torch.load_file(exported)
    assert list(state_dict) == [KEY]
    model = load_checkpoint(checkpoint_path).model
    reference = torch_bigram(model.vocab_size)
    reference.load_state_dict(state_dict)  # strict: exactly bigram.py's key and shape
    idx = np.random.default_rng(0).integers(0, model.vocab_size, (4, 8))
    np.testing.assert_array_equal(reference(torch.from_numpy(idx))[0].detach().numpy(),
                                  model(idx)[0])


def test_sample_reads_the_export_as_it_reads_the_checkpoint(run, capsys):
    _, checkpoint_path, exported = run
    texts = []
    for path in (checkpoint_path, exported):
        capsys.readouterr()
        assert main(["sample", "--checkpoint", str(path), "--seed", "3",
                     "--max-new-tokens", "200", "--num-samples", "2"]) == 0
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1] and len(texts[0]) > 400
    for command in (["eval"], ["explain", "the"]):
        outputs = []
        for path in (checkpoint_path, exported):
            capsys.readouterr()
            assert main([command[0], "--checkpoint", str(path), *command[1:]]) == 0
            outputs.append(capsys.readouterr().out.replace(str(path), "PATH"))
        assert outputs[0] == outputs[1]


def test_the_tokenizer_and_the_run_round_trip_as_string_metadata(run):
    _, checkpoint_path, exported = run
    from safetensors import safe_open

    with safe_open(exported, framework="np") as f:
        metadata = f.metadata()
    assert all(isinstance(value, str) for value in metadata.values())
    assert metadata["npbigram"] == "npbigram-safetensors-1"
    original, read = load_checkpoint(checkpoint_path), load_checkpoint(exported)
    assert metadata["tokenizer"] == original.tokenizer.to_json() == read.tokenizer.to_json()
    assert json.loads(metadata["config"]) == original.config
    for name in ("config", "step", "data", "history", "elapsed"):
        assert getattr(read, name) == getattr(original, name), name
    assert len(read.history) == 3 and read.step == 20
    np.testing.assert_array_equal(read.model.weight, original.model.weight)
    assert read.model.weight.dtype == original.model.weight.dtype
    assert read.optimizer_state is None and read.rng_state is None


def test_a_float64_model_without_tokenizer_round_trips(tmp_path):
    from npbigram import save_checkpoint

    model = BigramLanguageModel(7, seed=0, dtype=np.float64, backend="numpy")
    save_checkpoint(tmp_path / "bare.npz", model)
    assert main(["export", "--checkpoint", "bare.npz", "--out", "bare.safetensors"]) == 0
    read = load_checkpoint("bare.safetensors")
    assert read.tokenizer is None and read.model.dtype == np.float64
    np.testing.assert_array_equal(read.model.weight, model.weight)


def test_bigram_py_weights_saved_by_torch_read_without_metadata(torch, torch_bigram, tmp_path):
    import safetensors.torch

    torch.manual_seed(0)
    reference = torch_bigram(11)
    safetensors.torch.save_file(reference.state_dict(), tmp_path / "torch.safetensors")
    read = load_checkpoint(tmp_path / "torch.safetensors")
    np.testing.assert_array_equal(read.model.weight,
                                  reference.token_embedding_table.weight.detach().numpy())
    assert (read.tokenizer, read.step, read.config) == (None, 0, {})
    assert not is_exported(tmp_path / "torch.safetensors")


def test_export_replaces_only_what_force_names_and_npbigram_exported(run, tmp_path, capsys):
    _, checkpoint_path, exported = run
    out = tmp_path / "out.safetensors"
    out.write_bytes(_safetensors({KEY: np.zeros((2, 2), np.float32)},
                                 npbigram="npbigram-safetensors-1"))  # an earlier export
    argv = ["export", "--checkpoint", str(checkpoint_path), "--out", str(out)]
    assert "exists: replace it with --force" in one_line_error(capsys, argv)
    assert load_checkpoint(out).model.vocab_size == 2  # left as it was
    assert main([*argv, "--force"]) == 0
    np.testing.assert_array_equal(load_checkpoint(out).model.weight,
                                  load_checkpoint(exported).model.weight)
    assert os.listdir(tmp_path) == ["out.safetensors"]  # written through a renamed temporary
    for name, payload in (("notes.txt", b"my notes\n"), ("ckpt.npz", checkpoint_path.read_bytes()),
                          ("foreign.safetensors", safetensors_numpy.save({KEY: np.zeros((2, 2))}))):
        other = tmp_path / name
        other.write_bytes(payload)
        err = one_line_error(capsys, ["export", "--checkpoint", str(checkpoint_path), "--out",
                                str(other), "--force"])
        assert "exists and is not a safetensors file npbigram exported" in err
        assert other.read_bytes() == payload


def test_training_continues_only_from_a_checkpoint_with_optimizer_and_random_state(run, capsys):
    """An export, or a checkpoint saved without them: resuming would silently restart AdamW's
    moments and the batches."""
    from npbigram import save_checkpoint

    folder, checkpoint_path, exported = run
    whole = load_checkpoint(checkpoint_path)
    weights_only = folder / "weights_only.npz"
    save_checkpoint(weights_only, whole.model, tokenizer=whole.tokenizer, config=whole.config,
                    step=10, data=whole.data)
    for path in (exported, weights_only):
        err = one_line_error(capsys, ["train", "--resume", str(path), "--max-iters", "30",
                                "--out", str(folder / "x.npz")])
        assert f"--resume {path} holds the weights without the optimizer's" in err
        assert not (folder / "x.npz").exists()


def _write(tmp_path, name, payload):
    path = tmp_path / name
    path.write_bytes(payload)
    return str(path)


def _safetensors(tensors, **metadata):
    return safetensors_numpy.save(tensors, metadata or None)


def _tokenizer_json(vocab_size):
    return json.dumps({"kind": "char", "chars": "abcdefghijklmnopqrstuvwxyz"[:vocab_size]})


BAD_FILES = {
    "text file": (b"step 0: train loss 4.1744\n", "nor a safetensors file"),
    "wrong key": (_safetensors({"weight": np.zeros((3, 3), np.float32)}),
                  r"it holds the tensors \['weight'\], not bigram.py's one"),
    "extra key": (_safetensors({KEY: np.zeros((3, 3), np.float32),
                                "lm_head.weight": np.zeros((3, 3), np.float32)}),
                  "it holds the tensors"),
    "not square": (_safetensors({KEY: np.zeros((3, 4), np.float32)}),
                   r"weight is float32 \(3, 4\), expected float32 \(3, 3\)"),
    "shape against the tokenizer": (
        _safetensors({KEY: np.zeros((4, 4), np.float32)}, tokenizer=_tokenizer_json(5)),
        "tokenizer has 5 tokens, weight 4"),
    "float16": (_safetensors({KEY: np.zeros((3, 3), np.float16)}),
                "dtype must be float32 or float64, got float16"),
    "truncated": (_safetensors({KEY: np.zeros((3, 3), np.float32)})[:-5],
                  "is not a readable model safetensors file"),
    "metadata not JSON": (_safetensors({KEY: np.zeros((3, 3), np.float32)}, step="five"),
                          "its metadata 'step' is not JSON"),
    "negative step": (_safetensors({KEY: np.zeros((3, 3), np.float32)}, step="-2"),
                      "step must be >= 0, got -2"),
    "non-finite weights": (_safetensors({KEY: np.full((3, 3), np.nan, np.float32)}),
                           "non-finite values in rows 0, 1, 2"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_a_bad_file_is_one_line_naming_it(name, tmp_path, capsys):
    payload, message = BAD_FILES[name]
    path = _write(tmp_path, "bad.safetensors", payload)
    for command in (["sample"], ["eval"], ["export", "--out", "x.safetensors"]):
        err = one_line_error(capsys, [command[0], "--checkpoint", path, *command[1:]])
        assert path in err
        assert re.search(message, err), err
    assert not (tmp_path / "x.safetensors").exists()


def test_sniffing_tells_safetensors_from_npz_and_text(run, tmp_path):
    _, checkpoint_path, exported = run
    assert is_safetensors_file(exported) and is_exported(exported)
    assert not is_safetensors_file(checkpoint_path)
    assert not is_safetensors_file(_write(tmp_path, "t.txt", b"{\n}\n" * 10))
    assert not is_safetensors_file(tmp_path / "missing.safetensors")


def test_without_the_package_the_error_says_how_to_install_it(run, monkeypatch, capsys):
    _, checkpoint_path, exported = run
    monkeypatch.setitem(sys.modules, "safetensors", None)  # import safetensors: ImportError
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    err = one_line_error(capsys, ["export", "--checkpoint", str(checkpoint_path),
                            "--out", "model.safetensors"])
    assert err == ("npbigram: error: --out model.safetensors needs the safetensors package: "
                   "pip install 'npbigram[safetensors]'\n")
    err = one_line_error(capsys, ["sample", "--checkpoint", str(exported)])
    assert "needs the safetensors package: pip install 'npbigram[safetensors]'" in err
