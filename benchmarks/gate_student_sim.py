"""Simulation: a small convolutional "student" window gate vs the distilled ridge gate (issue 7, session 6).

    .venv/bin/python benchmarks/gate_student_sim.py work_tmp/s5/train4k work_tmp/s5/gate_train4k \\
        --cal work_tmp/s5/dev2000 --cal work_tmp/s5/dev600 --val work_tmp/s5/val1500 --json OUT.json

Reads the per-window caches of ``gate_distill_sim.py cache`` (transformer window probabilities and the gate strings
title + "\\n" + window). A student (token ids from the shipped transformer's own tokenizer, its word embeddings
projected to a few dims, one 1-D convolution + ReLU, max- and mean-pooling over time, a linear head to the
categories) is trained in torch on the TRAIN cache only to predict the transformer's window logits (clipped below
at ``--floor``), optionally with a listwise term (per article and category, a softmax over its windows), and then
scored in numpy. Cut-offs per category are calibrated for 99 % of each calibration cache's flags (the forced best
window per category kept, as ``gate_keep``) and applied to the hold-out cache, exactly as
``gate_distill_sim.py holdout`` does; the ridge gate folder runs in the same table.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from gate_distill_sim import Dev

from qinglang_nlp.cascade import load_window_gate, train_student_gate
from qinglang_nlp.stacked import gate_keep


def logit(p: np.ndarray) -> np.ndarray:
    """Logit of probabilities (clipped to (1e-9, 1 - 1e-9))."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-9, 1 - 1e-9)
    return np.log(p) - np.log1p(-p)


def evaluate(name: str, scores: dict[str, np.ndarray], cals: dict[str, Dev], val: Dev, val_name: str,
             targets: tuple[float, ...]) -> list[dict]:
    """Rows: per calibration cache and target, tokens and flags kept on the calibration cache and the hold-out."""
    rows = []
    for cname, cal in cals.items():
        for t in targets:
            cut = cal.calibrate(scores[cname], t, "per_category")
            kc, kv = gate_keep(cal.item, scores[cname], cut), gate_keep(val.item, scores[val_name], cut)
            rv, pv = val.recall(kv)
            row = {"gate": name, "cal": cname, "target": t, "cal_tokens": round(cal.tokens(kc), 4),
                   "cal_recall": round(cal.recall(kc)[0], 4), "val_tokens": round(val.tokens(kv), 4),
                   "val_recall": round(rv, 4), "val_per_category": np.round(pv, 4).tolist()}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("train", help="train cache prefix (gate_distill_sim.py cache)")
    ap.add_argument("ridge", help="ridge gate folder (python -m qinglang_nlp.cascade distill)")
    ap.add_argument("--cal", action="append", required=True, help="calibration cache prefix (repeatable)")
    ap.add_argument("--val", required=True, help="hold-out cache prefix")
    ap.add_argument("--second", default="models/default", help="the stacked model (its transformer's tokenizer "
                    "and word embeddings seed the student)")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--width", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--floor", type=float, default=-8.0)
    ap.add_argument("--listwise", type=float, default=0.0, help="weight of the per-article listwise term")
    ap.add_argument("--tau", type=float, default=1.0, help="temperature of the listwise softmax (logit units)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--targets", default="0.98,0.99,0.995")
    ap.add_argument("--train-emb", action="store_true", help="also train a per-token correction of the table")
    ap.add_argument("--no-ridge", action="store_true")
    ap.add_argument("--save", default=None, help="write the student gate folder here")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    targets = tuple(float(x) for x in a.targets.split(","))
    d = np.load(a.train + ".npz")
    ttexts = json.loads(Path(a.train + ".texts.json").read_text(encoding="utf-8"))
    cals = {Path(c).name: Dev(c) for c in a.cal}
    val = Dev(a.val)
    vname = Path(a.val).name
    out: dict = {"args": vars(a), "rows": []}
    if not a.no_ridge:
        ridge = load_window_gate(a.ridge)
        rs = {n: np.asarray(ridge.predict_scores(c.texts)) for n, c in cals.items()}
        rs[vname] = np.asarray(ridge.predict_scores(val.texts))
        out["rows"] += evaluate("ridge", rs, cals, val, vname, targets)
    t0 = time.process_time()
    import qinglang_nlp as ql

    member = ql.load(a.second, lexicon=False).classifier.windowed_member()[1]
    student, info = train_student_gate(member, ttexts, d["pp"], d["item"], dim=a.dim, hidden=a.hidden,
                                       width=a.width, epochs=a.epochs, floor=a.floor, listwise=a.listwise,
                                       tau=a.tau, lr=a.lr, seed=a.seed,
                                       train_embeddings=a.train_emb, log=lambda s: print(s, file=sys.stderr))
    info["train_cpu_s"] = round(time.process_time() - t0, 1)
    out["student"] = info
    print(json.dumps(info), file=sys.stderr)
    ss = {}
    t0 = time.process_time()
    for n, c in [*cals.items(), (vname, val)]:
        ss[n] = np.asarray(student.predict_scores(c.texts))
    out["student_score_cpu_s"] = round(time.process_time() - t0, 2)
    out["student_score_tokens"] = int(sum(c.ntok.sum() for c in [*cals.values(), val]))
    print(f"student scoring: {out['student_score_cpu_s']} CPU s for {out['student_score_tokens']} window tokens",
          file=sys.stderr)
    for n, c in [*cals.items(), (vname, val)]:
        y, m = np.maximum(logit(c.pp), a.floor), ~c.single
        for g, sc in (("student", ss), ("ridge", {} if a.no_ridge else rs)):
            if n in sc:
                corr = [round(float(np.corrcoef(logit(sc[n])[m, j], y[m, j])[0, 1]), 4) for j in range(3)]
                out.setdefault("corr", {}).setdefault(g, {})[n] = corr
                print(f"{n}: corr of {g} logit with the clipped transformer logit (multi-window texts) {corr}",
                      file=sys.stderr)
    name = f"student d{a.dim} h{a.hidden} k{a.width} lw{a.listwise:g}{' emb' if a.train_emb else ''}"
    out["rows"] += evaluate(name, ss, cals, val, vname, targets)
    if not a.no_ridge:  # the mean of the two predicted logits
        mix = {n: (logit(ss[n]) + logit(rs[n])) / 2 for n in ss}
        out["rows"] += evaluate(f"mean logit ridge + {name}", mix, cals, val, vname, targets)
    if a.save:
        student.save(a.save, info)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
