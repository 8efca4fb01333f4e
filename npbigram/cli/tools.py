"""The learning tools' subcommands: gradcheck, explain, heatmap, optimum, lecture, explore.
Each parses its arguments here and calls its library module (npbigram.tools)."""

import re
import sys
from pathlib import Path

import numpy as np

from .. import ops
from ..checkpoint import load_checkpoint
from ..data.corpus import DatasetError, encode_file, load_corpus, pair_counts
from ..data.prepared import load_training_data
from ..data.provenance import recorded_data
from ..preflight import check_text
from ..tools import explain, explore, gradcheck, lecture, optimum, plots
from ..tools.explain import token_labels
from ..utils.progress import terminal_bar
from .common import (
    CommandError,
    add_checkpoint_flag,
    add_tokenizer_flag,
    checkpoint_tokenizer,
    data_or_tinyshakespeare,
    in_flag_words,
    require_at_least,
)

# how gradient_check names its arguments in its errors -> the flags typed
GRADCHECK_FLAG_WORDS = {"vocab_size": "--vocab", "batch_size": "--batch-size",
                        "block_size": "--block-size"}


def quoted(raw):
    """Bytes as a Python string literal on one line: UTF-8 text, other bytes as \\xNN."""
    text = repr(raw.decode("utf-8", errors="surrogateescape"))
    # a stray byte is the lone surrogate \udcNN; an even run of backslashes before it is text
    return re.sub(r"(?<!\\)((?:\\\\)*)\\udc([89a-f][0-9a-f])", r"\1\\x\2", text)


def add_gradcheck_parser(sub):
    p = sub.add_parser(
        "gradcheck", help="check the hand-derived gradient against finite differences",
        description="Compare dL/dW from the hand-written backward pass with central finite "
                    "differences of the loss, in float64, for every entry of W. Exits with "
                    "status 1 when the largest relative error exceeds the threshold.")
    p.add_argument("--vocab", type=int, default=None, metavar="V",
                   help="vocabulary size of random data (default: 65, tinyshakespeare's)")
    p.add_argument("--batch-size", type=int, default=4, metavar="B",
                   help="sequences (default: 4)")
    p.add_argument("--block-size", type=int, default=8, metavar="T",
                   help="tokens each (default: 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of W and the batch (default: 0)")
    p.add_argument("--data", metavar="PATH",
                   help="take the batch from this text instead of random ids "
                        "(e.g. a copy of tinyshakespeare); its vocabulary sets V")
    add_tokenizer_flag(p, "with --data: char (default) or byte tokens")
    p.add_argument("--eps", type=float, default=gradcheck.DEFAULT_EPS,
                   help=f"finite-difference step (default: {gradcheck.DEFAULT_EPS:g})")
    p.add_argument("--threshold", type=float, default=gradcheck.DEFAULT_THRESHOLD,
                   help="largest acceptable relative error "
                        f"(default: {gradcheck.DEFAULT_THRESHOLD:g})")
    p.set_defaults(run=run_gradcheck)


