"""Normalisation throughput (MB/s of UTF-8 input, median of runs) on real comments from the shared data.

    .venv/bin/python benchmarks/normalize_speed.py --mb 10 --runs 3

CPU time (``time.process_time``) is the primary measure because the machine is shared; wall clock is shown
beside it. CPU time (``time.process_time``) is the primary measure because the machine is shared; wall clock is shown
beside it. Compares, on one core, ``normalize`` one text at a time and ``normalize_batch`` with all steps on and with the
pinyin (``homophones``) step off, against a floor of plain ``unicodedata.normalize("NFKC")`` + ``str.translate``.
Comments: the ``content`` column of CHNCI train (Douyin/Weibo comments), in file order, up to ``--mb`` MB.
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qinglang_nlp.normalize import NormalizeConfig, normalize, normalize_batch, pinyin_view

DATA = Path(os.environ.get("QINGLANG_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
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
    for t in texts:
        unicodedata.normalize("NFKC", t).translate(_FLOOR_TABLE).casefold()


def floor_joined(texts: list[str]) -> None:
    unicodedata.normalize("NFKC", "\n".join(texts)).translate(_FLOOR_TABLE).casefold()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    texts = load_comments(args.mb)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    all_on = NormalizeConfig()
    no_pinyin = NormalizeConfig(homophones=False)
    normalize("热身", all_on), normalize("热身", no_pinyin)  # build the lazy tables outside the timing
    cases = {
        "floor: NFKC + str.translate + casefold, per text": lambda: floor_one(texts),
        "floor: NFKC + str.translate + casefold, joined": lambda: floor_joined(texts),
        "normalize() per text, all steps": lambda: [normalize(t, all_on) for t in texts],
        "normalize() per text, pinyin step off": lambda: [normalize(t, no_pinyin) for t in texts],
        "normalize_batch(), all steps": lambda: normalize_batch(texts, all_on),
        "normalize_batch(), pinyin step off": lambda: normalize_batch(texts, no_pinyin),
        "normalize_batch() + pinyin_view() of every text": lambda: [
            pinyin_view(n) for n in normalize_batch(texts, all_on)],
    }
    print(f"{len(texts):,} comments, {nbytes / 1e6:.2f} MB UTF-8, median of {args.runs} runs, one process, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("| case | MB/s, CPU time (median) | MB/s, wall clock (median) | CPU s per run |\n|---|---:|---:|---|")
    for name, fn in cases.items():
        cpu, wall = [], []
        for _ in range(args.runs):
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        mb = nbytes / 1e6
        print(f"| {name} | {mb / statistics.median(cpu):.1f} | {mb / statistics.median(wall):.1f} "
              f"| {', '.join(f'{x:.2f}' for x in cpu)} |", flush=True)


if __name__ == "__main__":
    main()
