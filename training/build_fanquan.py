"""Build the 饭圈 corpus splits: merge ``raw/*.jsonl`` -> check -> group near-duplicates -> split -> write.

    .venv/bin/python training/build_fanquan.py            # writes {train,dev,test}.jsonl and README stats
    .venv/bin/python training/build_fanquan.py --check    # exit 1 if the committed splits differ from a rebuild

Deterministic and rerunnable: the same raw files, seed and shared data give byte-identical outputs.
Rules (GUIDELINE.md §6, issue 5): 70/15/15 split stratified by (subtype, real/written); items whose
normalised text is identical or whose character 5-gram Jaccard is >= 0.8 form one group, and a group goes
whole to one split; real items never come from another dataset's carved test split. ``text_ref`` rows are
resolved from ``QINGLANG_DATA`` (default ../shared/data) only to compare texts; they are written back
without text.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qinglang_nlp.datasets import data_dir, is_carved_test
from qinglang_nlp.errors import DataError
from qinglang_nlp.fanquan_corpus import (
    SPLITS,
    SUBTYPES,
    corpus_dir,
    dedup_key,
    near_duplicate_groups,
    read_jsonl,
    resolve_texts,
    validate,
)

SHARES = {"train": 0.70, "dev": 0.15, "test": 0.15}
FIELD_ORDER = ("id", "text", "text_ref", "fanquan", "subtype", "vulgar", "rumor", "origin", "style", "note")
STATS_BEGIN, STATS_END = "<!-- stats:begin (written by training/build_fanquan.py) -->", "<!-- stats:end -->"


def origin_kind(rec: dict[str, Any]) -> str:
    """``real`` or ``written``."""
    return "written" if rec["origin"] == "written" else "real"


def origin_source(rec: dict[str, Any]) -> str:
    """``written`` or the dataset name of a real item."""
    return "written" if rec["origin"] == "written" else rec["origin"].split(":")[1]


def load_raw(cdir: Path) -> list[dict[str, Any]]:
    """All items of ``raw/*.jsonl`` (files in name order), validated together."""
    files = sorted((cdir / "raw").glob("*.jsonl"))
    if not files:
        raise DataError(f"no raw/*.jsonl files in {cdir}")
    recs: list[dict[str, Any]] = []
    for f in files:
        part = read_jsonl(f)
        validate(part, source=str(f))
        recs += part
    validate(recs, source=f"{cdir}/raw/*.jsonl (merged)")
    return recs


def _rank(seed: int, rid: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{rid}".encode()).digest()[:8], "big")


def assign_splits(recs: list[dict[str, Any]], groups: list[int], seed: int) -> list[str]:
    """Split name per item: groups stay whole; each stratum is cut 70/15/15 along a seeded hash order.

    Groups are ordered by a hash of (seed, their smallest id) and cut where the running item count passes
    70 % and 85 % of the stratum, so adding items to ``raw/`` later moves only items near the cuts.
    """
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    by_stratum: dict[tuple[str, str], list[list[int]]] = defaultdict(list)
    for g, idx in members.items():
        strata = Counter((recs[i]["subtype"], origin_kind(recs[i])) for i in idx)
        top = max(strata.values())
        by_stratum[min(s for s, c in strata.items() if c == top)].append(sorted(idx, key=lambda i: recs[i]["id"]))
    cuts = (SHARES["train"], SHARES["train"] + SHARES["dev"])
    out = [""] * len(recs)
    for stratum in sorted(by_stratum):
        grp = sorted(by_stratum[stratum], key=lambda idx: _rank(seed, recs[idx[0]]["id"]))
        total = sum(len(idx) for idx in grp)
        done = 0
        for idx in grp:
            mid = (done + len(idx) / 2) / total
            name = "train" if mid < cuts[0] else "dev" if mid < cuts[1] else "test"
            done += len(idx)
            for i in idx:
                out[i] = name
    return out


def ordered(rec: dict[str, Any]) -> dict[str, Any]:
    """The item with fields in the canonical order (unknown extra fields last, sorted)."""
    out = {k: rec[k] for k in FIELD_ORDER if k in rec}
    out.update({k: rec[k] for k in sorted(rec) if k not in out})
    return out


def _pct(xs: list[int], q: float) -> int:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))]


def stats_markdown(recs: list[dict[str, Any]], texts: list[str], split: list[str], n_groups: int,
                   n_grouped: int) -> str:
    """Tables for the datasheet: counts by sub-label, origin and style per split, and lengths."""
    lines = []
    n_pos = sum(r["fanquan"] for r in recs)
    lines.append(f"Items: **{len(recs)}** ({n_pos} positive, {len(recs) - n_pos} negative); "
                 f"near-duplicate groups with more than one item: {n_groups} ({n_grouped} items).\n")

    def table(title: str, key, keys: list[str]) -> None:
        c = Counter((key(r), s) for r, s in zip(recs, split))
        lines.append(f"| {title} | " + " | ".join(SPLITS) + " | total |")
        lines.append("|---" * (len(SPLITS) + 2) + "|")
        for k in keys:
            row = [c[(k, s)] for s in SPLITS]
            lines.append(f"| {k} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
        tot = [sum(1 for s2 in split if s2 == s) for s in SPLITS]
        lines.append("| **all** | " + " | ".join(map(str, tot)) + f" | {sum(tot)} |\n")

    table("subtype", lambda r: r["subtype"], ["none", *SUBTYPES])
    sources = sorted({origin_source(r) for r in recs})
    table("origin", origin_source, sources)
    table("style", lambda r: r["style"], sorted({r["style"] for r in recs}))
    pos_by = Counter((r["subtype"], origin_source(r)) for r in recs if r["fanquan"])
    lines.append("| positives by sub-label | " + " | ".join(sources) + " |")
    lines.append("|---" * (len(sources) + 1) + "|")
    for sub in SUBTYPES:
        lines.append(f"| {sub} | " + " | ".join(str(pos_by[(sub, s)]) for s in sources) + " |")
    lines.append("")
    lines.append("| length (characters) | n | min | p10 | median | p90 | max |")
    lines.append("|---|---|---|---|---|---|---|")
    by_style: dict[str, list[int]] = defaultdict(list)
    for r, t in zip(recs, texts):
        by_style[r["style"]].append(len(t))
    for st in [*sorted(by_style), "all"]:
        xs = [len(t) for t in texts] if st == "all" else by_style[st]
        lines.append(f"| {st} | {len(xs)} | {min(xs)} | {_pct(xs, .1)} | {statistics.median(xs):g} | "
                     f"{_pct(xs, .9)} | {max(xs)} |")
    vul = Counter((r["fanquan"], r["vulgar"]) for r in recs)
    rum = Counter((r["fanquan"], r["rumor"]) for r in recs)
    lines.append("")
    lines.append("| secondary labels | vulgar=1 | vulgar=0 | vulgar=null | rumor=1 | rumor=0 | rumor=null |")
    lines.append("|---|---|---|---|---|---|---|")
    for fq in (1, 0):
        lines.append(f"| fanquan={fq} | {vul[(fq, 1)]} | {vul[(fq, 0)]} | {vul[(fq, None)]} | {rum[(fq, 1)]} | "
                     f"{rum[(fq, 0)]} | {rum[(fq, None)]} |")
    return "\n".join(lines) + "\n"


def build(cdir: Path, data: Path | None, seed: int, threshold: float) -> tuple[dict[str, str], str]:
    """The three split files' contents and the stats block, computed from ``raw/``."""
    recs = load_raw(cdir)
    resolved, failed = resolve_texts(recs, data)
    if failed:
        raise DataError(f"{len(failed)} text_ref rows cannot be resolved from {data_dir(data)} "
                        f"(first: {failed[0][0]}: {failed[0][1]}); the build needs the shared data")
    texts = [r["text"] for r in resolved]
    carved = [r["id"] for r, t in zip(recs, texts) if r["origin"] != "written" and is_carved_test(t)]
    if carved:
        raise DataError(f"{len(carved)} real items sit in a carved test split of their dataset: {carved[:5]}")
    keys = [dedup_key(t) for t in texts]
    groups = near_duplicate_groups(keys, threshold)
    sizes = Counter(groups)
    conflicts = defaultdict(set)
    for i, g in enumerate(groups):
        if sizes[g] > 1:
            conflicts[g].add((recs[i]["fanquan"], recs[i]["subtype"]))
    n_conf = sum(1 for v in conflicts.values() if len(v) > 1)
    if n_conf:
        print(f"note: {n_conf} near-duplicate groups carry different labels (kept; same split)", file=sys.stderr)
    split = assign_splits(recs, groups, seed)
    files = {}
    for s in SPLITS:
        rows = sorted((ordered(r) for r, s2 in zip(recs, split) if s2 == s), key=lambda r: r["id"])
        files[s] = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    multi = [g for g, n in sizes.items() if n > 1]
    return files, stats_markdown(recs, texts, split, len(multi), sum(sizes[g] for g in multi))


def write_stats(readme: Path, block: str) -> bool:
    """Replace the stats block of the datasheet; False if the README or its markers are missing."""
    if not readme.is_file():
        return False
    text = readme.read_text(encoding="utf-8")
    if STATS_BEGIN not in text or STATS_END not in text:
        return False
    head, rest = text.split(STATS_BEGIN, 1)
    _, tail = rest.split(STATS_END, 1)
    readme.write_text(head + STATS_BEGIN + "\n" + block + STATS_END + tail, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=None, help="corpus folder (default training/data/fanquan)")
    ap.add_argument("--data", type=Path, default=None, help="shared data folder (default $QINGLANG_DATA)")
    ap.add_argument("--seed", type=int, default=2021)
    ap.add_argument("--threshold", type=float, default=0.8, help="5-gram Jaccard for near-duplicates")
    ap.add_argument("--check", action="store_true", help="only compare a rebuild with the committed files")
    args = ap.parse_args(argv)
    cdir = corpus_dir(args.corpus)
    files, block = build(cdir, args.data, args.seed, args.threshold)
    if args.check:
        stale = [s for s in SPLITS if not (cdir / f"{s}.jsonl").is_file()
                 or (cdir / f"{s}.jsonl").read_text(encoding="utf-8") != files[s]]
        print("splits up to date" if not stale else f"splits differ from a rebuild: {stale}")
        return 1 if stale else 0
    for s in SPLITS:
        (cdir / f"{s}.jsonl").write_text(files[s], encoding="utf-8")
    wrote = write_stats(cdir / "README.md", block)
    print(block)
    print(f"wrote {', '.join(f'{s}.jsonl' for s in SPLITS)} in {cdir}"
          + ("; README stats updated" if wrote else "; README stats block not found (not updated)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
