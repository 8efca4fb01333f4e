"""npbigram.randomness.torch_rng.TorchGenerator against torch's default CPU generator: every draw bit-exact,
the stream position (torch.get_rng_state) identical after interleaved calls, and the lecture's
numbers (first batch, loss 4.8786, 100 untrained characters) replayed without torch."""

import json
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npbigram.randomness import torch_rng
from npbigram.randomness.torch_rng import TorchGenerator, _fma32

seeds = st.integers(-(2**63), 2**64 - 1)
float32s = st.floats(width=32, allow_nan=False, allow_infinity=False)
LECTURE_SEED = 1337
# generate()'s output untrained: the start id 0 ("\n"), then 100 sampled characters
LECTURE_SAMPLE = ("\nSKIcLT;AcELMoTbvZv C?nq-QE33:CJqkOKH-q;:la!oiywkHjgChzbQ?u!3bLIgwevmyFJGUGp"
                  "\nwnYWmnxKWWev-tDqXErVKLgJ")


def torch_multinomial(torch, probs):
    """torch.multinomial(probs, num_samples=1) on a NumPy array, as NumPy."""
    return torch.multinomial(torch.from_numpy(probs), num_samples=1).numpy()


def bits(array):
    """The float32 bit patterns (so -0.0 differs from +0.0)."""
    return np.asarray(array, np.float32).view(np.int32)


def torch_state(torch):
    """torch.get_rng_state() as TorchGenerator.get_state() would say it (CPUGeneratorImplState:
    u64 seed, i32 left, i32 seeded, u64 next, u64 state[624], f64 normal_x, normal_y, normal_rho,
    i32 normal_is_valid, ...); left == 1 means the next draw twists, NumPy's pos 624."""
    raw = torch.get_rng_state().numpy()
    seed, = raw[:8].view(np.uint64)
    left, = raw[8:12].view(np.int32)
    next_index, = raw[16:24].view(np.uint64)
    key = raw[24:24 + 624 * 8].view(np.uint64)
    normal_y, = raw[5024:5032].view(np.float64)
    normal_is_valid, = raw[5040:5044].view(np.int32)
    return {"seed": int(seed), "key": key.tolist(), "pos": 624 if left == 1 else int(next_index),
            "next_normal": float(normal_y) if normal_is_valid else None}


def set_torch_state(torch, state):
    """torch.set_rng_state from a TorchGenerator.get_state() dict (the layout of torch_state)."""
    raw = torch.get_rng_state().numpy().copy()
    pos = state["pos"]
    raw[0:8] = np.array([state["seed"]], np.uint64).view(np.uint8)
    raw[8:12] = np.array([1 if pos == 624 else 625 - pos], np.int32).view(np.uint8)
    raw[16:24] = np.array([pos], np.uint64).view(np.uint8)
    raw[24:24 + 624 * 8] = np.array(state["key"], np.uint64).view(np.uint8)
    raw[5024:5032] = np.array([state["next_normal"] or 0.0]).view(np.uint8)
    raw[5040:5044] = np.array([state["next_normal"] is not None], np.int32).view(np.uint8)
    torch.set_rng_state(torch.from_numpy(raw))


def untemper(word):
    """The MT19937 state word whose tempered output is `word` (undoing the four xor-shifts)."""
    word ^= word >> 18
    word ^= (word << 15) & 0xEFC60000
    undone = word
    for _ in range(4):
        undone = word ^ ((undone << 7) & 0x9D2C5680)
    word = undone & 0xFFFFFFFF
    undone = word
    for _ in range(2):
        undone = word ^ (undone >> 11)
    return undone


def generators_about_to_draw(torch, words):
    """A TorchGenerator and torch's generator whose next 32-bit outputs are `words`."""
    gen = TorchGenerator(5)
    gen.randint(2, (10,))  # now mid-stream: the next words come from key[10:]
    state = gen.get_state()
    state["key"][10: 10 + len(words)] = [untemper(word) for word in words]
    gen.set_state(state)
    set_torch_state(torch, state)
    return gen


def normals(gen, size):
    """gen.normal_ on a new float32 array of `size` values."""
    return gen.normal_(np.empty(size, np.float32))


