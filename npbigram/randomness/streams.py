"""Where a training run's randomness comes from: one class per `--rng` choice, in RNGS.

A stream gives the Trainer the initial weights, the generators of the training and of each
evaluation's batches and the sampler of the final text; a checkpoint keeps its state, so that a
resumed run draws what an uninterrupted one would.

numpy (the default): independent NumPy generators, so an evaluation never moves the training
batches. torch: bigram.py's one global generator, torch.manual_seed(seed)
(npbigram.randomness.torch_rng), consumed in bigram.py's order: nn.Embedding's normal_ init; at
every evaluation eval_iters train batches then eval_iters val batches (estimate_loss); each
step's training batch; after training, the sample's torch.multinomial draws. Batches are
torch.randint(len(split) - block_size, (B,)).
"""

import numpy as np

from ..model import initial_weight
from ..sampling import InverseCdfSampler, MultinomialSampler
from .torch_rng import DEFAULT_SEED, TorchGenerator


class NumpyStream:
    """Separate NumPy generators for the weights, training batches, each evaluation, sampling."""

    def __init__(self, seed):
        self.seed = seed
        self.train_rng = np.random.default_rng((seed, 1))

    def initial_weight(self, vocab_size, init, dtype):
        return initial_weight(vocab_size, init, dtype, self.seed)

    def eval_rng(self, step):
        return np.random.default_rng((self.seed, 2, step))

    def sampler(self):
        """The sampler of the text after training."""
        return self.seeded_sampler(self.seed)

    @staticmethod
    def seeded_sampler(seed):
        """A sampler of its own (`npbigram sample --seed`); seed None: fresh randomness."""
        return InverseCdfSampler(np.random.default_rng(seed))

    def get_state(self):
        return self.train_rng.bit_generator.state

    def set_state(self, state):
        self.train_rng.bit_generator.state = state


class TorchStream:
    """One TorchGenerator, seeded as torch.manual_seed(seed), for all, in bigram.py's order."""

    def __init__(self, seed):
        self.train_rng = TorchGenerator(seed)

    def initial_weight(self, vocab_size, init, dtype):
        """nn.Embedding(V, V)'s table: V*V float32 normal_ draws (drawn for init "zeros" too, as
        constructing nn.Embedding draws them before any zeros_)."""
        table = self.train_rng.normal_(np.empty((vocab_size, vocab_size), np.float32))
        return (table.astype(dtype, copy=False) if init == "normal"
                else initial_weight(vocab_size, init, dtype))

    def eval_rng(self, step):
        return self.train_rng  # estimate_loss draws from the global generator

    def sampler(self):
        """The sampler of the text after training: the same generator, continued."""
        return MultinomialSampler(self.train_rng)

    @staticmethod
    def seeded_sampler(seed):
        """A sampler of its own; seed None: torch's default seed, as a fresh PyTorch process."""
        return MultinomialSampler(TorchGenerator(DEFAULT_SEED if seed is None else seed))

    def get_state(self):
        return self.train_rng.get_state()

    def set_state(self, state):
        self.train_rng.set_state(state)


RNGS = {"numpy": NumpyStream, "torch": TorchStream}
