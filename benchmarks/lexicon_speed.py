"""Lexicon matching speed: build time, throughput (MB/s, median) and peak memory.

Matches ~10 MB (UTF-8) of real comments (CHNCI, COLD, SWSR train rows, one ``match`` call per comment)
against 1k, 10k and all (~87k lines) konsheng terms read at run time from ``$QINGLANG_DATA/lexicons``
(never copied into the repo), with ``ahocorasick_rs`` and ``pyahocorasick``, with and without the pinyin
view. Each configuration runs in its own subprocess so that its peak RSS (VmHWM) is its own.

    .venv/bin/python benchmarks/lexicon_speed.py [--mb 10] [--repeats 3] [--data DIR] [--json out.json]

Reported per configuration: build (s, median), ``match(str)`` MB/s (normalisation + matching, what a
caller with plain strings gets), ``match(Normalized)`` MB/s (matching only: the Moderator normalises once
for lexicon and model) and peak RSS (MiB). A line for ``normalize`` alone (and ``pinyin_view`` when
available) is printed for reference.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qinglang_nlp.datasets import data_dir, iter_dataset  # noqa: E402
from qinglang_nlp.lexicon import LexiconMatcher, Term  # noqa: E402
from qinglang_nlp.normalize import normalize  # noqa: E402


def comments(mb: float, data: str | None) -> list[str]:
    """Real comments, round-robin over three datasets, until ``mb`` MB of UTF-8."""
    budget = int(mb * 1_000_000)
    iters = [iter_dataset(name, "train", data) for name in ("chnci", "cold", "swsr")]
    out: list[str] = []
    size = 0
    while size < budget and iters:
        for it in list(iters):
            rec = next(it, None)
            if rec is None:
                iters.remove(it)
                continue
            out.append(rec.text)
            size += len(rec.text.encode("utf-8"))
    return out


def konsheng_terms(data: str | None) -> list[str]:
    """Every line of every konsheng list (87k lines), in file order, stripped, non-empty."""
    d = data_dir(data) / "lexicons" / "konsheng_sensitive_lexicon"
    if not d.is_dir():
        sys.exit(f"konsheng lexicon not found at {d} (set QINGLANG_DATA or pass --data)")
    out = []
    for f in sorted(d.glob("*.txt")):
        out.extend(line.strip() for line in f.read_text(encoding="utf-8").splitlines() if line.strip())
    return out


def term_set(all_terms: list[str], n: int | None) -> list[str]:
    if n is None or n >= len(all_terms):
        return all_terms
    return random.Random(0).sample(all_terms, n)


def vmhwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_one(n: int | None, backend: str, pinyin: bool, mb: float, repeats: int, data: str | None) -> dict:
    texts = comments(mb, data)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    terms = [Term(t, "vulgar") for t in term_set(konsheng_terms(data), n)]
    builds = []
    for _ in range(repeats):
        m = LexiconMatcher({"konsheng": terms}, pinyin=pinyin, backend=backend)
        t0 = time.perf_counter()
        m.build()
        builds.append(time.perf_counter() - t0)
    # the automaton alone (terms already normalised) to separate it from per-term normalisation
    snap = m._snap
    keys = [e for lst in snap.lists.values() for e in lst.values()]
    from qinglang_nlp.lexicon import _Index

    ac_builds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _Index(keys, backend)
        ac_builds.append(time.perf_counter() - t0)
    normed = [normalize(t) for t in texts]
    e2e, only, hits = [], [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for t in texts:
            m.match(t)
        e2e.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        hits = 0
        for nz in normed:
            hits += len(m.match(nz))
        only.append(time.perf_counter() - t0)
    return {
        "terms": len(terms), "keys": len(m), "backend": backend, "pinyin": pinyin,
        "texts": len(texts), "mb": nbytes / 1e6, "hits": hits,
        "build_s": statistics.median(builds), "automaton_s": statistics.median(ac_builds),
        "e2e_mbs": nbytes / 1e6 / statistics.median(e2e), "match_mbs": nbytes / 1e6 / statistics.median(only),
        "peak_rss_mib": vmhwm_mib(),
    }


def reference(mb: float, repeats: int, data: str | None) -> dict:
    texts = comments(mb, data)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    out: dict = {"texts": len(texts), "mb": nbytes / 1e6}
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        normed = [normalize(t) for t in texts]
        runs.append(time.perf_counter() - t0)
    out["normalize_mbs"] = nbytes / 1e6 / statistics.median(runs)
    try:
        from qinglang_nlp.normalize import pinyin_view
    except ImportError:
        return out
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for nz in normed:
            pinyin_view(nz)
        runs.append(time.perf_counter() - t0)
    out["pinyin_view_mbs"] = nbytes / 1e6 / statistics.median(runs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data", default=None)
    ap.add_argument("--sizes", default="1000,10000,all")
    ap.add_argument("--backends", default="rs,py")
    ap.add_argument("--pinyin", default="off,on")
    ap.add_argument("--json", default=None)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        if args.one == "ref":
            print(json.dumps(reference(args.mb, args.repeats, args.data)))
            return
        n, backend, py = args.one.split(":")
        print(json.dumps(run_one(None if n == "all" else int(n), backend, py == "on", args.mb, args.repeats,
                                 args.data)))
        return
    common = ["--mb", str(args.mb), "--repeats", str(args.repeats)] + (["--data", args.data] if args.data else [])

    def sub(one: str) -> dict:
        res = subprocess.run([sys.executable, __file__, "--one", one, *common], capture_output=True, text=True,
                             env={**os.environ, "PYTHONHASHSEED": "0"})
        if res.returncode != 0:
            sys.exit(f"configuration {one} failed:\n{res.stderr[-2000:]}")
        return json.loads(res.stdout.strip().splitlines()[-1])

    ref = sub("ref")
    print(f"# {ref['texts']} comments, {ref['mb']:.2f} MB; normalize alone {ref['normalize_mbs']:.1f} MB/s"
          + (f"; pinyin_view alone {ref['pinyin_view_mbs']:.1f} MB/s" if "pinyin_view_mbs" in ref else ""))
    print("| terms (keys) | backend | pinyin | build s | automaton s | match(str) MB/s | match(Normalized) MB/s "
          "| hits | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for size in args.sizes.split(","):
        for backend in args.backends.split(","):
            for py in args.pinyin.split(","):
                r = sub(f"{size}:{backend}:{py}")
                rows.append(r)
                print(f"| {r['terms']} ({r['keys']}) | {backend} | {py} | {r['build_s']:.3f} | {r['automaton_s']:.3f} "
                      f"| {r['e2e_mbs']:.1f} | {r['match_mbs']:.1f} | {r['hits']} | {r['peak_rss_mib']:.0f} |",
                      flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"reference": ref, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
