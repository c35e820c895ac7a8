"""Pooled ECE per category of models on the carved test splits (the rows of run_accuracy --max-test-rows 2000).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/pooled_ece.py default [baseline ...]

Issue 10 asks for ECE <= 0.05 per category; run_accuracy reports it per dataset. Here every carved test row that
judges a category is pooled (COLD, SWSR, CHNCI and 饭圈 for vulgar; Weibo21, Weibo16, CED and 饭圈 for rumor; 饭圈
for fanquan; ToxiCN is evaluation-only and reported per dataset by run_accuracy), each dataset capped at the same
seeded 2,000-row sample.
"""
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import qinglang_nlp as ql
from qinglang_nlp.datasets import load_dataset
from qinglang_nlp.metrics import binary_metrics

SETS = {"vulgar": ["cold", "swsr", "chnci", "fanquan"], "rumor": ["weibo21", "weibo16", "ced", "fanquan"],
        "fanquan": ["fanquan"]}
for path in sys.argv[1:]:
    m = ql.load(path, lexicon=False)
    for cat, dss in SETS.items():
        ys, ps = [], []
        for ds in dss:
            recs = [r for r in load_dataset(ds, 'test') if r.labels.get(cat) is not None]
            if len(recs) > 2000:
                recs = random.Random(f'qinglang-eval:{ds}').sample(recs, 2000)
            rs = m.predict_batch([r.text for r in recs])
            ys += [r.labels[cat] for r in recs]; ps += [x.scores[cat] for x in rs]
        y, p = np.array(ys), np.array(ps)
        print(f"{path} {cat}: pooled n {len(y)}, ECE {binary_metrics(y, p, 0.5)['ece']:.3f} ({', '.join(dss)})",
              flush=True)
