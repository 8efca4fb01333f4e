"""The exercises' checks: a right answer passes, a stub is "not done yet", and each typical
wrong answer gets the hint that names its mistake; docs/exercises_solutions.ipynb executes with
every check passed, docs/exercises.ipynb with every check not done yet.

`python tests/test_exercises.py` executes the solutions notebook and stores its outputs."""

import os
import re
from pathlib import Path

import numpy as np
import pytest
from npbigram.tools import exercises as ex
from npbigram.tools.grading import HINT, NOT_DONE, PASSED, Verdict

from test_notebook import execute, write_kernel_spec

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXERCISES, SOLUTIONS = DOCS / "exercises.ipynb", DOCS / "exercises_solutions.ipynb"
CHECK_CELL = re.compile(r"ex\.(check_\w+)\((\w+)\)")


# right answers, as a learner writes them
def softmax(logits):
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def cross_entropy(logits, targets):
    return -np.log(softmax(logits)[np.arange(len(targets)), targets]).mean()


def cross_entropy_backward(logits, targets):
    dlogits = softmax(logits)
    dlogits[np.arange(len(targets)), targets] -= 1
    return dlogits / len(targets)


def embedding_backward(dlogits, idx, vocab_size):
    dW = np.zeros((vocab_size, dlogits.shape[1]))
    np.add.at(dW, idx, dlogits)
    return dW


def adamw_step(W, g, m, v, t, lr, betas, eps, weight_decay):
    beta1, beta2 = betas
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g ** 2
    m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
    return W * (1 - lr * weight_decay) - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def bigram_probs(ids, vocab_size, k):
    counts = np.zeros((vocab_size, vocab_size)) + k
    np.add.at(counts, (ids[:-1], ids[1:]), 1)
    return counts / counts.sum(axis=1, keepdims=True)


def trigram_rows(W, ids):
    return ids[:-2] * W.shape[1] + ids[1:-1], ids[2:]


def trigram_loss_and_grad(W, ids):
    rows, targets = trigram_rows(W, ids)
    return (cross_entropy(W[rows], targets),
            embedding_backward(cross_entropy_backward(W[rows], targets), rows, len(W)))


def sample_next(logits, temperature, rng, num_samples):
    return rng.choice(len(logits), size=num_samples, p=softmax(logits / temperature))


RIGHT = [(ex.check_softmax, softmax), (ex.check_cross_entropy, cross_entropy),
         (ex.check_cross_entropy_backward, cross_entropy_backward),
         (ex.check_embedding_backward, embedding_backward), (ex.check_adamw_step, adamw_step),
         (ex.check_bigram_probs, bigram_probs),
         (ex.check_trigram_loss_and_grad, trigram_loss_and_grad),
         (ex.check_sample_next, sample_next)]
CHECKS = [check for check, _ in RIGHT]


def stub(*args, **kwargs):
    raise NotImplementedError  # the exercises notebook's body


def unfinished(*args, **kwargs):
    pass


def grade(check, answer):
    verdict = check(answer)
    assert isinstance(verdict, Verdict)
    return verdict


def test_the_checks_are_the_modules_exports_in_the_lectures_order():
    assert [getattr(ex, name) for name in ex.__all__] == CHECKS


@pytest.mark.parametrize("check, answer", RIGHT, ids=lambda x: getattr(x, "__name__", ""))
def test_a_right_answer_passes(check, answer):
    verdict = grade(check, answer)
    assert verdict.status == PASSED and verdict.passed, str(verdict)
    assert str(verdict).startswith(f"{verdict.exercise}: passed: ")


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
@pytest.mark.parametrize("answer", [stub, unfinished], ids=["raises", "returns-None"])
def test_a_stub_is_not_done_yet(check, answer):
    verdict = grade(check, answer)
    assert verdict.status == NOT_DONE and not verdict.passed
    assert str(verdict).startswith(f"{verdict.exercise}: not done yet: {answer.__name__}")


def test_the_verdict_shows_as_its_sentence_in_a_notebook():
    shown = []
    printer = type("Printer", (), {"text": staticmethod(shown.append)})()
    Verdict("softmax", HINT, "did you divide by N?")._repr_pretty_(printer, cycle=False)
    assert shown == ["softmax: did you divide by N?"]


# typical wrong answers and the words of their hint
def softmax_without_max(logits):
    return np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)


def softmax_global_max(logits):
    exp = np.exp(logits - logits.max())
    return exp / exp.sum(axis=-1, keepdims=True)


