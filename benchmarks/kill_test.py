"""Kill test: SIGKILL ``qinglang score`` at random points, rerun it, and check the output is exact.

    .venv/bin/python benchmarks/kill_test.py --kills 20 --rows 20000 -m MODEL [--input posts.jsonl]

Each round starts the real CLI in a subprocess (``--resume`` is the default), waits until it has committed
at least that round's target row (targets: ``--kills`` distinct random rows, in increasing order, so the
kills spread over the whole file), then a random 0-200 ms more, and kills it with SIGKILL (a target already
passed means a kill during start-up or while skipping committed rows). After the last kill the same command runs to the end. The output must equal, byte for
byte, the output of one uninterrupted run: every id exactly once, in input order, same scores. Prints one
JSON line with the result; exit status 0 only if the check passed. Without ``--input`` it writes a corpus
of ``--rows`` posts cycled from ``examples/posts.jsonl`` (unique ids, plus one malformed line).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_input(path: Path, rows: int) -> None:
    """``rows`` posts cycled from examples/posts.jsonl with unique ids; line 10 is malformed JSON."""
    base = [json.loads(x) for x in (ROOT / "examples" / "posts.jsonl").read_text(encoding="utf-8").splitlines()]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            if i == 9:
                f.write("{malformed\n")
                continue
            p = dict(base[i % len(base)])
            p["id"] = f"{p['id']}-{i:06d}"
            f.write(json.dumps(p, ensure_ascii=False) + "\n")


def committed_rows(out: Path) -> int:
    try:
        return int(json.loads(Path(str(out) + ".state.json").read_text(encoding="utf-8"))["rows"])
    except (OSError, ValueError, KeyError):
        return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("-m", "--model", default="default")
    ap.add_argument("--input", default=None)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk-rows", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--format", choices=["jsonl", "parquet"], default="jsonl", help="output format")
    a = ap.parse_args(argv)
    rng = random.Random(a.seed)
    work = Path(a.workdir or tempfile.mkdtemp(prefix="qinglang-kill-"))
    work.mkdir(parents=True, exist_ok=True)
    inp = Path(a.input) if a.input else work / "posts.jsonl"
    if not a.input:
        make_input(inp, a.rows)
    ref, out = work / f"reference.{a.format}", work / f"killed.{a.format}"
    cmd = [sys.executable, "-m", "qinglang_nlp.cli", "score", str(inp), "-m", a.model, "-q",
           "--chunk-rows", str(a.chunk_rows), "--batch-size", str(a.batch_size)]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    subprocess.run(cmd + ["-o", str(ref), "--overwrite"], env=env, check=False, capture_output=True)
    t_ref = time.perf_counter() - t0
    total = sum(1 for _ in ref.read_bytes().splitlines()) if a.format == "jsonl" else None
    kills, missed, points = 0, 0, []
    n_rows = total or a.rows
    targets = sorted(rng.sample(range(n_rows), min(a.kills, n_rows)))  # kill points spread over the file
    for target in targets:
        p = subprocess.Popen(cmd + ["-o", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while p.poll() is None and committed_rows(out) < target:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.2))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
            kills += 1
            points.append(committed_rows(out))
        else:
            missed += 1  # it finished first; the next rounds just find a complete output
    final = subprocess.run(cmd + ["-o", str(out)], env=env, capture_output=True, text=True)
    if a.format == "jsonl":
        got_b, want_b = out.read_bytes(), ref.read_bytes()
        same = got_b == want_b
        recs = [json.loads(x) for x in got_b.splitlines()]
    else:
        from qinglang_nlp.batch import read_scored

        recs, want = list(read_scored(out)), list(read_scored(ref))
        same = recs == want
    ids = Counter(r.get("id") for r in recs if r.get("id") is not None)
    once = all(v == 1 for v in ids.values())
    lines = [r["line"] for r in recs]
    res = {"ok": bool(same and once and lines == sorted(set(lines))), "identical_to_uninterrupted": same,
           "every_id_once": once, "rows": len(recs), "kills": kills, "finished_before_kill": missed,
           "committed_rows_at_kills": points, "final_exit": final.returncode,
           "reference_seconds": round(t_ref, 1), "workdir": str(work)}
    print(json.dumps(res))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
