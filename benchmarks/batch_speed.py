"""Throughput of `qinglang score` on a synthetic crawl: local, local with the cascade, Ray on N workers.

    .venv/bin/python benchmarks/make_corpus.py -o /tmp/posts_100k.jsonl --rows 100000
    # timing stand-in for the transformer while none is trained (random heads on the rebuilt backbone):
    .venv/bin/python benchmarks/batch_speed.py --build-untrained-transformer runs/backbone/hf /tmp/untrained
    .venv/bin/python benchmarks/batch_speed.py --corpus /tmp/posts_100k.jsonl --rows 20000 \\
        --first /path/baseline --second /path/model [--proxy-second /path/other_model] [--ray-workers 2]

Every configuration runs the real CLI in a fresh subprocess on the first ``--rows`` posts of the corpus and
reports posts/s and MB/s (rows and input bytes over the scoring time that the summary file records, which
excludes start-up and model loading; wall time including start-up is given too) and peak RSS of the
process (``os.wait4``; for Ray this is the driver only: worker processes are not children of the driver).

``--window-gate on|only`` adds the stacked model's window gate (``qinglang_nlp.cascade.calibrate_window_gate``,
same dev posts and recall target); ``only`` sends every row on and gates windows alone.

``--gate GATE_DIR`` (a distilled window gate, ``python -m qinglang_nlp.cascade distill``) adds a second cascade run,
``cascade_distilled``, calibrated the same way (same dev posts, recall and ``--window-gate`` mode) with the distilled
gate scoring the windows instead of the baseline member, so that the second model alone, its baseline-member gate and
its distilled gate are measured side by side in one invocation (``--skip cascade`` leaves out the baseline-member one).

Cascade: cut-offs are calibrated (``qinglang_nlp.cascade.calibrate``) on ``--dev-rows`` posts generated from
the carved *dev* split (the benchmark rows come from the *test* split) for ``--recall`` of the rows that the
calibration target flags. The target is ``--proxy-second`` when given (use it while ``--second`` is an
untrained model whose flags mean nothing), else ``--second``. Recall cost = share of posts that
``--second`` alone flags in a category that the cascade run also flags, on the benchmark rows; with a
proxy, the recall cost is also measured against the proxy. Results go to stdout as JSON and, with ``--md``,
as a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from qinglang_nlp.taxonomy import CATEGORIES


def run_cli(args: list[str], env: dict[str, str]) -> dict:
    """Run ``qinglang`` with ``args`` in a subprocess; wall and CPU seconds and peak RSS (MiB) of that process.

    CPU seconds (user + system, start-up included) are the steadier number on a shared machine.
    """
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "qinglang_nlp.cli", *args], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode("utf-8", "replace") if p.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):  # 1 = some rows were error rows
        raise RuntimeError(f"qinglang {' '.join(args)} failed ({code}):\n{err[-3000:]}")
    return {"wall_s": round(wall, 2), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
            "peak_rss_mib": round(ru.ru_maxrss / 1024, 1)}


def flagged_sets(path: Path) -> tuple[dict[str, set], dict[int, int]]:
    """Lines flagged per category, and lines per cascade stage, of a scored output; under the key ``"not_pass"``
    (besides the categories), the lines whose decision is review or block."""
    from qinglang_nlp.batch import read_scored

    flags: dict[str, set] = {c: set() for c in (*CATEGORIES, "not_pass")}
    stages: dict[int, int] = {}
    for r in read_scored(path):
        for c in r.get("labels") or []:
            flags[c].add(r["line"])
        if r.get("decision") not in (None, "pass"):
            flags["not_pass"].add(r["line"])
        if "stage" in r:
            stages[r["stage"]] = stages.get(r["stage"], 0) + 1
    return flags, stages


def recall(full: dict[str, set], cascade: dict[str, set]) -> dict:
    """Per category and overall: share of ``full``'s flagged lines that ``cascade`` flags too."""
    out = {}
    tot = kept = 0
    for c in CATEGORIES:
        n = len(full[c])
        k = len(full[c] & cascade[c])
        tot, kept = tot + n, kept + k
        out[c] = {"flagged": n, "recall": round(k / n, 4) if n else None}
    out["all"] = {"flagged": tot, "recall": round(kept / tot, 4) if tot else None}
    if "not_pass" in full and "not_pass" in cascade:  # review or block: the decisions a moderator sees
        n = len(full["not_pass"])
        out["review_or_block"] = {"rows": n, "kept": round(len(full["not_pass"] & cascade["not_pass"]) / n, 4)
                                  if n else None}
    return out


