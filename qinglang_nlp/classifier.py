"""The classifier stage: a ``Classifier`` turns normalised texts into per-category probabilities.

Each model kind (``baseline``, ``onnx``, ``stacked``) registers a loader; ``load_classifier`` picks it from the
model's ``config.json``. Kinds are imported lazily, so the baseline never imports onnxruntime.
"""
from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from .errors import ModelLoadError
from .modelio import verify_manifest

__all__ = ["Classifier", "ModelSpan", "load_classifier", "KINDS"]

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
