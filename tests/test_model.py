"""The model and optimizers on their own: bad inputs, extreme logits, init, generation."""

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from npbigram import AdamW, BigramLanguageModel, ops
from npbigram import model as model_module
from npbigram.sampling import next_token_probs, sample_from

from helpers import model_with_weight, random_weight

V = 7


@pytest.fixture
def model(backend):
    return BigramLanguageModel(V, seed=0, backend=backend)


# ----------------------------------------------------------------------------------------------
# bad inputs: ValueError or TypeError naming the problem


BAD_IDS = [
    (np.array([[0, V]]), ValueError, r"idx holds id 7 at index \(0, 1\), outside \[0, 7\)"),
    (np.array([[3, -1]]), ValueError, r"idx holds id -1 at index \(0, 1\), outside \[0, 7\)"),
    (np.array([[2**40]]), ValueError, r"idx holds id 1099511627776"),
    (np.array([[0.0, 1.0]]), TypeError, r"idx must hold integer token ids, got dtype float64"),
    (np.array([[True, False]]), TypeError, r"idx must hold integer token ids, got dtype bool"),
    (np.array([["a"]]), TypeError, r"idx must hold integer token ids"),
    ([[0, 1], [2]], TypeError, r"idx must be an integer array"),
    (np.array([1, 2]), ValueError, r"idx must have 2 dimensions \(B, T\), got shape \(2,\)"),
    (np.zeros((1, 2, 3), int), ValueError, r"idx must have 2 dimensions"),
    (np.zeros((0, 8), int), ValueError, r"idx is empty \(shape \(0, 8\)\)"),
    (np.zeros((4, 0), int), ValueError, r"idx is empty \(shape \(4, 0\)\)"),
]


@pytest.mark.parametrize("idx, error, message", BAD_IDS)
def test_bad_idx_is_rejected_by_forward_and_generate(model, idx, error, message):
    with pytest.raises(error, match=message):
        model(idx)
    with pytest.raises(error, match=message):
        model.generate(idx, 3, seed=0)


@pytest.mark.parametrize("targets, error, message", [
    (np.array([[0, V]]), ValueError, r"targets holds id 7 at index \(0, 1\), outside \[0, 7\)"),
    (np.array([[-5, 0]]), ValueError, r"targets holds id -5 at index \(0, 0\)"),
    (np.array([[0.0, 1.0]]), TypeError, r"targets must hold integer token ids, got dtype float64"),
    (np.array([0, 1]), ValueError, r"targets must have 2 dimensions \(B, T\), got shape \(2,\)"),
])
def test_bad_targets_are_rejected(model, targets, error, message):
    with pytest.raises(error, match=message):
        model(np.zeros((1, 2), int), targets)


def test_targets_shape_must_match_idx(model):
    with pytest.raises(ValueError,
                       match=r"targets shape \(2, 3\) does not match idx shape \(3, 2\)"):
        model(np.zeros((3, 2), int), np.zeros((2, 3), int))


def test_ids_that_are_lists_or_other_integer_types_are_accepted(model):
    expected, _ = model(np.array([[1, 2, 3]]))
    for idx in ([[1, 2, 3]], np.array([[1, 2, 3]], dtype=np.uint8)):
        np.testing.assert_array_equal(model(idx)[0], expected)


@pytest.mark.parametrize("vocab_size, error, message", [
    (0, ValueError, "vocab_size must be at least 1, got 0"),
    (-3, ValueError, "vocab_size must be at least 1, got -3"),
    (2.0, TypeError, "vocab_size must be an int, got float"),
    (True, TypeError, "vocab_size must be an int, got bool"),
    ("65", TypeError, "vocab_size must be an int, got str"),
])
def test_bad_vocab_size(backend, vocab_size, error, message):
    with pytest.raises(error, match=message):
        BigramLanguageModel(vocab_size, backend=backend)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(dtype=np.float16), TypeError, "dtype must be float32 or float64, got float16"),
    (dict(dtype=np.int64), TypeError, "dtype must be float32 or float64, got int64"),
    (dict(init="uniform"), ValueError, "unknown init 'uniform'"),
    (dict(backend="cuda"), ValueError, "unknown backend 'cuda'"),
])
def test_bad_model_options(kwargs, error, message):
    with pytest.raises(error, match=message):
        BigramLanguageModel(V, **kwargs)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(max_new_tokens=-1), ValueError, "max_new_tokens must be >= 0, got -1"),
    (dict(max_new_tokens=2.0), TypeError, "max_new_tokens must be an int, got float"),
    (dict(temperature=0.0), ValueError, "temperature must be a positive finite number, got 0.0"),
    (dict(temperature=-1), ValueError, "temperature must be a positive finite number, got -1"),
    (dict(temperature=math.nan), ValueError, "temperature must be a positive finite number"),
    (dict(temperature=math.inf), ValueError, "temperature must be a positive finite number"),
    (dict(temperature="hot"), TypeError, "temperature must be a number, got str"),
    (dict(temperature=None), TypeError, "temperature must be a number, got NoneType"),
    (dict(top_k=0), ValueError, "top_k must be at least 1, got 0"),
    (dict(top_k=-2), ValueError, "top_k must be at least 1, got -2"),  # 0 is no bound either
    (dict(top_k=1.5), TypeError, "top_k must be an int, got float"),
])
def test_bad_generate_arguments(model, kwargs, error, message):
    kwargs = {"max_new_tokens": 5, **kwargs}
    with pytest.raises(error, match=message):
        model.generate(np.zeros((1, 1), int), seed=0, **kwargs)


