"""Overlapping windows over long texts, cut on sentence boundaries, with character offsets.

A WeChat article runs to thousands of characters while the encoder reads a few hundred tokens. The text is
cut after sentence-ending punctuation (。！？；… and line breaks); consecutive sentences are packed into
windows of at most ``max_cost`` (tokens, or characters by default), and each window starts early enough to
share about ``overlap`` with the previous one, so a statement that straddles a cut is still read whole once.
A sentence longer than a window is cut at a comma, else at a hard position. Every character of the text lies
in at least one window, and windows are ``(start, end)`` character offsets into the text they were cut from,
so evidence found in a window maps straight back to it.
"""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence

__all__ = ["sentence_bounds", "split_windows", "token_cost"]

# a sentence ends after a run of these, plus any closing quotes/brackets that follow
_SENT_END = re.compile(r"(?:[。！？!?；;…]+|\.(?=\s)|\n+)[”’」』》）)\]】\"']*")
_SOFT_END = re.compile(r"[，,、：:\s]+")


def sentence_bounds(text: str) -> list[int]:
    """Offsets where a sentence ends (exclusive ends), increasing, always ending with ``len(text)``."""
    bounds = [m.end() for m in _SENT_END.finditer(text)]
    if not bounds or bounds[-1] != len(text):
        bounds.append(len(text))
    return [b for b in bounds if b > 0] or [len(text)]


def token_cost(starts: Sequence[int]) -> Callable[[int, int], int]:
    """Cost function counting tokens whose first character lies in ``[start, end)``.

    ``starts`` are the (sorted) character offsets where the tokens of the whole text begin.
    """
    def cost(start: int, end: int) -> int:
        return bisect_left(starts, end) - bisect_left(starts, start)
    return cost


def _char_cost(start: int, end: int) -> int:
    return end - start


def _cut_long(text: str, start: int, end: int, max_cost: int, cost: Callable[[int, int], int]) -> list[int]:
    """Cut points (exclusive ends) inside a too-long sentence: at soft punctuation if possible, else hard."""
    cuts: list[int] = []
    soft = [m.end() for m in _SOFT_END.finditer(text, start, end)]
    pos = start
    while cost(pos, end) > max_cost:
        # furthest end whose cost fits, found by bisection over character positions
        lo, hi = pos + 1, end
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if cost(pos, mid) <= max_cost:
                lo = mid
            else:
                hi = mid - 1
        fit = lo
        i = bisect_right(soft, fit) - 1
        cut = soft[i] if i >= 0 and soft[i] > pos + (fit - pos) // 2 else fit
        cuts.append(cut)
        pos = cut
    cuts.append(end)
    return cuts


def split_windows(text: str, max_cost: int, overlap: int = 0,
                  cost: Callable[[int, int], int] | None = None) -> list[tuple[int, int]]:
    """Cut ``text`` into windows ``(start, end)`` of at most ``max_cost`` each, overlapping by about ``overlap``.

    ``cost(start, end)`` measures a span (default: characters; use :func:`token_cost` for tokens). Windows
    start and end on sentence boundaries except inside a sentence longer than ``max_cost``. A text that fits
    is one window ``(0, len(text))``; an empty text gives ``[(0, 0)]``.
    """
    if max_cost < 1:
        raise ValueError(f"max_cost must be at least 1, got {max_cost}")
    if not 0 <= overlap < max_cost:
        raise ValueError(f"overlap must be in [0, max_cost={max_cost}), got {overlap}")
    cost = cost or _char_cost
    n = len(text)
    if cost(0, n) <= max_cost:
        return [(0, n)]
    # units: sentences, with over-long ones cut further; each fits in one window on its own
    ends: list[int] = []
    prev = 0
    for b in sentence_bounds(text):
        ends.extend(_cut_long(text, prev, b, max_cost, cost) if cost(prev, b) > max_cost else [b])
        prev = b
    starts = [0] + ends[:-1]
    windows: list[tuple[int, int]] = []
    i = 0
    while True:
        j = i  # last unit included
        while j + 1 < len(ends) and cost(starts[i], ends[j + 1]) <= max_cost:
            j += 1
        windows.append((starts[i], ends[j]))
        if j == len(ends) - 1:
            return windows
        # next window: earliest unit after i whose tail up to ends[j] costs at most `overlap`, while
        # still leaving room for the next new unit (so every window makes progress)
        k = j + 1
        while (k - 1 > i and cost(starts[k - 1], ends[j]) <= overlap
               and cost(starts[k - 1], ends[j + 1]) <= max_cost):
            k -= 1
        i = k
