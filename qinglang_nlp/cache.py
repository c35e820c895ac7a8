"""Where derived tables are cached between processes: ``$QINGLANG_CACHE``, else ``$XDG_CACHE_HOME/qinglang_nlp``
(``~/.cache/qinglang_nlp``). Caches are an optimisation only: an unreadable or unwritable cache is never an error."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["cache_dir", "write_atomic"]


def cache_dir() -> Path:
    """The cache folder (it may not exist yet)."""
    env = os.environ.get("QINGLANG_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "qinglang_nlp"


def write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> bool:
    """Write a cache file through ``write(fh)`` into a temporary file next to ``path``, then rename it into place
    (readers never see half a file). Returns whether it was written; an ``OSError`` only means no cache."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.stem}.", suffix=".tmp" + path.suffix)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
        tmp = None
        return True
    except OSError:
        return False
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
