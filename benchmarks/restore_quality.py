"""Restoration quality of ``qinglang_nlp.restore`` on cloaked carved-split texts, and the cloaked F1 with it.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/restore_quality.py                   # carved TEST, cold+swsr
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/restore_quality.py --split dev       # what the defaults were tuned on
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/restore_quality.py --f1 --json benchmarks/results/restore.json
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/restore_quality.py --speed           # CPU-time MB/s on 1 MB

Texts: the first ``--limit`` rows with a vulgar label of the carved split of each dataset (as ``cloaked.py``).
Cloaking: ``qinglang_nlp.perturb`` with the same lexicon targets and per-text seeds as ``cloaked.py`` (its
functions are imported, not copied). For each family the cloaked spans are recomputed with the same seeded
generator, so every cloaked original character is known.

- ``restored``: share of cloaked original characters that the restorer puts back (per span, matching characters
  between the original span and the restored span, ``difflib`` blocks), run on the raw cloaked text.
- ``spans exact``: share of cloaked spans restored exactly.
- ``false changes``: characters changed by edits that touch no cloaked span, per 1,000 characters of text, and on
  clean (uncloaked) text: share of characters changed and of texts changed.

``--f1`` adds the ``cloaked.py`` table with one more column, ``cloak+norm+restore``: the model's normalisation, then
``restore`` on the normalised text (normalize.py itself is not changed). Circularity: the restorer's channel
(same toneless pinyin) is the relation the cloaking uses.
"""
from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cloaked import MIN_LOSS, _pct, commit_id, f1, lexicon_terms, load_model

from qinglang_nlp import perturb
from qinglang_nlp.datasets import data_dir, load_dataset
from qinglang_nlp.restore import RestoreConfig, _apply, default_lm, restore_batch, restore_edits_batch

FAMILIES = ("homophone", "pinyin_full", "pinyin_initials")


def texts_of(split: str, datasets: str, limit: int, d: Path) -> tuple[list[str], np.ndarray]:
    recs = []
    for ds in datasets.split(","):
        recs += [r for r in load_dataset(ds, split, d, limit=limit) if r.labels.get("vulgar") is not None]
    return [r.text for r in recs], np.array([r.labels["vulgar"] for r in recs])


def target_order(terms: list[str]) -> list[str]:
    """Target terms in the order ``perturb.make_families`` tries them: longest first, ties by the text.

    The span reconstruction must use exactly perturb's order: with equal-length terms that overlap in a text, the
    first one tried takes the span. (Until perturb ``e82c272`` ties were left in set order, ``key=len``; this
    script still used that order after perturb changed, so the spans disagreed.)
    """
    return sorted({t for t in terms if t}, key=lambda t: (-len(t), t))


def cloak_with_spans(text: str, fam: str, fams: dict, terms_sorted: list[str], seed: int
                     ) -> tuple[str, list[tuple[int, int, int, int]]]:
    """Cloaked text (as cloaked.py makes it) and its spans: (orig start, orig end, cloaked start, cloaked end)."""
    h = int(hashlib.sha256(f"{seed}:{fam}:{text}".encode()).hexdigest()[:16], 16)
    cloaked = fams[fam](text, random.Random(h))
    spans = perturb._spans(text, terms_sorted, random.Random(h), 0.2)
    out, shift = [], 0
    for s, e in spans:
        if fam == "homophone":
            n = e - s
        elif fam == "pinyin_full":
            n = sum(len(perturb._syllable(c) or c) for c in text[s:e])
        else:
            n = e - s
        out.append((s, e, s + shift, s + shift + n))
        shift += n - (e - s)
    if _rebuild(text, out, cloaked) != cloaked:
        raise RuntimeError(f"span reconstruction failed for {fam}: {text!r}")
    return cloaked, out


def _rebuild(text: str, spans: list[tuple[int, int, int, int]], cloaked: str) -> str:
    parts, pos = [], 0
    for s, e, cs, ce in spans:
        parts += [text[pos:s], cloaked[cs:ce]]
        pos = e
    parts.append(text[pos:])
    return "".join(parts)


