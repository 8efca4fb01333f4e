"""Fetch tinyshakespeare into this folder (what `npbigram train` does when the file is missing).

    python data/tinyshakespeare/prepare.py

Downloads the char-rnn copy that bigram.py names, checks its SHA-256 and writes input.txt
atomically. Offline, download it elsewhere and pass `npbigram train --data PATH`.
"""

import sys
from pathlib import Path

from npbigram import DatasetError, ensure_dataset, load_corpus

if __name__ == "__main__":
    path = Path(__file__).resolve().parent / "input.txt"
    try:
        ensure_dataset(path)
    except DatasetError as e:
        sys.exit(f"prepare.py: {e}")
    tokenizer, ids = load_corpus(path)
    print(f"{path}: {len(ids):,} characters, vocabulary of {tokenizer.vocab_size}")
