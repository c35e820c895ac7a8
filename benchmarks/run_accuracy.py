"""Regenerate BENCHMARKS.md's accuracy tables from real evaluation runs (never typed by hand).

    python benchmarks/run_accuracy.py                       # baseline on every carved test split
    python benchmarks/run_accuracy.py -m baseline -m default --update BENCHMARKS.md

Writes benchmarks/results/accuracy.json and replaces the text between
``<!-- accuracy:begin -->`` and ``<!-- accuracy:end -->`` in the file given to --update.
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import qinglang_nlp as ql  # noqa: E402
from qinglang_nlp.datasets import load_dataset  # noqa: E402
from qinglang_nlp.evaluate import evaluate_records  # noqa: E402

ALL = ["cold", "swsr", "chnci", "toxicn", "weibo21", "weibo16", "ced", "fanquan"]


def _commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "qinglang_nlp", "models"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("+uncommitted" if dirty else "")
    except OSError:
        return "unknown"


def _f(v):
    return "–" if v is None else f"{v:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", action="append", default=None)
    ap.add_argument("-d", "--dataset", action="append", default=None)
    ap.add_argument("--data", default=None)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--update", default=None, help="Markdown file whose accuracy block to replace.")
    ap.add_argument("--max-test-rows", type=int, default=None,
                    help="Evaluate a seeded random sample of at most N test rows per dataset (stated in the table).")
    ap.add_argument("--no-dev-opt", action="store_true", help="Skip scoring dev for the F1@dev-opt column.")
    args = ap.parse_args()
    models = args.model or ["baseline"]
    datasets = args.dataset or ALL
    cmd = "python benchmarks/run_accuracy.py " + " ".join(sys.argv[1:])
    runs = {}
    for mname in models:
        m = ql.load(mname)
        for ds in datasets:
            test = load_dataset(ds, "test", args.data)
            if args.max_test_rows and len(test) > args.max_test_rows:
                test = random.Random(f"qinglang-eval:{ds}").sample(test, args.max_test_rows)
            dev = None if args.no_dev_opt else load_dataset(ds, "dev", args.data)
            t0 = time.time()
            runs[f"{ds}|{mname}"] = evaluate_records(m, test, dev_records=dev, n_boot=args.bootstrap)
            print(f"{ds} {mname}: {len(test)} rows in {time.time() - t0:.0f}s", file=sys.stderr)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    meta = {"command": cmd, "commit": _commit(), "date": time.strftime("%Y-%m-%d")}
    (out / "accuracy.json").write_text(json.dumps({**meta, "runs": runs}, ensure_ascii=False, indent=1, default=float))

    lines = [f"Command: `{cmd}` · commit `{meta['commit']}` · {meta['date']} · data: carved test splits of "
             "../shared/data (see README) and training/data/fanquan/test.jsonl. Thresholds from the model config "
             "(tuned on dev); 'F1@dev-opt' uses the F1-optimal threshold on the dataset's own dev split."
             + (f" Datasets with more than {args.max_test_rows} test rows are evaluated on a seeded random sample of "
                f"{args.max_test_rows} (`random.Random('qinglang-eval:<dataset>')`)." if args.max_test_rows else ""),
             "",
             "| dataset | model | category | n | precision | recall | F1 | F1 95% CI | macro-F1 | accuracy | ROC-AUC "
             "| PR-AUC | ECE | F1@dev-opt |", "|" + "---|" * 14]
    for key, rep in runs.items():
        ds, mname = key.split("|")
        for cat, e in rep["categories"].items():
            x = e["at_model_threshold"]
            ci = e["ci95"]["f1"]
            lines.append(f"| {ds} | {mname} | {cat} | {x['n']} | {_f(x['precision'])} | {_f(x['recall'])} | "
                         f"{_f(x['f1'])} | [{ci[0]:.3f}, {ci[1]:.3f}] | {_f(x['macro_f1'])} | {_f(x['accuracy'])} | "
                         f"{_f(x['roc_auc'])} | {_f(x['pr_auc'])} | {_f(x['ece'])} | "
                         f"{_f((e.get('at_dev_threshold') or {}).get('f1'))} |")
    for key, rep in runs.items():
        ds, mname = key.split("|")
        if ds != "fanquan" or "fanquan" not in rep["categories"]:
            continue
        e = rep["categories"]["fanquan"]
        for field, title in (("subtype", "sub-label"), ("origin_kind", "origin (real vs written)"),
                             ("style", "style")):
            if field not in e["by_fine"]:
                continue
            lines += ["", f"饭圈 test split by {title} ({mname}; recall = share of positives flagged, "
                          "flag rate = share of all rows flagged):", "",
                      f"| {field} | n | positives | accuracy | precision | recall | F1 | flag rate |", "|---|---|---|---|---|---|---|---|"]
            for k, v in e["by_fine"][field].items():
                lines.append(f"| {k} | {v['n']} | {v['positives']} | {_f(v['accuracy'])} | {_f(v['precision'])} | "
                             f"{_f(v['recall'])} | {_f(v['f1'])} | {_f(v['flag_rate'])} |")
    block = "\n".join(lines)
    print(block)
    if args.update:
        p = Path(args.update)
        text = p.read_text(encoding="utf-8")
        a, b = "<!-- accuracy:begin -->", "<!-- accuracy:end -->"
        if a not in text or b not in text:
            sys.exit(f"{p} has no {a} ... {b} block")
        pre, rest = text.split(a, 1)
        _, post = rest.split(b, 1)
        p.write_text(pre + a + "\n" + block + "\n" + b + post, encoding="utf-8")


if __name__ == "__main__":
    main()