def score_restoration(text: str, cloaked: str, spans: list, edits: list) -> dict[str, int]:
    """Counts for one text: cloaked chars, restored chars, spans, exact spans, chars changed outside spans."""
    r = {"cloaked": 0, "restored": 0, "spans": 0, "exact": 0, "false_chars": 0}
    used = [False] * len(edits)
    for s, e, cs, ce in spans:
        if text[s:e] == cloaked[cs:ce]:
            continue  # nothing was disguised here (no homophone for the character)
        # region of the cloaked text: the span grown to cover every edit that overlaps it
        lo, hi, inside = cs, ce, []
        for k, (es, ee, _) in enumerate(edits):
            if es < ce and ee > cs:
                inside.append(k)
                lo, hi = min(lo, es), max(hi, ee)
                used[k] = True
        restored = _apply(cloaked[lo:hi], [(es - lo, ee - lo, rep) for es, ee, rep in (edits[k] for k in inside)])
        orig = text[s - (cs - lo):e + (hi - ce)] if lo < cs or hi > ce else text[s:e]
        m = sum(b.size for b in difflib.SequenceMatcher(None, orig, restored, autojunk=False).get_matching_blocks())
        n_before = cs - lo
        n_after = hi - ce
        r["cloaked"] += e - s
        r["restored"] += max(0, min(e - s, m - n_before - n_after))
        r["spans"] += 1
        r["exact"] += int(restored == orig)
    r["false_chars"] = sum(ee - es for k, (es, ee, _) in enumerate(edits) if not used[k])
    return r


def quality(texts: list[str], terms: list[str], seed: int, cfg: RestoreConfig) -> dict:
    fams = perturb.make_families(terms=terms)
    tl = target_order(terms)
    out: dict = {}
    t0 = time.process_time()
    clean = restore_edits_batch(texts, config=cfg)
    n_chars = sum(len(t) for t in texts)
    changed = sum(ee - es for e in clean for es, ee, _ in e)
    out["clean"] = {"texts": len(texts), "chars": n_chars, "texts_changed": sum(bool(e) for e in clean),
                    "chars_changed": changed, "char_rate": changed / max(1, n_chars),
                    "examples": [[t, _apply(t, e)] for t, e in zip(texts, clean) if e][:12]}
    for fam in FAMILIES:
        pairs = [cloak_with_spans(t, fam, fams, tl, seed) for t in texts]
        edits = restore_edits_batch([c for c, _ in pairs], config=cfg)
        tot = {"cloaked": 0, "restored": 0, "spans": 0, "exact": 0, "false_chars": 0}
        for t, (c, sp), e in zip(texts, pairs, edits):
            for k, v in score_restoration(t, c, sp, e).items():
                tot[k] += v
        cl_chars = sum(len(c) for c, _ in pairs)
        out[fam] = {**tot, "rate": tot["restored"] / max(1, tot["cloaked"]),
                    "exact_rate": tot["exact"] / max(1, tot["spans"]),
                    "false_per_1000": 1000 * tot["false_chars"] / max(1, cl_chars),
                    "examples": [[c, _apply(c, e)] for (c, _), e in zip(pairs, edits) if e][:8]}
    out["cpu_s"] = time.process_time() - t0
    return out


