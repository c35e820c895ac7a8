"""Batch scoring of files: every input row yields exactly one output row (a result or an error record)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from .io import Row, iter_rows
from .moderator import Moderator

__all__ = ["FieldMap", "ScoreSummary", "row_text", "score_rows", "score_file"]


@dataclass(frozen=True)
class FieldMap:
    """Which input fields hold the id and the text. ``text`` wins; else ``title`` + ``content``."""

    id: str = "id"
    text: str = "text"
    title: str = "title"
    content: str = "content"


@dataclass
class ScoreSummary:
    """Counts of a scoring run."""

    rows: int = 0
    errors: int = 0
    flagged: dict[str, int] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def row_text(data: dict[str, Any], fields: FieldMap) -> str:
    """The text to score for one row; raises ``ValueError`` naming the missing field."""
    if fields.text in data and data[fields.text] is not None:
        v = data[fields.text]
        if not isinstance(v, str):
            raise ValueError(f"field {fields.text!r} is {type(v).__name__}, not text")
        return v
    parts = []
    for f in (fields.title, fields.content):
        v = data.get(f)
        if v is None:
            continue
        if not isinstance(v, str):
            raise ValueError(f"field {f!r} is {type(v).__name__}, not text")
        if f == fields.content and "<" in v and ">" in v:
            from .html import clean_html  # WeChat articles arrive as HTML

            cleaned = clean_html(v)
            v = cleaned if isinstance(cleaned, str) else cleaned.text
        parts.append(v)
    if not parts:
        raise ValueError(f"row has no {fields.text!r} (or {fields.title!r}/{fields.content!r}) field; "
                         f"fields: {sorted(data)[:12]}")
    return "\n".join(parts)


def score_rows(model: Moderator, rows: Iterable[Row], fields: FieldMap = FieldMap(), batch_size: int = 64,
               ) -> Iterator[dict[str, Any]]:
    """Yield one output record per input row, in input order."""
    pending: list[tuple[Row, Any, str]] = []

    def flush() -> Iterator[dict[str, Any]]:
        texts = [p[2] for p in pending]
        results = model.predict_batch(texts, batch_size=batch_size) if texts else []
        for (row, rid, _), res in zip(pending, results):
            yield {"id": rid, "line": row.line, **res.to_dict()}
        pending.clear()

    for row in rows:
        rid = row.data.get(fields.id) if row.data else None
        err = row.error
        text = None
        if err is None:
            try:
                text = row_text(row.data, fields)
                model._prepare(text, f"line {row.line}")
            except (TypeError, ValueError) as e:
                err = str(e)
        if err is not None:
            yield from flush()
            yield {"id": rid, "line": row.line, "error": err, "model": model.name}
            continue
        pending.append((row, rid, text))
        if len(pending) >= batch_size:
            yield from flush()
    yield from flush()


def score_file(model: Moderator, input_path: str | Path, out: IO[str], fields: FieldMap = FieldMap(),
               batch_size: int = 64, fmt: str | None = None, progress: bool = False) -> ScoreSummary:
    """Score a JSONL/CSV file into ``out`` (JSONL); return counts."""
    summary = ScoreSummary()
    t0 = time.perf_counter()
    rows: Iterable[Row] = iter_rows(input_path, fmt)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(unit="rows", desc="scoring")
    for rec in score_rows(model, rows, fields, batch_size):
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        summary.rows += 1
        if "error" in rec:
            summary.errors += 1
        else:
            summary.decisions[rec["decision"]] = summary.decisions.get(rec["decision"], 0) + 1
            for lab in rec["labels"]:
                summary.flagged[lab] = summary.flagged.get(lab, 0) + 1
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    summary.seconds = time.perf_counter() - t0
    return summary
