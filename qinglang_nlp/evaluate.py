"""Evaluation of models on labelled records: honest metrics, confidence intervals, errors, robustness.

``evaluate_records`` returns a JSON-ready dict with stable keys::

    {"n", "seconds", "texts_per_s", "unscorable",
     "categories": {cat: {"at_model_threshold": {...binary_metrics...},
                          "at_dev_threshold": {...} | None, "dev_threshold": float | None,
                          "ci95": {"f1": [lo, hi], "accuracy": [lo, hi]},
                          "by_fine": {field: {value: {"n", "positives", "accuracy", "recall"}}},
                          "by_length": {...}, "errors": {"false_positives": [...], "false_negatives": [...]},
                          "perturbed": {family: {"f1", "accuracy", "f1_drop"}}}}}
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .datasets import Record
from .metrics import binary_metrics
from .moderator import Moderator
from .taxonomy import CATEGORIES

__all__ = ["LENGTH_BUCKETS", "best_f1_threshold", "bootstrap_ci", "evaluate_records", "score_records"]

LENGTH_BUCKETS = ((0, 20), (20, 60), (60, 200), (200, 10**9))
FINE_FIELDS = ("subtype", "origin_kind", "style", "category", "topic", "toxic_type", "expression", "genre", "target")


def score_records(model: Moderator, records: Sequence[Record], batch_size: int = 64, progress: bool = False,
                  texts: Sequence[str] | None = None) -> tuple[np.ndarray, list]:
    """Scores (n, 3) and Results for the records (texts the model refuses score NaN, Result None)."""
    texts = [r.text for r in records] if texts is None else texts
    out = np.full((len(texts), len(CATEGORIES)), np.nan)
    results: list = [None] * len(texts)
    it = range(0, len(texts), batch_size)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, unit="batch", desc="evaluating")
    for start in it:
        chunk = texts[start:start + batch_size]
        try:
            res = model.predict_batch(list(chunk), batch_size=batch_size)
        except (TypeError, ValueError):
            res = []
            for t in chunk:
                try:
                    res.append(model.predict(t))
                except (TypeError, ValueError):
                    res.append(None)
        for k, r in enumerate(res):
            if r is not None:
                out[start + k] = [r.scores[c] for c in CATEGORIES]
                results[start + k] = r
    return out, results


def best_f1_threshold(y: np.ndarray, s: np.ndarray) -> float:
    """The score threshold that maximises F1 of the positive class on (y, s)."""
    order = np.argsort(-s, kind="mergesort")
    ss, yy = s[order], y[order]
    tp = np.cumsum(yy)
    k = np.arange(1, len(yy) + 1)
    prec, rec = tp / k, tp / max(yy.sum(), 1)
    f1 = np.where(prec + rec > 0, 2 * prec * rec / np.maximum(prec + rec, 1e-12), 0.0)
    # only cut between distinct scores
    last = np.r_[np.nonzero(np.diff(ss))[0], len(ss) - 1]
    best = last[int(np.argmax(f1[last]))]
    return float(ss[best])


def bootstrap_ci(y: np.ndarray, s: np.ndarray, threshold: float, n_boot: int = 1000, seed: int = 0
                 ) -> dict[str, list[float]]:
    """Percentile bootstrap 95% intervals of F1 and accuracy at ``threshold``."""
    rng = np.random.default_rng(seed)
    pred = (s >= threshold).astype(np.int64)
    n = len(y)
    f1s, accs = np.empty(n_boot), np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        yy, pp = y[idx], pred[idx]
        tp = int((yy & pp).sum())
        fp = int(((1 - yy) & pp).sum())
        fn = int((yy & (1 - pp)).sum())
        f1s[b] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        accs[b] = (yy == pp).mean()
    return {"f1": [float(np.percentile(f1s, 2.5)), float(np.percentile(f1s, 97.5))],
            "accuracy": [float(np.percentile(accs, 2.5)), float(np.percentile(accs, 97.5))]}


def _group_table(keys: list, y: np.ndarray, pred: np.ndarray) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key in sorted({str(k) for k in keys}):
        m = np.array([str(k) == key for k in keys])
        pos = m & (y == 1)
        tp = int((pos & (pred == 1)).sum())
        flagged = int((m & (pred == 1)).sum())
        prec = tp / flagged if flagged else None
        rec = float(pred[pos].mean()) if pos.any() else None
        f1 = (2 * prec * rec / (prec + rec) if prec and rec else 0.0) if prec is not None and rec is not None else None
        out[key] = {"n": int(m.sum()), "positives": int(pos.sum()),
                    "accuracy": float((y[m] == pred[m]).mean()), "precision": prec, "recall": rec, "f1": f1,
                    "flag_rate": float(pred[m].mean())}
    return out


def _length_bucket(n: int) -> str:
    for lo, hi in LENGTH_BUCKETS:
        if lo <= n < hi:
            return f"{lo}-{hi - 1}" if hi < 10**9 else f"{lo}+"
    return "?"


def _examples(idx: np.ndarray, records, results, scores_c, keys, k: int) -> list[dict[str, Any]]:
    out = []
    for i in idx[:k]:
        r = results[i]
        out.append({"id": records[i].id, "text": records[i].text[:300], "score": round(float(scores_c[i]), 4),
                     "group": keys[i], "length": len(records[i].text),
                     "evidence": [s.to_dict() for s in (r.evidence if r else [])][:8]})
    return out


def evaluate_records(model: Moderator, records: Sequence[Record], batch_size: int = 64, progress: bool = False,
                     dev_records: Sequence[Record] | None = None, n_boot: int = 1000, n_errors: int = 10,
                     perturb: dict[str, Callable[[str, random.Random], str]] | None = None,
                     seed: int = 0, curves: dict[str, dict[str, np.ndarray]] | None = None) -> dict[str, Any]:
    """Metrics per category over the records that judge it (see the module docstring for the keys).

    If ``curves`` is a dict, it receives ``{category: {"y": labels, "s": scores}}`` for charts.
    """
    t0 = time.perf_counter()
    scores, results = score_records(model, records, batch_size, progress)
    secs = time.perf_counter() - t0
    dev_scores = score_records(model, dev_records, batch_size)[0] if dev_records else None
    report: dict[str, Any] = {"n": len(records), "seconds": round(secs, 3),
                              "texts_per_s": round(len(records) / secs, 1) if secs else None,
                              "unscorable": int(np.isnan(scores[:, 0]).sum()), "model": model.name,
                              "categories": {}}
    pert_scores: dict[str, np.ndarray] = {}
    if perturb:
        for fam, fn in perturb.items():
            rng = random.Random(f"{seed}:{fam}")
            cloaked = [fn(r.text, rng) for r in records]
            pert_scores[fam] = score_records(model, records, batch_size, texts=cloaked)[0]
    for j, c in enumerate(CATEGORIES):
        y_all = np.array([-1 if r.labels.get(c) is None else r.labels[c] for r in records])
        m = (y_all >= 0) & ~np.isnan(scores[:, j])
        if m.sum() == 0:
            continue
        idx_m = np.nonzero(m)[0]
        y, s = y_all[m].astype(np.int64), scores[m, j]
        th = model.policy.thresholds[c]
        if curves is not None:
            curves[c] = {"y": y, "s": s}
        entry: dict[str, Any] = {"at_model_threshold": binary_metrics(y, s, th),
                                 "ci95": bootstrap_ci(y, s, th, n_boot, seed)}
        entry["dev_threshold"], entry["at_dev_threshold"] = None, None
        if dev_scores is not None:
            yd = np.array([-1 if r.labels.get(c) is None else r.labels[c] for r in dev_records])
            md = (yd >= 0) & ~np.isnan(dev_scores[:, j])
            if md.sum() and 0 < yd[md].sum() < md.sum():
                dth = best_f1_threshold(yd[md].astype(np.int64), dev_scores[md, j])
                entry["dev_threshold"] = dth
                entry["at_dev_threshold"] = binary_metrics(y, s, dth)
        pred = (s >= th).astype(np.int64)
        recs_m = [records[i] for i in idx_m]
        by_fine = {}
        for f in FINE_FIELDS:
            vals = [r.fine.get(f) for r in recs_m]
            if any(v is not None for v in vals) and len({str(v) for v in vals}) <= 60:
                by_fine[f] = _group_table([str(v) for v in vals], y, pred)
        entry["by_fine"] = by_fine
        lengths = [_length_bucket(len(r.text)) for r in recs_m]
        entry["by_length"] = _group_table(lengths, y, pred)
        group_key = next((f for f in ("subtype", "category", "topic", "genre") if f in by_fine), None)
        keys = [f"{r.fine.get(group_key) if group_key else '-'}|{lb}" for r, lb in zip(recs_m, lengths)]
        fp = np.nonzero((y == 0) & (pred == 1))[0]
        fn_ = np.nonzero((y == 1) & (pred == 0))[0]
        fp = fp[np.argsort(-s[fp], kind="mergesort")]
        fn_ = fn_[np.argsort(s[fn_], kind="mergesort")]
        res_m = [results[i] for i in idx_m]
        entry["errors"] = {"grouped_by": f"{group_key or '-'}|length",
                           "false_positives": _examples(fp, recs_m, res_m, s, keys, n_errors),
                           "false_negatives": _examples(fn_, recs_m, res_m, s, keys, n_errors)}
        if pert_scores:
            base_f1 = entry["at_model_threshold"]["f1"]
            entry["perturbed"] = {}
            for fam, ps in pert_scores.items():
                pm = ~np.isnan(ps[idx_m, j])
                met = binary_metrics(y[pm], ps[idx_m, j][pm], th)
                entry["perturbed"][fam] = {"f1": met["f1"], "accuracy": met["accuracy"],
                                           "f1_drop": base_f1 - met["f1"], "flag_rate_safe":
                                           float((ps[idx_m, j][pm][y[pm] == 0] >= th).mean())
                                           if (y[pm] == 0).any() else None}
        report["categories"][c] = entry
    return report
