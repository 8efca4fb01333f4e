"""What a run was trained on: a data file's absolute path, size and SHA-256, recorded in its
checkpoints, so that resuming and evaluating find the same text or say that it changed."""

import hashlib
from pathlib import Path

from .corpus import DatasetError
from .prepared import meta_path

CHUNK_BYTES = 1 << 20


def describe_file(path):
    """{"path": absolute path, "size": bytes, "sha256": hex digest} of a file; of a folder that
    npbigram prepare wrote, those of its meta.json (which holds every source's SHA-256)."""
    if Path(path).is_dir():
        return {**describe_file(meta_path(path)), "path": str(Path(path).resolve())}
    path = Path(path).resolve()
    digest, size = hashlib.sha256(), 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror or e}") from None
    return {"path": str(path), "size": size, "sha256": digest.hexdigest()}


def recorded_data(record, checkpoint_name, given=None):
    """The path of the data a checkpoint recorded, checked unchanged: `given` (a path the user
    named instead, e.g. a copy) or the recorded path. Raises DatasetError saying what differs."""
    path = Path(given) if given is not None else Path(record["path"])
    if given is None and not path.exists():
        raise DatasetError(f"{checkpoint_name} was trained on {path}, which no longer exists: "
                           f"pass --data PATH to a copy of it")
    actual = describe_file(path)
    if (actual["size"], actual["sha256"]) != (record["size"], record["sha256"]):
        raise DatasetError(
            f"{path} is not the text {checkpoint_name} was trained on ({record['path']}: "
            f"{record['size']:,} bytes, SHA-256 {record['sha256'][:16]}; this file: "
            f"{actual['size']:,} bytes, SHA-256 {actual['sha256'][:16]}): use the same text")
    return path
