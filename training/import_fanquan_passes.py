"""Import a round of hand-labelled real 饭圈 items: candidates + pass A (+ pass B) -> ``raw/`` and ``annotations_b``.

    .venv/bin/python training/import_fanquan_passes.py --candidates work_tmp/fq_v3/candidates.jsonl \\
        --pass-a 'work_tmp/fq_v3/passA_chunk*.jsonl' --pass-b 'work_tmp/fq_v3/passB_chunk*.jsonl' \\
        --raw-out training/data/fanquan/raw/real_v3.jsonl --annotator B3 --disagreements work_tmp/fq_v3/disagree.jsonl

* Pass A's labels become the raw items (schema of GUIDELINE §6: ``text`` null + ``text_ref`` for datasets whose
  licence forbids redistribution, the text itself for COLD/SWSR); items pass A marked ``keep: false`` are left
  out, as "read and kept" did in round 1. Candidate ids ``real3-…`` are written as ``real-…`` (the schema's id).
* Pass B's rows for kept items are appended to ``annotations_b.jsonl`` with ``annotator`` = ``--annotator``
  (existing rows are never rewritten; rerunning replaces only this annotator's rows).
* Every item where the passes disagree on ``fanquan``, ``subtype``, ``vulgar`` or ``rumor`` is written to
  ``--disagreements`` with both labels and the text, for adjudication under GUIDELINE §11.
"""
from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qinglang_nlp.errors import DataError
from qinglang_nlp.fanquan_corpus import TEXT_ALLOWED, corpus_dir, read_jsonl, validate

FIELDS = ("fanquan", "subtype", "vulgar", "rumor")


def _read_passes(pattern: str) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for f in sorted(glob.glob(pattern)):
        for r in read_jsonl(f):
            rows[r["id"]] = r
    return rows


def schema_id(cid: str) -> str:
    """``real3-chnci-train-000123`` -> ``real-chnci-train-000123``."""
    return "real-" + cid.split("-", 1)[1] if cid.startswith("real3-") else cid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", required=True)
    ap.add_argument("--pass-a", required=True, help="glob of pass A files")
    ap.add_argument("--pass-b", help="glob of pass B files")
    ap.add_argument("--raw-out", required=True)
    ap.add_argument("--annotator", required=True, help="pass-B tag of this round (B3 for round 3); its rows are replaced")
    ap.add_argument("--disagreements")
    args = ap.parse_args()

    cands = read_jsonl(args.candidates)
    a, b = _read_passes(args.pass_a), _read_passes(args.pass_b) if args.pass_b else {}
    raw, b_rows, dis, missing = [], [], [], []
    for c in cands:
        la = a.get(c["id"])
        if la is None:
            missing.append(c["id"])
            continue
        if not la.get("keep", True):
            continue
        ref = c["text_ref"]
        rid = schema_id(c["id"])
        item = {"id": rid, "text": c["text"] if ref["dataset"] in TEXT_ALLOWED else None,
                "fanquan": int(la["fanquan"]), "subtype": la["subtype"], "vulgar": la["vulgar"], "rumor": la["rumor"],
                "origin": f"real:{ref['dataset']}:{ref['file']}:{ref['row']}", "style": la.get("style") or c["style"],
                "text_ref": ref}
        if la.get("note"):
            item["note"] = la["note"]
        raw.append(item)
        lb = b.get(c["id"])
        if lb is not None:
            gone = [k for k in FIELDS if k not in lb]
            if gone:
                raise DataError(f"pass B row {c['id']!r} lacks {gone}")
            b_rows.append({"id": rid, **{k: lb[k] for k in FIELDS}, "annotator": args.annotator,
                           **({"note": lb["note"]} if lb.get("note") else {})})
            diff = [k for k in FIELDS if lb[k] != item[k]]
            if diff:
                dis.append({"id": rid, "fields": diff, "a": {k: item[k] for k in FIELDS},
                            "b": {k: lb[k] for k in FIELDS}, "a_note": la.get("note"), "b_note": lb.get("note"),
                            "b_keep": lb.get("keep", True), "text": c["text"]})
    if missing:
        print(f"warning: {len(missing)} candidates have no pass A label (left out), e.g. {missing[:3]}")
    validate(raw, source=args.raw_out)
    out = Path(args.raw_out)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in raw), encoding="utf-8")
    if b_rows:
        path = corpus_dir() / "annotations_b.jsonl"
        old = [r for r in read_jsonl(path) if r.get("annotator") != args.annotator]
        ids = {r["id"] for r in old}
        clash = [r["id"] for r in b_rows if r["id"] in ids]
        if clash:
            raise DataError(f"{len(clash)} pass-B ids already in {path} under another annotator: {clash[:3]}")
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [*old, *b_rows]), encoding="utf-8")
    if args.disagreements:
        Path(args.disagreements).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in dis),
                                            encoding="utf-8")
    pos = sum(r["fanquan"] for r in raw)
    print(f"{len(raw)} items kept of {len(cands)} candidates ({pos} fanquan=1) -> {out}; "
          f"pass B on {len(b_rows)}; disagreements {len(dis)}")


if __name__ == "__main__":
    main()
