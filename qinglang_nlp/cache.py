"""Where derived tables are cached between processes: ``$QINGLANG_CACHE``, else ``$XDG_CACHE_HOME/qinglang_nlp``
(``~/.cache/qinglang_nlp``). Caches are an optimisation only: an unreadable or unwritable cache is never an error."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """The cache folder (it may not exist yet)."""
    env = os.environ.get("QINGLANG_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "qinglang_nlp"
