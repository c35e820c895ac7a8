"""Distributed scoring on Ray Data: the same rows, records and Parquet schema as the local engine.

Pipeline::

    plan_shards(input)                      # driver: line-aligned byte ranges (JSONL) or row groups (Parquet)
      -> ray.data.from_items(shards)
      -> map_batches(_ShardScorer, concurrency=workers)   # actor pool; each actor loads the model ONCE
      -> write_parquet(OUTPUT_FOLDER)        # one or more part files, same columns as local Parquet output

Why shards and not ``ray.data.read_json``: ``read_json`` (pyarrow's JSON reader) fails the whole job on one
malformed line and loses line numbers, and ``read_parquet`` gives no row numbers; reading the shards with
the local readers inside the actors keeps "every input row yields exactly one output row, with its line"
and makes the output identical to ``qinglang score`` (sort by ``line`` to compare: part files are written
in completion order). CSV/TSV inputs are one shard (quoted newlines make byte splits unsafe).

On a cluster: every node must see the input path and the model folder at the same path (shared or
network file system) and the output folder must be shared too (or an ``s3://``-style URI that pyarrow
supports). Start Ray on the nodes (``ray start --head`` / ``ray start --address=HEAD:6379``), then run
``qinglang score posts.jsonl -o out_folder --engine ray --workers 16 --ray-address auto``. The local engine's
crash-safe resume does not apply here: Ray Data retries failed tasks on its own, and a run that fails as a
whole is rerun with ``--overwrite``.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .batch import FieldMap, ScoreSummary, _arrow_table, _Dups, _finish_summary, score_rows
from .io import Shard, columns, detect_format, iter_shard, plan_shards

__all__ = ["score_ray"]


class _ShardScorer:
    """Ray actor: loads the model once, then scores whole shards into Arrow tables."""

    def __init__(self, model: str, fields: dict[str, str], batch_size: int, lexicon: bool,
                 cascade: dict[str, Any] | None, keep_text: bool, threads: int = 1):
        from .moderator import load
        from .onnx_classifier import THREADS_ENV

        os.environ.setdefault(THREADS_ENV, str(threads))  # one actor per reserved CPU: no oversubscription

        m = load(None if model == "default" else model, lexicon=lexicon)
        if cascade:
            from .cascade import load_cascade

            m = load_cascade(cascade, m, lexicon=lexicon)
        self.model = m
        self.fields = FieldMap(**fields)
        self.batch_size = batch_size
        self.keep_text = keep_text

    def __call__(self, batch: dict[str, Any]):
        import pyarrow as pa

        tables = []
        n = len(batch["path"])
        for i in range(n):
            rg = batch["row_groups"][i]
            shard = Shard(str(batch["path"][i]), str(batch["fmt"][i]), int(batch["first"][i]),
                          int(batch["start"][i]), None if int(batch["end"][i]) < 0 else int(batch["end"][i]),
                          None if rg is None or len(rg) == 1 and rg[0] < 0 else tuple(int(x) for x in rg))
            recs = list(score_rows(self.model, iter_shard(shard), self.fields, self.batch_size, self.keep_text))
            tables.append(_arrow_table(recs))
        return pa.concat_tables(tables)


def _shard_item(s: Shard) -> dict[str, Any]:
    d = asdict(s)
    d["end"] = -1 if s.end is None else s.end
    d["row_groups"] = [-1] if s.row_groups is None else list(s.row_groups)
    return d


def score_ray(input_path: str | os.PathLike, output_dir: str | os.PathLike, model: str = "default", *,
              fields: FieldMap = FieldMap(), batch_size: int = 64, workers: int = 2, fmt: str | None = None,
              lexicon: bool = True, cascade: str | None = None, keep_text: bool = False,
              overwrite: bool = False, rows_per_shard: int = 500, address: str | None = None,
              cpus_per_worker: int = 1, progress: bool = False) -> ScoreSummary:
    """Score ``input_path`` on Ray Data into a folder of Parquet files; return the run's counts.

    ``model`` and ``cascade`` are paths (or model names) that every worker can open. Starts a local Ray
    (``num_cpus=workers * cpus_per_worker``) unless Ray is already initialised or ``address`` is given. Each
    actor reserves ``cpus_per_worker`` CPUs and runs ONNX with that many threads.
    """
    try:
        import ray
    except ImportError:
        raise ImportError("--engine ray needs Ray: pip install 'ray[data]'") from None
    import pyarrow.parquet as pq

    inp = Path(input_path).resolve()
    fmt = fmt or detect_format(inp)
    fields.check_columns(columns(inp, fmt), str(inp))  # a mistyped --*-field fails here, as in the local engine
    out = Path(output_dir)
    if out.exists() and (out.is_file() or any(out.iterdir())):
        if not overwrite:
            raise ValueError(f"{out} exists and is not empty; pass --overwrite to replace it")
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    model_arg = model if model in ("default", "baseline") or not Path(model).exists() else str(Path(model).resolve())
    cascade_arg = None
    if cascade:
        from .cascade import read_cascade_file

        cascade_arg = read_cascade_file(cascade)  # read here: the workers get its content, not a path
    t0 = time.perf_counter()
    if not ray.is_initialized():
        if address:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        else:
            ray.init(num_cpus=workers * cpus_per_worker, include_dashboard=False, ignore_reinit_error=True,
                     log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = progress
    if not progress:  # -q: keep Ray Data's per-operator INFO lines off the terminal
        import logging

        logging.getLogger("ray.data").setLevel(logging.WARNING)
    shards = plan_shards(inp, fmt, rows_per_shard)
    ds = ray.data.from_items([_shard_item(s) for s in shards], override_num_blocks=len(shards))
    ds = ds.map_batches(
        _ShardScorer, batch_size=1, batch_format="numpy", concurrency=workers, num_cpus=cpus_per_worker,
        fn_constructor_kwargs={"model": model_arg, "fields": asdict(fields), "batch_size": batch_size,
                               "lexicon": lexicon, "cascade": cascade_arg, "keep_text": keep_text,
                               "threads": cpus_per_worker})
    ds.write_parquet(str(out.resolve()))

    summary = ScoreSummary(input_bytes=inp.stat().st_size)
    dups = _Dups()
    cols = ["id", "line", "error", "labels", "decision", "stage"]
    tables = [pq.read_table(f, columns=cols) for f in sorted(out.glob("*.parquet"))]
    rows = sorted((r for t in tables for r in t.to_pylist()), key=lambda r: r["line"])
    for r in rows:
        rec = {k: v for k, v in r.items() if v is not None}
        summary.add(rec)
        dups.see(r["id"], r["line"])
    return _finish_summary(summary, dups, t0, True)
