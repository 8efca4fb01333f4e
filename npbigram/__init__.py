"""npbigram: the bigram language model of Karpathy's "Let's build GPT", in NumPy, by hand."""

__version__ = "0.2.0"  # the one place: setup.cfg and `npbigram --version` read it

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .data.corpus import DatasetError, get_batch, load_corpus, train_val_split
from .data.tokenizers import ByteTokenizer, CharTokenizer
from .model import BigramLanguageModel
from .optim import SGD, AdamW
from .tools.explain import explain_text, trace_generation
from .tools.gradcheck import check_gradient, gradient_check
from .tools.optimum import bigram_optimum, count_probs, floor_loss
from .tools.plots import plot_heatmap, plot_losses
from .train import TrainConfig, Trainer

__all__ = [
    "AdamW", "BigramLanguageModel", "ByteTokenizer", "CharTokenizer", "Checkpoint",
    "DatasetError", "SGD", "TrainConfig", "Trainer", "get_batch",
    "load_checkpoint", "load_corpus", "save_checkpoint", "train_val_split",
    "bigram_optimum", "check_gradient", "count_probs", "explain_text", "floor_loss",
    "gradient_check", "plot_heatmap", "plot_losses", "trace_generation",
]
