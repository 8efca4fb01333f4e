"""The checkpoint file: one .npz that plain `np.load(path, allow_pickle=False)` reads.

It holds named arrays and `meta`, a JSON string with the format's name and the list of the
arrays (so that a missing or renamed one is noticed). What goes into them is the model's and
the run's business (npbigram.model.save_checkpoint); this module only writes and reads.
Written atomically: a temporary file in the same folder, then a rename.
"""

import json
import zipfile

import numpy as np

from .files import atomic_output

FORMAT = "npbigram-checkpoint-1"
# what reading a damaged archive raises: zipfile says RuntimeError for an entry whose flags
# claim encryption, NotImplementedError for an unknown compression method
READ_ERRORS = (OSError, ValueError, EOFError, KeyError, RuntimeError, NotImplementedError,
               zipfile.BadZipFile)


def write_checkpoint(path, arrays, meta):
    """Write arrays (name -> ndarray) and meta (JSON-serializable dict) to `path`."""
    meta = {"format": FORMAT, **meta, "arrays": sorted(arrays)}
    text = json.dumps(meta)  # before the file is opened: an unserializable meta writes nothing
    with atomic_output(path, "the checkpoint") as f:
        np.savez(f, meta=np.array(text), **arrays)


def read_checkpoint(path):
    """(arrays, meta) of a checkpoint. A missing file raises FileNotFoundError; a truncated,
    corrupt or foreign one ValueError saying which."""
    with _open_npz(path) as npz:
        try:
            files = {key: npz[key] for key in npz.files}
        except READ_ERRORS as e:
            raise ValueError(f"{path} is not a readable npbigram checkpoint ({e})") from None
    meta = _parse_meta(path, files)
    if set(files) != set(meta["arrays"]):
        raise ValueError(f"{path} is not a valid npbigram checkpoint: it holds the arrays "
                         f"{sorted(files)}, its metadata lists {sorted(meta['arrays'])}")
    return files, meta


def read_meta(path):
    """The meta of a checkpoint, without reading its arrays (errors as read_checkpoint's)."""
    with _open_npz(path) as npz:
        try:
            files = {key: npz[key] for key in npz.files if key == "meta"}
        except READ_ERRORS as e:
            raise ValueError(f"{path} is not a readable npbigram checkpoint ({e})") from None
        files.update((key, None) for key in npz.files if key != "meta")
    return _parse_meta(path, files)


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
            raise ValueError("it is not an .npz (zip) archive")
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
