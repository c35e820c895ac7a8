"""Evaluation of a model on labelled records: per-category metrics at the model's thresholds."""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from .datasets import Record
from .metrics import binary_metrics
from .moderator import Moderator
from .taxonomy import CATEGORIES

__all__ = ["score_records", "evaluate_records"]


def score_records(model: Moderator, records: Sequence[Record], batch_size: int = 64,
                  progress: bool = False) -> np.ndarray:
    """Scores (n, 3) for the records' texts (texts the model refuses score as NaN and are reported)."""
    out = np.full((len(records), len(CATEGORIES)), np.nan)
    it = range(0, len(records), batch_size)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, unit="batch", desc="evaluating")
    for start in it:
        chunk = records[start:start + batch_size]
        try:
            res = model.predict_batch([r.text for r in chunk], batch_size=batch_size)
        except (TypeError, ValueError):
            res = []
            for r in chunk:
                try:
                    res.append(model.predict(r.text))
                except (TypeError, ValueError):
                    res.append(None)
        for k, r in enumerate(res):
            if r is not None:
                out[start + k] = [r.scores[c] for c in CATEGORIES]
    return out


def evaluate_records(model: Moderator, records: Sequence[Record], batch_size: int = 64,
                     progress: bool = False) -> dict[str, Any]:
    """Metrics per category over the records that judge it, at the model's label thresholds."""
    t0 = time.perf_counter()
    scores = score_records(model, records, batch_size, progress)
    secs = time.perf_counter() - t0
    report: dict[str, Any] = {"n": len(records), "seconds": round(secs, 3),
                              "texts_per_s": round(len(records) / secs, 1) if secs else None,
                              "unscorable": int(np.isnan(scores[:, 0]).sum()), "categories": {}}
    for j, c in enumerate(CATEGORIES):
        y = np.array([-1 if r.labels.get(c) is None else r.labels[c] for r in records])
        m = (y >= 0) & ~np.isnan(scores[:, j])
        if m.sum() == 0:
            continue
        report["categories"][c] = binary_metrics(y[m], scores[m, j], model.policy.thresholds[c])
    return report