def f1_table(texts: list[str], y: np.ndarray, terms: list[str], model: str, seed: int, cfg: RestoreConfig,
             only: list[str] | None = None) -> list:
    from qinglang_nlp.normalize import NormalizeConfig, normalize_batch

    score, th, ncfg, name = load_model(model)
    off = NormalizeConfig.none()
    fams = perturb.make_families(terms=terms)

    def evaluate(xs: list[str], c: NormalizeConfig, rest: bool) -> tuple[float, int]:
        norm = [n.text for n in normalize_batch(xs, c)]
        if rest:
            norm = restore_batch(norm, config=cfg)
        pred = (score(norm) >= th).astype(int)
        return f1(y, pred), int(((pred == 1) & (y == 0)).sum())

    ref_f1, ref_fp = evaluate(texts, ncfg, False)
    rr_f1, rr_fp = evaluate(texts, ncfg, True)
    print(f"\nmodel {name}, threshold {th:.3f}; original text F1 {ref_f1:.3f} norm, {rr_f1:.3f} norm+restore; "
          f"safe flagged {ref_fp} / {rr_fp}\n")
    print("| family | F1 orig+norm | F1 cloak raw | F1 cloak+norm | recovered | F1 cloak+norm+restore | recovered "
          "+restore | safe flagged: orig+norm / cloak+norm / cloak+norm+restore |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    rows = []
    for fam in [f for f in fams if not only or f in only]:
        cloaked = []
        for t in texts:
            h = int(hashlib.sha256(f"{seed}:{fam}:{t}".encode()).hexdigest()[:16], 16)
            cloaked.append(fams[fam](t, random.Random(h)))
        c_raw, _ = evaluate(cloaked, off, False)
        c_norm, c_norm_fp = evaluate(cloaked, ncfg, False)
        c_rest, c_rest_fp = evaluate(cloaked, ncfg, True)
        lost = ref_f1 - c_raw
        rows.append({"family": fam, "f1_orig_norm": ref_f1, "f1_orig_norm_restore": rr_f1, "f1_cloak_raw": c_raw,
                     "f1_cloak_norm": c_norm, "f1_cloak_norm_restore": c_rest, "fp_orig_norm": ref_fp,
                     "fp_cloak_norm": c_norm_fp, "fp_cloak_norm_restore": c_rest_fp})
        print(f"| {fam} | {ref_f1:.3f} | {c_raw:.3f} | {c_norm:.3f} | {_pct(c_norm - c_raw, lost)} | {c_rest:.3f} | "
              f"{_pct(c_rest - c_raw, lost)} | {ref_fp} / {c_norm_fp} / {c_rest_fp} |", flush=True)
    hit = [r for r in rows if r["f1_orig_norm"] - r["f1_cloak_raw"] >= MIN_LOSS]
    lost = sum(r["f1_orig_norm"] - r["f1_cloak_raw"] for r in hit)
    won = sum(r["f1_cloak_norm"] - r["f1_cloak_raw"] for r in hit)
    won_r = sum(r["f1_cloak_norm_restore"] - r["f1_cloak_raw"] for r in hit)
    print(f"\nfamilies that cost >= {MIN_LOSS} F1 ({', '.join(r['family'] for r in hit)}): recovered {_pct(won, lost)} "
          f"with norm, {_pct(won_r, lost)} with norm+restore")
    return rows


def speed(d: Path, cfg: RestoreConfig, repeats: int = 3) -> dict:
    """CPU seconds and MB/s of restore_edits_batch (and of restore_edits per text) on ~1 MB of carved dev text."""
    texts, size = [], 0
    for ds in ("cold", "chnci", "swsr"):
        for r in load_dataset(ds, "dev", d):
            texts.append(r.text)
            size += len(r.text.encode("utf-8"))
            if size >= 1_000_000:
                break
        if size >= 1_000_000:
            break
    default_lm()
    runs_b, runs_1 = [], []
    for _ in range(repeats):
        t0 = time.process_time()
        for k in range(0, len(texts), 1024):
            restore_edits_batch(texts[k:k + 1024], config=cfg)
        runs_b.append(time.process_time() - t0)
    sub = texts[:2000]
    sub_mb = sum(len(t.encode("utf-8")) for t in sub) / 1e6
    for _ in range(repeats):
        t0 = time.process_time()
        for t in sub:
            restore_edits_batch([t], config=cfg)
        runs_1.append(time.process_time() - t0)
    mb = size / 1e6
    med_b, med_1 = float(np.median(runs_b)), float(np.median(runs_1))
    return {"commit": commit_id(), "config": cfg.__dict__, "load_avg_1m": os.getloadavg()[0], "mb": mb, "texts": len(texts), "batch_cpu_s": runs_b, "batch_mb_per_s": mb / med_b,
            "single_texts": len(sub), "single_mb": sub_mb, "single_cpu_s": runs_1, "single_mb_per_s": sub_mb / med_1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="test", choices=("dev", "test"))
    ap.add_argument("--datasets", default="cold,swsr")
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", default="{}", help="JSON overrides of RestoreConfig fields")
    ap.add_argument("--f1", action="store_true", help="also the cloaked F1 table with a +restore column")
    ap.add_argument("--model", default="baseline")
    ap.add_argument("--f1-families", default="", help="comma-separated families for --f1 (default: all)")
    ap.add_argument("--speed", action="store_true", help="only measure speed")
    ap.add_argument("--clean-only", action="store_true",
                    help="only the false-change rate on the uncloaked texts of --datasets (any label)")
    ap.add_argument("--idempotence", action="store_true",
                    help="also check restore(restore(x)) == restore(x) on the clean and cloaked texts")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()
    d = data_dir()
    cfg = RestoreConfig(**json.loads(args.config))
    if args.speed:
        sp = speed(d, cfg)
        print(json.dumps(sp, indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(sp, indent=1), encoding="utf-8")
        return
    if args.clean_only:
        texts = [r.text for ds in args.datasets.split(",") for r in load_dataset(ds, args.split, d, limit=args.limit)]
        edits = restore_edits_batch(texts, config=cfg)
        changed = sum(e - s for x in edits for s, e, _ in x)
        n = sum(len(t) for t in texts)
        res = {"datasets": args.datasets, "split": args.split, "texts": len(texts), "chars": n,
               "chars_changed": changed, "texts_changed": sum(bool(x) for x in edits),
               "examples": [[t, _apply(t, x)] for t, x in zip(texts, edits) if x][:20]}
        print(f"{args.datasets} {args.split}: {changed} of {n} characters changed ({100 * changed / max(1, n):.3f} %), "
              f"{res['texts_changed']} of {len(texts)} texts")
        if args.json:
            Path(args.json).write_text(json.dumps(res, ensure_ascii=False, indent=1), encoding="utf-8")
        return
    texts, y = texts_of(args.split, args.datasets, args.limit, d)
    terms = lexicon_terms(d)
    q = quality(texts, terms, args.seed, cfg)
    c = q["clean"]
    print(f"{len(texts)} carved-{args.split} texts of {args.datasets}; config {cfg}")
    print(f"clean text: {c['chars_changed']} of {c['chars']} characters changed ({100 * c['char_rate']:.3f} %), "
          f"{c['texts_changed']} of {c['texts']} texts")
    print("\n| family | cloaked chars | restored | spans exact | false changes per 1,000 chars |")
    print("|---|---:|---:|---:|---:|")
    for fam in FAMILIES:
        r = q[fam]
        print(f"| {fam} | {r['cloaked']} | {100 * r['rate']:.1f} % | {100 * r['exact_rate']:.1f} % | "
              f"{r['false_per_1000']:.2f} |")
    print(f"\nCPU {q['cpu_s']:.1f} s")
    commit = commit_id()
    if args.idempotence:
        from qinglang_nlp.restore import _restorer

        fams, tl = perturb.make_families(terms=terms), target_order(terms)
        allx = list(texts) + [cloak_with_spans(t, f, fams, tl, args.seed)[0] for f in FAMILIES for t in texts]
        once = restore_batch(allx, config=cfg)
        twice = restore_batch(once, config=cfg)
        one_pass = _restorer(None, cfg).pass_batch(allx)
        unsettled = sum(1 for x, y, p in zip(allx, once, one_pass) if x == y and p)
        q["idempotence"] = {"texts": len(allx), "not_idempotent": sum(a != b for a, b in zip(once, twice)),
                            "unsettled_left_unchanged": unsettled}
        print(f"idempotence: {q['idempotence']}")
    result = {"commit": commit.strip(), "command": " ".join(sys.argv), "split": args.split, "datasets": args.datasets, "limit": args.limit, "seed": args.seed,
              "config": cfg.__dict__, "quality": q}
    if args.f1:
        result["f1"] = f1_table(texts, y, terms, args.model, args.seed, cfg,
                                [f for f in args.f1_families.split(",") if f])
    if args.json:
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
