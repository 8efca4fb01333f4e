"""`npbigram lecture`: the lecture's bigram walkthrough, with its numbers
(npbigram.tools.lecture)."""

from ..data.corpus import load_corpus
from ..data.download import DEFAULT_DATA_PATH
from ..preflight import check_text
from ..tools import lecture
from .common import data_or_tinyshakespeare


def add_lecture_parser(sub):
    p = sub.add_parser(
        "lecture", help="the lecture's walkthrough with its numbers: batch, loss, generation",
        description="Replay the bigram part of \"Let's build GPT\" in its order, with PyTorch's "
                    "random numbers (no torch needed): the seed, a 4x8 batch, the untrained "
                    "model's logits and loss against ln V, the loss by hand, 100 generated "
                    "characters, and why feeding only the last token gives the same ones.")
    p.add_argument("--data", metavar="PATH",
                   help=f"the lecture's text, tinyshakespeare (default: {DEFAULT_DATA_PATH}, "
                        "downloaded if missing)")
    p.set_defaults(run=run_lecture)


def run_lecture(args):
    data_path = data_or_tinyshakespeare(args.data)
    check_text(data_path)
    tokenizer, ids = load_corpus(data_path)
    walkthrough = lecture.walk(ids, tokenizer.vocab_size)
    for line in lecture.format_walkthrough(walkthrough, tokenizer):
        print(line)
    return 0
