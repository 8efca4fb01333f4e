"""Checkpoints: a model and its run in one .npz that plain `np.load(path, allow_pickle=False)`
reads: arrays `weight` (V,V), `opt_<name>` per optimizer state array, `snapshots` (K,V,V), and
`meta`, a JSON string of META_KEYS, the format's name and the list of the arrays (so that a
missing or renamed one is noticed). load_checkpoint also reads a model exported as safetensors.
"""

import json
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .data.safetensors_format import is_safetensors_file, read_safetensors
from .data.tokenizers import tokenizer_from_json
from .engine import DEFAULT_BACKEND
from .model import BigramLanguageModel
from .utils.checks import (
    check_count,
    check_dtype,
    check_non_negative,
    describe_nonfinite,
    nonfinite_rows,
)
from .utils.files import atomic_output

FORMAT = "npbigram-checkpoint-1"
META_KEYS = ("vocab_size", "dtype", "tokenizer", "config", "step", "rng_state", "optimizer",
             "data", "history", "elapsed", "snapshot_steps")  # what save_checkpoint writes
# what reading a damaged archive raises: zipfile says RuntimeError for an entry whose flags
# claim encryption, NotImplementedError for an unknown compression method
READ_ERRORS = (OSError, ValueError, EOFError, KeyError, RuntimeError, NotImplementedError,
               zipfile.BadZipFile)


@dataclass
class Checkpoint:
    model: BigramLanguageModel
    tokenizer: object = None  # a tokenizer of npbigram.data.tokenizers, or None
    optimizer_state: dict = None  # for optimizer.load_state_dict, or None
    config: dict = field(default_factory=dict)  # training configuration
    step: int = 0  # training steps completed
    rng_state: dict = None  # the batch generator's state (npbigram.randomness.streams), or None
    data: dict = None  # the data trained on: {"path", "size", "sha256"} (npbigram.data.provenance)
    # the evaluations, in step order: [{"step", "train", "val", "elapsed"}, ...]
    history: list = field(default_factory=list)
    elapsed: float = 0.0  # seconds the run had trained and evaluated when this was saved
    # the table at some evaluations (train --snapshots), in step order: [(step, (V,V)), ...]
    snapshots: list = field(default_factory=list)


def save_checkpoint(path, model, *, tokenizer=None, optimizer=None, config=None, step=0,
                    rng_state=None, data=None, history=(), elapsed=0.0, snapshots=()):
    """Write model and its run (the fields of Checkpoint) to `path`."""
    arrays = {"weight": model.weight}
    if snapshots:
        arrays["snapshots"] = np.stack([table for _, table in snapshots])  # (K,V,V)
    optimizer_meta = None
    if optimizer is not None:
        optimizer_meta = {}
        for name, value in optimizer.state_dict().items():
            if isinstance(value, np.ndarray):
                arrays[f"opt_{name}"] = value
            else:
                optimizer_meta[name] = value
    write_checkpoint(path, arrays, {
        "vocab_size": model.vocab_size,
        "dtype": model.dtype.name,
        "tokenizer": tokenizer.to_json() if tokenizer is not None else None,
        "config": config or {},
        "step": int(step),
        "rng_state": rng_state,
        "optimizer": optimizer_meta,
        "data": data,
        "history": [dict(evaluation) for evaluation in history],
        "elapsed": float(elapsed),
        "snapshot_steps": [int(step) for step, _ in snapshots],
    })


def check_history(history, step):
    """A checkpoint's evaluations: dicts of step, train, val (and elapsed), their steps rising
    within [0, step]."""
    history, previous = [dict(evaluation) for evaluation in history], -1
    for evaluation in history:
        at = check_count(evaluation["step"], "an evaluation's step")
        if not previous < at <= step:
            raise ValueError(f"the history's evaluation at step {at} is out of order (after "
                             f"step {previous}, at most step {step})")
        for name in ("train", "val"):
            check_non_negative(evaluation[name], f"the {name} loss at step {at}")
        previous = at
    return history


