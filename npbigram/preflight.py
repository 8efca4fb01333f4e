"""The pre-flight of a command: before any work starts, what the command would need is checked
against what this process may really use (npbigram.utils.limits), and work that would take
minutes where seconds are expected is refused or warned of. Each refusal is one message
naming the setting to change; the library behind it trusts its sizes.

    check_text(path, tokenizer)          reading and tokenizing a text file in memory
    check_training(config, vocab_size)   a run: the snapshots' cap, its memory, its work
    check_gradcheck(vocab_size, n)       the gradient check's tables and forward passes
"""

import os
import warnings

import numpy as np

from .data.corpus import pair_count_bytes
from .data.tokenizers import TOKENIZERS
from .engine import GRAD_WORK, grad_rule, make_engine
from .model import INIT_DRAW_BYTES
from .utils.limits import check_memory

EVAL_POSITIONS_LIMIT = 10**10  # positions of one loss estimate, both splits
STEP_WORK_WARNING = 10**10  # elements of work of one training step
SNAPSHOT_BYTES_LIMIT = 64 * 2**20  # the tables a checkpoint keeps (and an explore page holds)


def check_text(path, tokenizer="char"):
    """Refuse a text file whose reading would need more memory than is available
    (tokenizer.bytes_per_byte of its size; tokenizer: a tokenizer or its name, None: char)."""
    if tokenizer is None or isinstance(tokenizer, str):
        tokenizer = TOKENIZERS[tokenizer or "char"]
    try:
        size = 0 if os.path.isdir(path) else os.stat(path).st_size
    except OSError:
        return  # reading it says why
    check_memory(f"reading {path}", [
        (f"its {size:,} bytes as text and int64 token ids", tokenizer.bytes_per_byte * size,
         f"prepare it once with `npbigram prepare --data {path} --out DIR`, which reads it in "
         f"bounded memory, then pass --data DIR (train, optimum and heatmap read the folder's "
         f"memory-mapped ids)")])


def check_training(config, vocab_size):
    """A run of `config` (a TrainConfig) on `vocab_size` tokens: its snapshots, memory and
    work."""
    check_snapshots(config, vocab_size)
    check_memory("training", training_memory(config, vocab_size))
    check_work(config, vocab_size)


def training_memory(config, vocab_size):
    """What training with `config` holds at its peak, by part, for check_memory.

    The model (weights, gradient, optimizer state) lives throughout, and from the first step on
    the engine keeps a step's batch arrays; besides them, one at a time: drawing the initial
    weights (a second table at most), an evaluation's batches, and the splits' pair counts
    with the float64 tables of the floor reported at the end (npbigram.tools.optimum)."""
    itemsize, engine = np.dtype(config.dtype).itemsize, make_engine(config.backend)
    tables = 2 + len(config.optimizer_state_names())  # weights, gradient, optimizer state
    vocabulary = f"use a text with fewer distinct tokens (this one has {vocab_size:,})"
    n_positions, batch_size = config.batch_size * config.block_size, config.batch_size
    parts = [(f"the {vocab_size:,}x{vocab_size:,} weights, gradient and optimizer state",
              tables * itemsize * vocab_size ** 2, vocabulary)]
    if not config.full_batch:
        steps = engine.steps_per_call(n_positions, vocab_size, config.grad)
        parts.append((f"training steps on batches of {n_positions:,} positions",
                      engine.batch_bytes(n_positions, vocab_size, itemsize, config.grad)
                      + 2 * 8 * steps * batch_size, "lower --batch-size or --block-size"))
    one_at_a_time = [
        ("drawing the initial weights", itemsize * vocab_size ** 2 + INIT_DRAW_BYTES, vocabulary),
        ("the pair counts of the splits",
         5 * 8 * vocab_size ** 2 + pair_count_bytes(vocab_size), vocabulary)]
    if config.eval == "estimate":
        batches = engine.batches_per_call(n_positions, vocab_size)
        one_at_a_time.append((
            f"evaluating {config.eval_iters:,} batches of {n_positions:,} positions",
            8 * config.eval_iters + 2 * 8 * batches * batch_size
            + engine.batch_bytes(n_positions, vocab_size, itemsize, None),
            "lower --eval-iters, --batch-size or --block-size"))
    if config.snapshots:
        parts.append((f"{config.snapshots:,} snapshots of the table",
                      snapshot_bytes(config, vocab_size), "lower --snapshots"))
    return [*parts, max(one_at_a_time, key=lambda part: part[1])]


def snapshot_bytes(config, vocab_size):
    """The bytes of the tables config.snapshots keeps: K x V x V x itemsize."""
    return config.snapshots * vocab_size ** 2 * np.dtype(config.dtype).itemsize


def check_snapshots(config, vocab_size):
    """Refuse snapshots whose tables would take more than SNAPSHOT_BYTES_LIMIT."""
    size = snapshot_bytes(config, vocab_size)
    if size > SNAPSHOT_BYTES_LIMIT:
        table = vocab_size ** 2 * np.dtype(config.dtype).itemsize
        raise ValueError(
            f"--snapshots {config.snapshots:,} would keep {config.snapshots:,} tables of "
            f"{vocab_size:,}x{vocab_size:,} {config.dtype} ({size / 2**20:,.1f} MiB) in the "
            f"checkpoint, more than its cap of {SNAPSHOT_BYTES_LIMIT / 2**20:g} MiB: use "
            f"--snapshots {SNAPSHOT_BYTES_LIMIT // table:,} or fewer")


def check_work(config, vocab_size):
    """Refuse an evaluation of more than EVAL_POSITIONS_LIMIT positions (--eval exact does the
    whole splits in O(V^2)), and warn of a training step of more than STEP_WORK_WARNING elements
    of work (its gradient method's GRAD_WORK)."""
    n_positions = config.batch_size * config.block_size
    if config.eval == "estimate":
        positions = 2 * config.eval_iters * n_positions
        if positions > EVAL_POSITIONS_LIMIT:
            raise ValueError(
                f"one evaluation would read {positions:,} positions (2 splits x --eval-iters "
                f"{config.eval_iters:,} x {config.batch_size:,} x {config.block_size:,}), more "
                f"than {EVAL_POSITIONS_LIMIT:,}: minutes of work at every --eval-interval; "
                f"lower --eval-iters, or use --eval exact (every pair, in O(V^2))")
    if not config.full_batch:
        work = {name: method_work(n_positions, vocab_size) for name, method_work in
                GRAD_WORK.items()}
        rule = grad_rule(config.grad)
        if work[rule] > STEP_WORK_WARNING:
            faster = min(work, key=work.get)
            advice = (f"--grad {faster} computes the same gradient in about "
                      f"{work[faster]:,.3g}" if work[faster] < work[rule] else
                      "lower --batch-size or --block-size")
            warnings.warn(f"each training step computes about {work[rule]:,.3g} "
                          f"entries ({n_positions:,} positions x {vocab_size:,} tokens), seconds "
                          f"of work a step: {advice}")


def check_gradcheck(vocab_size, n_positions):
    """The gradient check's largest arrays, all float64: W, its analytic and numeric gradients
    and their errors (V,V), and a forward pass's (N,V) logits, probabilities and dlogits."""
    check_memory("the gradient check", [
        (f"the {vocab_size:,}x{vocab_size:,} table, gradients and errors",
         8 * 8 * vocab_size ** 2, "lower vocab_size (or use a text with fewer characters)"),
        (f"a forward pass over {n_positions:,} positions", 6 * 8 * n_positions * vocab_size,
         "lower batch_size or block_size")])