def run_gradcheck(args):
    require_at_least(args.batch_size, "--batch-size", 1)
    require_at_least(args.block_size, "--block-size", 1)
    require_at_least(args.seed, "--seed", 0)
    if args.data is None:
        tokenizer, ids = None, None
        vocab_size = 65 if args.vocab is None else args.vocab
        source = f"random ids in [0, {vocab_size})"
    else:
        if args.vocab is not None:
            raise ValueError("--vocab sets the vocabulary of random data; with --data the "
                             "vocabulary is the text's")
        check_text(args.data, args.tokenizer)
        tokenizer, ids = load_corpus(args.data, args.tokenizer)
        vocab_size = tokenizer.vocab_size
        source = f"random windows of {args.data}"
    require_at_least(vocab_size, "--vocab", 1)
    with terminal_bar(total=vocab_size ** 2, desc="gradcheck", unit="entry",
                      unit_scale=True) as bar:
        with in_flag_words(GRADCHECK_FLAG_WORDS):
            result = gradcheck.gradient_check(vocab_size, args.batch_size, args.block_size,
                                              args.seed, data=ids, eps=args.eps,
                                              progress=bar.update)
    i, j = result.worst
    where = f"W[{i}, {j}]"
    if tokenizer is not None:
        labels = token_labels(tokenizer, sys.stdout.encoding)
        where += f" (current '{labels[i]}' -> next '{labels[j]}')"
    nonzero_rows = int(np.count_nonzero(np.any(result.analytic != 0, axis=1)))
    print(f"W: {vocab_size}x{vocab_size} float64, N(0,1) from seed {args.seed}; batch "
          f"B={args.batch_size} T={args.block_size} of {source}")
    print(f"loss {result.loss:.4f}; dL/dW is nonzero in the {nonzero_rows} rows the batch reads")
    print(f"fourth-order central differences with eps={result.eps:g} at all "
          f"{result.rel_error.size:,} entries")
    print(f"max relative error {result.max_rel_error:.2e} at {where}: analytic "
          f"{result.analytic[i, j]:.10e}, numeric {result.numeric[i, j]:.10e}")
    if not result.max_rel_error <= args.threshold:
        print(f"FAIL: above the threshold {args.threshold:g}")
        return 1
    print(f"OK: below the threshold {args.threshold:g}")
    return 0


def add_explain_parser(sub):
    p = sub.add_parser(
        "explain", help="show the loss position by position, and sampling step by step",
        description="For each position of TEXT: the current character, the next one, the "
                    "model's top next-character probabilities, p(next) and -ln p(next); then "
                    "their mean, the model's loss on TEXT. --grad shows the backward pass of "
                    "that loss instead; --generate N traces sampling.")
    p.add_argument("text", nargs="?", metavar="TEXT",
                   help="text to score (and, with --generate, to continue)")
    add_checkpoint_flag(p)
    p.add_argument("--top-k", type=int, default=explain.DEFAULT_TOP_K, metavar="K",
                   help=f"how many of the most likely next characters to show "
                        f"(default: {explain.DEFAULT_TOP_K}); sampling uses the full distribution")
    p.add_argument("--generate", type=int, default=0, metavar="N",
                   help="sample N characters after TEXT (or after the tokenizer's start: token 0 "
                        "for char, as bigram.py; a newline for byte) and show each step")
    p.add_argument("--seed", type=int, default=None, help="seed of the sampling")
    p.add_argument("--grad", action="store_true",
                   help="show the gradient of TEXT's loss: at one position the bars of p and of "
                        "dL/dz = p - onehot(next), then dL/dW in the rows TEXT read (a row read "
                        "by several positions gets the sum of their gradients)")
    p.add_argument("--position", type=int, default=None, metavar="T",
                   help="with --grad: the position whose p and p - onehot to show (default: 0)")
    p.add_argument("--out", metavar="PATH",
                   help="with --grad: also draw both pictures into this PNG file")
    p.set_defaults(run=run_explain)


