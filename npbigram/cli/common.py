"""What the subcommands share."""

from ..tokenizers import TOKENIZERS

TOKENIZER_HELP = ("char: sorted unique characters (default); byte: 256 byte values; a prepared "
                  "folder has its own")


class CommandError(Exception):
    """A user-facing failure: printed as 'npbigram: error: ...' with exit status 1."""


def add_tokenizer_flag(p, help_=TOKENIZER_HELP, default="char"):
    p.add_argument("--tokenizer", choices=tuple(TOKENIZERS), default=default, help=help_)
