"""Lexicon quality: false-positive rate on safe rows and recall on offensive rows of the carved splits.

For each dataset (category judged): ``cold``, ``swsr``, ``toxicn``, ``chnci`` (vulgar) and our ``fanquan``
corpus (fanquan and vulgar), a row counts as flagged when the matcher returns at least one hit of that
category. FP rate = flagged safe rows / safe rows (also counting only the hits that force review on their own:
severity 3 found in the text itself, not only through the pinyin view, ``decide.severe_hit``); recall = flagged offensive rows / offensive rows.

Variants of the bundled lists, each adding one mechanism:
  raw        deny terms with their whole-word and needs-context constraints removed, no allow list, no pinyin
  +rules     constraints on (whole word by jieba, needs-context, Latin boundaries)
  +allow     ... plus the bundled allow list                      (= LexiconMatcher.default(pinyin=False))
  +pinyin    ... plus the pinyin view                             (= LexiconMatcher.default())
Third-party lists read at run time from ``$QINGLANG_DATA/lexicons`` (never copied into the repo), all treated
as ``vulgar``: konsheng (87k lines), SWSR SexHateLex, ToxiCN insult lexicon; each raw and with the bundled
allow list plus the whole-word rule on one-character terms.

    .venv/bin/python benchmarks/lexicon_quality.py [--split test] [--data DIR] [--top 0] [--json out.json]

``--top N`` prints the N terms that fire most often on safe rows (use it on ``--split dev`` when editing the
lists; the numbers to publish come from ``--split test``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qinglang_nlp.datasets import data_dir, load_dataset
from qinglang_nlp.decide import severe_hit
from qinglang_nlp.lexicon import BUNDLED_LISTS, LexiconMatcher, Term, bundled_path, load_terms
from qinglang_nlp.normalize import normalize_batch

DATASETS = (("cold", "vulgar"), ("swsr", "vulgar"), ("toxicn", "vulgar"), ("chnci", "vulgar"),
            ("fanquan", "fanquan"), ("fanquan", "vulgar"))


def bundled_variants() -> dict[str, LexiconMatcher]:
    deny = {n: load_terms(bundled_path(n)) for n in BUNDLED_LISTS if n != "allow"}
    loose = {n: [replace(t, whole_word=False, context_window=0, context_terms=()) for t in ts]
             for n, ts in deny.items()}
    allow = load_terms(bundled_path("allow"))
    return {
        "raw": LexiconMatcher(loose, pinyin=False),
        "+rules": LexiconMatcher(deny, pinyin=False),
        "+allow": LexiconMatcher({**deny, "allow": allow}, pinyin=False),
        "+pinyin": LexiconMatcher({**deny, "allow": allow}, pinyin=True),
    }


def third_party(data: str | None) -> dict[str, list[Term]]:
    root = data_dir(data) / "lexicons"
    out: dict[str, list[Term]] = {}
    k = root / "konsheng_sensitive_lexicon"
    if k.is_dir():
        out["konsheng"] = [t for f in sorted(k.glob("*.txt")) for t in load_terms(f, category="vulgar",
                                                                               list_name="konsheng")]
    s = root / "swsr_sexhatelex" / "SexHateLex.txt"
    if s.is_file():
        out["sexhatelex"] = load_terms(s, category="vulgar", sublabel="vu_hate", list_name="sexhatelex")
    t = root / "toxicn_insult_lexicon"
    if t.is_dir():
        out["toxicn_lex"] = [x for f in sorted(t.glob("*.json")) for x in load_terms(f, category="vulgar",
                                                                                   list_name="toxicn_lex")]
    return out


def third_party_variants(data: str | None) -> dict[str, LexiconMatcher]:
    allow = load_terms(bundled_path("allow"))
    out = {}
    for name, terms in third_party(data).items():
        out[f"{name} raw"] = LexiconMatcher({name: terms}, pinyin=False)
        ruled = [replace(t, whole_word=True) if len(t.term) == 1 else t for t in terms]
        out[f"{name} +allow+word1"] = LexiconMatcher({name: ruled, "allow": allow}, pinyin=False)
    return out


def evaluate(matchers: dict[str, LexiconMatcher], split: str, data: str | None, top: int) -> list[dict]:
    rows = []
    cache: dict[str, tuple[list, list]] = {}
    for ds, cat in DATASETS:
        if ds not in cache:
            recs = [r for r in load_dataset(ds, split, data)]
            cache[ds] = (recs, normalize_batch([r.text for r in recs]))
        recs, normed = cache[ds]
        labelled = [(r, n) for r, n in zip(recs, normed) if r.labels.get(cat) in (0, 1)]
        for vname, m in matchers.items():
            if cat != "vulgar" and " " in vname:
                continue  # third-party lists are read as vulgar only
            t0 = time.perf_counter()
            fp = fp3 = tp = pos = neg = 0
            fp_terms: Counter[str] = Counter()
            for r, n in labelled:
                hits = [s for s in m.match(n) if s.category == cat]
                if r.labels[cat] == 1:
                    pos += 1
                    tp += bool(hits)
                else:
                    neg += 1
                    fp += bool(hits)
                    fp3 += any(map(severe_hit, hits))  # what forces review: not a pinyin-view-only hit
                    fp_terms.update({s.term for s in hits})
            row = {"dataset": ds, "category": cat, "split": split, "variant": vname, "safe": neg, "offensive": pos,
                   "fp_rate": fp / neg if neg else float("nan"), "fp_sev3_rate": fp3 / neg if neg else float("nan"), "recall": tp / pos if pos else float("nan"),
                   "seconds": time.perf_counter() - t0}
            if top:
                row["top_fp_terms"] = fp_terms.most_common(top)
            rows.append(row)
            print(f"| {ds} | {cat} | {vname} | {neg} | {row['fp_rate']:.2%} | {row['fp_sev3_rate']:.2%} | {pos} "
                  f"| {row['recall']:.2%} |"
                  + (f" {row['top_fp_terms']}" if top else ""), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", default="test", choices=("train", "dev", "test"))
    ap.add_argument("--data", default=None)
    ap.add_argument("--top", type=int, default=0)
    ap.add_argument("--no-third-party", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    matchers = bundled_variants()
    if not args.no_third_party:
        matchers.update(third_party_variants(args.data))
    print(f"# split={args.split}; a row is flagged when it has >= 1 hit of the judged category")
    print("| dataset | category | variant | safe rows | FP rate | FP rate, forces review | offensive rows | recall |")
    print("|---|---|---|---|---|---|---|---|")
    rows = evaluate(matchers, args.split, args.data, args.top)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
