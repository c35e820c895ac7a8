"""Do extra stacker inputs pay? Measured on DEV only, out-of-fold, against the shipped stacker's own inputs.

    .venv/bin/python training/stack_variants.py [--model models/default] [--cache runs/stack_variants]

The shipped stacker (``qinglang stack``) fits, per category, a logistic regression on two inputs: the transformer
member's and the baseline member's logits for that category. This script scores the same dev rows the stacker is
fit on (``build_stacked``'s selection: every dev split, fanquan weak negatives, at most 3,000 rows a source, seed
13, normalised with the model's config) and compares, per category, the out-of-fold stacker of

* ``own``: the shipped inputs (2 logits);
* ``cross``: both members' logits for all three categories (6 inputs);
* ``lexicon``: ``own`` + the model's lexicon hit features (``hit_features``: per-category hit count and maximum
  severity, any severe hit; log1p), computed on the raw text as the Moderator does;
* ``real_item``: ``own`` + a 饭圈 specialist (character 1-3-gram TF-IDF + logistic regression fit on the corpus's
  REAL train items only, so its score on dev rows is out of sample) — fanquan only.

Each is judged by the label-threshold rule the shipped model uses (``balanced``: the best mean F1 over dev groups;
fanquan: real vs written items; vulgar/rumor: one group per dataset), read off the same out-of-fold scores.
Member scores are cached in ``--cache`` (the transformer takes minutes). Nothing here reads a carved test split.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qinglang_nlp.classifier import load_classifier
from qinglang_nlp.modelio import read_config
from qinglang_nlp.normalize import NormalizeConfig, normalize_batch
from qinglang_nlp.stacked import _logit
from qinglang_nlp.taxonomy import CATEGORIES
from qinglang_nlp.train.baseline import TrainConfig, char_ngrams, collect_rows
from qinglang_nlp.train.stack import _fanquan_groups, balanced_threshold, fit_stacker

LEX_KEYS = ("lex_fanquan_count", "lex_fanquan_max_severity", "lex_vulgar_count", "lex_vulgar_max_severity",
            "lex_rumor_count", "lex_rumor_max_severity", "lex_severe")


def dev_rows(seed: int = 13, cap: int = 3000) -> list[tuple[str, dict, str]]:
    """The stacker's dev rows, selected exactly as ``build_stacked`` selects them."""
    rows = collect_rows("dev", TrainConfig(), None, lambda s: None)
    rng = random.Random(seed)
    by: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by.setdefault(r[2], []).append(i)
    keep = sorted(i for ids in by.values() for i in (ids if len(ids) <= cap else rng.sample(ids, cap)))
    return [rows[i] for i in keep]


def member_probs(model: Path, texts: list[str], cache: Path) -> dict[str, np.ndarray]:
    """Each member's dev probabilities (cached by member folder and row count)."""
    cfg = read_config(model)
    out = {}
    for name in cfg["members"]:
        f = cache / f"{name}_{len(texts)}.npy"
        if not f.is_file():
            t = time.time()
            clf = load_classifier(model / name, read_config(model / name))
            p = np.vstack([np.asarray(clf.predict_scores(texts[i:i + 256]), dtype=np.float64)
                           for i in range(0, len(texts), 256)])
            np.save(f, p)
            print(f"scored {len(texts)} dev rows with {name!r} in {time.time() - t:.0f} s", file=sys.stderr)
        out[name] = np.load(f)
    return out


def lexicon_features(model: Path, raw: list[str]) -> np.ndarray:
    import qinglang_nlp as ql
    from qinglang_nlp.lexicon import hit_features

    lex = ql.load(model).lexicon
    feats = [hit_features(sp) for sp in lex.match_many(raw)]
    return np.log1p(np.array([[f[k] for k in LEX_KEYS] for f in feats]))


def real_item_specialist(texts: list[str], ncfg: NormalizeConfig) -> np.ndarray:
    """Logit of a char-n-gram model fit on the 饭圈 corpus's real TRAIN items, for the dev rows ``texts``."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from qinglang_nlp.fanquan_corpus import load_fanquan

    tr = [r for r in load_fanquan("train") if r["origin"] != "written"]
    x = [n.text for n in normalize_batch([r["text"] for r in tr], ncfg)]
    vec = TfidfVectorizer(analyzer=lambda t: char_ngrams(t, 1, 3), min_df=2, sublinear_tf=True)
    lr = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, solver="liblinear")
    lr.fit(vec.fit_transform(x), [r["fanquan"] for r in tr])
    return _logit(lr.predict_proba(vec.transform(texts))[:, 1])[:, None]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/default", type=Path)
    ap.add_argument("--cache", default="runs/stack_variants", type=Path)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    a.cache.mkdir(parents=True, exist_ok=True)
    ncfg = NormalizeConfig.from_dict(read_config(a.model)["normalize"])
    rows = dev_rows()
    raw = [r[0] for r in rows]
    texts = [n.text for n in normalize_batch(raw, ncfg)]
    y = np.array([[-1 if r[1].get(c) is None else int(r[1][c]) for c in CATEGORIES] for r in rows])
    src, fq_groups = np.array([r[2] for r in rows]), _fanquan_groups(rows)
    probs = member_probs(a.model, texts, a.cache)
    logits = {k: _logit(p) for k, p in probs.items()}
    extra = {"lexicon": lexicon_features(a.model, raw), "real_item": real_item_specialist(texts, ncfg)}

    results: dict[str, dict[str, dict]] = {}
    for j, c in enumerate(CATEGORIES):
        m = y[:, j] >= 0
        own = np.stack([lg[:, j] for lg in logits.values()], 1)
        variants = {"own": own,
                    "cross": np.concatenate([lg for lg in logits.values()], 1),
                    "lexicon": np.concatenate([own, extra["lexicon"]], 1)}
        if c == "fanquan":
            variants["real_item"] = np.concatenate([own, extra["real_item"]], 1)
        groups = fq_groups[m] if c == "fanquan" else src[m]
        for name, x in variants.items():
            _, _, oof = fit_stacker(x[m], y[m, j])
            _, by = balanced_threshold(oof, y[m, j], groups)
            results.setdefault(name, {})[c] = {"mean_f1": round(float(np.mean(list(by.values()))), 4), "by_group": by}
    print(f"dev rows: {len(rows)}; model {a.model}; out-of-fold stacker, balanced label threshold\n")
    print("| inputs | category | mean F1 over dev groups | F1 per group |\n|---|---|---:|---|")
    for name, per in results.items():
        for c, r in per.items():
            print(f"| {name} | {c} | {r['mean_f1']:.4f} | {', '.join(f'{g} {v:.3f}' for g, v in r['by_group'].items())} |")
    if a.json:
        a.json.write_text(json.dumps({"model": str(a.model), "rows": len(rows), "results": results}, indent=1) + "\n",
                          encoding="utf-8")


if __name__ == "__main__":
    main()
