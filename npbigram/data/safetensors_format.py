"""A model in the ecosystem's format: one safetensors file holding bigram.py's state_dict,
`{'token_embedding_table.weight': W (V,V)}`, which `safetensors.torch.load_file` hands to
bigram.py's model as it is, and the tokenizer and the run as string metadata.

The metadata (dict[str, str]) holds the format's name under `npbigram`, the tokenizer's
to_json, and RUN_KEYS as JSON; no optimizer or random state. A file of bigram.py's weights that
another program wrote reads too, without a tokenizer. The safetensors package is optional.
"""

import json

from ..interop import STATE_DICT_KEY
from ..utils.files import atomic_write_bytes

FORMAT = "npbigram-safetensors-1"
FORMAT_KEY = "npbigram"
RUN_KEYS = ("config", "step", "data", "history", "elapsed")  # each stored as JSON
HEADER_LENGTH_BYTES = 8  # a safetensors file starts with its JSON header's length, u64 LE
INSTALL = "pip install 'npbigram[safetensors]'"


def safetensors_package(purpose):
    """The safetensors module, or an ImportError saying that `purpose` ("--out m.safetensors")
    needs it and how to install it."""
    try:
        import safetensors
        import safetensors.numpy
    except ImportError:
        raise ImportError(f"{purpose} needs the safetensors package: {INSTALL}") from None
    return safetensors


def is_safetensors_file(path):
    """Whether `path` starts as a safetensors file does: a header length that fits the file,
    then the header's JSON object. A file that cannot be read is not one."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER_LENGTH_BYTES + 1)
            size = f.seek(0, 2)
    except OSError:
        return False
    header_length = int.from_bytes(head[:HEADER_LENGTH_BYTES], "little")
    return (head[HEADER_LENGTH_BYTES:] == b"{"
            and header_length <= size - HEADER_LENGTH_BYTES)


def is_exported(path):
    """Whether `path` is a safetensors file that npbigram wrote (its metadata says so)."""
    if not is_safetensors_file(path):
        return False
    safetensors = safetensors_package(f"reading {path}")
    try:
        with safetensors.safe_open(path, framework="np") as f:
            return (f.metadata() or {}).get(FORMAT_KEY) == FORMAT
    except (safetensors.SafetensorError, OSError):
        return False


def write_safetensors(path, checkpoint, purpose=None):
    """Write the weight of `checkpoint` (npbigram.checkpoint.Checkpoint) under bigram.py's key,
    with its tokenizer and run as metadata, to `path` atomically."""
    safetensors = safetensors_package(purpose or f"writing {path}")
    metadata = {FORMAT_KEY: FORMAT, **{name: json.dumps(getattr(checkpoint, name))
                                       for name in RUN_KEYS}}
    if checkpoint.tokenizer is not None:
        metadata["tokenizer"] = checkpoint.tokenizer.to_json()
    payload = safetensors.numpy.save({STATE_DICT_KEY: checkpoint.model.weight}, metadata)
    atomic_write_bytes(path, payload, "the safetensors file")


def read_safetensors(path):
    """(arrays, meta) of a safetensors file, as load_checkpoint checks them: {"weight": W},
    its tokenizer and run (defaults for what the file lacks); a bad file raises ValueError."""
    safetensors = safetensors_package(f"reading {path} (a safetensors file)")
    try:
        with safetensors.safe_open(path, framework="np") as f:
            metadata, names = f.metadata() or {}, sorted(f.keys())
            if names != [STATE_DICT_KEY]:
                raise ValueError(f"it holds the tensors {names}, not bigram.py's one, "
                                 f"{STATE_DICT_KEY!r}")
            weight = f.get_tensor(STATE_DICT_KEY)
    except (safetensors.SafetensorError, TypeError, ValueError) as e:
        raise ValueError(f"{path} is not a readable model safetensors file ({e})") from None
    run = {}
    for name in RUN_KEYS:
        if name in metadata:
            try:
                run[name] = json.loads(metadata[name])
            except ValueError as e:
                raise ValueError(f"{path}: its metadata {name!r} is not JSON ({e})") from None
    meta = {"vocab_size": weight.shape[0] if weight.ndim else 0, "dtype": weight.dtype.name,
            "tokenizer": metadata.get("tokenizer"), "optimizer": None, "rng_state": None,
            "config": {}, "step": 0, "data": None, "history": [], "elapsed": 0.0,
            "snapshot_steps": [], **run}
    return {"weight": weight}, meta