def softmax(logits):
    """float32 softmax over the last axis, as F.softmax."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def test_seeding_is_numpys_legacy_seeding():
    ours = TorchGenerator(2**40 + 12345).get_state()
    numpy_mt = np.random.MT19937()
    numpy_mt._legacy_seeding(12345)  # init_genrand on the low 32 bits
    assert ours["key"] == numpy_mt.state["state"]["key"].tolist() and ours["pos"] == 624


@settings(max_examples=300)
@given(a=float32s, b=float32s, c=float32s)
def test_fma32_rounds_once(a, b, c):
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    with np.errstate(over="ignore"):  # near float32's limits; torch's blocks stay far from them
        got = _fma32(np.float32(a), np.float32(b), np.float32(c))
        nearest = np.float32(float(exact))
        below, above = (np.nextafter(nearest, np.float32(side)) for side in (-np.inf, np.inf))
    if not np.isfinite(got):
        return
    candidates = [below, nearest, above]
    errors = [abs(Fraction(float(x)) - exact) if np.isfinite(x) else np.inf for x in candidates]
    best = [x for x, e in zip(candidates, errors) if e == min(errors)]
    best = [x for x in best if x.view(np.int32) % 2 == 0] if len(best) > 1 else best  # ties to even
    assert got == best[0]


@settings(deadline=None, max_examples=60)
@given(seed=seeds, low=st.integers(-(2**40), 2**40),
       span=st.one_of(st.integers(1, 100), st.integers(1, 2**40),
                      st.sampled_from([2**28 - 1, 2**28, 2**32 - 1, 2**32])),
       size=st.lists(st.integers(0, 5), max_size=3))
def test_randint_matches_torch(torch, seed, low, span, size):
    torch.manual_seed(seed)
    expected = torch.randint(low, low + span, tuple(size)).numpy()
    got = TorchGenerator(seed).randint(low, low + span, tuple(size))
    assert got.dtype == np.int64 and got.shape == expected.shape and np.array_equal(got, expected)


@settings(deadline=None, max_examples=80)
@given(seed=seeds, size=st.one_of(st.integers(0, 40), st.integers(0, 3000)))
def test_normal_matches_torch_bit_exactly(torch, seed, size):
    torch.manual_seed(seed)
    expected = torch.empty(size).normal_(0, 1).numpy()
    assert np.array_equal(bits(normals(TorchGenerator(seed), size)), bits(expected))


@pytest.mark.parametrize("seed", [0, 1, LECTURE_SEED, 2**32 - 1])
def test_normal_fills_an_embedding_table_like_torch(torch, seed):
    torch.manual_seed(seed)
    expected = torch.nn.Embedding(65, 65).weight.detach().numpy()  # 4225 = 264 * 16 + 1 values
    got = TorchGenerator(seed).normal_(np.empty((65, 65), np.float32))
    assert np.array_equal(bits(got), bits(expected))


@pytest.mark.parametrize("size", [47, 48, 1000, 4225])
def test_normal_in_chunks_draws_torchs_values(torch, monkeypatch, size):
    """A large table is drawn and transformed a chunk at a time (a V=1000 table took 13 times
    its size in temporaries at once): chunks of 48 values give torch's values."""
    monkeypatch.setattr(torch_rng, "NORMAL_CHUNK", 48)
    torch.manual_seed(3)
    expected = torch.empty(size).normal_(0, 1).numpy()
    assert np.array_equal(bits(normals(TorchGenerator(3), size)), bits(expected))


def test_normal_of_a_large_table_needs_a_bounded_amount_of_memory():
    table = np.empty((1000, 1000), np.float32)
    tracemalloc.start()
    try:
        TorchGenerator(0).normal_(table)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * torch_rng.NORMAL_CHUNK  # of the 4 MB table: no temporary of its size


@settings(deadline=None, max_examples=40)
@given(seed=seeds, sizes=st.lists(st.integers(1, 20), min_size=1, max_size=6))
def test_small_normals_share_torchs_cached_value(torch, seed, sizes):
    torch.manual_seed(seed)
    gen = TorchGenerator(seed)
    for size in sizes:  # odd sizes leave a cached value for the next small call
        assert np.array_equal(bits(normals(gen, size)), bits(torch.randn(size)))
    assert gen.get_state() == torch_state(torch)
    gen.manual_seed(seed)  # forgets the cached value, as torch.manual_seed does
    torch.manual_seed(seed)
    assert np.array_equal(bits(normals(gen, 1)), bits(torch.randn(1)))


