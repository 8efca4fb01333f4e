"""npbigram/streams.py: the NumPy streams keep their generators; the torch stream trains, evaluates
and samples as bigram.py does in PyTorch, and resumes exactly."""

import numpy as np
import pytest
from npbigram import BigramLanguageModel, TrainConfig, Trainer, load_checkpoint
from npbigram.sampling import MultinomialSampler
from npbigram.run import run_training
from npbigram.randomness.streams import RNGS, NumpyStream
from npbigram.randomness.torch_rng import TorchGenerator

from helpers import DATA, TOKENIZER, save_trainer

SMALL = {"batch_size": 4, "block_size": 8, "max_iters": 60, "eval_interval": 20, "eval_iters": 5}
SAMPLE_TOKENS = 50


def torch_config(backend, **overrides):
    return TrainConfig(**{**SMALL, "rng": "torch", "backend": backend, **overrides})


def train(trainer):
    """run_training without checkpoints or printing, then a sample from the stream: (eval
    history, sampled ids)."""
    run_training(trainer, save=lambda best: None, log=lambda line: None)
    context = np.zeros((1, 1), dtype=np.int64)
    sample = trainer.model.generate(context, SAMPLE_TOKENS, sampler=trainer.stream.sampler())
    history = [(e["step"], {"train": e["train"], "val": e["val"]}) for e in trainer.history]
    return history, sample[0]


def bigram_py(torch, torch_bigram, data, config, sample_tokens):
    """bigram.py's loop in PyTorch with `config`'s sizes: (eval history, initial weight, final
    weight, sampled ids)."""
    torch.manual_seed(config.seed)
    n = int(0.9 * len(data))
    splits = {"train": torch.from_numpy(data[:n]), "val": torch.from_numpy(data[n:])}
    block, batch = config.block_size, config.batch_size

    def get_batch(split):
        d = splits[split]
        ix = torch.randint(len(d) - block, (batch,))
        return (torch.stack([d[i:i + block] for i in ix]),
                torch.stack([d[i + 1:i + block + 1] for i in ix]))

    model = torch_bigram(TOKENIZER.vocab_size)
    initial = model.token_embedding_table.weight.detach().numpy().copy()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    history = []
    for step in range(config.max_iters):
        if step % config.eval_interval == 0:
            with torch.no_grad():
                history.append((step, {split: torch.tensor([
                    model(*get_batch(split))[1].item() for _ in range(config.eval_iters)
                ]).mean().item() for split in splits}))
        _, loss = model(*get_batch("train"))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    ids = model.generate(torch.zeros((1, 1), dtype=torch.long), sample_tokens)[0].numpy()
    return history, initial, model.token_embedding_table.weight.detach().numpy(), ids


def test_numpy_streams_are_the_default_generators():
    """The default stream draws what npbigram always drew: weights from default_rng(seed),
    training batches from default_rng((seed, 1)), evaluations from default_rng((seed, 2, s))."""
    stream = NumpyStream(7)
    assert TrainConfig().rng == "numpy" and RNGS["numpy"] is NumpyStream
    np.testing.assert_array_equal(stream.initial_weight(5, "normal", np.float32),
                                  BigramLanguageModel(5, seed=7, backend="numpy").weight)
    assert stream.train_rng.random() == np.random.default_rng((7, 1)).random()
    assert stream.eval_rng(300).random() == np.random.default_rng((7, 2, 300)).random()
    trainer = Trainer(TrainConfig(**SMALL, seed=7, backend="numpy"), DATA, TOKENIZER.vocab_size)
    np.testing.assert_array_equal(trainer.model.weight,
                                  BigramLanguageModel(TOKENIZER.vocab_size, seed=7).weight)


def test_torch_stream_trains_evaluates_and_samples_like_bigram_py(torch, torch_bigram, backend):
    config = torch_config(backend)
    trainer = Trainer(config, DATA, TOKENIZER.vocab_size)
    initial = trainer.model.weight.copy()
    history, sample = train(trainer)
    expected, torch_initial, torch_final, torch_sample = bigram_py(torch, torch_bigram, DATA,
                                                                   config, SAMPLE_TOKENS)
    assert np.array_equal(initial.view(np.int32), torch_initial.view(np.int32))
    assert [step for step, _ in expected] == [0, 20, 40]
    assert [step for step, _ in history] == [0, 20, 40, 60]  # and the last step, which bigram.py
    # does not evaluate: its draws are put back, so the sample is bigram.py's
    for (_, ours), (_, theirs) in zip(history, expected):
        assert ours == pytest.approx(theirs, abs=1e-5)
    np.testing.assert_allclose(trainer.model.weight, torch_final, atol=1e-5)
    assert sample.tolist() == torch_sample.tolist()
    # and the stream stands where torch's does
    assert trainer.batch_rng.randint(2**20, (6,)).tolist() == torch.randint(2**20, (6,)).tolist()


