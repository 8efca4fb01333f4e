"""Draw the pictures of docs/gradients.md: the gradient of the lecture's first batch.

    python docs/pictures.py [--data PATH] [--out-dir DIR]

The lecture's first batch (4 sequences of 8 characters from torch.manual_seed(1337)) and its
model at initialisation (W ~ N(0,1) from the same seed), as `npbigram lecture` shows them:

    grad_position.png   position 0: the bars of p and of p - onehot(next)
    grad_batch.png      dL/dW in the rows the 32 positions read, the repeated ones marked

Needs matplotlib (the plot extra) and tinyshakespeare (downloaded when missing, as `npbigram
train` does). Writes beside this script unless --out-dir says otherwise; a file there that is
not a PNG image is never replaced.
"""

import argparse
from pathlib import Path

from npbigram.cli.common import data_or_tinyshakespeare
from npbigram.data.corpus import load_corpus
from npbigram.tools import plots
from npbigram.tools.explain import explain_gradient, token_labels
from npbigram.tools.lecture import walk

POSITION = 0  # xb[0, 0] = 'L', scored on 'e'
PICTURES = ("grad_position.png", "grad_batch.png")


def draw(data, out_dir):
    """Write the pictures into out_dir; returns their paths."""
    tokenizer, ids = load_corpus(data_or_tinyshakespeare(data))
    lecture = walk(ids, tokenizer.vocab_size)
    gradient = explain_gradient(lecture.logits, lecture.xb, lecture.yb)
    labels = token_labels(tokenizer)
    position_path, batch_path = (Path(out_dir) / name for name in PICTURES)
    plots.plot_position_gradient(gradient, POSITION, labels, position_path)
    plots.plot_batch_gradient(gradient, labels, batch_path)
    return position_path, batch_path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", metavar="PATH", help="tinyshakespeare's input.txt")
    parser.add_argument("--out-dir", default=Path(__file__).resolve().parent, metavar="DIR",
                        help="folder to write the PNG files into (default: docs/)")
    args = parser.parse_args(argv)
    for path in draw(args.data, args.out_dir):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
