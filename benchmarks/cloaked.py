"""Cloaked test: baseline F1 on original vs cloaked text, with and without normalisation, per evasion family.

    .venv/bin/python benchmarks/cloaked.py                       # models/baseline, cold+swsr carved test
    .venv/bin/python benchmarks/cloaked.py --datasets cold --limit 1000 --json out.json
    .venv/bin/python benchmarks/cloaked.py --split dev ...        # the same cloaking on the carved DEV rows

For every text of the carved TEST splits (``--split dev``: DEV, for development; never held-out data) and every family of ``qinglang_nlp.perturb``,
the text is cloaked (seeded, deterministic). The cloaking targets the offensive terms of the ToxiCN insult
lexicon and SWSR SexHateLex read from the shared data (not the normaliser's own tables, so the test is not
circular); texts without such a term get a random 20 % of their CJK characters cloaked.

The classifier is the baseline (``qinglang_nlp.load("baseline")``), which is trained on normalised text. Scores:

- ``orig+norm``   original text, normalised with the model's config (the normal pipeline) — the reference
- ``cloak raw``   cloaked text with every normalisation step switched off at inference
- ``cloak+norm``  cloaked text normalised with the model's config

- ``cloak+norm+lex`` the same with ``NormalizeConfig.targets`` = the cloaking lexicon: the defender knows the
  banned words (circular by construction, shown separately)

``recovered = (F1 cloak+norm - F1 cloak raw) / (F1 orig+norm - F1 cloak raw)``: the share of the F1 lost to
cloaking that normalisation wins back. ``safe flagged`` counts safe texts labelled vulgar (false positives).
Positive label: ``vulgar`` at the model's own threshold.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qinglang_nlp.datasets import data_dir, load_dataset
from qinglang_nlp.normalize import NormalizeConfig, normalize_batch
from qinglang_nlp.perturb import make_families


def lexicon_terms(d: Path) -> list[str]:
    """Offensive terms (>= 2 CJK characters) of the ToxiCN insult lexicon and SexHateLex."""
    terms: set[str] = set()
    lex = d / "lexicons"
    for p in sorted((lex / "toxicn_insult_lexicon").glob("*.json")):
        terms.update(json.loads(p.read_text(encoding="utf-8")))
    p = lex / "swsr_sexhatelex" / "SexHateLex.txt"
    if p.exists():
        terms.update(line.strip() for line in p.read_text(encoding="utf-8").splitlines())
    return sorted(t for t in terms if len(t) >= 2 and all("\u4e00" <= c <= "\u9fff" for c in t))


def f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def load_model(name: str):
    """(scorer, threshold, normalize config) of the vulgar category of a model folder or name."""
    import qinglang_nlp as ql

    m = ql.load(name, lexicon=False)
    j = list(m.classifier.categories).index("vulgar")
    th = float(m.config.get("thresholds", {}).get("vulgar", 0.5))

    def score(texts: list[str]) -> np.ndarray:
        out = np.zeros(len(texts))
        live = [i for i, t in enumerate(texts) if t.strip()]
        if live:
            out[live] = np.asarray(m.classifier.predict_scores([texts[i] for i in live]))[:, j]
        return out
    return score, th, NormalizeConfig.from_dict(m.config.get("normalize")), m.name


MIN_LOSS = 0.01  # below this F1 loss, "recovered" is noise (a 0.002 loss made -230 % out of nothing)


def _pct(won: float, lost: float) -> str:
    return f"n/a (loss {lost:.3f} < {MIN_LOSS})" if lost < MIN_LOSS else f"{100 * won / lost:.0f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="baseline")
    ap.add_argument("--datasets", default="cold,swsr")
    ap.add_argument("--split", default="test", choices=("test", "dev"),
                    help="carved split to cloak (develop on dev; report test once)")
    ap.add_argument("--limit", type=int, default=2000, help="texts per dataset (first N of the carved split)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--families", default=None, help="comma-separated subset of the cloaking families (default: all)")
    ap.add_argument("--no-lex", action="store_true", help="skip the +lex columns (saves a third of the scoring)")
    args = ap.parse_args()

    d = data_dir()
    t0 = time.time()
    score, th, ncfg, name = load_model(args.model)
    off = NormalizeConfig.none()
    terms = lexicon_terms(d)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(terms))
    lcfg = NormalizeConfig.from_dict({**ncfg.to_dict(), "targets": fh.name})
    fams = make_families(terms=terms)
    if args.families:
        unknown = set(args.families.split(",")) - set(fams)
        if unknown:
            sys.exit(f"unknown families {sorted(unknown)}; known: {sorted(fams)}")
        fams = {k: v for k, v in fams.items() if k in args.families.split(",")}
    recs = []
    for ds in args.datasets.split(","):
        recs += [r for r in load_dataset(ds, args.split, d, limit=args.limit) if r.labels.get("vulgar") is not None]
    texts = [r.text for r in recs]
    y = np.array([r.labels["vulgar"] for r in recs])

    def evaluate(xs: list[str], cfg: NormalizeConfig) -> tuple[float, int]:
        pred = (score([n.text for n in normalize_batch(xs, cfg)]) >= th).astype(int)
        return f1(y, pred), int(((pred == 1) & (y == 0)).sum())

    ref_f1, ref_fp = evaluate(texts, ncfg)
    raw_f1, raw_fp = evaluate(texts, off)
    lex_f1, lex_fp = (float("nan"), -1) if args.no_lex else evaluate(texts, lcfg)
    with_term = sum(any(term in t for term in terms) for t in texts)
    print(f"model {name}, threshold {th:.3f}; {len(texts)} carved-{args.split} texts from {args.datasets} "
          f"({int(y.sum())} vulgar, {int((y == 0).sum())} safe); {len(terms)} lexicon terms, found in "
          f"{with_term} texts (the rest get random characters cloaked); seed {args.seed}")
    print(f"original text: F1 {ref_f1:.3f} normalised (model config), {raw_f1:.3f} raw, {lex_f1:.3f} normalised "
          f"with the lexicon as targets; safe flagged {ref_fp} / {raw_fp} / {lex_fp}\n")
    print("norm = the model's normalisation config (built-in tables); +lex = the same with `targets` = the "
          "cloaking lexicon (the defender knows the banned words; circular by construction)\n")
    print("| family | texts changed | F1 orig+norm | F1 cloak raw | F1 cloak+norm | recovered | F1 cloak+norm+lex "
          "| recovered +lex | safe flagged: orig+norm / cloak raw / cloak+norm / cloak+norm+lex |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    rows = []
    for fam in fams:
        cloaked = []  # seeded per text as perturb.cloak() does, with the lexicon-targeted families
        for t in texts:
            h = int(hashlib.sha256(f"{args.seed}:{fam}:{t}".encode()).hexdigest()[:16], 16)
            cloaked.append(fams[fam](t, random.Random(h)))
        changed = sum(c != t for c, t in zip(cloaked, texts))
        c_raw, c_raw_fp = evaluate(cloaked, off)
        c_norm, c_norm_fp = evaluate(cloaked, ncfg)
        c_lex, c_lex_fp = (float("nan"), -1) if args.no_lex else evaluate(cloaked, lcfg)
        rows.append({"family": fam, "changed": changed, "f1_orig_norm": ref_f1, "f1_cloak_raw": c_raw,
                     "f1_cloak_norm": c_norm, "f1_cloak_norm_lex": c_lex, "fp_orig_norm": ref_fp,
                     "fp_cloak_raw": c_raw_fp, "fp_cloak_norm": c_norm_fp, "fp_cloak_norm_lex": c_lex_fp})
        lost = ref_f1 - c_raw
        print(f"| {fam} | {changed} | {ref_f1:.3f} | {c_raw:.3f} | {c_norm:.3f} | {_pct(c_norm - c_raw, lost)} "
              f"| {c_lex:.3f} | {_pct(c_lex - c_raw, lost)} | {ref_fp} / {c_raw_fp} / {c_norm_fp} / {c_lex_fp} |",
              flush=True)
    hit = [r for r in rows if r["f1_orig_norm"] - r["f1_cloak_raw"] >= MIN_LOSS]
    lost = sum(r["f1_orig_norm"] - r["f1_cloak_raw"] for r in hit)
    won = sum(r["f1_cloak_norm"] - r["f1_cloak_raw"] for r in hit)
    won_lex = sum(r["f1_cloak_norm_lex"] - r["f1_cloak_raw"] for r in hit)
    worse = [r["family"] for r in rows if r["fp_cloak_norm"] > r["fp_orig_norm"]]
    print(f"\nfamilies that cost >= {MIN_LOSS} F1 ({', '.join(r['family'] for r in hit)}): recovered "
          f"{_pct(won, lost)} of the summed loss with the built-in tables, {_pct(won_lex, lost)} with the lexicon "
          f"as targets. Families where cloak+norm flags more safe texts than orig+norm: {worse or 'none'}. "
          f"{time.time() - t0:.0f} s")
    Path(fh.name).unlink()
    if args.json:
        Path(args.json).write_text(json.dumps({"model": name, "threshold": th, "datasets": args.datasets, "split": args.split,
                                               "n": len(texts), "orig_raw_f1": raw_f1, "orig_lex_f1": lex_f1,
                                               "rows": rows}, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
