"""The classifier stage: a ``Classifier`` turns normalised texts into per-category probabilities.

Each model kind (``baseline``, ``onnx``, ``stacked``) registers a loader; ``load_classifier`` picks it from the
model's ``config.json``. Kinds are imported lazily, so the baseline never imports onnxruntime.

Titles (issue #6): a classifier whose ``predict_scores`` takes ``titles=`` (one ``str | None`` per text; the ONNX
and stacked kinds) reads each title next to its body, in front of every window; one that does not (the
baseline) is given ``title + "\\n" + text`` (:func:`join_titles`).
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import ModelLoadError
from .modelio import verify_manifest

__all__ = ["KINDS", "Classifier", "ModelSpan", "check_titles", "join_titles", "load_classifier", "takes_titles"]

# kind -> "module:Class" whose ``from_dir(path, config)`` builds the classifier
KINDS: dict[str, str] = {
    "baseline": "qinglang_nlp.baseline:BaselineClassifier",
    "onnx": "qinglang_nlp.onnx_classifier:OnnxClassifier",
    "stacked": "qinglang_nlp.stacked:StackedClassifier",
}

# (start, end, category, score) on the text given to the classifier (normalised text)
ModelSpan = tuple[int, int, str, float]


@runtime_checkable
class Classifier(Protocol):
    """Scores normalised texts. Must be safe to call from several threads at once."""

    categories: tuple[str, ...]

    def predict_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities, shape ``(len(texts), len(categories))``, each in [0, 1]."""
        ...


def check_titles(titles: Any, n: int | None) -> list[str | None] | None:
    """``titles`` as a list of ``str | None``, one per text; ``None`` stays ``None``. Raises ``ValueError`` when
    there are not ``n`` of them (``n=None``: any number) and ``TypeError`` naming the first item that is neither
    ``str`` nor ``None``."""
    if titles is None:
        return None
    if isinstance(titles, (str, bytes)):
        raise TypeError("titles must be a sequence of str | None (one per text), not a single str/bytes")
    try:
        titles = list(titles)
    except TypeError:
        raise TypeError(f"titles must be a sequence of str | None, got {type(titles).__name__}") from None
    if n is not None and len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} texts")
    for i, t in enumerate(titles):
        if t is not None and not isinstance(t, str):
            raise TypeError(f"titles[{i}]: expected str or None, got {type(t).__name__}")
    return titles


def join_titles(texts: Sequence[str], titles: Sequence[str | None] | None) -> list[str]:
    """``title + "\\n" + text`` where a title is non-empty, else the text: how a classifier that does not cut
    windows (the baseline) reads a titled text, the same string it read before titles were passed apart."""
    if titles is None:
        return list(texts)
    return [t + "\n" + x if t else x for x, t in zip(texts, titles)]


def takes_titles(clf: Any) -> bool:
    """Whether ``clf.predict_scores`` takes ``titles=`` (windowed models keep the title in front of every window)."""
    try:
        return "titles" in inspect.signature(clf.predict_scores).parameters
    except (TypeError, ValueError):
        return False


def load_classifier(model_dir: Path, config: dict[str, Any], *, verify: bool = True) -> Classifier:
    """Build the classifier for ``config['kind']`` from ``model_dir``.

    ``verify`` checks every file against ``manifest.json`` here, once; kinds whose ``from_dir`` can verify on
    their own (for direct use) are told not to do it again.
    """
    kind = config.get("kind")
    target = KINDS.get(kind)
    if target is None:
        raise ModelLoadError(f"{model_dir}: unknown model kind {kind!r}; known: {sorted(KINDS)}")
    mod_name, cls_name = target.split(":")
    try:
        cls = getattr(importlib.import_module(mod_name), cls_name)
    except ImportError as e:
        raise ModelLoadError(f"{model_dir}: model kind {kind!r} needs a missing package: {e}") from e
    if verify:
        verify_manifest(model_dir)
    kwargs = {"verify": False} if "verify" in inspect.signature(cls.from_dir).parameters else {}
    return cls.from_dir(Path(model_dir), config, **kwargs)
