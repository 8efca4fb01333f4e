"""`npbigram eval`: a checkpoint's exact loss on a text, over every pair, in nats and in bits
per character (per byte for a byte model), from the text's pair counts in O(V^2)."""

import math
import os

from .. import ops
from ..checkpoint import load_checkpoint
from ..data.corpus import encode_file, pair_counts, train_val_split
from ..data.provenance import recorded_data
from ..preflight import check_text
from .common import CommandError, add_checkpoint_flag, checkpoint_tokenizer


def add_eval_parser(sub):
    p = sub.add_parser(
        "eval", help="the exact loss of a checkpoint on a text, in nats and bits per character",
        description="The mean loss -ln p(next | current) over every pair of a text, in nats "
                    "and in bits per character (per byte for a byte model): of FILE, or of "
                    "each split (90/10) of the text the checkpoint was trained on.")
    add_checkpoint_flag(p)
    p.add_argument("--data", metavar="FILE",
                   help="text to evaluate on (default: each split of the checkpoint's own "
                        "data, checked unchanged)")
    p.set_defaults(run=run_eval)


def run_eval(args):
    checkpoint = load_checkpoint(args.checkpoint, backend="numpy")
    tokenizer = checkpoint_tokenizer(checkpoint, args.checkpoint, "it cannot read a text")
    if args.data is not None:
        path = args.data
        if os.path.isdir(path):
            raise CommandError(f"--data {path} is a folder: eval scores a text file")
    elif checkpoint.data is not None:
        path = recorded_data(checkpoint.data, args.checkpoint)
    else:
        raise CommandError(f"{args.checkpoint} does not record the text it was trained on: "
                           f"pass one with --data FILE")
    check_text(path, tokenizer)
    ids = encode_file(tokenizer, path)
    texts = ([("all", ids)] if args.data is not None
             else list(zip(("train", "val"), train_val_split(ids))))
    for name, ids in texts:
        if len(ids) < 2:
            text = path if name == "all" else f"the {name} split of {path}"
            raise CommandError(f"{text} holds {len(ids)} token{'s' * (len(ids) != 1)}: no pair "
                               f"to score (it needs at least 2)")
    print(f"{args.checkpoint} (step {checkpoint.step}) on {path}:")
    for name, ids in texts:
        counts = pair_counts(ids, tokenizer.vocab_size)
        nats = ops.loss_from_counts(checkpoint.model.weight, counts)
        print(f"{name + ':':<6} {nats:.4f} nats = {nats / math.log(2):.4f} bits per "
              f"{tokenizer.unit}, the mean over all {int(counts.sum()):,} pairs")
    return 0
