"""`npbigram explore`: the interactive page of a checkpoint (npbigram.tools.explore)."""

from pathlib import Path

from ..checkpoint import load_checkpoint
from ..data.corpus import DatasetError
from ..data.provenance import recorded_data
from ..preflight import check_text
from ..tools import explore
from .common import add_checkpoint_flag, checkpoint_tokenizer


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