def test_a_negative_seed_is_named(model):
    """NumPy said 'expected non-negative integer' without naming it."""
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        model.generate(np.zeros((1, 1), int), 5, seed=-1)
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        BigramLanguageModel(3, seed=-1)


def test_help_of_calling_the_model_says_what_it_takes_and_returns(model):
    """help(model.__call__) said only "Call self as a function"."""
    import pydoc

    text = pydoc.render_doc(model.__call__, renderer=pydoc.plaintext)
    assert "logits (B,T,C)" in text and "loss" in text and "targets (B,T)" in text


def test_backward_and_step_need_a_forward_with_targets_first(model):
    with pytest.raises(RuntimeError, match="backward\\(\\) needs a forward pass with targets"):
        model.backward()
    model(np.zeros((1, 2), int))
    with pytest.raises(RuntimeError, match="backward\\(\\) needs a forward pass with targets"):
        model.backward()
    with pytest.raises(RuntimeError, match="call model.backward\\(\\) before opt.step\\(\\)"):
        AdamW(model).step()


# ----------------------------------------------------------------------------------------------
# generation


def full_context_generate(model, idx, max_new_tokens, rng):
    """bigram.py's generate: logits of the whole context via model(idx), keep the last step."""
    for _ in range(max_new_tokens):
        logits, _ = model(idx)  # (B,T,C)
        logits = logits[:, -1, :]  # (B,C)
        probs = ops.softmax(logits.astype(np.float64))  # generate samples in float64
        idx_next = sample_from(probs, rng)  # (B,)
        idx = np.concatenate([idx, idx_next[:, None]], axis=1)  # (B,T+1)
    return idx


@given(vocab_size=st.integers(1, 80), seed=st.integers(0, 2**32 - 1),
       scale=st.floats(0.0, 30.0), dtype=st.sampled_from([np.float32, np.float64]),
       data=st.data())
@settings(deadline=None, max_examples=40)
def test_generate_feeding_the_last_token_equals_full_context(backend, vocab_size, seed, scale,
                                                              dtype, data):
    model = model_with_weight(random_weight(vocab_size, dtype, seed, scale), backend)
    prompt = data.draw(hnp.arrays(np.int64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=6),
                                  elements=st.integers(0, vocab_size - 1)))
    max_new_tokens = data.draw(st.integers(0, 40))
    before = prompt.copy()
    out = model.generate(prompt, max_new_tokens, rng=np.random.default_rng(seed))
    expected = full_context_generate(model, prompt, max_new_tokens, np.random.default_rng(seed))
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(prompt, before)  # the prompt is not modified
    assert out.dtype == np.int64


def test_generate_is_reproducible_from_a_seed_and_batched(model):
    prompt = np.array([[0], [0], [0], [5]])
    out = model.generate(prompt, 200, seed=3)
    assert out.shape == (4, 201)
    np.testing.assert_array_equal(out[:, :1], prompt)
    np.testing.assert_array_equal(out, model.generate(prompt, 200, seed=3))
    assert not np.array_equal(out[0], out[1])  # each row samples its own tokens
    assert not np.array_equal(out, model.generate(prompt, 200, seed=4))
    assert np.all((out >= 0) & (out < V))


def test_generate_zero_new_tokens_returns_the_prompt(model):
    prompt = np.array([[1, 2, 3]])
    np.testing.assert_array_equal(model.generate(prompt, 0, seed=0), prompt)


def test_samples_follow_the_model_distribution(backend):
    """20,000 draws from row 0 land on each token with its softmax probability."""
    weight = np.tile(np.log([0.5, 0.3, 0.15, 0.05, 1e-300]), (5, 1))
    model = model_with_weight(weight, backend)
    draws = model.generate(np.zeros((20_000, 1), int), 1, seed=0)[:, 1]
    frequencies = np.bincount(draws, minlength=5) / len(draws)
    np.testing.assert_allclose(frequencies, [0.5, 0.3, 0.15, 0.05, 0.0], atol=0.01)


def test_temperature_scales_the_logits(model):
    logits = model.weight[:3]
    for temperature in (0.25, 1.0, 4.0):
        np.testing.assert_allclose(next_token_probs(logits, temperature),
                                   ops.softmax(logits.astype(np.float64) / temperature),
                                   rtol=1e-12, atol=1e-15)
    greedy = model.generate(np.arange(V)[:, None], 1, seed=0, temperature=1e-300)
    np.testing.assert_array_equal(greedy[:, 1], model.weight.argmax(axis=1))
    flat = next_token_probs(model.weight, temperature=1e300)
    np.testing.assert_allclose(flat, 1.0 / V)


