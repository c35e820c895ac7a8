"""Cloaked test: a model's F1 on original vs cloaked text, with and without normalisation, per evasion family.

    .venv/bin/python benchmarks/cloaked.py                       # models/baseline, cold+swsr carved test, vulgar
    .venv/bin/python benchmarks/cloaked.py --datasets cold --limit 1000 --json out.json
    .venv/bin/python benchmarks/cloaked.py --split dev ...        # the same cloaking on the carved DEV rows
    # every category, two models side by side, a seeded sample of 300 texts per category:
    .venv/bin/python benchmarks/cloaked.py --model baseline,default --categories vulgar,fanquan,rumor \\
        --sample 300 --no-lex --json out.json --md out.md

For every text of the carved TEST splits (``--split dev``: DEV, for development; never held-out data) and every family of ``qinglang_nlp.perturb``,
the text is cloaked (seeded, deterministic). The cloaking targets the offensive terms of the ToxiCN insult
lexicon and SWSR SexHateLex read from the shared data (not the normaliser's own tables, so the test is not
circular); texts without such a term get a random 20 % of their CJK characters cloaked.

Categories (``--categories``, default ``vulgar``; each scored by the model's own score and threshold for it):

- ``vulgar``  rows of ``--datasets`` (default cold,swsr) with a vulgar label; targets: the lexicons above.
- ``fanquan`` items of our 饭圈 corpus split (``load_fanquan``), label ``fanquan``; targets: the 饭圈 terms of the
  bundled deny list ``qinglang_nlp/data/lexicons/fanquan.tsv`` (CJK, >= 2 characters) plus the lexicons above
  (饭圈 abuse hides insults too). Partly circular: the restorer (on in models whose config enables it) reads
  the same 饭圈 terms as candidate words for pinyin initials.
- ``rumor``   rows of ``--rumor-datasets`` (default weibo21) with a rumor label; targets: the lexicons above, which
  rumour posts seldom contain, so nearly every text gets 20 % random characters cloaked. There is no rumour
  keyword list: this measures robustness to generic character-level noise, not a keyword evasion.

By default the first ``--limit`` rows per dataset are used (as before); ``--sample N`` instead draws a seeded
random sample of N labelled texts per category from all rows of the split.

Scores, per model (``--model``, comma-separated for several, side by side on the same cloaked texts):

- ``orig+norm``   original text, normalised with the model's config (the normal pipeline) — the reference
- ``cloak raw``   cloaked text with every normalisation step switched off at inference
- ``cloak+norm``  cloaked text normalised with the model's config

- ``cloak+norm+lex`` the same with ``NormalizeConfig.targets`` = the cloaking lexicon: the defender knows the
  banned words (circular by construction, shown separately)

``recovered = (F1 cloak+norm - F1 cloak raw) / (F1 orig+norm - F1 cloak raw)``: the share of the F1 lost to
cloaking that normalisation wins back. ``safe flagged`` counts safe texts labelled positive (false positives).
Positive label: the category at the model's own threshold.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qinglang_nlp.datasets import data_dir, load_dataset
from qinglang_nlp.normalize import NormalizeConfig, normalize_batch
from qinglang_nlp.perturb import make_families

CATEGORIES = ("vulgar", "fanquan", "rumor")
MIN_LOSS = 0.01  # below this F1 loss, "recovered" is noise (a 0.002 loss made -230 % out of nothing)
MAX_DROP = 0.03  # issue 10: F1 drop from original to cloaked (normalised) text at most 3 points


def lexicon_terms(d: Path) -> list[str]:
    """Offensive terms (>= 2 CJK characters) of the ToxiCN insult lexicon and SexHateLex."""
    terms: set[str] = set()
    lex = d / "lexicons"
    for p in sorted((lex / "toxicn_insult_lexicon").glob("*.json")):
        terms.update(json.loads(p.read_text(encoding="utf-8")))
    p = lex / "swsr_sexhatelex" / "SexHateLex.txt"
    if p.exists():
        terms.update(line.strip() for line in p.read_text(encoding="utf-8").splitlines())
    return sorted(t for t in terms if _cjk_term(t))


def _cjk_term(t: str) -> bool:
    return len(t) >= 2 and all("\u4e00" <= c <= "\u9fff" for c in t)


def fanquan_terms() -> list[str]:
    """饭圈 terms (>= 2 CJK characters) of the bundled deny list ``data/lexicons/fanquan.tsv``."""
    path = ROOT / "qinglang_nlp" / "data" / "lexicons" / "fanquan.tsv"
    terms = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        cols = line.split("\t")
        if line.startswith("#") or len(cols) < 2 or cols[0] == "term":
            continue
        if cols[1] != "fanquan":
            raise ValueError(f"{path}: term {cols[0]!r} has category {cols[1]!r}, expected 'fanquan'")
        terms.add(cols[0])
    return sorted(t for t in terms if _cjk_term(t))


def f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


@cache
def _load(name: str):
    import qinglang_nlp as ql

    return ql.load(name, lexicon=False)


def load_model(name: str, category: str = "vulgar"):
    """(scorer, threshold, normalize config, model name) of one category of a model folder or name."""
    m = _load(name)
    cats = list(m.classifier.categories)
    if category not in cats:
        raise ValueError(f"model {name!r} has no category {category!r}; it has {cats}")
    j = cats.index(category)
    th = float(m.config.get("thresholds", {}).get(category, 0.5))

    def score(texts: list[str]) -> np.ndarray:
        out = np.zeros(len(texts))
        live = [i for i, t in enumerate(texts) if t.strip()]
        if live:
            out[live] = np.asarray(m.classifier.predict_scores([texts[i] for i in live]))[:, j]
        return out
    return score, th, NormalizeConfig.from_dict(m.config.get("normalize")), m.name


def commit_id() -> str:
    """Short commit of the code measured: ``$QINGLANG_COMMIT`` (set it when running from a clean ``git archive``
    export of a commit, which has no ``.git``), else ``git rev-parse`` of this tree (which may hold uncommitted
    edits: check ``git status``)."""
    import os

    env = os.environ.get("QINGLANG_COMMIT")
    if env:
        return env
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=False).stdout.strip()


def _pct(won: float, lost: float) -> str:
    return f"n/a (loss {lost:.3f} < {MIN_LOSS})" if lost < MIN_LOSS else f"{100 * won / lost:.0f}%"


def category_data(category: str, args: argparse.Namespace, d: Path) -> tuple[list[str], np.ndarray, str]:
    """Texts, labels and a description of the data of one category (first ``--limit`` per dataset or a sample)."""
    datasets = {"vulgar": args.datasets, "fanquan": "fanquan", "rumor": args.rumor_datasets}[category]
    limit = None if args.sample else args.limit
    recs = []
    for ds in datasets.split(","):
        recs += [r for r in load_dataset(ds, args.split, d, limit=limit) if r.labels.get(category) is not None]
    desc = f"{datasets} carved-{args.split}"
    if args.sample:
        if args.sample < len(recs):
            pick = sorted(random.Random(f"{args.seed}:{category}").sample(range(len(recs)), args.sample))
            desc += f", seeded sample of {args.sample} of {len(recs)} labelled rows (seed {args.seed})"
            recs = [recs[i] for i in pick]
        else:
            desc += f", all {len(recs)} labelled rows (fewer than --sample {args.sample})"
    else:
        desc += f", first {args.limit} rows per dataset"
    return [r.text for r in recs], np.array([int(r.labels[category]) for r in recs]), desc


def category_terms(category: str, d: Path) -> list[str]:
    """Cloaking targets of one category (see the module docstring)."""
    terms = lexicon_terms(d)
    return sorted(set(terms) | set(fanquan_terms())) if category == "fanquan" else terms


def cloak_all(texts: list[str], fams: dict, seed: int) -> dict[str, list[str]]:
    """Family -> the cloaked texts, seeded per text as ``perturb.cloak()`` does."""
    out = {}
    for fam, fn in fams.items():
        out[fam] = [fn(t, random.Random(int(hashlib.sha256(f"{seed}:{fam}:{t}".encode()).hexdigest()[:16], 16)))
                    for t in texts]
    return out


def run_model(name: str, category: str, texts: list[str], y: np.ndarray, cloaked: dict[str, list[str]],
              terms: list[str], no_lex: bool, norm_cache: dict) -> dict:
    """One model on one category's original and cloaked texts; prints its table, returns the rows."""
    score, th, ncfg, mname = load_model(name, category)
    off = NormalizeConfig.none()
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(terms))
    lcfg = NormalizeConfig.from_dict({**ncfg.to_dict(), "targets": fh.name})

    def normalised(key: str, xs: list[str], cfg: NormalizeConfig, cfg_key: str) -> list[str]:
        k = (key, cfg_key)  # models with the same normalisation config share the normalised texts
        if k not in norm_cache:
            norm_cache[k] = [n.text for n in normalize_batch(xs, cfg)]
        return norm_cache[k]

    def evaluate(key: str, xs: list[str], cfg: NormalizeConfig, cfg_key: str) -> tuple[float, int]:
        pred = (score(normalised(key, xs, cfg, cfg_key)) >= th).astype(int)
        return f1(y, pred), int(((pred == 1) & (y == 0)).sum())

    nkey, lkey = json.dumps(ncfg.to_dict(), sort_keys=True), "lex:" + json.dumps(ncfg.to_dict(), sort_keys=True)
    t0 = time.process_time()
    ref_f1, ref_fp = evaluate("orig", texts, ncfg, nkey)
    raw_f1, raw_fp = evaluate("orig", texts, off, "none")
    lex_f1, lex_fp = (float("nan"), -1) if no_lex else evaluate("orig", texts, lcfg, lkey)
    with_term = sum(any(term in t for term in terms) for t in texts)
    print(f"\nmodel {mname} ({name}), category {category}, threshold {th:.3f}; {len(texts)} texts "
          f"({int(y.sum())} positive, {int((y == 0).sum())} safe); {len(terms)} target terms, found in "
          f"{with_term} texts (the rest get random characters cloaked)")
    print(f"original text: F1 {ref_f1:.3f} normalised (model config), {raw_f1:.3f} raw, {lex_f1:.3f} normalised "
          f"with the lexicon as targets; safe flagged {ref_fp} / {raw_fp} / {lex_fp}\n")
    print("| family | texts changed | F1 orig+norm | F1 cloak raw | F1 cloak+norm | recovered | F1 cloak+norm+lex "
          "| recovered +lex | safe flagged: orig+norm / cloak raw / cloak+norm / cloak+norm+lex |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    rows = []
    for fam, cl in cloaked.items():
        changed = sum(c != t for c, t in zip(cl, texts))
        c_raw, c_raw_fp = evaluate(fam, cl, off, "none")
        c_norm, c_norm_fp = evaluate(fam, cl, ncfg, nkey)
        c_lex, c_lex_fp = (float("nan"), -1) if no_lex else evaluate(fam, cl, lcfg, lkey)
        rows.append({"family": fam, "changed": changed, "f1_orig_norm": ref_f1, "f1_cloak_raw": c_raw,
                     "f1_cloak_norm": c_norm, "f1_cloak_norm_lex": c_lex, "fp_orig_norm": ref_fp,
                     "fp_cloak_raw": c_raw_fp, "fp_cloak_norm": c_norm_fp, "fp_cloak_norm_lex": c_lex_fp})
        lost = ref_f1 - c_raw
        print(f"| {fam} | {changed} | {ref_f1:.3f} | {c_raw:.3f} | {c_norm:.3f} | {_pct(c_norm - c_raw, lost)} "
              f"| {c_lex:.3f} | {_pct(c_lex - c_raw, lost)} | {ref_fp} / {c_raw_fp} / {c_norm_fp} / {c_lex_fp} |",
              flush=True)
    Path(fh.name).unlink()
    hit = [r for r in rows if r["f1_orig_norm"] - r["f1_cloak_raw"] >= MIN_LOSS]
    lost = sum(r["f1_orig_norm"] - r["f1_cloak_raw"] for r in hit)
    won = sum(r["f1_cloak_norm"] - r["f1_cloak_raw"] for r in hit)
    won_lex = sum(r["f1_cloak_norm_lex"] - r["f1_cloak_raw"] for r in hit)
    worse = [r["family"] for r in rows if r["fp_cloak_norm"] > r["fp_orig_norm"]]
    cpu = time.process_time() - t0
    lex_part = "" if no_lex else f", {_pct(won_lex, lost)} with the lexicon as targets"
    print(f"\nfamilies that cost >= {MIN_LOSS} F1 ({', '.join(r['family'] for r in hit)}): recovered "
          f"{_pct(won, lost)} of the summed loss with the built-in tables{lex_part}. "
          f"Families where cloak+norm flags more safe texts than orig+norm: {worse or 'none'}. "
          f"CPU {cpu:.0f} s (process time, this model and category)")
    return {"model": mname, "model_arg": name, "category": category, "threshold": th, "n": len(texts),
            "positive": int(y.sum()), "safe": int((y == 0).sum()), "texts_with_term": with_term,
            "orig_raw_f1": raw_f1, "orig_lex_f1": lex_f1, "summed_loss": lost, "summed_recovered": won,
            "cpu_s": cpu, "rows": rows}


def markdown(results: list[dict]) -> str:
    """One table per category, the models side by side: F1s, recovered share, drop against 3 points, safe flagged."""
    out = []
    for cat in dict.fromkeys(r["category"] for r in results):
        rs = [r for r in results if r["category"] == cat]
        names = [r.get("model_arg", r["model"]) for r in rs]
        out.append(f"\n#### {cat}: {rs[0]['n']} texts ({rs[0]['positive']} positive, {rs[0]['safe']} safe), "
                   f"{rs[0]['texts_with_term']} with a target term\n")
        out.append("F1 orig+norm (reference), per model: " + "; ".join(
            f"{r.get('model_arg', r['model'])} ({r['model']}) {r['f1_orig_norm']:.3f} at threshold {r['threshold']:.3f}, {r['fp']} safe flagged"
            for r in ({**x, "f1_orig_norm": x["rows"][0]["f1_orig_norm"], "fp": x["rows"][0]["fp_orig_norm"]}
                      for x in rs)) + "\n")
        head = "| family | texts changed | " + " | ".join(
            f"{n}: F1 cloak raw / cloak+norm | {n}: recovered | {n}: drop orig→cloak+norm (≤ 3 pts) | "
            f"{n}: safe flagged orig / raw / norm" for n in names) + " |"
        out.append(head)
        out.append("|---|---:|" + "---|---:|---:|---|" * len(names))
        for k, row in enumerate(rs[0]["rows"]):
            cells = [row["family"], str(row["changed"])]
            for r in rs:
                x = r["rows"][k]
                lost = x["f1_orig_norm"] - x["f1_cloak_raw"]
                drop = 100 * (x["f1_orig_norm"] - x["f1_cloak_norm"])
                fp_mark = " **more**" if x["fp_cloak_norm"] > x["fp_orig_norm"] else ""
                cells += [f"{x['f1_cloak_raw']:.3f} / {x['f1_cloak_norm']:.3f}",
                          _pct(x["f1_cloak_norm"] - x["f1_cloak_raw"], lost),
                          f"{drop:.1f}" + ("" if drop <= 100 * MAX_DROP else " **over**"),
                          f"{x['fp_orig_norm']} / {x['fp_cloak_raw']} / {x['fp_cloak_norm']}{fp_mark}"]
            out.append("| " + " | ".join(cells) + " |")
        out.append("\nSummed over the families that cost >= 0.01 F1: " + "; ".join(
            f"{r.get('model_arg', r['model'])} recovered {_pct(r['summed_recovered'], r['summed_loss'])} of "
            f"{r['summed_loss']:.3f}" for r in rs) + " (target 80 %).")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="baseline", help="model folder or name; comma-separated for several")
    ap.add_argument("--categories", default="vulgar", help=f"comma-separated subset of {','.join(CATEGORIES)}")
    ap.add_argument("--datasets", default="cold,swsr", help="datasets of the vulgar category")
    ap.add_argument("--rumor-datasets", default="weibo21", help="datasets of the rumor category")
    ap.add_argument("--split", default="test", choices=("test", "dev"),
                    help="carved split to cloak (develop on dev; report test once)")
    ap.add_argument("--limit", type=int, default=2000, help="texts per dataset (first N of the carved split)")
    ap.add_argument("--sample", type=int, default=0,
                    help="instead of --limit: a seeded random sample of N labelled texts per category")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--md", help="write the side-by-side markdown tables here too")
    ap.add_argument("--families", default=None, help="comma-separated subset of the cloaking families (default: all)")
    ap.add_argument("--no-lex", action="store_true", help="skip the +lex columns (saves a third of the scoring)")
    ap.add_argument("--md-from", metavar="JSON", help="only write --md from the results of an earlier --json run")
    args = ap.parse_args()
    if args.md_from:
        if not args.md:
            sys.exit("--md-from needs --md (where to write the tables)")
        saved = json.loads(Path(args.md_from).read_text(encoding="utf-8"))
        if "results" not in saved:
            sys.exit(f"{args.md_from}: no 'results' list (written by a run with one model and one category?)")
        Path(args.md).write_text(markdown(saved["results"]), encoding="utf-8")
        return

    cats = args.categories.split(",")
    if set(cats) - set(CATEGORIES):
        sys.exit(f"unknown categories {sorted(set(cats) - set(CATEGORIES))}; known: {list(CATEGORIES)}")
    d = data_dir()
    t0, c0 = time.time(), time.process_time()
    results, data_desc = [], {}
    for cat in cats:
        terms = category_terms(cat, d)
        fams = make_families(terms=terms)
        if args.families:
            unknown = set(args.families.split(",")) - set(fams)
            if unknown:
                sys.exit(f"unknown families {sorted(unknown)}; known: {sorted(fams)}")
            fams = {k: v for k, v in fams.items() if k in args.families.split(",")}
        texts, y, desc = category_data(cat, args, d)
        data_desc[cat] = desc
        print(f"\n=== {cat}: {desc}; seed {args.seed}")
        cloaked = cloak_all(texts, fams, args.seed)
        norm_cache: dict = {}
        for name in args.model.split(","):
            results.append(run_model(name, cat, texts, y, cloaked, terms, args.no_lex, norm_cache))
    print(f"\n{time.time() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU (process time)")
    commit = commit_id()
    if args.md:
        Path(args.md).write_text(markdown(results), encoding="utf-8")
    if args.json:
        meta = {"commit": commit, "command": " ".join(sys.argv), "split": args.split, "seed": args.seed,
                "data": data_desc, "wall_s": time.time() - t0, "cpu_s": time.process_time() - c0}
        if len(results) == 1:  # the old single-model, single-category layout, plus the run's metadata
            r = results[0]
            payload = {"model": r["model"], "threshold": r["threshold"], "datasets": args.datasets,
                       "split": args.split, "n": r["n"], "orig_raw_f1": r["orig_raw_f1"],
                       "orig_lex_f1": r["orig_lex_f1"], "rows": r["rows"], **meta}
        else:
            payload = {**meta, "results": results}
        Path(args.json).write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
