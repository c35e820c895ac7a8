"""How the Moderator's batch size and grouping change throughput on short comments (default model).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/batch_size.py [--texts 3000] [--repeats 3] [--model default]

The transformer pads every batch of windows to its longest one. ``Moderator.pipe`` scores each batch of
``batch_size`` texts as one group in input order; ``Moderator.predict_batch`` (which has all texts) sorts them
by length first and scores groups of ``batch_size`` similar texts, returning results in input order. This script
times both at several batch sizes on the same real comments (COLD and CHNCI carved TEST rows, in file order),
interleaved (every configuration once per round, ``--repeats`` rounds), and prints medians of texts/s (wall and
CPU) as a Markdown table plus one JSON line. It also checks that every configuration returns the same labels.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import qinglang_nlp as ql
from qinglang_nlp.datasets import load_dataset


def comments(n: int) -> list[str]:
    out: list[str] = []
    for name in ("cold", "chnci"):
        out += [r.text for r in load_dataset(name, "test", limit=n)]
    return out[::2][:n // 2] + out[1::2][:n - n // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default="default")
    ap.add_argument("--sizes", default="64,256,512,1024")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    texts = comments(a.texts)
    m = ql.load(None if a.model == "default" else a.model)
    m.predict_batch(texts[:200])  # warm-up: sessions, tables, caches
    sizes = [int(x) for x in a.sizes.split(",")]
    configs = [(way, bs) for bs in sizes for way in ("pipe", "predict_batch")]
    wall: dict = {c: [] for c in configs}
    cpu: dict = {c: [] for c in configs}
    labels: dict = {}
    load0 = os.getloadavg()[0]
    for _ in range(a.repeats):
        for way, bs in configs:
            t, w = time.process_time(), time.perf_counter()
            rs = list(m.pipe(texts, batch_size=bs)) if way == "pipe" else m.predict_batch(texts, batch_size=bs)
            wall[(way, bs)].append(time.perf_counter() - w)
            cpu[(way, bs)].append(time.process_time() - t)
            labels[(way, bs)] = [tuple(r.labels) for r in rs]
    ref = labels[configs[0]]
    same = {f"{w}@{b}": sum(x == y for x, y in zip(labels[(w, b)], ref)) for w, b in configs}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                            check=False).stdout.strip()
    print(f"{len(texts)} comments, model {m.name}, commit {commit}, median of {a.repeats} interleaved rounds, "
          f"load {load0:.2f} -> {os.getloadavg()[0]:.2f}\n")
    print("| way | batch_size | texts/s (wall) | texts/s (CPU) | same labels as pipe@" + str(sizes[0]) + " |")
    print("|---|---:|---:|---:|---:|")
    res = {}
    for way, bs in configs:
        tw, tc = len(texts) / statistics.median(wall[(way, bs)]), len(texts) / statistics.median(cpu[(way, bs)])
        res[f"{way}@{bs}"] = {"texts_per_s_wall": round(tw, 1), "texts_per_s_cpu": round(tc, 1)}
        print(f"| {way} | {bs} | {tw:.1f} | {tc:.1f} | {same[f'{way}@{bs}']} / {len(texts)} |")
    out = {"commit": commit, "texts": len(texts), "model": m.name, "results": res, "same_labels": same}
    print(json.dumps(out, ensure_ascii=False))
    if a.json:
        a.json.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
