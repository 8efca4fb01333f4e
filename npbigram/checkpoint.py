"""Checkpoints: one .npz that plain `np.load(path, allow_pickle=False)` reads.

Keys: `weight` (V,V); `meta` a JSON string (format, dtype, tokenizer, training config, step,
the batch generator's state, optimizer hyperparameters, the names of the arrays, so that a
missing or renamed one is noticed); `opt_m`, `opt_v` AdamW's moments.
Written atomically: a temporary file in the same folder, then a rename.
"""

import json
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .data import atomic_output, tokenizer_from_json
from .model import DEFAULT_BACKEND, BigramLanguageModel, check_dtype

FORMAT = "npbigram-checkpoint-1"


@dataclass
class Checkpoint:
    model: BigramLanguageModel
    tokenizer: object = None  # CharTokenizer, ByteTokenizer or None
    optimizer_state: dict = None  # for optimizer.load_state_dict, or None
    config: dict = field(default_factory=dict)  # training configuration
    step: int = 0  # training steps completed
    rng_state: dict = None  # numpy bit generator state of the batch sampler, or None


def save_checkpoint(path, model, *, tokenizer=None, optimizer=None, config=None, step=0,
                    rng=None):
    """Write model (and optionally tokenizer, optimizer, config, step, rng) to `path`."""
    meta = {
        "format": FORMAT,
        "vocab_size": model.vocab_size,
        "dtype": model.dtype.name,
        "tokenizer": tokenizer.to_json() if tokenizer is not None else None,
        "config": config or {},
        "step": int(step),
        "rng_state": rng.bit_generator.state if rng is not None else None,
        "optimizer": None,
    }
    arrays = {"weight": model.weight}
    if optimizer is not None:
        state = dict(optimizer.state_dict())
        for key in ("m", "v"):
            if key in state:
                arrays[f"opt_{key}"] = state.pop(key)
        meta["optimizer"] = state
    meta["arrays"] = sorted(arrays)
    with atomic_output(path) as f:
        np.savez(f, meta=np.array(json.dumps(meta)), **arrays)


def load_checkpoint(path, backend=DEFAULT_BACKEND):
    """Read a checkpoint; a missing, truncated, corrupt or foreign file raises ValueError."""
    try:
        if not zipfile.is_zipfile(path):  # np.load would try .npy and pickle, and say so
            open(path, "rb").close()  # a missing or unreadable file raises its own OSError
            raise ValueError("it is not an .npz (zip) archive")
        npz = np.load(path, allow_pickle=False)
        with npz:
            files = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise ValueError(f"checkpoint {path} does not exist") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise ValueError(f"{path} is not a readable npbigram checkpoint ({e})") from None
    if "weight" not in files or "meta" not in files:
        raise ValueError(f"{path} is not an npbigram checkpoint (it has keys {sorted(files)})")
    try:
        meta = json.loads(str(files["meta"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"unknown format {meta.get('format')!r}")
        if set(files) != {"meta", *meta["arrays"]}:
            raise ValueError(f"it holds the arrays {sorted(files)}, its metadata lists "
                             f"{sorted(meta['arrays'])}")
        weight = files["weight"]
        vocab_size = int(meta["vocab_size"])
        dtype = check_dtype(meta["dtype"])
        if weight.shape != (vocab_size, vocab_size) or weight.dtype != dtype:
            raise ValueError(f"weight is {weight.dtype} {weight.shape}, "
                             f"expected {dtype} ({vocab_size}, {vocab_size})")
        tokenizer = tokenizer_from_json(meta["tokenizer"]) if meta["tokenizer"] else None
        if tokenizer is not None and tokenizer.vocab_size != vocab_size:
            raise ValueError(f"tokenizer has {tokenizer.vocab_size} tokens, weight {vocab_size}")
        optimizer_state = meta["optimizer"]
        if optimizer_state is not None:
            for key in ("m", "v"):
                if f"opt_{key}" in files:
                    optimizer_state[key] = files[f"opt_{key}"]
        config, step, rng_state = dict(meta["config"]), int(meta["step"]), meta["rng_state"]
        model = BigramLanguageModel(vocab_size, dtype=dtype, backend=backend, init="zeros")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path} is not a valid npbigram checkpoint: {e}") from None
    model.weight = np.ascontiguousarray(weight)
    return Checkpoint(model=model, tokenizer=tokenizer, optimizer_state=optimizer_state,
                      config=config, step=step, rng_state=rng_state)
