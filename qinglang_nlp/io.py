"""Streaming readers for JSONL and CSV inputs that never drop a row: bad rows become error records."""
from __future__ import annotations

import codecs
import csv
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

__all__ = ["Row", "iter_rows", "detect_format"]


@dataclass
class Row:
    """One input row: ``line`` is 1-based; ``data`` is the parsed object or None with ``error`` set."""

    line: int
    data: dict[str, Any] | None
    error: str | None = None


def detect_format(path: str | Path) -> str:
    """``jsonl`` or ``csv`` from the file name (``.jsonl``, ``.json``, ``.ndjson``, ``.csv``, ``.tsv``)."""
    s = str(path).lower()
    for ext, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "jsonl"), (".csv", "csv"),
                     (".tsv", "tsv"), (".parquet", "parquet")):
        if s.endswith(ext):
            return fmt
    raise ValueError(f"cannot tell the format of {path!r}: use .jsonl, .csv, .tsv or .parquet, or pass --format")


def _decode_lines(f) -> Iterator[tuple[int, str | None, str | None]]:
    """Yield (line_no, text, error) for each line of a binary stream, decoding UTF-8 (BOM allowed)."""
    for i, raw in enumerate(f, start=1):
        if i == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        try:
            yield i, raw.decode("utf-8"), None
        except UnicodeDecodeError as e:
            yield i, None, (f"line {i}: invalid UTF-8 at byte {e.start} "
                            "(is the file GB18030/GBK? convert it with iconv -f GB18030 -t UTF-8)")


def _iter_jsonl(path: Path) -> Iterator[Row]:
    with open(path, "rb") as f:
        for i, line, err in _decode_lines(f):
            if err:
                yield Row(i, None, err)
                continue
            s = line.strip()
            if not s:
                continue
            try:
                obj = json.loads(s)
            except ValueError as e:
                yield Row(i, None, f"line {i}: invalid JSON ({e.__class__.__name__}: {e})")
                continue
            if not isinstance(obj, dict):
                yield Row(i, None, f"line {i}: expected a JSON object, got {type(obj).__name__}")
                continue
            yield Row(i, obj)


def _iter_csv(path: Path, delimiter: str) -> Iterator[Row]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with open(path, "rb") as fb:
        data = fb.read()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ValueError(f"{path}: line {line}: invalid UTF-8 at byte {e.start} "
                         "(is the file GB18030/GBK? convert it with iconv -f GB18030 -t UTF-8)") from None
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            yield Row(reader.line_num, None, f"line {reader.line_num}: malformed CSV ({e})")
            continue
        if None in row:  # more cells than header columns
            extra = row.pop(None)
            yield Row(reader.line_num, None, f"line {reader.line_num}: {len(extra)} more cells than the header")
            continue
        yield Row(reader.line_num, dict(row))


def iter_rows(path: str | Path, fmt: str | None = None) -> Iterator[Row]:
    """Stream rows of a JSONL/CSV/TSV file; malformed rows come back with ``error`` set and their line."""
    p = Path(path)
    fmt = fmt or detect_format(p)
    if fmt == "jsonl":
        return _iter_jsonl(p)
    if fmt in ("csv", "tsv"):
        return _iter_csv(p, "," if fmt == "csv" else "\t")
    raise ValueError(f"unsupported format {fmt!r} (jsonl, csv, tsv)")