@settings(deadline=None, max_examples=40)
@given(seed=seeds, size=st.integers(0, 2000), dtype=st.sampled_from(["float32", "float64"]))
def test_exponential_draws_match_torch(torch, seed, size, dtype):
    torch.manual_seed(seed)
    expected = torch.empty(size, dtype=getattr(torch, dtype)).exponential_(1).numpy()
    got = TorchGenerator(seed)._exponential(size).astype(dtype)
    assert np.array_equal(got.view(f"i{got.itemsize}"), expected.view(f"i{got.itemsize}"))


@settings(deadline=None, max_examples=60)
@given(seed=seeds, batch=st.integers(0, 8), vocab=st.integers(1, 300),
       temperature=st.sampled_from([0.1, 1.0, 10.0]), zeros=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), flat=st.booleans())
def test_multinomial_matches_torch(torch, seed, batch, vocab, temperature, zeros, dtype, flat):
    rows = np.random.default_rng(seed % 2**32).standard_normal((max(batch, 1), vocab))
    probs = softmax(temperature * rows).astype(dtype)
    if zeros:
        probs[:, : vocab // 2] = 0
        probs[:, -1] = max(probs[0, -1], 1e-3)  # keep every row's sum positive
    probs = probs[0] if flat else probs[:batch]
    torch.manual_seed(seed)
    expected = torch_multinomial(torch, probs)
    got = TorchGenerator(seed).multinomial(probs, num_samples=1)
    assert got.dtype == np.int64 and got.shape == expected.shape and np.array_equal(got, expected)


@settings(deadline=None, max_examples=30)
@given(seed=seeds, high=st.integers(1, 10**6), normal_size=st.integers(1, 200),
       vocab=st.integers(2, 100))
def test_interleaved_calls_keep_torchs_stream_position(torch, seed, high, normal_size, vocab):
    probs = softmax(np.random.default_rng(vocab).standard_normal((3, vocab)).astype(np.float32))
    gen = TorchGenerator(seed)
    torch.manual_seed(seed)
    assert gen.get_state() == torch_state(torch)
    assert np.array_equal(gen.randint(high, (4,)), torch.randint(high, (4,)).numpy())
    assert np.array_equal(bits(normals(gen, normal_size)), bits(torch.randn(normal_size)))
    assert np.array_equal(gen.multinomial(probs, 1), torch_multinomial(torch, probs))
    assert np.array_equal(bits(normals(gen, 3)), bits(torch.randn(3)))
    assert np.array_equal(gen.randint(-5, 2**33, (2, 3)), torch.randint(-5, 2**33, (2, 3)).numpy())
    assert gen.get_state() == torch_state(torch)


def test_state_survives_json_and_resumes_exactly():
    gen = TorchGenerator(LECTURE_SEED)
    gen.randint(100, (7,))
    normals(gen, 1)  # leaves a cached normal value in the state
    saved = json.loads(json.dumps(gen.get_state()))
    expected = [normals(gen, 5), gen.randint(10, (700,)), gen.multinomial(np.ones(9) / 9, 1)]
    resumed = TorchGenerator(0)
    resumed.set_state(saved)
    got = [normals(resumed, 5), resumed.randint(10, (700,)), resumed.multinomial(np.ones(9) / 9, 1)]
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))
    assert resumed.get_state() == gen.get_state()


def test_crafted_words_come_out_of_both_generators(torch):
    words = [0x12345678, 0xDEADBEEF, 0, 0xFFFFFFFF]
    gen = generators_about_to_draw(torch, words)
    assert gen.randint(2**28 - 1, (4,)).tolist() == torch.randint(2**28 - 1, (4,)).tolist() == [
        word % (2**28 - 1) for word in words]  # one word each below 2**28 (64-bit draws above)


def test_zero_uniforms_give_positive_zeros_like_torch(torch):
    # u = 0 in a block: radius = sqrt(-2 * log(1 - 0)) = -0.0, and torch's fma(n, 1, 0) gives +0.0
    gen = generators_about_to_draw(torch, [0] * 9 + [1] * 7)
    assert np.array_equal(bits(normals(gen, 16)), bits(torch.randn(16)))
    # small path: u1 = 0.5, u2 = 0: radius 0, cos(pi) = -1, so the value is -0.0 until + mean
    gen = generators_about_to_draw(torch, [0x00100000, 0, 0, 0])
    assert np.array_equal(bits(normals(gen, 2)), bits(torch.randn(2)))


