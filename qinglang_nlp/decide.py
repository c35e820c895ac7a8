"""The decision stage: model scores + lexicon evidence → labels and pass / review / block.

Rules (thresholds come from the model's ``config.json``, never from code):

- ``labels``: categories whose score reaches ``thresholds[c]``.
- ``block``: some score reaches ``decision.block[c]``.
- ``review``: some score reaches ``decision.review[c]``, or a lexicon hit of severity >= ``severe_hit``
  found in the text itself (``view`` ``"text"`` or ``"variant"``: the term as written, or a spelling
  the normaliser maps onto it, 約炮, 约pao, ＳＢ): a severe deny term forces human review even when the
  model is unsure. Allow-listed hits never reach this stage: the lexicon suppresses them.
- A hit found only through the pinyin view (``view == "pinyin"``: a homophone of the term, 月炮 or
  越跑 for 约炮, 表字 for 婊子) never forces review on its own. Everyday words collide with severe
  terms by sound (他越跑越快, 这款黑柜很好看), so such a hit is weaker evidence: it stays in the
  result's evidence (and in ``hit_features``), and the decision follows the model's scores.
- ``pass`` otherwise.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ModelLoadError
from .result import Span

__all__ = ["DecisionPolicy", "severe_hit"]


def severe_hit(span: Span, severity: int = 3) -> bool:
    """True when ``span`` is a lexicon hit that forces review on its own: severity >= ``severity``
    and found in the text itself, not only through the pinyin view (see the module docstring)."""
    return span.source == "lexicon" and (span.severity or 0) >= severity and span.view != "pinyin"


@dataclass(frozen=True)
class DecisionPolicy:
    """Thresholds per category for labels, review and block."""

    categories: tuple[str, ...]
    thresholds: dict[str, float]
    review: dict[str, float]
    block: dict[str, float]
    severe_hit: int = 3

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DecisionPolicy:
        cats = tuple(config["categories"])
        th = config.get("thresholds") or {}
        dec = config.get("decision") or {}
        review = dec.get("review") or th
        block = dec.get("block") or {}
        for name, table in (("thresholds", th), ("decision.review", review), ("decision.block", block)):
            missing = [c for c in cats if c not in table]
            if missing:
                raise ModelLoadError(f"model config: {name} has no value for {missing}")
            bad = [c for c in cats if not 0.0 <= float(table[c]) <= 1.0]
            if bad:
                raise ModelLoadError(f"model config: {name} for {bad} is outside [0, 1]")
        return cls(cats, {c: float(th[c]) for c in cats}, {c: float(review[c]) for c in cats},
                   {c: float(block[c]) for c in cats}, int(dec.get("severe_hit", 3)))

    def decide(self, scores: dict[str, float], hits: Sequence[Span] = ()) -> tuple[list[str], str]:
        """Return ``(labels, decision)``."""
        labels = [c for c in self.categories if scores[c] >= self.thresholds[c]]
        if any(scores[c] >= self.block[c] for c in self.categories):
            return labels, "block"
        if any(scores[c] >= self.review[c] for c in self.categories):
            return labels, "review"
        if any(severe_hit(h, self.severe_hit) for h in hits):
            return labels, "review"
        return labels, "pass"
