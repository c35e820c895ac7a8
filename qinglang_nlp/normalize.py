"""Normalisation of Chinese social text with an alignment back to the original.

PLACEHOLDER CONTRACT (to be completed by the normalisation work, issue 3): the public names and
signatures below are stable; the set of steps grows.
"""
from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["NormalizeConfig", "Normalized", "normalize"]


@dataclass(frozen=True)
class NormalizeConfig:
    """Named, individually switchable normalisation steps (saved in a model's config)."""

    nfkc: bool = True
    casefold: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "NormalizeConfig":
        if not d:
            return cls()
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown normalisation steps {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


class Normalized:
    """Normalised text plus, for every normalised character, its span ``(start, end)`` in the original."""

    __slots__ = ("original", "text", "alignments")

    def __init__(self, original: str, text: str, alignments: list[tuple[int, int]]):
        self.original = original
        self.text = text
        self.alignments = alignments

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map the normalised span ``[start, end)`` to a span of the original text."""
        if not (0 <= start <= end <= len(self.text)):
            raise ValueError(f"span {start}:{end} is outside the normalised text of length {len(self.text)}")
        if start == end:
            pos = self.alignments[start][0] if start < len(self.alignments) else len(self.original)
            return pos, pos
        return self.alignments[start][0], self.alignments[end - 1][1]

    def __repr__(self) -> str:
        return f"Normalized({self.text!r})"


def normalize(text: str, config: NormalizeConfig | dict | None = None) -> Normalized:
    """Normalise ``text``; see ``NormalizeConfig`` for the steps."""
    if not isinstance(text, str):
        raise TypeError(f"normalize() expects str, got {type(text).__name__}")
    cfg = config if isinstance(config, NormalizeConfig) else NormalizeConfig.from_dict(config)
    out: list[str] = []
    align: list[tuple[int, int]] = []
    for i, ch in enumerate(text):
        t = unicodedata.normalize("NFKC", ch) if cfg.nfkc else ch
        if cfg.casefold:
            t = t.casefold()
        for c in t:
            out.append(c)
            align.append((i, i + 1))
    return Normalized(text, "".join(out), align)