def build_untrained_transformer(backbone_dir: str, out_dir: str) -> None:
    """An ONNX int8 model folder from a backbone with RANDOM heads: right cost, meaningless scores.

    For timing only, while no fine-tuned transformer exists. The parity gate is disabled (random heads
    put scores next to the thresholds, so fp32/int8 label agreement says nothing here).
    """
    import torch
    from transformers import AutoModel

    from qinglang_nlp.train.export import export
    from qinglang_nlp.train.model import MultiTaskClassifier, QinglangMeta, load_tokenizer

    torch.manual_seed(0)
    tok = load_tokenizer(backbone_dir)
    pad = tok.token_to_id("<pad>")
    enc = AutoModel.from_pretrained(str(backbone_dir), add_pooling_layer=False)
    meta = QinglangMeta(categories=list(CATEGORIES), pooling="mean", max_length=256,
                        pad_token_id=int(pad if pad is not None else 0), backbone={"untrained_heads": True})
    ckpt = Path(out_dir + ".ckpt")
    MultiTaskClassifier(enc, meta, tok).save_checkpoint(ckpt)
    texts = ["姐妹们今天打投任务每人五十票", "今天天气不错", "【紧急扩散】某地自来水有毒"] * 22
    kw = {"parity_texts": texts, "name": "untrained-e5small", "version": "timing-only", "prune_vocab": False,
          "min_agreement": 0.0, "max_auc_drop": 1.0, "overwrite": True}
    try:  # static int8 (batch-independent); dynamic int8 fails the exporter's batch-drift check
        export(ckpt, out_dir, "int8", variants=("qdq",), **kw)
    except Exception as e:  # noqa: BLE001 -- fall back to fp32, and say so
        print(f"int8 qdq export failed ({type(e).__name__}: {e}); exporting fp32", file=sys.stderr)
        export(ckpt, out_dir, "none", **kw)


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 4 and sys.argv[1] == "--build-untrained-transformer":
        build_untrained_transformer(sys.argv[2], sys.argv[3])  # BACKBONE_HF_DIR OUT_DIR
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--first", required=True, help="first-stage model (baseline)")
    ap.add_argument("--second", required=True, help="the expensive model")
    ap.add_argument("--proxy-second", default=None, help="calibrate/measure recall against this model instead")
    ap.add_argument("--recall", type=float, default=0.99)
    ap.add_argument("--dev-rows", type=int, default=3000)
    ap.add_argument("--positive-rate", type=float, default=None,
                    help="dev posts for calibration: as make_corpus --positive-rate (match the corpus)")
    ap.add_argument("--window-gate", choices=["off", "on", "only"], default="off",
                    help="window gate of a stacked second model: off, on (with the row gate), only (no row gate)")
    ap.add_argument("--gate", default=None, help="distilled window gate folder: adds the cascade_distilled run")
    ap.add_argument("--ray-workers", type=int, default=2)
    ap.add_argument("--skip", default="", help="comma list of runs to skip: first,second,proxy,cascade,ray")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--md", default=None, help="write a Markdown table here")
    a = ap.parse_args(argv)
    skip = set(filter(None, a.skip.split(",")))
    work = Path(a.workdir or tempfile.mkdtemp(prefix="qinglang-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}

    subset = work / f"posts_{a.rows}.jsonl"
    with open(a.corpus, encoding="utf-8") as src, open(subset, "w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i >= a.rows:
                break
            dst.write(line)
    mb = subset.stat().st_size / 1e6
    res: dict = {"corpus": str(a.corpus), "rows": a.rows, "input_mb": round(mb, 2), "runs": {}}

    def score(name: str, model: str, extra: list[str] = ()) -> Path:
        out = work / (f"{name}" if "--engine" in extra else f"{name}.jsonl")
        m = run_cli(["score", str(subset), "-o", str(out), "-m", model, "-q", "--overwrite", *extra], env)
        summ = json.loads(Path(str(out).rstrip("/") + ".summary.json").read_text())
        sec = summ["seconds"]
        m.update(score_s=round(sec, 2), posts_per_s=round(a.rows / sec, 1), mb_per_s=round(mb / sec, 3),
                 errors=summ["errors"], flagged=summ["flagged"], stages=summ.get("stages") or None)
        res["runs"][name] = m
        print(name, json.dumps(m), file=sys.stderr)
        return out

    if "first" not in skip:
        score("first_only", a.first)
    out_second = score("second_only", a.second) if "second" not in skip else None
    out_proxy = score("proxy_second_only", a.proxy_second) if a.proxy_second and "proxy" not in skip else None

    dev = work / "dev_posts.jsonl"
    if "cascade" not in skip or a.gate:
        # in subprocesses: a big driver would leak its RSS high-water mark into every child it forks
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_corpus.py"), "-o", str(dev), "--rows",
                        str(a.dev_rows), "--split", "dev", "--seed", "1"]
                       + (["--positive-rate", str(a.positive_rate)] if a.positive_rate is not None else []),
                       env=env, check=True, capture_output=True)

    def cascade(name: str, gate: str | None) -> None:
        """Calibrate a cascade on the dev posts (with ``gate`` scoring the windows, if given), then score."""
        target = a.proxy_second or a.second
        cas_file = work / f"{name}.json"
        t0 = time.perf_counter()
        cpu0 = os.times()
        subprocess.run([sys.executable, "-m", "qinglang_nlp.cascade", a.first, target, str(dev), "-o",
                        str(cas_file), "--recall", str(a.recall)]
                       + {"off": [], "on": ["--window-gate"], "only": ["--windows-only"]}[a.window_gate]
                       + (["--gate", gate] if gate else []),
                       env=env, check=True, capture_output=True)
        cpu1 = os.times()
        cfg = json.loads(cas_file.read_text(encoding="utf-8"))
        res[name] = {"target": target, "cutoffs": cfg["cutoffs"], "dev": cfg["dev"],
                     "window_gate": cfg.get("window_gate"), "calibration_wall_s": round(time.perf_counter() - t0, 1),
                     "calibration_cpu_s": round(cpu1.children_user + cpu1.children_system
                                                - cpu0.children_user - cpu0.children_system, 1)}
        out_cas = score(name, a.second, ["--cascade", str(cas_file)])
        flags_cas, stages = flagged_sets(out_cas)
        res[name]["candidate_rate"] = round(stages.get(2, 0) / a.rows, 4)
        if out_second is not None:
            res[name]["recall_vs_second"] = recall(flagged_sets(out_second)[0], flags_cas)
            base = res["runs"]["second_only"]
            res[name]["speedup_vs_second"] = round(base["score_s"] / res["runs"][name]["score_s"], 2)
            res[name]["cpu_speedup_vs_second"] = round(base["cpu_s"] / res["runs"][name]["cpu_s"], 2)
        if a.proxy_second:
            out_pc = score(f"{name}_proxy", a.proxy_second, ["--cascade", str(cas_file)])
            if out_proxy is not None:
                res[name]["recall_vs_proxy"] = recall(flagged_sets(out_proxy)[0], flagged_sets(out_pc)[0])

    if "cascade" not in skip:
        cascade("cascade", None)
    if a.gate:
        cascade("cascade_distilled", a.gate)
    if "ray" not in skip:
        try:
            import ray  # noqa: F401

            score(f"ray_{a.ray_workers}_workers", a.second,
                  ["--engine", "ray", "--workers", str(a.ray_workers)])
        except ImportError:
            res["runs"]["ray"] = "skipped: ray not installed"
    print(json.dumps(res, ensure_ascii=False))
    if a.md:
        lines = ["| run | posts/s | MB/s | scoring s | wall s (with start-up) | CPU s | peak RSS MiB | flagged |",
                 "|---|---:|---:|---:|---:|---:|---:|---|"]
        for name, m in res["runs"].items():
            if isinstance(m, dict):
                lines.append(f"| {name} | {m['posts_per_s']} | {m['mb_per_s']} | {m['score_s']} | {m['wall_s']} | {m['cpu_s']} | "
                             f"{m['peak_rss_mib']} | {m['flagged']} |")
        cas = {k: res[k] for k in ("cascade", "cascade_distilled") if k in res}
        Path(a.md).write_text("\n".join(lines) + "\n\n```json\n" + json.dumps(cas, ensure_ascii=False, indent=1)
                              + "\n```\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
