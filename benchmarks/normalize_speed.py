"""Normalisation throughput (MB/s of UTF-8 input, median of runs) on real comments from the shared data.

    .venv/bin/python benchmarks/normalize_speed.py --mb 10 --runs 3 [--steps] [--json benchmarks/results/x.json]

CPU time (``time.process_time``) is the primary measure because the machine is shared; wall clock is shown beside
it. Compares, on one core, ``normalize`` one text at a time and ``normalize_batch`` with all steps on and with the
pinyin (``homophones``) step off, against a floor of plain ``unicodedata.normalize("NFKC")`` + ``str.translate`` +
``casefold`` (also in a variant that skips NFKC where ``unicodedata.is_normalized`` says the text is already NFKC).
The cases run round-robin (case 1, case 2, ..., case 1, ...) so that a change in the machine's load falls on all
of them alike. ``--steps`` adds the CPU time of each step of ``normalize_batch`` (all steps), in ms per MB.
``--compare COMMIT`` adds ``normalize_batch`` as it was at an earlier commit (the whole
``qinglang_nlp`` package of that commit, extracted with ``git archive`` into a temporary package), measured in the same round-robin.
Comments: the ``content`` column of CHNCI train (Douyin/Weibo comments), in file order, up to ``--mb`` MB.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qinglang_nlp.normalize import NormalizeConfig, normalize, normalize_batch, pinyin_view

DATA = Path(os.environ.get("QINGLANG_DATA", ROOT.parent / "shared" / "data"))
_FLOOR_TABLE = {**{i: i - 0xFEE0 for i in range(0xFF01, 0xFF5F)}, 0x3000: 0x20, 0x200B: None, 0xFEFF: None}


def load_comments(mb: float) -> list[str]:
    """First ``mb`` MB (UTF-8) of CHNCI train comments."""
    path = DATA / "chnci" / "train.csv"
    if not path.exists():
        raise SystemExit(f"{path} not found: set QINGLANG_DATA to the shared data folder")
    out, size, limit = [], 0, int(mb * 1e6)
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            t = row["content"]
            out.append(t)
            size += len(t.encode("utf-8"))
            if size >= limit:
                break
    return out


def floor_one(texts: list[str]) -> None:
    """The floor: NFKC + translate + casefold, one text at a time."""
    for t in texts:
        unicodedata.normalize("NFKC", t).translate(_FLOOR_TABLE).casefold()


def floor_skip_normal(texts: list[str]) -> None:
    """The floor, but NFKC only for texts that ``is_normalized`` does not pass."""
    isn, nfkc = unicodedata.is_normalized, unicodedata.normalize
    for t in texts:
        (t if isn("NFKC", t) else nfkc("NFKC", t)).translate(_FLOOR_TABLE).casefold()


def floor_joined(texts: list[str]) -> None:
    """The floor on all texts joined by newlines."""
    unicodedata.normalize("NFKC", "\n".join(texts)).translate(_FLOOR_TABLE).casefold()


def step_times(texts: list[str], cfg: NormalizeConfig) -> dict[str, float]:
    """CPU seconds spent in each step during one ``normalize_batch`` call (the rest is 'other')."""
    mod = importlib.import_module("qinglang_nlp.normalize")
    seq = mod._sequence(cfg)
    acc: dict[str, float] = {}
    for step in seq.steps:
        def timed(w, *a, _f=step.normalize, _n=step.name, **k):
            c = time.process_time()
            try:
                return _f(w, *a, **k)
            finally:
                acc[_n] = acc.get(_n, 0.0) + time.process_time() - c
        step.normalize = timed  # instance attribute shadows the method for this call only
    try:
        c = time.process_time()
        normalize_batch(texts, cfg)
        total = time.process_time() - c
    finally:
        for step in seq.steps:
            del step.normalize
    acc["other (joining, splitting, objects)"] = total - sum(acc.values())
    acc["total"] = total
    return acc


def normalize_at(commit: str, tmp: Path):
    """The ``qinglang_nlp.normalize`` module of an earlier commit, imported as a stand-alone package."""
    # the whole package (normalize imports restore, which imports further modules), with an empty __init__
    archive = subprocess.run(["git", "archive", commit, "qinglang_nlp"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    pkg = f"qinglang_nlp_at_{commit}"
    (tmp / "qinglang_nlp").rename(tmp / pkg)
    (tmp / pkg / "__init__.py").write_text("", encoding="utf-8")
    sys.path.insert(0, str(tmp))
    return importlib.import_module(f"{pkg}.normalize")


def git_commit() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "qinglang_nlp/normalize.py",
                                "qinglang_nlp/html.py", "benchmarks/normalize_speed.py"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev + ("+uncommitted" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--steps", action="store_true", help="also time each step of normalize_batch")
    ap.add_argument("--skip-per-text", action="store_true", help="leave out the slow one-text-at-a-time cases")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--label", help="what code was measured (default: this checkout's git commit)")
    ap.add_argument("--compare", metavar="COMMIT", help="also measure normalize_batch as it was at this commit")
    ap.add_argument("--call-sizes", default="", metavar="N,N,...",
                    help="also time normalize_batch (pinyin step off) called on N texts at a time (e.g. 64,256,1024: "
                         "what a Moderator batch normalises per call)")
    args = ap.parse_args()
    label = args.label or git_commit()
    texts = load_comments(args.mb)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    mb = nbytes / 1e6
    all_on = NormalizeConfig()
    no_pinyin = NormalizeConfig(homophones=False)
    normalize_batch(texts[:500], all_on), normalize_batch(texts[:500], no_pinyin)  # build the lazy tables first
    cases = {
        "floor: NFKC + str.translate + casefold, per text": lambda: floor_one(texts),
        "floor, NFKC skipped where is_normalized, per text": lambda: floor_skip_normal(texts),
        "floor: NFKC + str.translate + casefold, joined": lambda: floor_joined(texts),
        "normalize() per text, all steps": lambda: [normalize(t, all_on) for t in texts],
        "normalize() per text, pinyin step off": lambda: [normalize(t, no_pinyin) for t in texts],
        "normalize_batch(), all steps": lambda: normalize_batch(texts, all_on),
        "normalize_batch(), pinyin step off": lambda: normalize_batch(texts, no_pinyin),
        "normalize_batch() + pinyin_view() of every text": lambda: [
            pinyin_view(n) for n in normalize_batch(texts, all_on)],
    }
    if args.compare:
        old = normalize_at(args.compare, Path(tempfile.mkdtemp(prefix="normalize_speed_")))
        old_all, old_np = old.NormalizeConfig(), old.NormalizeConfig(homophones=False)
        old.normalize_batch(texts[:500], old_all), old.normalize_batch(texts[:500], old_np)
        cases[f"normalize_batch() at {args.compare}, all steps"] = lambda: old.normalize_batch(texts, old_all)
        cases[f"normalize_batch() at {args.compare}, pinyin step off"] = lambda: old.normalize_batch(texts, old_np)
    if args.skip_per_text:
        cases = {k: v for k, v in cases.items() if "per text, " not in k or k.startswith("floor")}
    load_before = os.getloadavg()
    for n in (int(x) for x in args.call_sizes.split(",") if x.strip()):
        cases[f"normalize_batch() on {n} texts per call, pinyin step off"] = (
            lambda n=n: [normalize_batch(texts[i:i + n], no_pinyin) for i in range(0, len(texts), n)])
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    wall: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.runs):
        for name, fn in cases.items():
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - w0)
    steps = [step_times(texts, all_on) for _ in range(args.runs)] if args.steps else []
    load_after = os.getloadavg()
    print(f"{len(texts):,} comments, {mb:.2f} MB UTF-8, median of {args.runs} runs (round-robin), one process; "
          f"1-minute load average {load_before[0]:.1f} before, {load_after[0]:.1f} after, on {os.cpu_count()} CPUs; "
          f"code {label}")
    print("| case | MB/s, CPU time (median) | MB/s, wall clock (median) | CPU s per run |\n|---|---:|---:|---|")
    for name in cases:
        print(f"| {name} | {mb / statistics.median(cpu[name]):.1f} | {mb / statistics.median(wall[name]):.1f} "
              f"| {', '.join(f'{x:.2f}' for x in cpu[name])} |")
    if steps:
        print("\n| step of normalize_batch (all steps) | CPU ms per MB (median) |\n|---|---:|")
        for k in steps[0]:
            print(f"| {k} | {1000 * statistics.median(s[k] for s in steps) / mb:.1f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/normalize_speed.py " + " ".join(sys.argv[1:]),
            "code": label,
            "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "data": f"first {mb:.2f} MB of {DATA}/chnci/train.csv, column content ({len(texts)} comments)",
            "cpus": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "runs": args.runs,
            "mb_per_s_cpu_median": {k: mb / statistics.median(v) for k, v in cpu.items()},
            "mb_per_s_wall_median": {k: mb / statistics.median(v) for k, v in wall.items()},
            "cpu_s": cpu,
            "wall_s": wall,
            "step_cpu_ms_per_mb_median": {k: 1000 * statistics.median(s[k] for s in steps) / mb
                                          for k in steps[0]} if steps else {},
        }, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