def softmax_without_keepdims(logits):
    exp = np.exp(logits - logits.max(axis=-1))
    return exp / exp.sum(axis=-1)


def softmax_over_columns(logits):
    exp = np.exp(logits - logits.max(axis=0))
    return exp / exp.sum(axis=0)


def softmax_unnormalized(logits):
    return np.exp(logits)


def softmax_normalized_over_everything(logits):
    return np.exp(logits) / np.exp(logits).sum()


def softmax_sum_only(logits):
    return np.exp(logits).sum(axis=-1)


def logp_at_targets(logits, targets):
    return np.log(softmax(logits)[np.arange(len(targets)), targets])


def cross_entropy_summed(logits, targets):
    return -logp_at_targets(logits, targets).sum()


def cross_entropy_without_minus(logits, targets):
    return logp_at_targets(logits, targets).mean()


def cross_entropy_of_raw_logits(logits, targets):
    return -logits[np.arange(len(targets)), targets].mean()


def cross_entropy_of_probabilities(logits, targets):
    return -softmax(logits)[np.arange(len(targets)), targets].mean()


def cross_entropy_column_block(logits, targets):
    return -np.log(softmax(logits)[:, targets]).mean()


def cross_entropy_per_position(logits, targets):
    return -logp_at_targets(logits, targets)


def cross_entropy_without_max(logits, targets):
    logp = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    return -logp[np.arange(len(targets)), targets].mean()


def backward_without_n(logits, targets):
    return cross_entropy_backward(logits, targets) * len(targets)


def backward_flipped(logits, targets):
    return -cross_entropy_backward(logits, targets)


def backward_without_onehot(logits, targets):
    return softmax(logits) / len(targets)


def backward_every_target(logits, targets):
    dlogits = softmax(logits)
    dlogits[:, targets] -= 1
    return dlogits / len(targets)


def embedding_backward_buffered(dlogits, idx, vocab_size):
    dW = np.zeros((vocab_size, dlogits.shape[1]))
    dW[idx] += dlogits
    return dW


def embedding_backward_per_position(dlogits, idx, vocab_size):
    return dlogits


def adamw_uncorrected(W, g, m, v, t, lr, betas, eps, weight_decay):
    beta1, beta2 = betas
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g ** 2
    return W * (1 - lr * weight_decay) - lr * m / (np.sqrt(v) + eps), m, v


def adamw_l2(W, g, m, v, t, lr, betas, eps, weight_decay):
    W, m, v = adamw_step(W, g + weight_decay * W, m, v, t, lr, betas, eps, 0.0)
    return W, m, v


def adamw_undecayed(W, g, m, v, t, lr, betas, eps, weight_decay):
    return adamw_step(W, g, m, v, t, lr, betas, eps, 0.0)


def adamw_eps_in_sqrt(W, g, m, v, t, lr, betas, eps, weight_decay):
    beta1, beta2 = betas
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g ** 2
    m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
    return W * (1 - lr * weight_decay) - lr * m_hat / np.sqrt(v_hat + eps), m, v


def adamw_forgetting_moments(W, g, m, v, t, lr, betas, eps, weight_decay):
    return adamw_step(W, g, np.zeros_like(m), np.zeros_like(v), t, lr, betas, eps, weight_decay)


def adamw_from_t_zero(W, g, m, v, t, lr, betas, eps, weight_decay):
    return adamw_step(W, g, m, v, t - 1, lr, betas, eps, weight_decay)


def adamw_returning_w(W, g, m, v, t, lr, betas, eps, weight_decay):
    return adamw_step(W, g, m, v, t, lr, betas, eps, weight_decay)[0]


def bigram_probs_transposed(ids, vocab_size, k):
    return bigram_probs(ids[::-1], vocab_size, k)  # counts C[next, current]


def bigram_probs_over_table(ids, vocab_size, k):
    counts = np.zeros((vocab_size, vocab_size))
    np.add.at(counts, (ids[:-1], ids[1:]), 1)
    return (counts + k) / (counts + k).sum()


def bigram_probs_plus_k(ids, vocab_size, k):
    counts = np.zeros((vocab_size, vocab_size))
    np.add.at(counts, (ids[:-1], ids[1:]), 1)
    return (counts + k) / (counts.sum(axis=1, keepdims=True) + k)


def bigram_probs_unsmoothed(ids, vocab_size, k):
    return bigram_probs(ids, vocab_size, 0)


