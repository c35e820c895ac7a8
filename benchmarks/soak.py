"""Resource hygiene: many short predictions in one process, resident memory sampled along the way.

    python benchmarks/soak.py --n 1000000 --model baseline          # the reliability issue's run
    python benchmarks/soak.py --n 20000 --json                       # quick

Texts are real comments from the carved test splits (../shared/data), cycled. Prints the RSS curve (MiB) at
10 evenly spaced points and the growth between the 20% point and the end (start-up allocations excluded).
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import qinglang_nlp as ql  # noqa: E402
from qinglang_nlp.datasets import load_dataset  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--model", default="default")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    texts = [r.text for name in ("cold", "chnci", "weibo21") for r in load_dataset(name, "test", limit=3000)]
    m = ql.load(a.model)
    points, t0 = [], time.perf_counter()
    checkpoints = {int(a.n * k / 10) for k in range(1, 11)}

    def gen():
        for i in range(a.n):
            yield texts[i % len(texts)]

    done = 0
    for _ in m.pipe(gen(), batch_size=a.batch_size):
        done += 1
        if done in checkpoints:
            points.append({"done": done, "rss_mib": round(rss_mib(), 1), "s": round(time.perf_counter() - t0, 1)})
    base = points[1]["rss_mib"] if len(points) > 1 else points[0]["rss_mib"]
    out = {"n": a.n, "model": m.name, "texts_per_s": round(a.n / (time.perf_counter() - t0), 1),
           "rss_curve": points, "growth_after_20pct_mib": round(points[-1]["rss_mib"] - base, 1),
           "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    print(json.dumps(out) if a.json else json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
