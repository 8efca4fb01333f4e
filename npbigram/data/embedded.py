"""tinyshakespeare, the lecture's text, shipped inside the package (xz-compressed, the
char-rnn copy that bigram.py downloads), so that the default job needs no network and no file
of the user's. It is checked against its SHA-256 whenever it is read.

    text = npbigram.data.tinyshakespeare()        # the text, a str
    path = npbigram.data.tinyshakespeare_path()   # a file holding it, for --data-style callers
"""

import hashlib
import lzma
from pathlib import Path

from ..utils.files import atomic_write_bytes
from ..utils.user_cache import user_cache_dir
from .corpus import DatasetError

TINYSHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TINYSHAKESPEARE_SOURCE = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
PACKAGED = Path(__file__).resolve().parent / "tinyshakespeare.txt.xz"


def tinyshakespeare_bytes():
    """The text's UTF-8 bytes, decompressed from the package and checked against its SHA-256
    (a DatasetError, saying to reinstall, if the package's copy is damaged)."""
    try:
        payload = lzma.decompress(PACKAGED.read_bytes())
    except (OSError, lzma.LZMAError) as e:
        raise DatasetError(f"cannot read the packaged tinyshakespeare {PACKAGED} ({e}); "
                           f"reinstall npbigram") from None
    digest = hashlib.sha256(payload).hexdigest()
    if digest != TINYSHAKESPEARE_SHA256:
        raise DatasetError(f"the packaged tinyshakespeare {PACKAGED} has SHA-256 {digest}, "
                           f"expected {TINYSHAKESPEARE_SHA256}; reinstall npbigram")
    return payload


def tinyshakespeare():
    """tinyshakespeare's text (1,115,394 characters, 65 distinct), checked."""
    return tinyshakespeare_bytes().decode("utf-8")


def tinyshakespeare_path():
    """A file holding the checked text: tinyshakespeare/input.txt in npbigram's folder of the
    user's cache directory, written atomically from the package's copy when it is missing or
    differs from it. The commands read it when --data is not given."""
    path = user_cache_dir() / "tinyshakespeare" / "input.txt"
    try:
        if hashlib.sha256(path.read_bytes()).hexdigest() == TINYSHAKESPEARE_SHA256:
            return path
    except OSError:
        pass  # missing or unreadable: written afresh
    try:
        atomic_write_bytes(path, tinyshakespeare_bytes(), "tinyshakespeare")
    except OSError as e:
        raise DatasetError(f"{e.strerror or e}; pass --data PATH, a copy of tinyshakespeare "
                           f"(npbigram.data.tinyshakespeare() returns its text)") from None
    return path