def trigram_with_rows(rows_and_targets):
    def trigram(W, ids):
        rows, targets = rows_and_targets(W, ids)
        return (cross_entropy(W[rows], targets),
                embedding_backward(cross_entropy_backward(W[rows], targets), rows, len(W)))
    return trigram


def trigram_without_n(W, ids):
    loss, dW = trigram_loss_and_grad(W, ids)
    return loss, dW * (len(ids) - 2)


def trigram_buffered(W, ids):
    rows, targets = trigram_rows(W, ids)
    return (cross_entropy(W[rows], targets),
            embedding_backward_buffered(cross_entropy_backward(W[rows], targets), rows, len(W)))


def sample_argmax(logits, temperature, rng, num_samples):
    return np.argmax(logits)


def sample_ignoring_temperature(logits, temperature, rng, num_samples):
    return sample_next(logits, 1.0, rng, num_samples)


def sample_multiplying_temperature(logits, temperature, rng, num_samples):
    return sample_next(logits * temperature, 1.0, rng, num_samples)


def sample_uniform(logits, temperature, rng, num_samples):
    return rng.integers(0, len(logits), num_samples)


def sample_probabilities_over_temperature(logits, temperature, rng, num_samples):
    return rng.choice(len(logits), size=num_samples, p=softmax(logits) / temperature)


def sample_from_global_rng(logits, temperature, rng, num_samples):
    return np.random.choice(len(logits), size=num_samples, p=softmax(logits / temperature))


def sample_returning_probabilities(logits, temperature, rng, num_samples):
    return softmax(logits / temperature)


WRONG = [
    (ex.check_softmax, softmax_without_max, "exp(1000) overflows to inf"),
    (ex.check_softmax, softmax_global_max, "subtract each row's own max"),
    (ex.check_softmax, softmax_without_keepdims, "could not be broadcast"),
    (ex.check_softmax, softmax_without_keepdims, "keep it with keepdims=True"),
    (ex.check_softmax, softmax_over_columns, "your columns sum to 1, not your rows"),
    (ex.check_softmax, softmax_unnormalized, "your rows do not sum to 1"),
    (ex.check_softmax, softmax_normalized_over_everything, "your whole array sums to 1"),
    (ex.check_softmax, softmax_sum_only, "has shape (5,); it should have shape (5, 7)"),
    (ex.check_cross_entropy, cross_entropy_summed, "the loss is their mean, divide by N"),
    (ex.check_cross_entropy, cross_entropy_without_minus, "your loss is negative"),
    (ex.check_cross_entropy, cross_entropy_of_raw_logits, "normalize first"),
    (ex.check_cross_entropy, cross_entropy_of_probabilities, "you took -p[target]"),
    (ex.check_cross_entropy, cross_entropy_column_block, "an (N, N) block"),
    (ex.check_cross_entropy, cross_entropy_per_position, "one loss per position"),
    (ex.check_cross_entropy, cross_entropy_without_max, "your loss is inf on logits near 1000"),
    (ex.check_cross_entropy_backward, backward_without_n,
     "from the finite-difference gradient by 2: did you divide by N?"),
    (ex.check_cross_entropy_backward, backward_flipped, "the sign is flipped"),
    (ex.check_cross_entropy_backward, backward_without_onehot, "did you subtract the one-hot?"),
    (ex.check_cross_entropy_backward, backward_every_target,
     "subtracts every target from every row"),
    (ex.check_embedding_backward, embedding_backward_buffered,
     "your dW row 43 ('e'), read by 6 positions, differs from the finite-difference gradient"),
    (ex.check_embedding_backward, embedding_backward_buffered,
     "use np.add.at(dW, idx, dlogits)"),
    (ex.check_embedding_backward, embedding_backward_per_position,
     "your dW has shape (32, 65); it should have shape (65, 65)"),
    (ex.check_adamw_step, adamw_uncorrected, "the bias correction is missing"),
    (ex.check_adamw_step, adamw_l2, "the weight decay went into the gradient"),
    (ex.check_adamw_step, adamw_undecayed, "W was not decayed"),
    (ex.check_adamw_step, adamw_eps_in_sqrt, "eps goes outside the square root"),
    (ex.check_adamw_step, adamw_forgetting_moments,
     "your W after step 2 differs from npbigram.AdamW's"),
    (ex.check_adamw_step, adamw_forgetting_moments, "are m and v carried from one step"),
    (ex.check_adamw_step, adamw_from_t_zero, "your W after step 1 holds nan or inf"),
    (ex.check_adamw_step, adamw_returning_w, "return the new W, m and v"),
    (ex.check_bigram_probs, bigram_probs_transposed, "your table is transposed"),
    (ex.check_bigram_probs, bigram_probs_over_table, "not the whole table's"),
    (ex.check_bigram_probs, bigram_probs_plus_k, "divide by n_i + kV, not n_i + k"),
    (ex.check_bigram_probs, bigram_probs_unsmoothed, "k=1 gives the unsmoothed table"),
    (ex.check_trigram_loss_and_grad,
     trigram_with_rows(lambda W, ids: (ids[1:-1] * W.shape[1] + ids[:-2], ids[2:])),
     "you read b*V + a"),
    (ex.check_trigram_loss_and_grad,
     trigram_with_rows(lambda W, ids: (trigram_rows(W, ids)[0], ids[1:-1])),
     "you scored x_t+1"),
    (ex.check_trigram_loss_and_grad, trigram_without_n, "did you divide by N?"),
    (ex.check_trigram_loss_and_grad, trigram_buffered, "use np.add.at(dW, idx, dlogits)"),
    (ex.check_sample_next, sample_argmax, "that is argmax, not sampling"),
    (ex.check_sample_next, sample_ignoring_temperature,
     "at temperature 0.5 your draws' frequencies"),
    (ex.check_sample_next, sample_ignoring_temperature, "do not change with the temperature"),
    (ex.check_sample_next, sample_multiplying_temperature, "you multiplied the logits"),
    (ex.check_sample_next, sample_uniform, "your draws are uniform"),
    (ex.check_sample_next, sample_probabilities_over_temperature,
     "divide the logits by the temperature before the softmax"),
    (ex.check_sample_next, sample_from_global_rng, "draw with the rng you are given"),
    (ex.check_sample_next, sample_returning_probabilities, "token ids (integers)"),
]


