"""Build a stacked model folder: member models combined per category by logistic regression fit on dev.

``build_stacked({"transformer": "runs/x/onnx", "baseline": "models/baseline"}, "models/default")``:

1. every member is scored on the dev rows (the baseline's dev collection: all dev splits plus fanquan weak
   negatives, at most ``max_dev_per_source`` rows a source; never the carved test split, never ToxiCN);
2. per category, on the rows that judge it, a logistic regression over the members' logits is fit;
   5-fold out-of-fold predictions of the same regression choose the thresholds (label = dev-F1 optimum,
   review = dev recall 0.9, block = dev precision 0.97 or never), so thresholds are not chosen on scores the
   stacker was fit to. ``threshold_rule="balanced"`` (the default) chooses each label threshold for the mean
   of per-group F1s instead of the pooled F1: for ``vulgar`` and ``rumor`` one group per dev dataset (the pooled
   optimum follows the largest sets and its flat top moves with small changes of the dev pool), for ``fanquan``
   real text (the corpus's real items plus the weak negatives) and the corpus's written items (most dev
   positives are written items, while users score real posts; the pooled optimum misses most real positives);
3. the members are copied into sub-folders, and ``config.json`` + ``manifest.json`` (covering every file) are
   written. Dev metrics per member and for the stack (out-of-fold) go into the manifest.
"""
from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..classifier import load_classifier
from ..errors import ModelLoadError
from ..metrics import binary_metrics
from ..modelio import read_config, write_manifest
from ..normalize import NormalizeConfig, normalize_batch
from ..stacked import stack_logits
from ..taxonomy import CATEGORIES
from .baseline import TrainConfig, choose_thresholds, collect_rows

__all__ = ["balanced_threshold", "build_stacked", "fit_stacker"]

THRESHOLD_RULES = ("balanced", "f1")


