"""The lecture's bigram walkthrough ("Let's build GPT"), step by step, with the lecture's own
numbers: PyTorch's generator is replayed by npbigram.randomness.torch_rng, so no torch is needed.

    lecture (PyTorch)                     npbigram
    torch.manual_seed(1337)               gen = TorchGenerator(1337)
    xb, yb = get_batch('train')           get_batch(train, block_size=8, batch_size=4, rng=gen)
    torch.manual_seed(1337)               gen.manual_seed(1337)
    m = BigramLanguageModel(65)           W = gen.normal_(np.empty((65, 65), np.float32))
    logits, loss = m(xb, yb)              model(xb, yb): logits (32, 65), loss 4.8786
    m.generate(torch.zeros((1, 1)), 100)  model.generate(..., sampler=MultinomialSampler(gen))

bigram.py's generate runs the model on the whole growing context and keeps the last position's
logits; a bigram's logits at a position are the row of that position's token, so feeding only
the last token gives the same probabilities and, from the same generator, the same tokens.
"""

import math
from dataclasses import dataclass

import numpy as np

from .. import ops
from ..data.corpus import train_val_split, windows
from ..model import BigramLanguageModel
from ..randomness.torch_rng import TorchGenerator
from ..sampling import MultinomialSampler

LECTURE_SEED = 1337
BATCH_SIZE = 4  # the lecture's first batch: 4 sequences of 8 characters
BLOCK_SIZE = 8
NEW_TOKENS = 100
CODE_WIDTH = 34  # the column where each step's explanation starts


@dataclass
class Walkthrough:
    seed: int
    vocab_size: int
    n_train: int
    n_val: int
    starts: np.ndarray  # (B,) torch.randint's window starts
    xb: np.ndarray  # (B,T) inputs
    yb: np.ndarray  # (B,T) targets
    logits: np.ndarray  # (B*T, V)
    loss: float  # the model's
    loss_by_hand: float  # -ln softmax(logits)[n, y_n], averaged
    generated: np.ndarray  # (1 + NEW_TOKENS,) from a zero context, last token only
    generated_full_context: np.ndarray  # the same, running the model on the whole context


def lecture_batch(train, seed=LECTURE_SEED):
    """(starts (B,), xb (B,T), yb (B,T)): the lecture's first get_batch('train') after
    torch.manual_seed(seed), B = 4 windows of T = 8 of the train split."""
    starts = TorchGenerator(seed).randint(len(train) - BLOCK_SIZE, (BATCH_SIZE,))
    return (starts, *windows(train, starts, BLOCK_SIZE))


def walk(data, vocab_size, seed=LECTURE_SEED):
    """The lecture's steps on a text's ids (n,): returns a Walkthrough."""
    train, val = train_val_split(data)
    starts, xb, yb = lecture_batch(train, seed)  # get_batch('train')

    gen = TorchGenerator(seed)  # torch.manual_seed(seed) again
    model = BigramLanguageModel.from_weight(  # nn.Embedding's init
        gen.normal_(np.empty((vocab_size, vocab_size), np.float32)), backend="numpy")
    logits, loss = model(xb, yb)  # (B*T, V), float
    probs = ops.softmax(logits)  # (B*T, V)
    loss_by_hand = -np.log(probs[np.arange(len(probs)), yb.reshape(-1)]).mean()

    context = np.zeros((1, 1), dtype=np.int64)
    before = gen.get_state()
    generated = model.generate(context, NEW_TOKENS, sampler=MultinomialSampler(gen))
    gen.set_state(before)
    full = generate_full_context(model, context, NEW_TOKENS, MultinomialSampler(gen))
    return Walkthrough(seed=seed, vocab_size=vocab_size, n_train=len(train), n_val=len(val),
                       starts=starts, xb=xb, yb=yb, logits=logits, loss=float(loss),
                       loss_by_hand=float(loss_by_hand), generated=generated[0],
                       generated_full_context=full[0])


def generate_full_context(model, idx, max_new_tokens, sampler):
    """bigram.py's generate: each step runs the model on the whole context idx (B,T) and
    samples from the last position's logits. O(T) per token, where model.generate is O(1)."""
    for _ in range(max_new_tokens):
        logits, _ = model(idx)  # (B,T,V)
        idx = np.concatenate([idx, sampler(logits[:, -1, :])[:, None]], axis=1)  # (B,T+1)
    return idx


def step(code, explanation):
    """One line: the lecture's code, then what it shows."""
    return f"{code:<{CODE_WIDTH - 1}} {explanation}"


def rows(batch):
    """A (B,T) batch as B indented lines."""
    return [f"  {row}" for row in batch.tolist()]


def format_walkthrough(w, tokenizer):
    """The walkthrough as printed lines, in the lecture's order."""
    seeding = f"torch.manual_seed({w.seed})"
    same = bool(np.array_equal(w.generated, w.generated_full_context))
    return [
        (f"text: {w.n_train + w.n_val:,} characters, vocabulary {w.vocab_size}; "
         f"train {w.n_train:,}, val {w.n_val:,}"),
        step(seeding, "PyTorch's CPU generator, replayed in NumPy"),
        step("xb, yb = get_batch('train')",
             f"{BATCH_SIZE} windows of {BLOCK_SIZE} at torch.randint's {w.starts.tolist()}"),
        step(f"xb {w.xb.shape}", "inputs, the first is " + repr(tokenizer.decode(w.xb[0]))),
        *rows(w.xb),
        step(f"yb {w.yb.shape}", "targets: each input's next character"),
        *rows(w.yb),
        step(seeding, "seeded again: the model starts as the lecture's"),
        step(f"m = BigramLanguageModel({w.vocab_size})",
             f"nn.Embedding({w.vocab_size}, {w.vocab_size}): W ~ N(0,1), the first draws"),
        step("logits, loss = m(xb, yb)",
             f"logits {w.logits.shape}: the row W[x] for each of the {w.xb.size} inputs"),
        step(f"loss {w.loss:.4f}",
             f"mean -ln p(target); a uniform guess: ln {w.vocab_size} = "
             f"{math.log(w.vocab_size):.4f}"),
        step(f"by hand {w.loss_by_hand:.4f}", "p = softmax(logits), -ln p[n, yb_n] averaged"),
        step(f"m.generate(zeros((1, 1)), {NEW_TOKENS})",
             f"untrained, so gibberish: {NEW_TOKENS} draws after id 0 ({tokenizer.decode([0])!r})"),
        tokenizer.decode(w.generated),
        step(f"last token only: {'the same' if same else 'OTHER'} {NEW_TOKENS}",
             "the whole context's logits[:, -1] = W[last id]: same p, same draws"),
    ]
