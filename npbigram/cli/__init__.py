"""The `npbigram` command: argument parsing and printing, one module per group of subcommands.
The work itself is done by the library (npbigram.run, .train, .model, and the learning tools).

Every failure is one line on stderr, never a traceback: 'npbigram: error: ...' and status 1;
Ctrl-C, SIGTERM or SIGHUP outside the training loop (which saves first) stops the command after
its cleanup, with status 130, 143 or 129 (npbigram.utils.stopping); a closed pipe on stdout
(`npbigram sample | head`) ends the command quietly.
"""

import argparse
import os
import signal
import sys
import warnings

from .. import __version__
from ..data.corpus import DatasetError
from ..tools.plots import MissingMatplotlib
from ..utils import stopping
from . import data, evaluation, export, process, tools, training
from .common import CommandError

SUBCOMMANDS = [training.add_train_parser, training.add_sample_parser,
               evaluation.add_eval_parser, export.add_export_parser, data.add_prepare_parser,
               tools.add_gradcheck_parser,
               tools.add_explain_parser, tools.add_heatmap_parser, tools.add_optimum_parser,
               tools.add_lecture_parser, tools.add_explore_parser]
EXIT_WITHOUT_TEARDOWN = ("train",)  # commands that start no thread or process of their own
# ImportError: an optional extra that a command needs (prepare --scheduler: dask), its message
# naming the extra
FAILURES = (CommandError, DatasetError, ValueError, TypeError, OSError, MissingMatplotlib,
            MemoryError, ImportError)


def main(argv=None):
    """Run the command `argv` (default: this process's arguments) and return its exit status.
    As the process's own command (npbigram.cli.process): once it is done, a late stop signal is
    ignored (it would otherwise interrupt Python's exit with a traceback), and after `train` the
    process exits without tearing its objects down."""
    parser = build_parser()
    args = parser.parse_args(argv)
    with stopping.raising(afterwards=signal.SIG_IGN if argv is None else None):
        status = _run(args)
    if argv is None and args.command in EXIT_WITHOUT_TEARDOWN:
        process.exit_now(status)
    return status


def _run(args):
    if hasattr(sys.stdout, "reconfigure"):  # a character the terminal cannot show: escaped
        sys.stdout.reconfigure(errors="backslashreplace")
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return args.run(args)
        except KeyboardInterrupt as e:
            signum = stopping.signal_of(e)
            print(f"npbigram: {stopping.describe(signum)}", file=sys.stderr)
            return stopping.exit_status(signum)
        except BrokenPipeError:
            _discard_stdout()
            return 141  # as a process that SIGPIPE ended
        except FAILURES as e:
            print(f"npbigram: error: {e}", file=sys.stderr)
            return 1


def build_parser():
    parser = argparse.ArgumentParser(
        prog="npbigram",
        description="Karpathy's bigram language model in NumPy, with hand-derived gradients.")
    parser.add_argument("--version", action="version", version=f"npbigram {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_parser in SUBCOMMANDS:
        add_parser(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"npbigram: warning: {message}", file=sys.stderr)


def _discard_stdout():
    """After the reader of stdout went away: send what is still buffered nowhere, so that
    Python's exit does not report the broken pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