@given(vocab_size=st.integers(1, 60), top_k=st.integers(1, 70), seed=st.integers(0, 2**32 - 1),
       ties=st.booleans(), temperature=st.sampled_from([0.3, 1.0, 10.0]))
@settings(deadline=None, max_examples=40)
def test_top_k_never_samples_outside_the_top_k(backend, vocab_size, top_k, seed, ties,
                                                temperature):
    weight = random_weight(vocab_size, np.float64, seed, scale=3.0)
    if ties:
        weight = np.round(weight)  # many equal logits: ties at the k-th value stay eligible
    model = model_with_weight(weight, backend)
    prompt = np.arange(vocab_size)[:, None].repeat(4, axis=0)
    out = model.generate(prompt, 20, seed=seed, top_k=top_k, temperature=temperature)
    previous, sampled = out[:, :-1].ravel(), out[:, 1:].ravel()
    kth_largest = np.sort(weight, axis=1)[:, -min(top_k, vocab_size)]
    assert np.all(weight[previous, sampled] >= kth_largest[previous])


@given(probs=hnp.arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(1, 30)),
                        elements=st.sampled_from([0.0, 0.0, 1e-300, 1e-5, 0.3, 1.0, 7.0])),
       seed=st.integers(0, 2**32 - 1))
@settings(deadline=None, max_examples=60)
def test_sample_from_never_draws_a_zero_probability_token(probs, seed):
    probs[:, -1] += probs.sum(axis=1) == 0  # at least one token per row is possible
    draws = sample_from(probs, np.random.default_rng(seed))
    assert draws.shape == (len(probs),)
    assert np.all(probs[np.arange(len(probs)), draws] > 0)


def test_sample_from_a_uniform_draw_of_almost_one_picks_the_last_possible_token():
    class AlmostOne:
        def random(self, n):
            return np.full(n, np.nextafter(1.0, 0.0))

    probs = np.array([[0.1, 0.2, 0.7, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(sample_from(probs, AlmostOne()), [2, 0])


# ----------------------------------------------------------------------------------------------
# non-finite weights: refused, never a wrong answer


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_table_with_non_finite_entries_is_refused_naming_its_rows(bad):
    weight = random_weight(V, np.float32, 0)
    weight[[2, 5], 1] = bad
    model = BigramLanguageModel(V, seed=0)
    with pytest.raises(ValueError, match=r"the weights hold non-finite values in rows 2, 5 "
                                         r"\(of 7\)"):
        model.weight = weight
    assert np.isfinite(model.weight).all()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN arithmetic is the point
def test_weights_that_went_non_finite_raise_in_forward_and_generate(backend):
    """Weights changed in place (as an optimizer does) to NaN or infinity: generate returned
    token 0 for every draw, forward a NaN loss."""
    model = BigramLanguageModel(V, seed=0, backend=backend)
    model.weight[3, 4] = np.nan
    model.weight[6, 0] = np.inf
    message = r"not finite: the weights hold non-finite values in row 3 \(of 7\)"
    with pytest.raises(ValueError, match=message):
        model.generate(np.array([[3]]), max_new_tokens=5, seed=0)
    with pytest.raises(ValueError, match=message):
        model(np.array([[3, 1]]), np.array([[1, 2]]))
    with pytest.raises(ValueError, match=message):
        model(np.array([[3, 1]]))
    with pytest.raises(ValueError, match=r"rows 3, 6 \(of 7\)"):
        model(np.array([[6, 3]]), np.array([[1, 2]]), return_logits=False)
    with pytest.raises(RuntimeError, match="needs a forward pass with targets first"):
        model.backward()
    _, loss = model(np.array([[1, 2]]), np.array([[2, 1]]))  # rows 1 and 2 are finite
    assert math.isfinite(loss)


def test_the_initial_weights_are_drawn_in_chunks_without_a_float64_table(monkeypatch):
    """BigramLanguageModel(60000) in float32 failed allocating 26.8 GiB: the float64 draws of
    the whole table came first. Drawn a chunk at a time, the values are the same."""
    expected = np.random.default_rng(3).standard_normal((300, 300))
    monkeypatch.setattr(model_module, "INIT_DRAW_BYTES", 8 * 300 * 7 + 5)  # 7 rows a draw
    for dtype in (np.float32, np.float64):
        weight = BigramLanguageModel(300, seed=3, dtype=dtype).weight
        np.testing.assert_array_equal(weight, expected.astype(dtype))
    monkeypatch.setattr(model_module, "INIT_DRAW_BYTES", 1 << 20)
    tracemalloc.start()
    try:
        BigramLanguageModel(2000, seed=0, dtype=np.float32, backend="numpy")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2000**2 + 2 * (1 << 20)  # the float32 table and one chunk of draws
