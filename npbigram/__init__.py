"""npbigram: the bigram language model of Karpathy's "Let's build GPT", in NumPy, by hand."""

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .data import (ByteTokenizer, CharTokenizer, DatasetError, ensure_dataset, get_batch,
                   load_corpus, train_val_split)
from .model import BigramLanguageModel
from .optim import SGD, AdamW
from .train import TrainConfig, Trainer

__all__ = [
    "AdamW", "BigramLanguageModel", "ByteTokenizer", "CharTokenizer", "Checkpoint",
    "DatasetError", "SGD", "TrainConfig", "Trainer", "ensure_dataset", "get_batch",
    "load_checkpoint", "load_corpus", "save_checkpoint", "train_val_split",
]
