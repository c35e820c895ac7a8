"""Pausing the cyclic garbage collector around bulk work, safely across threads.

Building many small acyclic objects (spans, per-text lists) sets off collections that traverse the caller's
whole heap, so the hot loops pause the collector. The collector is process-wide: two threads that each read
``gc.isenabled()``, disable it and later restore what they read can leave it off for good (one reads the other's
pause as the caller's setting). Here every pause is counted under a lock: the first records the collector's state
and turns it off, the last puts back what the first recorded, and nested or concurrent pauses in between change
nothing.
"""
from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0  # pauses in progress, all threads together
_was_enabled = False  # the collector's state when the outermost pause began


def pause() -> None:
    """Pause the collector (until the matching ``resume``)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1


def resume() -> None:
    """End one ``pause``; the last one puts the collector back as the first found it."""
    global _depth
    with _lock:
        if _depth == 0:
            raise RuntimeError("resume() without a matching pause()")
        _depth -= 1
        if _depth == 0 and _was_enabled:
            gc.enable()


def _reset_in_child() -> None:
    """After a fork: a fresh lock (another thread may have held this one at the fork) and no pause in progress
    (the child runs only its own work; it keeps the collector state it was forked with)."""
    global _lock, _depth
    _lock = threading.Lock()
    _depth = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)


@contextmanager
def paused() -> Iterator[None]:
    """``with paused(): ...``: ``pause`` on entry, ``resume`` on exit."""
    pause()
    try:
        yield
    finally:
        resume()