def load_checkpoint(path, backend=DEFAULT_BACKEND):
    """Read a checkpoint, or a model exported as safetensors (no optimizer or random state); a
    missing file raises FileNotFoundError, any other bad one ValueError."""
    arrays, meta = (read_safetensors if is_safetensors_file(path) else read_checkpoint)(path)
    try:
        missing = sorted(set(META_KEYS) - set(meta))
        if missing:
            raise ValueError(f"its metadata lacks {', '.join(missing)}")
        weight = arrays["weight"]
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
            optimizer_state = {**optimizer_state, **{
                name[len("opt_"):]: array for name, array in arrays.items()
                if name.startswith("opt_")}}
        config, rng_state, data = dict(meta["config"]), meta["rng_state"], meta["data"]
        step = check_count(meta["step"], "step")
        elapsed = check_non_negative(meta["elapsed"], "elapsed")
        history = check_history(meta["history"], step)
        snapshots = check_snapshots(arrays.get("snapshots"), meta["snapshot_steps"], weight, step)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path} is not a valid npbigram checkpoint: {e}") from None
    try:
        model = BigramLanguageModel.from_weight(weight, backend=backend)  # refused if not finite
        tables = [(f"the optimizer's {name} holds", table)
                  for name, table in (optimizer_state or {}).items()
                  if isinstance(table, np.ndarray) and table.ndim == 2]
        for subject, table in tables + [(f"the snapshot at step {at} holds", table)
                                        for at, table in snapshots]:
            rows = nonfinite_rows(table)
            if rows:
                raise ValueError(describe_nonfinite(table, rows, subject))
    except ValueError as e:
        raise ValueError(f"{path}: {e}: the checkpoint is damaged") from None
    return Checkpoint(model=model, tokenizer=tokenizer, optimizer_state=optimizer_state,
                      config=config, step=step, rng_state=rng_state, data=data, history=history,
                      elapsed=elapsed, snapshots=snapshots)


def check_snapshots(tables, steps, weight, step):
    """A checkpoint's snapshots [(step, table), ...] from its array (K,V,V) (or None) and
    their K steps, rising within [0, step]; each table of the weight's shape and dtype."""
    steps = [check_count(at, "a snapshot's step") for at in steps]
    shape = (len(steps), *weight.shape)
    if (tables is None) != (not steps) or (tables is not None and (
            tables.shape != shape or tables.dtype != weight.dtype)):
        found = "none" if tables is None else f"{tables.dtype} {tables.shape}"
        raise ValueError(f"snapshots are {found}, expected {weight.dtype} {shape}")
    if any(not a < b <= step for a, b in zip([-1, *steps], steps)):
        raise ValueError(f"the snapshots' steps {steps} are not rising within [0, {step}]")
    return list(zip(steps, tables)) if steps else []


def write_checkpoint(path, arrays, meta):
    """Write arrays (name -> ndarray) and meta (JSON-serializable dict) to `path`."""
    meta = {"format": FORMAT, **meta, "arrays": sorted(arrays)}
    text = json.dumps(meta)  # before the file is opened: an unserializable meta writes nothing
    with atomic_output(path, "the checkpoint") as f:
        np.savez(f, meta=np.array(text), **arrays)


def read_checkpoint(path, arrays=True):
    """(arrays, meta) of a checkpoint; arrays=False: (None, meta), its arrays unread."""
    with _open_npz(path) as npz:
        try:
            files = {key: npz[key] if arrays or key == "meta" else None for key in npz.files}
        except READ_ERRORS as e:
            raise ValueError(f"{path} is not a readable npbigram checkpoint ({e})") from None
    meta = _parse_meta(path, files)
    if arrays and set(files) != set(meta["arrays"]):
        raise ValueError(f"{path} is not a valid npbigram checkpoint: it holds the arrays "
                         f"{sorted(files)}, its metadata lists {sorted(meta['arrays'])}")
    return (files if arrays else None), meta


def read_meta(path):
    """The meta of a checkpoint, without reading its arrays (errors as read_checkpoint's)."""
    return read_checkpoint(path, arrays=False)[1]


def is_checkpoint(path):
    """Whether `path` is a file this format wrote (its meta says so)."""
    try:
        read_meta(path)
    except (OSError, ValueError):
        return False
    return True


def _open_npz(path):
    try:
        if not zipfile.is_zipfile(path):  # np.load would try .npy and pickle, and say so
            open(path, "rb").close()  # a missing or unreadable file raises its own OSError
            raise ValueError("it is not an .npz (zip) archive, nor a safetensors file")
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint {path} does not exist") from None
    except READ_ERRORS as e:
        raise ValueError(f"{path} is not a readable npbigram checkpoint ({e})") from None


def _parse_meta(path, files):
    """The JSON meta of a checkpoint's files (name -> array), which must hold weight and meta;
    removes meta from files."""
    if "weight" not in files or "meta" not in files:
        raise ValueError(f"{path} is not an npbigram checkpoint (it has keys {sorted(files)})")
    try:
        meta = json.loads(str(files.pop("meta")))
        if meta.get("format") != FORMAT:
            raise ValueError(f"unknown format {meta.get('format')!r}")
        meta["arrays"] = list(meta["arrays"])
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path} is not a valid npbigram checkpoint: {e}") from None
    return meta
