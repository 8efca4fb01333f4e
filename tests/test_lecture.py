"""The lecture's numbers without torch: `npbigram lecture` (npbigram/lecture.py), and
`npbigram train --rng torch` / `npbigram sample --rng torch` against PyTorch's own run."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from npbigram import BigramLanguageModel, CharTokenizer, load_checkpoint, load_corpus, save_checkpoint
from npbigram.tools import lecture
from npbigram.cli import main

ROOT = Path(__file__).resolve().parent.parent
STEP_LINE = re.compile(r"step (\d+): train loss (\d+\.\d{4}), val loss (\d+\.\d{4})")
FIRST_ROW = [24, 43, 58, 5, 57, 1, 46, 43]
FIRST_STARTS = [76049, 234249, 934904, 560986]
# generate()'s output untrained: the start id 0 ("\n"), then 100 sampled characters
UNTRAINED_SAMPLE = ("\nSKIcLT;AcELMoTbvZv C?nq-QE33:CJqkOKH-q;:la!oiywkHjgChzbQ?u!3bLIgwevmyFJGUGp"
                    "\nwnYWmnxKWWev-tDqXErVKLgJ")


def run(*args, cwd):
    """`python ARGS` in cwd; returns stdout, failing the test on a nonzero exit."""
    result = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def parse_log(stdout):
    """bigram.py's output: ({step: (train loss, val loss)} as printed, the sample text)."""
    lines = [line for line in stdout.split("\n")
             if not line.startswith(("resumed from step", "compiled kernels"))]
    steps = [STEP_LINE.fullmatch(line) for line in lines]
    evaluations = {int(m[1]): (m[2], m[3]) for m in steps if m}
    end = next(i for i, line in enumerate(lines) if line.startswith("trained "))
    return evaluations, "\n".join(lines[len(evaluations):end])


@pytest.fixture(scope="module")
def walkthrough(tinyshakespeare):
    tokenizer, ids = load_corpus(tinyshakespeare)
    return tokenizer, lecture.walk(ids, tokenizer.vocab_size)


def test_walkthrough_has_the_lectures_numbers(walkthrough):
    tokenizer, w = walkthrough
    assert w.vocab_size == 65 and (w.n_train, w.n_val) == (1_003_854, 111_540)
    assert w.starts.tolist() == FIRST_STARTS and w.xb[0].tolist() == FIRST_ROW
    np.testing.assert_array_equal(w.yb[:, :-1], w.xb[:, 1:])
    assert w.logits.shape == (32, 65)
    assert f"{w.loss:.4f}" == f"{w.loss_by_hand:.4f}" == "4.8786"
    assert tokenizer.decode(w.generated) == UNTRAINED_SAMPLE
    np.testing.assert_array_equal(w.generated_full_context, w.generated)


def test_walkthrough_matches_torch(torch, torch_bigram, walkthrough):
    _, w = walkthrough
    torch.manual_seed(lecture.LECTURE_SEED)
    model = torch_bigram(65)
    logits, loss = model(torch.from_numpy(w.xb), torch.from_numpy(w.yb))
    ids = model.generate(torch.zeros((1, 1), dtype=torch.long), lecture.NEW_TOKENS)[0]
    np.testing.assert_allclose(w.logits, logits.detach().numpy(), rtol=0, atol=0)
    assert w.loss == pytest.approx(loss.item(), rel=1e-6)
    assert w.generated.tolist() == ids.tolist()


def test_lecture_command_prints_each_step(tinyshakespeare, capsys):
    assert main(["lecture", "--data", str(tinyshakespeare)]) == 0
    out = capsys.readouterr().out
    lines = out.split("\n")
    for expected in ("torch.manual_seed(1337)", str(FIRST_ROW), "logits (32, 65)",
                     "loss 4.8786", "ln 65 = 4.1744", "by hand 4.8786", UNTRAINED_SAMPLE,
                     "last token only: the same 100"):
        assert expected in out
    assert sum(line.startswith("torch.manual_seed(1337)") for line in lines) == 2
    assert max(map(len, lines)) <= 100


