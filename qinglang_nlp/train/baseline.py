"""Train the baseline (character n-gram TF-IDF + logistic regression per category) and export it as arrays.

Needs scikit-learn (``pip install .[train]`` or ``.[dev]``). One shared vocabulary is fitted on every training
text; each category's regression is fitted only on rows that judge that category (unknown labels are masked,
not treated as negative). Thresholds are chosen on the dev splits, never on the carved test splits.
"""
from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..baseline import BaselineClassifier, char_ngrams
from ..datasets import Record, load_dataset
from ..modelio import write_manifest
from ..normalize import NormalizeConfig, normalize_batch
from ..taxonomy import CATEGORIES

__all__ = ["TrainConfig", "choose_thresholds", "collect_rows", "export_baseline", "fit_baseline", "train_baseline"]

DEFAULT_SOURCES = {
    "vulgar": ["cold", "swsr", "chnci", "fanquan"],
    "rumor": ["weibo21", "weibo16", "ced", "fanquan"],
    "fanquan": ["fanquan"],
}


class TrainConfig(dict):
    """Hyper-parameters of a baseline run (a dict, saved verbatim into the model config)."""

    DEFAULTS: dict[str, Any] = {
        "ngram_range": [1, 3],
        "max_features": 200_000,
        "min_df": 2,
        "sublinear_tf": True,
        "C": 4.0,
        "class_weight": "balanced",
        "max_rows_per_source": {"chnci": 40_000},
        # weak negatives for fanquan: texts from sets about other topics (documented in the model card)
        "fanquan_weak_negatives": {"cold": 3000, "swsr": 1000, "weibo21": 1500, "chnci_non_entertainment": 3000},
        # weak negatives for rumor: ordinary comments (opinion and abuse, not news claims); without them the rumor
        # sets' news-style negatives leave short comments looking like rumors (@mentions scored rumor 0.97)
        "rumor_weak_negatives": {"cold": 3000, "swsr": 1000, "chnci": 3000},
        "seed": 13,
        "block_precision": 0.97,
        "review_recall": 0.9,
    }

    def __init__(self, **overrides: Any):
        super().__init__(self.DEFAULTS)
        unknown = set(overrides) - set(self.DEFAULTS)
        if unknown:
            raise ValueError(f"unknown baseline options {sorted(unknown)}; known: {sorted(self.DEFAULTS)}")
        self.update(overrides)


def _vectorizer(cfg: TrainConfig):
    from sklearn.feature_extraction.text import TfidfVectorizer

    lo, hi = cfg["ngram_range"]
    return TfidfVectorizer(analyzer=lambda t: char_ngrams(t, lo, hi), min_df=cfg["min_df"],
                           max_features=cfg["max_features"], sublinear_tf=cfg["sublinear_tf"], dtype=np.float64)


def fit_baseline(texts: Sequence[str], labels: np.ndarray, cfg: TrainConfig | None = None,
                 categories: Sequence[str] = CATEGORIES):
    """Fit on already-normalised ``texts``; ``labels`` is (n, n_cat) with -1 for unknown.

    Returns ``(vectorizer, [LogisticRegression or None per category])``.
    """
    from sklearn.linear_model import LogisticRegression

    cfg = cfg or TrainConfig()
    vec = _vectorizer(cfg)
    X = vec.fit_transform(texts)
    models = []
    for j, cat in enumerate(categories):
        mask = labels[:, j] >= 0
        y = labels[mask, j]
        if mask.sum() == 0 or len(set(y.tolist())) < 2:
            raise ValueError(f"category {cat!r}: need both classes among judged rows, got {mask.sum()} rows")
        lr = LogisticRegression(C=cfg["C"], class_weight=cfg["class_weight"], max_iter=2000, solver="liblinear")
        lr.fit(X[mask], y)
        models.append(lr)
    return vec, models


