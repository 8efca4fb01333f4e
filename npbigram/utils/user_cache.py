"""npbigram's folder in the user's cache directory, the platform's place for files a program
can rebuild: $XDG_CACHE_HOME/npbigram (else ~/.cache/npbigram) on Linux and other POSIX
systems, ~/Library/Caches/npbigram on macOS, %LOCALAPPDATA%\\npbigram\\Cache on Windows."""

import os
import sys
from pathlib import Path


def user_cache_dir():
    """The folder (not created here)."""
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local"
        return Path(local) / "npbigram" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "npbigram"
    xdg = os.environ.get("XDG_CACHE_HOME")  # a relative one is ignored, as the spec says
    return (Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache") / "npbigram"