def balanced_threshold(scores: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[float, dict[str, float]]:
    """The label threshold that maximises the mean over ``groups`` of each group's F1, and those F1s.

    Candidates are the observed scores (a row is positive at threshold ``t`` when its score is ``>= t``); a
    group without positives is left out of the mean.
    """
    scores, y, groups = np.asarray(scores, dtype=np.float64), np.asarray(y), np.asarray(groups)
    names = [g for g in sorted(set(groups.tolist())) if y[groups == g].sum() > 0]
    if not names:
        raise ValueError("balanced_threshold needs positives in at least one group")
    cands = np.unique(scores)
    f1s = []
    for g in names:
        sg, yg = scores[groups == g], y[groups == g]
        order = np.sort(sg[yg == 1])
        neg = np.sort(sg[yg == 0])
        tp = len(order) - np.searchsorted(order, cands, side="left")
        fp = len(neg) - np.searchsorted(neg, cands, side="left")
        f1s.append(2 * tp / np.maximum(2 * tp + fp + (len(order) - tp), 1))
    mean = np.mean(f1s, axis=0)
    best = int(np.argmax(mean))
    return float(cands[best]), {g: round(float(f[best]), 4) for g, f in zip(names, f1s)}


def _fanquan_groups(rows: list[tuple[str, dict, str]]) -> np.ndarray:
    """``written`` for the 饭圈 corpus's written items, ``real`` for every other row."""
    from ..fanquan_corpus import corpus_dir, read_jsonl

    # written items carry their text in the split file: no shared data needed to tell them apart
    written = {r["text"] for r in read_jsonl(corpus_dir() / "dev.jsonl") if r["origin"] == "written" and r["text"]}
    return np.array(["written" if src == "fanquan" and text in written else "real" for text, _, src in rows])


def fit_stacker(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 13, C: float = 1.0
                ) -> tuple[np.ndarray, float, np.ndarray]:
    """Logistic regression on member logits ``x`` (n, m) for labels ``y`` (n,): (weights, bias, out-of-fold p)."""
    from sklearn.linear_model import LogisticRegression

    def fit(xx: np.ndarray, yy: np.ndarray) -> Any:
        return LogisticRegression(C=C, max_iter=1000).fit(xx, yy)

    oof = np.zeros(len(y))
    idx = np.random.default_rng(seed).permutation(len(y))
    for k in range(folds):
        test = idx[k::folds]
        train = np.setdiff1d(idx, test)
        if len(np.unique(y[train])) < 2:
            oof[test] = y[train].mean() if len(train) else 0.5
            continue
        oof[test] = fit(x[train], y[train]).predict_proba(x[test])[:, 1]
    full = fit(x, y)
    return full.coef_[0].astype(float), float(full.intercept_[0]), oof


def _summary(y: np.ndarray, p: np.ndarray, t: float) -> dict[str, Any]:
    m = binary_metrics(y, p, t)
    return {k: (None if m[k] is None else round(float(m[k]), 4)) for k in ("f1", "precision", "recall", "roc_auc",
                                                                           "ece")}


def build_stacked(members: dict[str, str | Path], out_dir: str | Path, *, data_dir: str | None = None,
                  name: str = "default", version: str | None = None, max_dev_per_source: int = 3000,
                  seed: int = 13, overwrite: bool = False, dev_rows: list[tuple[str, dict, str]] | None = None,
                  restore: bool = False, threshold_rule: str = "balanced",
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Fit the stacker on dev, write the stacked folder to ``out_dir``; returns its config.

    ``dev_rows``: ``(text, {category: 0/1/None}, source)`` rows to fit on instead of the shared dev splits.
    ``restore``: switch on the ``restore`` normalisation step for the stacked model (members were trained
    without it; the stacker and thresholds are fit on dev text normalised with it).
    ``threshold_rule``: ``"balanced"`` (label threshold = best mean F1 over dev groups, see the module
    docstring) or ``"f1"`` (plain pooled dev F1).
    """
    if threshold_rule not in THRESHOLD_RULES:
        raise ValueError(f"threshold_rule must be one of {THRESHOLD_RULES}, got {threshold_rule!r}")
    t0 = time.time()
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty (pass overwrite=True / --overwrite)")
    if not members:
        raise ValueError("no members given")
    cfgs = {k: read_config(v) for k, v in members.items()}
    norm = {k: NormalizeConfig.from_dict(c.get("normalize")) for k, c in cfgs.items()}
    first = next(iter(norm))
    for k, n in norm.items():
        if n != norm[first]:
            raise ModelLoadError(f"member {k!r} normalises differently from {first!r}: "
                                 f"{n.to_dict()} vs {norm[first].to_dict()}")
        if list(cfgs[k].get("categories", [])) != list(CATEGORIES):
            raise ModelLoadError(f"member {k!r} has categories {cfgs[k].get('categories')}, expected {CATEGORIES}")
    ncfg = NormalizeConfig.from_dict(dict(norm[first].to_dict(), restore=True)) if restore else norm[first]

    rows = dev_rows if dev_rows is not None else collect_rows("dev", TrainConfig(), data_dir, log)
    rng = random.Random(seed)
    by_src: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_src.setdefault(r[2], []).append(i)
    keep = sorted(i for ids in by_src.values()
                  for i in (ids if len(ids) <= max_dev_per_source else rng.sample(ids, max_dev_per_source)))
    rows = [rows[i] for i in keep]
    texts = [n.text for n in normalize_batch([r[0] for r in rows], ncfg)]
    y = np.array([[-1 if r[1].get(c) is None else int(r[1][c]) for c in CATEGORIES] for r in rows])
    log(f"dev: {len(rows)} rows from {len(by_src)} sources ({time.time() - t0:.0f} s)")

    probs = []
    for k, path in members.items():
        t1 = time.time()
        clf = load_classifier(Path(path), cfgs[k])
        probs.append(np.vstack([np.asarray(clf.predict_scores(texts[i:i + 256]), dtype=np.float64)
                                for i in range(0, len(texts), 256)]))
        log(f"scored dev with {k!r} in {time.time() - t1:.0f} s")
    x = stack_logits(probs)                                  # (n, n_cat, m)

    stacker, thresholds, review, block, metrics, rules = {}, {}, {}, {}, {}, {}
    for j, c in enumerate(CATEGORIES):
        m = y[:, j] >= 0
        yy = y[m, j]
        w, b, oof = fit_stacker(x[m, j, :], yy, seed=seed)
        th = choose_thresholds(oof, yy)
        rule = "f1"
        if threshold_rule == "balanced":
            kept_rows = [r for r, keep_row in zip(rows, m) if keep_row]
            # fanquan: real text vs the corpus's written items; vulgar/rumor: one group per dev dataset
            groups = _fanquan_groups(kept_rows) if c == "fanquan" else np.array([r[2] for r in kept_rows])
            if len(set(groups[yy == 1].tolist())) >= 2:
                t_bal, by_group = balanced_threshold(oof, yy, groups)
                log(f"{c}: balanced label threshold {t_bal:.4f} (F1 by group {by_group}) instead of "
                    f"{th['label']:.4f}")
                t_bal = math.floor(t_bal * 1e6) / 1e6  # rounded down: the boundary row stays positive
                th = {**th, "label": t_bal, "review": min(th["review"], t_bal), "block": max(th["block"], t_bal)}
                rule = "balanced"
            else:
                log(f"{c}: positives in fewer than two groups: plain F1 threshold")
        rules[c] = rule
        stacker[c] = {"weights": [round(float(v), 6) for v in w], "bias": round(b, 6)}
        thresholds[c], review[c], block[c] = th["label"], th["review"], th["block"]
        per_member = {}
        for mi, k in enumerate(members):
            p = probs[mi][m, j]
            per_member[k] = _summary(yy, p, float(cfgs[k]["thresholds"][c]))  # at the member's own threshold
        metrics[c] = {"rows": int(m.sum()), "positives": int(yy.sum()), "members": per_member,
                      "stacked_oof": _summary(yy, oof, th["label"])}
        log(f"{c}: weights {stacker[c]['weights']} bias {b:.3f}; stacked (out-of-fold) {metrics[c]['stacked_oof']}; "
            f"members {per_member}")

    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for k, path in members.items():
        shutil.copytree(path, tmp / k)
    config = {
        "kind": "stacked", "name": name, "version": version or time.strftime("%Y.%m.%d", time.gmtime()),
        "categories": list(CATEGORIES), "members": list(members), "stacker": stacker,
        "thresholds": thresholds, "decision": {"review": review, "block": block, "severe_hit": 3},
        "normalize": ncfg.to_dict(),
    }
    (tmp / "config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    write_manifest(tmp, {"name": name, "metrics": {"dev": metrics},
                         "stack": {"dev_rows": len(rows), "max_dev_per_source": max_dev_per_source, "seed": seed,
                                   "threshold_rules": rules,
                                   "members": {k: str(v) for k, v in members.items()},
                                   "seconds": round(time.time() - t0, 1)}})
    # round trip through the public loader before replacing anything
    load_classifier(tmp, config)
    if out.exists():
        shutil.rmtree(out)
    shutil.move(str(tmp), str(out))
    log(f"wrote {out} in {time.time() - t0:.0f} s")
    return config
