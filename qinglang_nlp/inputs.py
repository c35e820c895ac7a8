"""Validation of text entering the library: one place, messages that name the item and the problem."""
from __future__ import annotations

import re
from typing import Any

__all__ = ["DEFAULT_MAX_CHARS", "check_text"]

DEFAULT_MAX_CHARS = 200_000
_SURROGATE = re.compile("[\ud800-\udfff]")


def _where(index: Any) -> str:
    return "text" if index is None else f"item {index!r}"


def check_text(text: Any, *, index: Any = None, max_chars: int | None = DEFAULT_MAX_CHARS) -> str:
    """Return ``text`` if it is a scorable ``str``; raise ``TypeError``/``ValueError`` naming the problem.

    Empty and whitespace-only strings are valid (they score as all-zero). ``max_chars=None`` disables the
    length check; callers that prefer truncation check the length themselves.
    """
    if not isinstance(text, str):
        raise TypeError(f"{_where(index)}: expected str, got {type(text).__name__}")
    if "\x00" in text:
        raise ValueError(f"{_where(index)}: contains a NUL character at position {text.index(chr(0))}")
    m = _SURROGATE.search(text)
    if m:
        raise ValueError(
            f"{_where(index)}: contains a lone surrogate U+{ord(m.group()):04X} at position {m.start()} "
            "(not valid Unicode; decode the source with errors='replace')"
        )
    if max_chars is not None and len(text) > max_chars:
        raise ValueError(
            f"{_where(index)}: {len(text):,} characters exceeds max_chars={max_chars:,} "
            "(raise max_chars or use on_long='truncate')"
        )
    return text
