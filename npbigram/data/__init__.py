"""The data pipeline: text to token ids, splits and batches, the prepared corpus folder, and
the default text, tinyshakespeare, shipped in the package."""

from .embedded import tinyshakespeare, tinyshakespeare_path

__all__ = ["tinyshakespeare", "tinyshakespeare_path"]