def run_explain(args):
    require_at_least(args.top_k, "--top-k", 1)
    require_at_least(args.generate, "--generate", 0)
    require_at_least(args.seed, "--seed", 0)
    if not args.text and not args.generate:
        raise CommandError("give a TEXT to explain, --generate N to trace sampling, or both")
    for flag, given in (("--position", args.position is not None), ("--out", args.out)):
        if given and not args.grad:
            raise CommandError(f"{flag} belongs to --grad: add --grad to show the gradient")
    if args.grad and not args.text:
        raise CommandError("--grad shows the gradient of a TEXT's loss: give a TEXT")
    require_at_least(args.position, "--position", 0)
    if args.out is not None:
        plots.check_plot_path(args.out, "--out")
    checkpoint = load_checkpoint(args.checkpoint, backend="numpy")
    tokenizer = checkpoint_tokenizer(checkpoint, args.checkpoint, "its tokens cannot be shown")
    model = checkpoint.model
    labels = token_labels(tokenizer, sys.stdout.encoding)
    if args.text:
        ids = tokenizer.encode(args.text)
    else:
        ids = np.array([tokenizer.start_id], dtype=np.int64)
    if args.grad:
        explain_gradient(model, tokenizer, ids, labels, args)
    elif args.text and (len(ids) >= 2 or not args.generate):
        print(explain.format_explanation(explain.explain_text(model, ids), labels, args.top_k))
    if args.generate:
        if args.text:
            print()
        start = (repr(args.text) if args.text
                 else f"token {tokenizer.start_id} ({labels[tokenizer.start_id]})")
        seed = "unseeded" if args.seed is None else f"seed {args.seed}"
        print(f"sampling {args.generate} tokens after {start} ({seed})")
        steps = explain.trace_generation(model, ids, args.generate,
                                         np.random.default_rng(args.seed))
        print(explain.format_trace(steps, labels, args.top_k))
        drawn = np.array([step.drawn for step in steps], dtype=ids.dtype)
        print("text: " + quoted(tokenizer.decode_bytes(np.concatenate([ids, drawn]))))
    return 0


def explain_gradient(model, tokenizer, ids, labels, args):
    """explain --grad: the text's positions as one batch, the backward pass of its loss."""
    position = 0 if args.position is None else args.position
    logits = ops.embedding_forward(model.weight, ids[:-1])  # (T,C), the forward's lookup
    gradient = explain.explain_gradient(logits, ids[:-1], ids[1:])
    with in_flag_words({"position": "--position"}):
        print(explain.format_position_gradient(gradient, position, labels, args.top_k,
                                               sys.stdout.encoding))
    print()
    print(explain.format_batch_gradient(gradient, labels))
    if args.out is not None:
        plots.plot_gradient(gradient, position, token_labels(tokenizer), args.out)
        print(f"wrote {args.out}")


def add_heatmap_parser(sub):
    p = sub.add_parser(
        "heatmap", help="draw softmax(W) as a heatmap, optionally beside a text's counts",
        description="Draw the model's next-character probabilities softmax(W) as a VxV "
                    "heatmap with character labels. With --data, beside the count-based "
                    "probabilities C_ij / n_i of that text.")
    add_checkpoint_flag(p)
    p.add_argument("--out", required=True, metavar="PATH", help="PNG file to write")
    p.add_argument("--data", metavar="PATH",
                   help="text (or prepared folder) whose pair counts to show alongside")
    p.set_defaults(run=run_heatmap)


def run_heatmap(args):
    plots.check_plot_path(args.out, "--out")
    checkpoint = load_checkpoint(args.checkpoint, backend="numpy")
    tokenizer = checkpoint_tokenizer(checkpoint, args.checkpoint, "its tokens cannot be labeled")
    probs = ops.softmax(checkpoint.model.weight.astype(np.float64))  # (V,V)
    title = f"model {Path(args.checkpoint).name} (step {checkpoint.step}): softmax(W)"
    reference, reference_title = None, None
    if args.data is not None:
        reference = optimum.count_probs(text_counts(tokenizer, args.data))  # (V,V)
        reference_title = f"counts of {Path(args.data).name}: C_ij / n_i"
    plots.plot_heatmap(probs, token_labels(tokenizer), args.out, title=title,
                       reference=reference, reference_title=reference_title)
    print(f"wrote {args.out}")
    return 0


def text_counts(tokenizer, path):
    """The pair counts (V,V) of a text file under the checkpoint's tokenizer, or the sum of
    each split's counts of a prepared folder prepared with the same tokenizer."""
    if Path(path).is_dir():
        prepared, _, counts = load_training_data(path)
        if prepared.to_json() != tokenizer.to_json() or counts is None:
            raise ValueError(f"{path} holds no pair counts" if counts is None else
                             f"{path} was prepared with another vocabulary than the checkpoint's")
        return counts["train"] + counts["val"]
    check_text(path, tokenizer)
    ids = encode_file(tokenizer, path)
    if len(ids) < 2:
        raise ValueError(f"{path} holds {len(ids)} tokens: no pair to count")
    return pair_counts(ids, tokenizer.vocab_size)


