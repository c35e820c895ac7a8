"""Inter-annotator agreement on the 饭圈 corpus: pass A (``raw/*.jsonl``) against pass B (``annotations_b.jsonl``).

    .venv/bin/python training/fanquan_agreement.py            # print the tables and write them into README.md
    .venv/bin/python training/fanquan_agreement.py --no-write # print only

Pass A labels are read from ``raw/*.jsonl`` as the writers and the first annotator left them (adjudication
is *not* applied: agreement is measured between the two independent passes). Reported per label: the number
of items both passes judged (``null`` on either side is left out), raw agreement and Cohen's kappa. ``fanquan``
is also reported per origin (real, written short ``ws-``, written article ``wa-``); the 8-way ``subtype`` and
each sub-label one-vs-rest; and a confusion list of the subtype disagreements. With the shared data
(``QINGLANG_DATA``) it also reports ``fanquan`` and ``subtype`` on one item per near-duplicate group (GUIDELINE
§9 R12); without it those two rows are left out and the table says so.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qinglang_nlp.errors import DataError
from qinglang_nlp.fanquan_corpus import (
    SUBTYPES,
    corpus_dir,
    dedup_key,
    near_duplicate_groups,
    read_adjudication,
    read_jsonl,
    resolve_texts,
)

BEGIN, END = "<!-- kappa:begin (written by training/fanquan_agreement.py) -->", "<!-- kappa:end -->"
FIELDS = ("fanquan", "subtype", "vulgar", "rumor")
#: later annotation rounds: (name, pass-B annotator tag in annotations_b.jsonl)
ROUNDS = (("round 3 (mine_fanquan.py)", "B3"),)
#: adjudication sources that settle an A/B disagreement
AB_SOURCES = ("pass-b", "pass-b-r3")


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's kappa of two equal-length label sequences (1.0 when both are constant and equal)."""
    if len(a) != len(b) or not a:
        raise ValueError(f"need two non-empty sequences of equal length, got {len(a)} and {len(b)}")
    n = len(a)
    po = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    pe = sum(ca[k] * cb[k] for k in ca) / (n * n)
    return 1.0 if pe == 1 else (po - pe) / (1 - pe)


def origin_group(rid: str) -> str:
    """``real``, ``written short`` (ws-) or ``written article`` (wa-)."""
    return "written short" if rid.startswith("ws-") else "written article" if rid.startswith("wa-") else "real"


