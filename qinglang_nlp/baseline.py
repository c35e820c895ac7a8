"""The baseline classifier: character 1–3-gram TF-IDF + logistic regression, scored with numpy.

The model is plain arrays (vocabulary JSON, idf and weights as ``.npy`` without pickle), so loading
executes nothing. Training lives in ``qinglang_nlp.train.baseline`` (scikit-learn); this module only scores,
and reproduces scikit-learn's ``TfidfVectorizer`` + ``LogisticRegression.predict_proba`` to 1e-6.
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelLoadError

__all__ = ["BaselineClassifier", "char_ngrams"]

_WS = re.compile(r"\s\s+")


def char_ngrams(text: str, n_min: int = 1, n_max: int = 3) -> list[str]:
    """Character n-grams of ``text`` after collapsing runs of whitespace (the baseline's analyzer)."""
    t = _WS.sub(" ", text)
    n = len(t)
    out: list[str] = []
    for k in range(n_min, n_max + 1):
        out.extend(t[i:i + k] for i in range(n - k + 1))
    return out


class BaselineClassifier:
    """TF-IDF (sublinear tf, l2 norm) → per-category logistic regression → sigmoid."""

    def __init__(self, vocabulary: dict[str, int], idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                 categories: Sequence[str], ngram_range: tuple[int, int] = (1, 3), sublinear_tf: bool = True):
        if coef.shape != (len(categories), len(idf)) or intercept.shape != (len(categories),):
            raise ModelLoadError(f"baseline arrays disagree: coef {coef.shape}, idf {idf.shape}, "
                                 f"intercept {intercept.shape}, {len(categories)} categories")
        if len(vocabulary) != len(idf):
            raise ModelLoadError(f"baseline vocabulary has {len(vocabulary)} terms but idf has {len(idf)}")
        self.vocabulary = vocabulary
        self.idf = idf
        self.coef_t = np.ascontiguousarray(coef.T)
        self.intercept = intercept
        self.categories = tuple(categories)
        self.ngram_range = tuple(ngram_range)
        self.sublinear_tf = sublinear_tf

    @classmethod
    def from_dir(cls, path: Path, config: dict[str, Any]) -> BaselineClassifier:
        """Load ``vocab.json``, ``idf.npy``, ``coef.npy``, ``intercept.npy`` (no pickle)."""
        try:
            vocab_list = json.loads((path / "vocab.json").read_text(encoding="utf-8"))
            arrays = {n: np.load(path / f"{n}.npy", allow_pickle=False) for n in ("idf", "coef", "intercept")}
        except (OSError, ValueError) as e:
            raise ModelLoadError(f"{path}: cannot read baseline arrays ({e})") from None
        vocab = {t: i for i, t in enumerate(vocab_list)}
        b = config.get("baseline", {})
        return cls(vocab, arrays["idf"], arrays["coef"], arrays["intercept"], config["categories"],
                   tuple(b.get("ngram_range", (1, 3))), bool(b.get("sublinear_tf", True)))

    def transform_one(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Sparse TF-IDF row of one text: (feature indices, l2-normalised values)."""
        vocab = self.vocabulary
        counts = Counter(vocab[g] for g in char_ngrams(text, *self.ngram_range) if g in vocab)
        if not counts:
            return np.empty(0, dtype=np.int64), np.empty(0)
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        if self.sublinear_tf:
            tf = np.log(tf) + 1.0
        vals = tf * self.idf[idx]
        norm = math.sqrt(float(vals @ vals))
        return idx, (vals / norm if norm > 0 else vals)

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Logits, shape ``(len(texts), len(categories))``."""
        out = np.empty((len(texts), len(self.categories)))
        for r, t in enumerate(texts):
            idx, vals = self.transform_one(t)
            out[r] = vals @ self.coef_t[idx] + self.intercept
        return out

    def predict_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities in [0, 1], shape ``(len(texts), len(categories))``."""
        z = self.decision_function(texts)
        return 1.0 / (1.0 + np.exp(-z))