def add_optimum_parser(sub):
    p = sub.add_parser("optimum", help="the lowest loss any bigram can reach on a text",
                       description="The floor of the train loss (the conditional entropy of the "
                                   "train split's character pairs) and the val loss of the "
                                   "add-k smoothed pair counts.")
    p.add_argument("--data", metavar="PATH",
                   help="text file or prepared folder "
                        "(default: tinyshakespeare, shipped in the package)")
    add_tokenizer_flag(p, default=None)
    p.add_argument("--k", type=float, default=optimum.DEFAULT_K,
                   help="add-k smoothing of the counts for the val loss "
                        f"(default: {optimum.DEFAULT_K:g})")
    p.set_defaults(run=run_optimum)


def run_optimum(args):
    data_path = data_or_tinyshakespeare(args.data)
    check_text(data_path, args.tokenizer)
    tokenizer, (train, val), counts = load_training_data(data_path, args.tokenizer)
    print(f"{data_path}: {len(train) + len(val):,} tokens, vocabulary {tokenizer.vocab_size}")
    if counts is None:
        counts = optimum.counted_splits(train, val, tokenizer.vocab_size)
    print(optimum.optimum_of_counts(counts["train"], counts["val"], k=args.k).report())
    return 0


def add_lecture_parser(sub):
    p = sub.add_parser(
        "lecture", help="the lecture's walkthrough with its numbers: batch, loss, generation",
        description="Replay the bigram part of \"Let's build GPT\" in its order, with PyTorch's "
                    "random numbers (no torch needed): the seed, a 4x8 batch, the untrained "
                    "model's logits and loss against ln V, the loss by hand, 100 generated "
                    "characters, and why feeding only the last token gives the same ones.")
    p.add_argument("--data", metavar="PATH",
                   help="the lecture's text (default: tinyshakespeare, shipped in the package)")
    p.set_defaults(run=run_lecture)


def run_lecture(args):
    data_path = data_or_tinyshakespeare(args.data)
    check_text(data_path)
    tokenizer, ids = load_corpus(data_path)
    walkthrough = lecture.walk(ids, tokenizer.vocab_size)
    for line in lecture.format_walkthrough(walkthrough, tokenizer):
        print(line)
    return 0


def add_explore_parser(sub):
    p = sub.add_parser(
        "explore", help="write an interactive page of a model, its batch, gradient and samples",
        description="Write one self-contained HTML page (no network access, opens from disk) "
                    "showing softmax(W) as a heatmap beside the counted probabilities, one "
                    "batch's forward and backward pass position by position, the training "
                    "curves (and the snapshots of train --snapshots), and sampling step by step.")
    add_checkpoint_flag(p)
    p.add_argument("--data", metavar="PATH",
                   help="text file or prepared folder whose train split gives the counts and "
                        "the batch (default: the data the checkpoint recorded, if unchanged)")
    p.add_argument("--out", required=True, metavar="PATH",
                   help="HTML file to write (replaces only a page npbigram explore wrote)")
    p.set_defaults(run=run_explore)


def run_explore(args):
    explore.check_page_path(args.out)
    checkpoint = load_checkpoint(args.checkpoint, backend="numpy")
    tokenizer = checkpoint_tokenizer(checkpoint, args.checkpoint, "its tokens cannot be labeled")
    data = args.data
    if data is None and checkpoint.data is not None:
        try:
            data = recorded_data(checkpoint.data, args.checkpoint)
        except DatasetError as e:
            print(f"{e}; the page shows no counts")
    if data is not None:
        check_text(data, tokenizer)
    batch = explore.write_page(args.out, checkpoint, tokenizer, Path(args.checkpoint).name, data)
    print(f"batch {batch.xb.shape}: {batch.about}; model(xb, yb) = {batch.loss:.4f}")
    print(f"wrote {args.out}: open it in a browser")
    return 0