@pytest.mark.parametrize("probs", [[0.5, 0.0, 0.5], [0.5, 0.2, 0.5], [0.0, 0.0, 1.0]])
def test_multinomial_with_a_zero_exponential_draw_is_torchs(torch, probs):
    probs = np.array(probs, np.float32)
    gen = generators_about_to_draw(torch, [5, 5, 0, 0, 5, 5])  # q[1] = -log1p(-0) = 0
    assert np.array_equal(gen.multinomial(probs, 1), torch_multinomial(torch, probs))


# ------------------------------------- the lecture's numbers -------------------------------------

@pytest.fixture(scope="module")
def shakespeare(tinyshakespeare):
    """(vocabulary, train ids, val ids) as in the lecture: sorted characters, 90% / 10% split."""
    text = tinyshakespeare.read_text(encoding="utf-8")
    vocabulary = sorted(set(text))
    index = {ch: i for i, ch in enumerate(vocabulary)}
    data = np.array([index[ch] for ch in text], np.int64)
    n = int(0.9 * len(data))
    return vocabulary, data[:n], data[n:]


def replay_lecture(vocabulary, train, block_size=8, batch_size=4, new_tokens=100):
    """The notebook's steps with TorchGenerator and NumPy: seed, get_batch, seed again,
    nn.Embedding(65, 65), the float32 cross-entropy of that batch, and generate() from id 0."""
    gen = TorchGenerator(LECTURE_SEED)
    starts = gen.randint(len(train) - block_size, (batch_size,))
    xb = np.stack([train[i: i + block_size] for i in starts])
    yb = np.stack([train[i + 1: i + block_size + 1] for i in starts])

    gen.manual_seed(LECTURE_SEED)
    table = gen.normal_(np.empty((len(vocabulary), len(vocabulary)), np.float32))
    logits = table[xb].reshape(-1, len(vocabulary))
    log_probs = logits - logits.max(axis=1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(len(logits)), yb.reshape(-1)].mean()

    ids = [0]
    for _ in range(new_tokens):
        ids.append(int(gen.multinomial(softmax(table[ids[-1]][None, :]), num_samples=1)[0, 0]))
    return gen, xb, yb, table, loss, "".join(vocabulary[i] for i in ids)


def test_lecture_numbers(shakespeare):
    vocabulary, train, _ = shakespeare
    _, xb, _, _, loss, sample = replay_lecture(vocabulary, train)
    assert len(vocabulary) == 65
    assert xb[0].tolist() == [24, 43, 58, 5, 57, 1, 46, 43]
    assert round(float(loss), 4) == 4.8786
    assert sample == LECTURE_SAMPLE


def test_lecture_replay_matches_torch(torch, torch_bigram, shakespeare):
    vocabulary, train, _ = shakespeare
    gen, xb, yb, table, loss, sample = replay_lecture(vocabulary, train)

    torch.manual_seed(LECTURE_SEED)
    torch_starts = torch.randint(len(train) - 8, (4,))
    torch.manual_seed(LECTURE_SEED)
    model = torch_bigram(len(vocabulary))
    torch_loss = model(torch.from_numpy(xb), torch.from_numpy(yb))[1].item()
    torch_ids = model.generate(torch.zeros((1, 1), dtype=torch.long), 100)[0].tolist()
    assert np.array_equal(xb, np.stack([train[i: i + 8] for i in torch_starts.numpy()]))
    assert np.array_equal(bits(table), bits(model.token_embedding_table.weight.detach()))
    assert loss == pytest.approx(torch_loss, rel=1e-6)
    assert sample == "".join(vocabulary[i] for i in torch_ids)
    assert gen.get_state() == torch_state(torch)


def test_bigram_py_stream(torch, torch_bigram, shakespeare):
    """bigram.py's order: seed, model init, estimate_loss (200 train then 200 val batches), then a
    training batch; each get_batch is the one-liner `gen.randint(len(split) - block_size, (B,))`."""
    vocabulary, train, val = shakespeare
    block_size, batch_size, eval_iters = 8, 32, 200
    splits = [train] * eval_iters + [val] * eval_iters + [train]

    gen = TorchGenerator(LECTURE_SEED)
    gen.normal_(np.empty((65, 65), np.float32))
    ours = [gen.randint(len(split) - block_size, (batch_size,)) for split in splits]

    torch.manual_seed(LECTURE_SEED)
    torch_bigram(len(vocabulary))
    theirs = [torch.randint(len(split) - block_size, (batch_size,)).numpy() for split in splits]
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))
    assert gen.get_state() == torch_state(torch)
