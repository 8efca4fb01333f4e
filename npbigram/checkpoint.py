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


def write_checkpoint(path, arrays, meta):
    """Write arrays (name -> ndarray) and meta (JSON-serializable dict) to `path`."""
    meta = {"format": FORMAT, **meta, "arrays": sorted(arrays)}
    text = json.dumps(meta)  # before the file is opened: an unserializable meta writes nothing
    with atomic_output(path) as f:
        np.savez(f, meta=np.array(text), **arrays)


def read_checkpoint(path):
    """(arrays, meta) of a checkpoint; a missing, truncated, corrupt or foreign file raises
    ValueError saying which."""
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
        meta = json.loads(str(files.pop("meta")))
        if meta.get("format") != FORMAT:
            raise ValueError(f"unknown format {meta.get('format')!r}")
        if set(files) != set(meta["arrays"]):
            raise ValueError(f"it holds the arrays {sorted(files)}, its metadata lists "
                             f"{sorted(meta['arrays'])}")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path} is not a valid npbigram checkpoint: {e}") from None
    return files, meta
