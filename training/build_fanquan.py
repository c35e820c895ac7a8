"""Build the 饭圈 corpus splits: merge ``raw/*.jsonl`` -> adjudicate -> check -> group near-duplicates -> split.

    .venv/bin/python training/build_fanquan.py            # writes {train,dev,test}.jsonl and README stats
    .venv/bin/python training/build_fanquan.py --check    # exit 1 if the committed splits differ from a rebuild

Labels: the writers' and pass A's labels in ``raw/*.jsonl`` are never edited by hand for adjudication; the
rows of ``adjudication.jsonl`` (final labels after pass B and guideline v2) are applied on top, and the build
reports how many values they changed.

Split assignment is *sticky*: an item whose id is already in the split files keeps that split, whatever
changes in ``raw/``, in the labels or in the normalisation code. Only new ids are assigned: a new item that is a
near-duplicate (identical normalised text or character 5-gram Jaccard >= 0.8) of an item already placed joins
that item's split; the other new groups are placed one by one, in a seeded hash order, into the split that is
furthest below its 70/15/15 share of their stratum (subtype, real/written). Ids gone from ``raw/`` leave the
splits. ``--fresh`` ignores the existing split files (bootstrap only; it reshuffles everything). Real items
never come from another dataset's carved test split. ``text_ref`` rows are resolved from ``QINGLANG_DATA``
(default ../shared/data) only to compare texts; they are written back without text.
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
    apply_adjudication,
    corpus_dir,
    dedup_key,
    near_duplicate_groups,
    read_adjudication,
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


def previous_splits(cdir: Path) -> dict[str, str]:
    """id -> split of the split files now in ``cdir`` (empty when there are none)."""
    out: dict[str, str] = {}
    for s in SPLITS:
        f = cdir / f"{s}.jsonl"
        if f.is_file():
            for r in read_jsonl(f):
                if r.get("id") in out:
                    raise DataError(f"{r.get('id')} is in both {out[r['id']]}.jsonl and {s}.jsonl")
                out[r["id"]] = s
    return out


def assign_splits(recs: list[dict[str, Any]], groups: list[int], seed: int,
                  previous: dict[str, str] | None = None) -> tuple[list[str], Counter[str]]:
    """Split name per item, plus counts of how items were placed (``kept``, ``joined``, ``new``).

    Items whose id is in ``previous`` keep their split. A new item whose near-duplicate group already has
    a placed member joins that member's split (the split of the smallest placed id if they disagree). The
    remaining new groups, taken in a hash order of (seed, smallest id), each go whole to the split with
    the largest deficit against 70/15/15 of its stratum (the group's most common (subtype, real/written),
    ties to the smaller), counting the items already placed in that stratum.
    """
    previous = previous or {}
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    out = [""] * len(recs)
    how: Counter[str] = Counter()
    placed: Counter[tuple[tuple[str, str], str]] = Counter()
    strat = [(r["subtype"], origin_kind(r)) for r in recs]
    for i, r in enumerate(recs):
        if r["id"] in previous:
            out[i] = previous[r["id"]]
            placed[(strat[i], out[i])] += 1
            how["kept"] += 1
    fresh: list[list[int]] = []
    for g, idx in members.items():
        new = [i for i in idx if not out[i]]
        if not new:
            continue
        old = sorted((recs[i]["id"], out[i]) for i in idx if out[i])
        if old:
            for i in new:
                out[i] = old[0][1]
                placed[(strat[i], out[i])] += 1
                how["joined"] += 1
        else:
            fresh.append(sorted(new, key=lambda i: recs[i]["id"]))
    for idx in sorted(fresh, key=lambda idx: (_rank(seed, recs[idx[0]]["id"]), recs[idx[0]]["id"])):
        c = Counter(strat[i] for i in idx)
        top = max(c.values())
        st = min(s for s, n in c.items() if n == top)
        total = sum(placed[(st, s)] for s in SPLITS) + len(idx)
        name = max(SPLITS, key=lambda s: (SHARES[s] * total - placed[(st, s)], -SPLITS.index(s)))
        for i in idx:
            out[i] = name
            placed[(strat[i], name)] += 1
            how["new"] += 1
    return out, how


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


def build(cdir: Path, data: Path | None, seed: int, threshold: float, fresh: bool = False,
          log=None) -> tuple[dict[str, str], str]:
    """The three split files' contents and the stats block, from ``raw/``, adjudication and current splits.

    ``log`` (default: stderr) receives one line on the adjudication and one on the split assignment.
    """
    log = log or sys.stderr
    raw = load_raw(cdir)
    recs, changes, stale = apply_adjudication(raw, read_adjudication(cdir / "adjudication.jsonl"))
    detail = ", ".join(f"{k} {n}" for k, n in changes.items() if k != "items")
    print(f"adjudication: {changes['items']} items changed ({detail or 'no values'})"
          + (f"; {len(stale)} rows whose raw value changed since adjudication: {stale[:5]}" if stale else ""),
          file=log)
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
    split, how = assign_splits(recs, groups, seed, {} if fresh else previous_splits(cdir))
    print(f"splits: {how['kept']} items kept their split, {how['joined']} new items joined a near-duplicate's "
          f"split, {how['new']} new items assigned", file=log)
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
    ap.add_argument("--fresh", action="store_true",
                    help="ignore the existing split files and reassign every item (bootstrap only)")
    args = ap.parse_args(argv)
    cdir = corpus_dir(args.corpus)
    files, block = build(cdir, args.data, args.seed, args.threshold, fresh=args.fresh)
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