@pytest.mark.slow
def test_train_rng_torch_prints_pytorchs_log(torch, tinyshakespeare, tmp_path):
    """bigram.py's job with --rng torch against benchmarks/bigram_torch.py (bigram.py in PyTorch):
    the targets are 9 of 10 lines identical, all within 2e-4, the sample 95% the same;
    on the reference machine all 10 lines and the whole sample are identical."""
    ours, ours_sample = parse_log(run("-m", "npbigram", "train", "--data", tinyshakespeare,
                                      "--rng", "torch", cwd=tmp_path))
    theirs, their_sample = parse_log(run(ROOT / "benchmarks" / "bigram_torch.py", "--data",
                                         tinyshakespeare, "--threads", "1", cwd=tmp_path))
    assert sorted(theirs) == list(range(0, 3000, 300))
    assert sorted(ours) == [*sorted(theirs), 3000]  # and the last step, which bigram.py does not evaluate
    identical = sum(ours[step] == theirs[step] for step in theirs)
    worst = max(abs(float(a) - float(b)) for step in theirs
                for a, b in zip(ours[step], theirs[step]))
    assert identical >= 9 and worst <= 2e-4, (ours, theirs)
    assert len(ours_sample) == len(their_sample) == 501
    same = sum(a == b for a, b in zip(ours_sample, their_sample)) / len(their_sample)
    assert same >= 0.95, (ours_sample, their_sample)


def test_sample_rng_torch_draws_as_torch(torch, torch_bigram, tmp_path, capsys):
    """`npbigram sample --rng torch --seed S` is torch.manual_seed(S) and generate()."""
    tokenizer = CharTokenizer.from_text("abcdefghij \n")
    save_checkpoint(tmp_path / "ckpt.npz", BigramLanguageModel(tokenizer.vocab_size, seed=3),
                    tokenizer=tokenizer)
    assert main(["sample", "--checkpoint", str(tmp_path / "ckpt.npz"), "--rng", "torch",
                 "--seed", "5", "--max-new-tokens", "80", "--prompt", "ab"]) == 0
    model = torch_bigram(tokenizer.vocab_size)
    weight = load_checkpoint(tmp_path / "ckpt.npz").model.weight
    model.token_embedding_table.weight.data = torch.from_numpy(weight)
    torch.manual_seed(5)
    ids = model.generate(torch.from_numpy(tokenizer.encode("ab"))[None], 80)[0].numpy()
    assert capsys.readouterr().out == tokenizer.decode(ids) + "\n"


def test_train_rng_torch_resumes_exactly_and_keeps_its_rng(tinyshakespeare, tmp_path, capsys):
    small = ["--data", str(tinyshakespeare), "--rng", "torch", "--eval-interval", "10",
             "--eval-iters", "5", "--backend", "numpy"]
    assert main(["train", *small, "--max-iters", "40", "--out", str(tmp_path / "full.npz")]) == 0
    full = capsys.readouterr().out
    assert main(["train", *small, "--max-iters", "20", "--out", str(tmp_path / "part.npz")]) == 0
    capsys.readouterr()
    assert main(["train", "--data", str(tinyshakespeare), "--resume", str(tmp_path / "part.npz"),
                 "--max-iters", "40", "--out", str(tmp_path / "resumed.npz")]) == 0
    resumed = capsys.readouterr().out
    full_steps, full_sample = parse_log(full)
    resumed_steps, resumed_sample = parse_log(resumed)
    # the part run evaluated its last step, 20, which the resumed run does not repeat
    assert resumed_steps == {step: losses for step, losses in full_steps.items() if step > 20}
    assert resumed_sample == full_sample

    assert main(["train", "--data", str(tinyshakespeare), "--resume", str(tmp_path / "part.npz"),
                 "--rng", "numpy", "--out", str(tmp_path / "other.npz")]) == 1
    error = capsys.readouterr().err
    assert "--rng numpy" in error and "was trained with" in error