def pairs(cdir: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(pass A item, pass B row) for every id in ``annotations_b.jsonl``; raises if an id is not in raw/."""
    a = {r["id"]: r for f in sorted((cdir / "raw").glob("*.jsonl")) for r in read_jsonl(f)}
    b = read_jsonl(cdir / "annotations_b.jsonl")
    missing = [r["id"] for r in b if r["id"] not in a]
    if missing:
        raise DataError(f"{len(missing)} ids of annotations_b.jsonl are not in raw/*.jsonl: {missing[:5]}")
    return [(a[r["id"]], r) for r in b]


def one_per_group(ps: list[tuple[dict, dict]], data: Path | None = None) -> list[tuple[dict, dict]] | None:
    """The pairs with only the smallest id of each near-duplicate group kept; None if texts cannot be resolved."""
    resolved, failed = resolve_texts([a for a, _ in ps], data)
    if failed:
        return None
    groups = near_duplicate_groups([dedup_key(r["text"]) for r in resolved])
    keep: dict[int, int] = {}
    for i, g in enumerate(groups):
        if g not in keep or ps[i][0]["id"] < ps[keep[g]][0]["id"]:
            keep[g] = i
    return [ps[i] for i in sorted(keep.values())]


def _row(name: str, ps: list[tuple[dict, dict]], get: Callable[[dict], Any]) -> tuple[str, int, float, float]:
    both = [(get(x), get(y)) for x, y in ps if get(x) is not None and get(y) is not None]
    xa, xb = [p[0] for p in both], [p[1] for p in both]
    agree = sum(p == q for p, q in both) / len(both)
    return name, len(both), agree, cohen_kappa(xa, xb)


def report(cdir: Path, data: Path | None = None) -> str:
    """The markdown block: kappa table, items per origin, subtype confusion."""
    ps = pairs(cdir)
    rows = [_row("fanquan (0/1), all items", ps, lambda r: r["fanquan"])]
    for g in ("real", "written short", "written article"):
        rows.append(_row(f"fanquan, {g} items", [p for p in ps if origin_group(p[0]["id"]) == g],
                         lambda r: r["fanquan"]))
    for rnd, ann in ROUNDS:
        sub = [p for p in ps if p[1].get("annotator") == ann]
        if sub:
            rows.append(_row(f"fanquan, real items of {rnd}", sub, lambda r: r["fanquan"]))
            rows.append(_row(f"subtype, real items of {rnd}", sub, lambda r: r["subtype"]))
    dedup = one_per_group(ps, data)
    if dedup is not None:
        rows.append(_row("fanquan, one item per near-duplicate group", dedup, lambda r: r["fanquan"]))
    rows.append(_row("subtype (8 classes incl. none)", ps, lambda r: r["subtype"]))
    if dedup is not None:
        rows.append(_row("subtype, one item per near-duplicate group", dedup, lambda r: r["subtype"]))
    for s in SUBTYPES:
        rows.append(_row(f"{s} one-vs-rest", ps, lambda r, s=s: int(r["subtype"] == s)))
    rows.append(_row("vulgar (both judged)", ps, lambda r: r["vulgar"]))
    rows.append(_row("rumor (both judged)", ps, lambda r: r["rumor"]))
    out = ["| label | items | raw agreement | Cohen's kappa |", "|---|---|---|---|"]
    out += [f"| {n} | {k} | {ag:.3f} | {ka:.3f} |" for n, k, ag, ka in rows]
    nulls = {f: sum(1 for x, y in ps if x[f] is None or y[f] is None) for f in ("vulgar", "rumor")}
    groups = Counter(origin_group(x["id"]) for x, _ in ps)
    out.append("")
    out.append(f"Items double-annotated: **{len(ps)}** (" + ", ".join(f"{groups[g]} {g}" for g in
               ("real", "written short", "written article")) + "); left out as `null` on either side: "
               f"vulgar {nulls['vulgar']}, rumor {nulls['rumor']}. Items with any disagreement on "
               f"fanquan/subtype/vulgar/rumor: {sum(1 for x, y in ps if any(x[f] != y[f] for f in FIELDS))}."
               + (" Rows per near-duplicate group left out: shared data not found." if dedup is None else ""))
    conf = Counter((x["subtype"], y["subtype"]) for x, y in ps if x["subtype"] != y["subtype"])
    out.append("")
    out.append("| subtype disagreement (A → B) | items |")
    out.append("|---|---|")
    out += [f"| {a} → {b} | {n} |" for (a, b), n in sorted(conf.items(), key=lambda kv: (-kv[1], kv[0]))]
    out.append("")
    out.append(adjudication_summary(cdir))
    return "\n".join(out) + "\n"


def adjudication_summary(cdir: Path) -> str:
    """Markdown: adjudication rows by source and rule, and how the final labels differ from the raw labels."""
    rows = read_adjudication(cdir / "adjudication.jsonl")
    if not rows:
        return "No adjudication rows.\n"
    by_src = Counter(r.get("source", "?") for r in rows)
    ab = [r for r in rows if r.get("source") in AB_SOURCES]
    won = Counter("A" if r["final"] == r["a"] else "B" if r["final"] == r["b"] else "neither" for r in ab)
    rules = Counter(x.strip() for r in rows for x in str(r.get("rule", "?")).split(","))
    out = [f"Adjudication rows: **{len(rows)}** ({by_src['pass-b']} A/B disagreements of rounds 1-2, "
           f"{by_src['pass-b-r3']} of round 3, {by_src['v2-sweep']} items "
           f"re-read because a v2 rule changes them). On the disagreements the final labels equal pass A on "
           f"{won['A']}, pass B on {won['B']}, neither on {won['neither']}. Rules cited: "
           + ", ".join(f"{k} {n}" for k, n in sorted(rules.items(), key=lambda kv: (len(kv[0]), kv[0]))) + ".", ""]
    trans = Counter()
    for r in rows:
        for k in ("subtype", "vulgar", "rumor"):
            if k in r["final"] and r["final"][k] != r["a"].get(k):
                src = "pass-b" if r.get("source") in AB_SOURCES else r.get("source")
                trans[(k, r["a"].get(k), r["final"][k], src)] += 1
    out += ["| label change (raw → final) | from A/B disagreements | from v2 sweep |", "|---|---|---|"]
    for k, a, f in sorted({(k, a, f) for k, a, f, _ in trans}, key=lambda t: (t[0], str(t[1]), str(t[2]))):
        out.append(f"| {k}: {a} → {f} | {trans[(k, a, f, 'pass-b')]} | {trans[(k, a, f, 'v2-sweep')]} |")
    return "\n".join(out) + "\n"


def write_block(readme: Path, block: str) -> bool:
    """Replace the text between the kappa markers of the datasheet; False if a marker is missing."""
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    if BEGIN not in text or END not in text:
        return False
    head, rest = text.split(BEGIN, 1)
    readme.write_text(head + BEGIN + "\n" + block + END + rest.split(END, 1)[1], encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=None, help="corpus folder (default training/data/fanquan)")
    ap.add_argument("--data", type=Path, default=None, help="shared data folder (default $QINGLANG_DATA)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave README.md alone")
    args = ap.parse_args(argv)
    cdir = corpus_dir(args.corpus)
    block = report(cdir, args.data)
    print(block)
    if not args.no_write:
        ok = write_block(cdir / "README.md", block)
        print("README agreement block updated" if ok else "README kappa markers not found (not updated)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
