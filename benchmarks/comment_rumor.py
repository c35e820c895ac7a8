"""How often ordinary comments are called rumors: the rumor label rate of model folders on comment sets that are
not about rumors (COLD, SWSR, CHNCI; ToxiCN with --toxicn, evaluation only), side by side on the same rows.

These sets do not judge rumor, so there is no recall here: the figure is a false-rumor rate, on the assumption
that (almost) no such comment is a fabricated claim stated as fact. Rows are the carved test split by default
(evaluation only, never used to choose anything) or the dev split (``--split dev``) less the dev rows that the
stacker saw as rumor weak negatives. Also reported: the rumor rate on the rows labelled non-offensive, the share
of rows whose decision is not ``pass``, and the share whose only label is rumor.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/comment_rumor.py models/default runs/default_prev [--split dev]
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import qinglang_nlp as ql
from qinglang_nlp.datasets import load_dataset
from qinglang_nlp.train.baseline import TrainConfig, collect_rows


def rows_for(split: str, sets: list[str], per_set: int, data: str | None, seed: object = None) -> dict[str, list]:
    """``{dataset: [Record, ...]}``: a seeded sample of at most ``per_set`` rows a set (``seed``: one seed for every
    set instead of one per set's name)."""
    skip: set[str] = set()
    if split == "dev":  # the stacker's rumor weak negatives are dev rows it was fit on
        skip = {r[0] for r in collect_rows("dev", TrainConfig(), data, lambda m: None)
                if r[2].endswith(":weakneg-rumor")}
    out = {}
    for name in sets:
        recs = [r for r in load_dataset(name, split, data) if r.text not in skip]
        random.Random(f"qinglang-comment-rumor:{name}" if seed is None else seed).shuffle(recs)
        out[name] = recs[:per_set]
    return out


def measure(model_dir: str, rows: dict[str, list], batch_size: int = 64) -> dict[str, dict]:
    """Per set: rumor label rates, the share not passed and the median rumor score of ``model_dir`` on ``rows``."""
    m = ql.load(model_dir)
    res = {}
    for name, recs in rows.items():
        rs = m.predict_batch([r.text for r in recs], batch_size=batch_size)
        n = len(rs)
        safe = [res_ for res_, r in zip(rs, recs) if r.labels.get("vulgar") == 0]
        res[name] = {
            "rows": n,
            "rumor_label": sum("rumor" in r.labels for r in rs) / n,
            "rumor_label_safe_rows": (sum("rumor" in r.labels for r in safe) / len(safe)) if safe else None,
            "safe_rows": len(safe),
            "only_rumor": sum(r.labels == ["rumor"] for r in rs) / n,
            "not_pass": sum(r.decision != "pass" for r in rs) / n,
            "median_rumor_score": statistics.median(r.scores["rumor"] for r in rs),
        }
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="model folders (scored side by side on the same rows)")
    ap.add_argument("--split", default="test", choices=["test", "dev"])
    ap.add_argument("--per-set", type=int, default=2000)
    ap.add_argument("--toxicn", action="store_true", help="also ToxiCN (evaluation only)")
    ap.add_argument("--data", default=None)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    sets = ["cold", "swsr", "chnci"] + (["toxicn"] if args.toxicn else [])
    rows = rows_for(args.split, sets, args.per_set, args.data)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], check=False, cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    results = {}
    for md in args.models:
        t0 = time.time()
        results[md] = measure(md, rows, args.batch_size)
        print(f"# scored with {md} in {time.time() - t0:.0f} s", file=sys.stderr)
    print(f"# rumor label on ordinary comments, {args.split} split, commit {commit}{'+uncommitted' if dirty else ''}, "
          f"at most {args.per_set} rows a set (seeded sample)")
    print("| set | rows | model | rumor label | rumor label, rows labelled not offensive | only label rumor | "
          "not pass | median rumor score |")
    print("|---|---|---|---|---|---|---|---|")
    for name in sets:
        for md in args.models:
            r = results[md][name]
            safe = "–" if r["rumor_label_safe_rows"] is None else \
                f"{100 * r['rumor_label_safe_rows']:.1f} % of {r['safe_rows']}"
            print(f"| {name} | {r['rows']} | {md} | {100 * r['rumor_label']:.1f} % | {safe} | "
                  f"{100 * r['only_rumor']:.1f} % | {100 * r['not_pass']:.1f} % | {r['median_rumor_score']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"split": args.split, "commit": commit, "results": results},
                                              indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
