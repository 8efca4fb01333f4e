"""PyTorch interop: the model as bigram.py's state_dict, `{'token_embedding_table.weight': W}`.

torch is optional: it is imported inside the functions, and only they need it.
"""

import numpy as np

from .engine import DEFAULT_BACKEND
from .model import BigramLanguageModel
from .utils.checks import check_dtype

STATE_DICT_KEY = "token_embedding_table.weight"  # bigram.py's nn.Embedding(vocab_size, vocab_size)


def to_torch_state_dict(model):
    """{'token_embedding_table.weight': a copy of W as a tensor}, loadable by bigram.py."""
    torch = _import_torch()
    return {STATE_DICT_KEY: torch.tensor(model.weight)}


def from_torch_state_dict(state_dict, *, dtype=None, backend=DEFAULT_BACKEND):
    """A BigramLanguageModel holding a copy of bigram.py's state_dict weight, in `dtype`
    (float32 or float64; None: the tensor's, if one of these)."""
    torch = _import_torch()
    keys = set(state_dict)
    if keys != {STATE_DICT_KEY}:
        missing = sorted({STATE_DICT_KEY} - keys)
        unexpected = sorted(keys - {STATE_DICT_KEY})
        raise ValueError(f"not a bigram.py state_dict: it needs exactly the key {STATE_DICT_KEY!r} "
                         f"(missing {missing}, unexpected {unexpected})")
    tensor = state_dict[STATE_DICT_KEY]
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{STATE_DICT_KEY} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.ndim != 2 or tensor.shape[0] != tensor.shape[1] or tensor.shape[0] < 1:
        raise ValueError(f"{STATE_DICT_KEY} must be a square (V, V) table with V >= 1, "
                         f"got shape {tuple(tensor.shape)}")
    if dtype is None:
        if tensor.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{STATE_DICT_KEY} has dtype {tensor.dtype}: pass dtype=np.float32 "
                            "or np.float64 to convert it")
        dtype = np.float32 if tensor.dtype == torch.float32 else np.float64
    dtype = check_dtype(dtype)
    weight = tensor.detach().cpu().to(torch.float64).numpy().astype(dtype)  # a fresh array
    return BigramLanguageModel.from_weight(weight, backend=backend)


def _import_torch():
    try:
        import torch
    except ImportError:
        raise ImportError("PyTorch interop needs torch: pip install torch") from None
    return torch
