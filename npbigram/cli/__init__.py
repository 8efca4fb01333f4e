"""The `npbigram` command: argument parsing and printing, one module per group of subcommands.
The work itself is done by the library (npbigram.run, .train, .model, and the learning tools)."""

import argparse
import sys

from ..corpus import DatasetError
from ..plots import MissingMatplotlib
from . import data, lecture, tools, training
from .common import CommandError

SUBCOMMANDS = [training.add_train_parser, training.add_sample_parser, tools.add_gradcheck_parser,
               tools.add_explain_parser, tools.add_heatmap_parser, tools.add_optimum_parser,
               lecture.add_lecture_parser, data.add_prepare_parser]


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (CommandError, DatasetError, ValueError, TypeError, OSError, MissingMatplotlib,
            ImportError) as e:
        print(f"npbigram: error: {e}", file=sys.stderr)
        return 1


def build_parser():
    parser = argparse.ArgumentParser(
        prog="npbigram",
        description="Karpathy's bigram language model in NumPy, with hand-derived gradients.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_parser in SUBCOMMANDS:
        add_parser(sub)
    return parser