def test_torch_stream_resumes_exactly(tmp_path, backend):
    """From the checkpoint saved after the evaluation at step 20 (it holds the stream as that
    evaluation left it, and the resumed run does not repeat it), and from one saved between
    evaluations (step 25): the same evaluations, weights and sample as an uninterrupted run."""
    config = torch_config(backend)
    uninterrupted = Trainer(config, DATA, TOKENIZER.vocab_size)
    history, sample = train(uninterrupted)

    at_evaluation = tmp_path / "eval.npz"
    first = Trainer(config, DATA, TOKENIZER.vocab_size)
    saved_at = []

    def save(best):  # run_training saves after each evaluation
        saved_at.append(first.step)
        if first.step == 20:
            save_trainer(at_evaluation, first)

    run_training(first, save=save, log=lambda line: None)
    assert saved_at == [0, 20, 40, 60, 60]  # each evaluation's, the last step's, the end's

    between = tmp_path / "between.npz"
    second = Trainer(config, DATA, TOKENIZER.vocab_size)
    second.evaluate()
    second.train_steps(20)
    second.evaluate()
    second.train_steps(5)
    save_trainer(between, second)

    for path, resumed_from in ((at_evaluation, 20), (between, 25)):
        resumed = Trainer(config, DATA, TOKENIZER.vocab_size)
        resumed.restore(load_checkpoint(path, backend=backend))
        assert resumed.step == resumed_from
        resumed_history, resumed_sample = train(resumed)
        assert ([entry for entry in resumed_history if entry[0] > resumed_from]
                == [entry for entry in history if entry[0] > resumed_from])
        np.testing.assert_array_equal(resumed.model.weight, uninterrupted.model.weight)
        assert resumed_sample.tolist() == sample.tolist()


def test_resume_rejects_another_rng(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_trainer(path, Trainer(torch_config("numpy"), DATA, TOKENIZER.vocab_size))
    numpy_trainer = Trainer(TrainConfig(**SMALL, backend="numpy"), DATA, TOKENIZER.vocab_size)
    with pytest.raises(ValueError, match="the checkpoint drew from the torch generator: resume it "
                                         "with that --rng, not numpy"):
        numpy_trainer.restore(load_checkpoint(path, backend="numpy"))


def test_bad_rng_is_rejected():
    with pytest.raises(ValueError, match="rng must be one of numpy, torch, got 'jax'"):
        TrainConfig(rng="jax")


@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.7, None), (1.5, 5), (1.0, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_multinomial_sampler_is_nanogpts_sampling(torch, temperature, top_k, dtype):
    """logits / temperature, all but the top_k set to -inf, F.softmax, torch.multinomial."""
    logits = (3 * np.random.default_rng(0).standard_normal((6, 40))).astype(dtype)
    torch.manual_seed(11)
    scaled = torch.from_numpy(logits) / temperature
    if top_k is not None:
        kth = torch.topk(scaled, top_k).values[:, [-1]]
        scaled[scaled < kth] = -float("inf")
    expected = torch.multinomial(torch.softmax(scaled, dim=-1), num_samples=1)[:, 0].numpy()
    got = MultinomialSampler(TorchGenerator(11))(logits, temperature, top_k)
    assert got.tolist() == expected.tolist()


@pytest.mark.parametrize("first_steps", [40, 30])  # a last step on the schedule, and off it
def test_a_finished_run_continued_is_an_uninterrupted_longer_run(tmp_path, backend, first_steps):
    """The last step's evaluation leaves in the checkpoint what a longer run draws from: at 40
    (on the schedule of 20) the evaluation's draws, at 30 (off it) none."""
    uninterrupted = Trainer(torch_config(backend), DATA, TOKENIZER.vocab_size)
    history, sample = train(uninterrupted)
    first = Trainer(torch_config(backend, max_iters=first_steps), DATA, TOKENIZER.vocab_size)
    run_training(first, save=lambda best: save_trainer(tmp_path / "first.npz", first),
                 log=lambda line: None)
    resumed = Trainer(torch_config(backend), DATA, TOKENIZER.vocab_size)
    resumed.restore(load_checkpoint(tmp_path / "first.npz", backend=backend))
    resumed_history, resumed_sample = train(resumed)
    assert [entry for entry in resumed_history if entry[0] % 20 == 0] == history
    np.testing.assert_array_equal(resumed.model.weight, uninterrupted.model.weight)
    assert resumed_sample.tolist() == sample.tolist()
