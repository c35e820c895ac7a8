"""Dev-split comparison of model folders (never the test split): F1 and ROC-AUC per dataset at each model's own
thresholds (at most 2,000 dev rows a set; 饭圈 all / real / written items), and how often ordinary comments get
the rumor label (1,500 COLD / SWSR / CHNCI dev rows the stacker did not see as rumor weak negatives), with the
share whose decision is not ``pass``. This is the comparison that decides whether a retrained model ships.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/dev_compare.py models/default runs/candidate [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from comment_rumor import measure, rows_for  # benchmarks/, beside this file

import qinglang_nlp as ql
from qinglang_nlp.datasets import load_dataset
from qinglang_nlp.fanquan_corpus import load_fanquan

SETS = [("cold", "vulgar"), ("swsr", "vulgar"), ("chnci", "vulgar"), ("weibo21", "rumor"), ("weibo16", "rumor"),
        ("ced", "rumor")]


def main() -> None:
    from sklearn.metrics import f1_score, roc_auc_score

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--data", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    sets = {}
    for ds, cat in SETS:
        recs = [r for r in load_dataset(ds, "dev", args.data, limit=2000) if r.labels.get(cat) is not None]
        sets[ds] = ([r.text for r in recs], np.array([r.labels[cat] for r in recs]), cat)
    fq = load_fanquan("dev", data_dir=args.data)
    sets["fq_all"] = ([r["text"] for r in fq], np.array([r["fanquan"] for r in fq]), "fanquan")
    real = np.array([r["origin"] != "written" for r in fq])
    comments = rows_for("dev", ["cold", "swsr", "chnci"], 1500, args.data, seed=1)  # less the weak negatives
    out = {}
    for path in args.models:
        m = ql.load(path, lexicon=False)
        res: dict = {}
        for name, (texts, y, cat) in sets.items():
            rs = m.predict_batch(texts)
            s = np.array([r.scores[cat] for r in rs])
            lab = np.array([cat in r.labels for r in rs])
            res[name] = {"f1": round(f1_score(y, lab), 3), "roc_auc": round(roc_auc_score(y, s), 3)}
            if name == "fq_all":
                for sub, mk in (("fq_real", real), ("fq_written", ~real)):
                    res[sub] = {"f1": round(f1_score(y[mk], lab[mk]), 3), "roc_auc": round(roc_auc_score(y[mk], s[mk]), 3)}
        for ds, r in measure(path, comments).items():
            res["comments_" + ds] = {"rows": r["rows"], "rumor_label": round(r["rumor_label"], 3),
                                     "not_pass": round(r["not_pass"], 3)}
        out[path] = res
        print(path, json.dumps(res, ensure_ascii=False), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
