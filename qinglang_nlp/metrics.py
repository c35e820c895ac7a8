"""Classification metrics in plain numpy (no scikit-learn needed at evaluation time).

Conventions follow scikit-learn: ROC-AUC with tied scores averaged (Mann–Whitney), PR-AUC as average
precision (step-wise, no interpolation), F1 = 0 when precision + recall = 0.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["average_precision", "binary_metrics", "confusion", "ece", "roc_auc"]


def confusion(y: np.ndarray, pred: np.ndarray) -> dict[str, int]:
    """tp, fp, fn, tn of 0/1 arrays."""
    y = np.asarray(y).astype(bool)
    p = np.asarray(pred).astype(bool)
    return {"tp": int((y & p).sum()), "fp": int((~y & p).sum()), "fn": int((y & ~p).sum()),
            "tn": int((~y & ~p).sum())}


def roc_auc(y: np.ndarray, s: np.ndarray) -> float | None:
    """Area under the ROC curve; None when only one class is present."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(s, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    ss = s[order]
    i = 0
    while i < len(ss):  # average ranks of ties
        j = i
        while j + 1 < len(ss) and ss[j + 1] == ss[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(y: np.ndarray, s: np.ndarray) -> float | None:
    """Average precision (PR-AUC, scikit-learn's definition); None without positives."""
    y = np.asarray(y).astype(np.int64)
    s = np.asarray(s, dtype=np.float64)
    if y.sum() == 0:
        return None
    order = np.argsort(-s, kind="mergesort")
    ys, ss = y[order], s[order]
    # thresholds at distinct scores
    distinct = np.r_[np.nonzero(np.diff(ss))[0], len(ss) - 1]
    tps = np.cumsum(ys)[distinct]
    fps = (distinct + 1) - tps
    prec = tps / (tps + fps)
    rec = tps / y.sum()
    rec_prev = np.r_[0.0, rec[:-1]]
    return float(np.sum((rec - rec_prev) * prec))


def ece(y: np.ndarray, s: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error with equal-width bins over [0, 1]."""
    y = np.asarray(y, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    if len(y) == 0:
        return 0.0
    idx = np.minimum((s * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() / len(y) * abs(y[m].mean() - s[m].mean())
    return float(total)


def binary_metrics(y: np.ndarray, s: np.ndarray, threshold: float) -> dict[str, Any]:
    """Precision, recall, F1 (positive class and macro), accuracy, ROC-AUC, PR-AUC, Brier, ECE, confusion."""
    y = np.asarray(y).astype(np.int64)
    s = np.asarray(s, dtype=np.float64)
    pred = (s >= threshold).astype(np.int64)
    c = confusion(y, pred)
    tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]

    def prf(tp_, fp_, fn_):
        p = tp_ / (tp_ + fp_) if tp_ + fp_ else 0.0
        r = tp_ / (tp_ + fn_) if tp_ + fn_ else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    p1, r1, f1 = prf(tp, fp, fn)
    _, _, f0 = prf(tn, fn, fp)
    n = len(y)
    return {
        "n": n, "positives": int(y.sum()), "threshold": float(threshold),
        "precision": p1, "recall": r1, "f1": f1, "macro_f1": (f1 + f0) / 2,
        "accuracy": (tp + tn) / n if n else 0.0,
        "roc_auc": roc_auc(y, s), "pr_auc": average_precision(y, s),
        "brier": float(np.mean((s - y) ** 2)) if n else 0.0, "ece": ece(y, s),
        "confusion": c,
    }
