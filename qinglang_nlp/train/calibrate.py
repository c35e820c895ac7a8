"""Calibration on dev: per-category temperature scaling, thresholds for stated precision targets, ECE.

All functions take numpy arrays of raw logits / probabilities and 0/1 labels (rows with an unknown label must
be removed by the caller). Nothing here ever sees the carved test split: ``finetune`` calls it on dev only.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import metrics

__all__ = ["calibrate_categories", "ece", "fit_temperature", "sigmoid", "threshold_for_precision"]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    x = np.asarray(x, np.float64)
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


def _nll(logits: np.ndarray, y: np.ndarray, t: float) -> float:
    z = logits / t
    # log(1 + exp(-|z|)) + max(z, 0) - y z
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, lo: float = 0.05, hi: float = 20.0) -> float:
    """Temperature T > 0 minimising the binary NLL of ``sigmoid(logits / T)`` (golden-section on log T)."""
    z = np.asarray(logits, np.float64)
    y = np.asarray(labels, np.float64)
    if z.size == 0 or y.min() == y.max():
        return 1.0  # one class only: temperature is not identifiable
    a, b = np.log(lo), np.log(hi)
    g = (np.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = _nll(z, y, np.exp(c)), _nll(z, y, np.exp(d))
    for _ in range(80):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = _nll(z, y, np.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = _nll(z, y, np.exp(d))
    return float(np.exp((a + b) / 2))


def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error of binary probabilities (``qinglang_nlp.metrics.ece``; NaN when empty)."""
    p = np.asarray(probs, np.float64)
    if p.size == 0:
        return float("nan")
    return metrics.ece(np.asarray(labels, np.float64), p, n_bins)


def threshold_for_precision(probs: np.ndarray, labels: np.ndarray, target: float,
                            min_support: int = 5) -> dict[str, Any]:
    """Lowest threshold whose precision on dev is >= ``target`` (so recall is the highest possible).

    Only thresholds with at least ``min_support`` predicted positives count, so one lucky top score does not
    set the threshold. Returns {"threshold", "precision", "recall", "met", "best_precision"}; when no threshold
    meets the target the threshold is 1.0 (never fires: a model that cannot reach the precision on dev must not
    label or block) with ``met`` False.
    """
    p = np.asarray(probs, np.float64)
    y = np.asarray(labels, np.int64)
    if p.size == 0 or y.sum() == 0:
        return {"threshold": 1.0, "precision": float("nan"), "recall": 0.0, "met": False,
                "best_precision": float("nan")}
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    k = np.arange(1, len(ps) + 1)
    prec = tp / k
    rec = tp / ys.sum()
    # a threshold can only sit where the score changes: use the last index of each run of equal scores
    last = np.r_[ps[1:] != ps[:-1], True]
    ok = last & (k >= min_support)
    if not ok.any():
        ok = last
    good = ok & (prec >= target)
    best = float(prec[ok].max())
    if not good.any():
        return {"threshold": 1.0, "precision": float("nan"), "recall": 0.0, "met": False, "best_precision": best}
    i = int(np.flatnonzero(good)[-1])
    return {"threshold": float(ps[i]), "precision": float(prec[i]), "recall": float(rec[i]), "met": True,
            "best_precision": best}


def calibrate_categories(logits: np.ndarray, labels: np.ndarray, categories: list[str],
                         targets: dict[str, float], n_bins: int = 15) -> dict[str, Any]:
    """Per category: temperature, ECE before/after, thresholds for each precision target.

    ``labels`` is [n, n_cat] with -1 for unknown. ``targets`` maps a threshold name (``label``, ``review``,
    ``block``) to its precision target. Returns {"temperature", "thresholds", "report"}.
    """
    temps: dict[str, float] = {}
    thresholds: dict[str, dict[str, float]] = {}
    report: dict[str, Any] = {}
    for j, c in enumerate(categories):
        m = labels[:, j] >= 0
        z, y = logits[m, j].astype(np.float64), labels[m, j].astype(np.float64)
        t = fit_temperature(z, y)
        before, after = sigmoid(z), sigmoid(z / t)
        temps[c] = t
        th = {name: threshold_for_precision(after, y, tgt) for name, tgt in targets.items()}
        # a stricter precision target never gets a lower threshold (review <= label <= block)
        floor = 0.0
        for name in sorted(targets, key=lambda k: targets[k]):
            th[name]["threshold"] = floor = max(floor, th[name]["threshold"])
        thresholds[c] = {name: r["threshold"] for name, r in th.items()}
        report[c] = {"n": int(m.sum()), "positives": int(y.sum()), "temperature": t,
                     "ece_before": ece(before, y, n_bins), "ece_after": ece(after, y, n_bins),
                     "thresholds": th, "precision_targets": dict(targets)}
    return {"temperature": temps, "thresholds": thresholds, "report": report}
