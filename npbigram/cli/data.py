"""`npbigram prepare`: tokenize a corpus once into a folder that train, optimum and heatmap
read through memory maps."""

from ..utils.progress import terminal_bar
from .common import add_tokenizer_flag


def add_prepare_parser(sub):
    p = sub.add_parser(
        "prepare", help="tokenize a corpus once into train.bin/val.bin and pair counts",
        description="Stream FILE (or every file a GLOB matches, in sorted order, as one text) "
                    "into DIR: train.bin and val.bin (token ids, nanoGPT's format, in the "
                    "narrowest unsigned type), each split's pair counts and meta.json. "
                    "`npbigram train --data DIR` then trains from memory-mapped tokens.")
    p.add_argument("--data", required=True, metavar="FILE|GLOB",
                   help="text file, or a quoted glob pattern such as 'shards/*.txt'")
    add_tokenizer_flag(p, "char: sorted unique characters of the whole corpus (default); "
                          "byte: 256 byte values")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the tokenizing and counting as tasks on this Dask scheduler "
                        "(tcp://host:port; needs the dask extra: pip install -e '.[dask]'); "
                        "the output is identical to a local run's")
    p.add_argument("--force", action="store_true",
                   help="replace a prepared corpus of other sources that DIR holds")
    p.set_defaults(run=run_prepare)


def run_prepare(args):
    from ..data.prepare import prepare  # imports the numba engine's count kernels

    meta = prepare(args.data, args.out, args.tokenizer, scheduler=args.scheduler,
                   progress=terminal_bar, force=args.force)
    tokens = meta["tokens"]
    print(f"{args.out}: {len(meta['sources'])} file(s), {tokens['train'] + tokens['val']:,} "
          f"tokens ({tokens['train']:,} train, {tokens['val']:,} val) as {meta['dtype']}, "
          f"vocabulary {meta['vocab_size']}")
    return 0