def to_classifier(vec, models, categories: Sequence[str] = CATEGORIES, cfg: TrainConfig | None = None
                  ) -> BaselineClassifier:
    """The numpy scorer equivalent to the fitted scikit-learn objects."""
    cfg = cfg or TrainConfig()
    vocab_items = sorted(vec.vocabulary_.items(), key=lambda kv: kv[1])
    vocab = {t: i for t, i in vocab_items}
    coef = np.vstack([m.coef_[0] for m in models]).astype(np.float64)
    intercept = np.array([m.intercept_[0] for m in models], dtype=np.float64)
    return BaselineClassifier(vocab, vec.idf_.astype(np.float64), coef, intercept, categories,
                              tuple(cfg["ngram_range"]), cfg["sublinear_tf"])


def choose_thresholds(scores: np.ndarray, y: np.ndarray, block_precision: float = 0.97,
                      review_recall: float = 0.9, min_support: int = 20) -> dict[str, float]:
    """Thresholds from dev scores.

    ``label``: the F1-optimal threshold. ``review``: the highest threshold whose recall reaches ``review_recall``
    (never above ``label``), so the review queue catches most positives. ``block``: the lowest threshold whose
    precision over the top ``k >= min_support`` dev rows stays at or above ``block_precision``; 1.0 (never block
    automatically) when no such threshold exists.
    """
    order = np.argsort(-scores, kind="mergesort")
    s, t = scores[order], y[order]
    tp = np.cumsum(t)
    k = np.arange(1, len(t) + 1)
    prec = tp / k
    rec = tp / max(t.sum(), 1)
    f1 = np.where(prec + rec > 0, 2 * prec * rec / np.maximum(prec + rec, 1e-12), 0)
    best = int(np.argmax(f1))
    label_t = float(s[best])
    reach = np.nonzero(rec >= review_recall)[0]
    review_t = min(float(s[reach[0]]) if len(reach) else float(s[-1]), label_t)
    # precision of every prefix from min_support on must hold: take the longest prefix where it does
    ok = prec >= block_precision
    ok[: min_support - 1] = True
    bad = np.nonzero(~ok)[0]
    last_ok = (bad[0] - 1) if len(bad) else len(s) - 1
    block_t = float(s[last_ok]) if last_ok >= min_support - 1 else 1.0
    block_t = max(block_t, label_t)
    return {"label": round(label_t, 6), "review": round(review_t, 6), "block": round(block_t, 6),
            "dev_f1": round(float(f1[best]), 4)}