@pytest.mark.parametrize("check, answer, hint", WRONG,
                         ids=[f"{answer.__name__}-{i}" for i, (_, answer, _) in enumerate(WRONG)])
def test_a_typical_wrong_answer_gets_its_hint(check, answer, hint):
    verdict = grade(check, answer)
    assert verdict.status == HINT and not verdict.passed
    assert hint in str(verdict), str(verdict)


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def verdicts(notebook):
    """What each check cell shows, in order: (check's name, its verdict's sentence)."""
    return [(CHECK_CELL.fullmatch(cell.source).group(1),
             "".join(output["data"]["text/plain"] for output in cell.outputs
                     if output.output_type == "execute_result"))
            for cell in code_cells(notebook) if CHECK_CELL.fullmatch(cell.source)]


@pytest.mark.slow
@pytest.mark.parametrize("path, status", [(SOLUTIONS, PASSED), (EXERCISES, NOT_DONE)],
                         ids=["solutions", "exercises"])
def test_the_notebook_executes_and_every_check_grades_it(path, status, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    write_kernel_spec(tmp_path)
    executed = execute(path)
    assert not any(output.output_type == "error" for cell in code_cells(executed)
                   for output in cell.outputs)
    shown = verdicts(executed)
    assert [name for name, _ in shown] == ex.__all__
    assert all(re.match(rf"[\w -]+: {status}: ", verdict) for _, verdict in shown), shown


def test_the_two_notebooks_differ_only_in_the_functions_bodies():
    import nbformat

    exercises, solutions = (nbformat.read(path, as_version=4) for path in (EXERCISES, SOLUTIONS))
    assert len(exercises.cells) == len(solutions.cells)
    for stub, solved in zip(exercises.cells[1:], solutions.cells[1:]):  # all but the title
        if stub.source.startswith("def "):
            assert stub.source.splitlines()[:2] == solved.source.splitlines()[:2]  # def, doc
            assert stub.source.endswith("raise NotImplementedError  # your code here")
        else:
            assert stub.source == solved.source
    assert not any(cell.outputs for cell in code_cells(exercises))  # a clean start
    assert [verdict.split(": ")[1] for _, verdict in verdicts(solutions)] == [PASSED] * 8


if __name__ == "__main__":
    import tempfile

    import nbformat

    with tempfile.TemporaryDirectory() as folder:
        os.environ["JUPYTER_PATH"] = folder
        write_kernel_spec(folder)
        nbformat.write(execute(SOLUTIONS), SOLUTIONS)
    print(f"executed and stored {SOLUTIONS}")
