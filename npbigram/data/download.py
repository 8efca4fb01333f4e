"""The default dataset, tinyshakespeare: downloaded once, checked against its SHA-256, and
written atomically."""

import hashlib
from pathlib import Path

from ..utils.files import atomic_write_bytes
from .corpus import DatasetError

TINYSHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
TINYSHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
DEFAULT_DATA_PATH = Path("data") / "tinyshakespeare" / "input.txt"


def ensure_dataset(path=DEFAULT_DATA_PATH, url=TINYSHAKESPEARE_URL,
                   sha256=TINYSHAKESPEARE_SHA256, timeout=30):
    """Return `path`, downloading it from `url` first if it does not exist."""
    path = Path(path)
    if not path.exists():
        download(url, path, sha256, timeout=timeout)
    return path


def download(url, dest, sha256, timeout=30):
    """Fetch `url`, check its SHA-256, and write it to `dest` atomically."""
    # imported here, not at the top: only a download pays for loading urllib and ssl
    import http.client
    import urllib.error
    import urllib.request

    dest = Path(dest)
    hint = f"download it yourself from {url} and pass --data PATH"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            payload = response.read()
    except urllib.error.HTTPError as e:
        raise DatasetError(f"could not download {url}: HTTP {e.code} {e.reason}; {hint}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise DatasetError(f"could not download {url} ({reason}); are you offline? {hint}") from None
    digest = hashlib.sha256(payload).hexdigest()
    if digest != sha256:
        raise DatasetError(
            f"downloaded {url} but its SHA-256 is {digest}, expected {sha256}; "
            f"nothing was written; {hint}"
        )
    atomic_write_bytes(dest, payload)
    return dest