def export_baseline(clf: BaselineClassifier, out_dir: str | Path, config: dict[str, Any],
                    manifest_extra: dict[str, Any] | None = None) -> Path:
    """Write the arrays, ``config.json`` and ``manifest.json`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab_list = [None] * len(clf.vocabulary)
    for t, i in clf.vocabulary.items():
        vocab_list[i] = t
    (out / "vocab.json").write_text(json.dumps(vocab_list, ensure_ascii=False), encoding="utf-8")
    np.save(out / "idf.npy", clf.idf, allow_pickle=False)
    np.save(out / "coef.npy", clf.coef_t.T.copy(), allow_pickle=False)
    np.save(out / "intercept.npy", clf.intercept, allow_pickle=False)
    (out / "config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    write_manifest(out, manifest_extra)
    return out


def _take(records: list[Record], n: int | None, rng: random.Random) -> list[Record]:
    if n is None or len(records) <= n:
        return records
    return rng.sample(records, n)


def collect_rows(split: str, cfg: TrainConfig, data_dir, log) -> list[tuple[str, dict[str, int | None], str]]:
    """(text, labels, source) rows for one split, with per-source caps and fanquan and rumor weak negatives
    (source ``<dataset>:weakneg`` and ``<dataset>:weakneg-rumor``: rows that judge only that category, as 0)."""
    rng = random.Random(cfg["seed"])
    rows: list[tuple[str, dict[str, int | None], str]] = []
    sources = sorted({s for v in DEFAULT_SOURCES.values() for s in v})
    cache: dict[str, list[Record]] = {}
    for src in sources:
        try:
            recs = load_dataset(src, split, data_dir)
        except Exception as e:  # a missing dataset is reported and skipped, never silently
            log(f"  {src}/{split}: skipped ({e})")
            continue
        cache[src] = recs
        cap = cfg["max_rows_per_source"].get(src)
        recs = _take(recs, None if split != "train" else cap, rng)
        rows += [(r.text, dict(r.labels), src) for r in recs]
        log(f"  {src}/{split}: {len(recs)} rows")
    for cat, tag in (("fanquan", "weakneg"), ("rumor", "weakneg-rumor")):
        for key, n in cfg.get(f"{cat}_weak_negatives", {}).items():
            src = "chnci" if key.startswith("chnci") else key
            pool = cache.get(src, [])
            if key == "chnci_non_entertainment":
                pool = [r for r in pool if r.fine.get("genre") != "entainment"]
            if cat == "rumor":  # a comment set that judges rumor itself needs no weak label
                pool = [r for r in pool if r.labels.get("rumor") is None]
            n_here = n if split == "train" else max(1, n // 6)
            for r in _take(pool, n_here, rng):
                lab = {c: None for c in CATEGORIES}
                lab[cat] = 0
                rows.append((r.text, lab, f"{src}:{tag}"))
    return rows


def _label_matrix(rows, categories) -> np.ndarray:
    return np.array([[-1 if r[1].get(c) is None else int(r[1][c]) for c in categories] for r in rows],
                    dtype=np.int64)


def _data_hash(texts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def train_baseline(out_dir: str | Path, data_dir=None, cfg: TrainConfig | None = None,
                   normalize_config: NormalizeConfig | None = None, log=print,
                   version: str = "0.1.0") -> dict[str, Any]:
    """Train on the carved train splits, tune thresholds on dev, export to ``out_dir``; return the config.
    ``version`` goes into the config (and so into every scored row's model version)."""
    cfg = cfg or TrainConfig()
    ncfg = normalize_config or NormalizeConfig()
    t0 = time.time()
    log("collecting train/dev rows")
    train = collect_rows("train", cfg, data_dir, log)
    dev = collect_rows("dev", cfg, data_dir, log)
    cats = list(CATEGORIES)

    def norm(rows):
        return [n.text for n in normalize_batch([t for t, _, _ in rows], ncfg)]

    Xtr, Xdev = norm(train), norm(dev)
    ytr, ydev = _label_matrix(train, cats), _label_matrix(dev, cats)
    log(f"fitting on {len(Xtr)} rows ({time.time() - t0:.0f}s)")
    vec, models = fit_baseline(Xtr, ytr, cfg, cats)
    clf = to_classifier(vec, models, cats, cfg)
    sdev = clf.predict_scores(Xdev)
    thresholds, review, block, dev_f1 = {}, {}, {}, {}
    for j, c in enumerate(cats):
        m = ydev[:, j] >= 0
        th = choose_thresholds(sdev[m, j], ydev[m, j], cfg["block_precision"], cfg["review_recall"])
        thresholds[c], review[c], block[c], dev_f1[c] = th["label"], th["review"], th["block"], th["dev_f1"]
    config = {
        "kind": "baseline",
        "name": "qinglang-baseline",
        "version": version,
        "categories": cats,
        "thresholds": thresholds,
        "decision": {"review": review, "block": block, "severe_hit": 3},
        "normalize": ncfg.to_dict(),
        "baseline": {"ngram_range": list(cfg["ngram_range"]), "sublinear_tf": cfg["sublinear_tf"]},
        "train": dict(cfg),
        "dev_f1": dev_f1,
    }
    counts = {}
    for _, lab, src in train:
        counts[src] = counts.get(src, 0) + 1
    extra = {"training_data": {"rows_by_source": counts, "sha256_texts": _data_hash(Xtr)},
             "metrics": {"dev_f1_at_threshold": dev_f1}}
    export_baseline(clf, out_dir, config, extra)
    log(f"exported to {out_dir} in {time.time() - t0:.0f}s; dev F1 {dev_f1}")
    return config
