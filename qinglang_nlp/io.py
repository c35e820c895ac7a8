"""Streaming readers for JSONL, CSV/TSV and Parquet that never drop a row: bad rows become error records.

Every reader yields ``Row(line, data, error)`` in file order. ``line`` is the 1-based physical line of the
row (JSONL, CSV: the line where the record ends) or the 1-based row number (Parquet). Readers hold one
record (JSONL/CSV) or one record batch (Parquet) in memory at a time. Parquet needs ``pyarrow``,
imported only when a Parquet file is read.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FORMATS", "Row", "Shard", "columns", "count_rows", "detect_format", "iter_rows", "iter_shard", "plan_shards"]

FORMATS = ("jsonl", "csv", "tsv", "parquet")


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
    raise ValueError(f"cannot tell the format of {path!r}: use .jsonl, .csv, .tsv or .parquet, "
                     "or pass --format")


def _decode_lines(f, first_line: int = 1, end: int | None = None,
                  ) -> Iterator[tuple[int, str | None, str | None]]:
    """Yield (line_no, text, error) for each line of a binary stream, decoding UTF-8 (BOM allowed, at the
    start of any line: files with a BOM each, joined with ``cat``).

    Stops before the line that starts at byte ``end`` (a shard boundary) when ``end`` is given.
    """
    i = first_line - 1
    while end is None or f.tell() < end:
        raw = f.readline()
        if not raw:
            return
        i += 1
        raw = raw.removeprefix(codecs.BOM_UTF8)
        try:
            yield i, raw.decode("utf-8"), None
        except UnicodeDecodeError as e:
            yield i, None, (f"line {i}: invalid UTF-8 at byte {e.start} "
                            "(is the file GB18030/GBK? convert it with iconv -f GB18030 -t UTF-8)")


_NOT_TEXT = (
    (b"\x1f\x8b", "GZIP-compressed: decompress it first (gunzip -k {name})"),
    (b"PK\x03\x04", "ZIP-compressed (or an Excel .xlsx): unzip it, or save the sheet as CSV UTF-8"),
    (b"\xff\xfe", "UTF-16 (Excel 'Unicode text'?): convert it with iconv -f UTF-16 -t UTF-8"),
    (b"\xfe\xff", "UTF-16 (Excel 'Unicode text'?): convert it with iconv -f UTF-16 -t UTF-8"),
)


def _check_text_file(path: Path, head: bytes) -> None:
    """Raise ``ValueError`` when the first bytes show a compressed or UTF-16 file (not UTF-8 text)."""
    for magic, what in _NOT_TEXT:
        if head.startswith(magic):
            raise ValueError(f"{path} is {what.format(name=path.name)}")


def _iter_jsonl(path: Path, start: int = 0, end: int | None = None, first_line: int = 1) -> Iterator[Row]:
    with open(path, "rb") as f:
        if start == 0:
            _check_text_file(path, f.read(4))
        f.seek(start)
        opening = start == 0  # before the file's first non-blank line
        for i, line, err in _decode_lines(f, first_line, end):
            if err:
                yield Row(i, None, err)
                continue
            s = line.strip()
            if not s:
                continue
            if opening and s in ("[", "{"):  # never a JSON Lines row: an indented JSON document
                kind, jq = ("array", ".[]") if s == "[" else ("object", ".KEY[]")
                raise ValueError(f"{path}: line {i}: the file is one indented JSON {kind}, not JSON Lines (one "
                                 f"object per line); convert it, e.g. jq -c '{jq}' {path.name} > posts.jsonl")
            opening = False
            try:
                obj = json.loads(s)
            except ValueError as e:
                yield Row(i, None, f"line {i}: invalid JSON ({e.__class__.__name__}: {e})")
                continue
            except RecursionError:
                yield Row(i, None, f"line {i}: JSON nested too deeply to read")
                continue
            if not isinstance(obj, dict):
                yield Row(i, None, f"line {i}: expected a JSON object, got {type(obj).__name__}")
                continue
            yield Row(i, obj)


def _check_unique(where: str, names: list[str], part: str = "header") -> None:
    """Raise ``ValueError`` for a repeated column name (a row dict would keep the last and drop the others)."""
    twice = [n for i, n in enumerate(names) if n in names[:i]]
    if twice:
        raise ValueError(f"{where}: column {twice[0]!r} appears twice in the {part}; rename one")


def _quoting_error(text: str, delimiter: str) -> str | None:
    """What strict CSV parsing finds wrong with the quoting of ``text`` (one record), or None."""
    try:
        for _ in csv.reader(io.StringIO(text), delimiter=delimiter, strict=True):
            pass
    except csv.Error as e:
        return str(e)
    return None


def _iter_csv(path: Path, delimiter: str) -> Iterator[Row]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    bad_lines: list[int] = []  # physical lines that were not valid UTF-8
    record: list[str] = []  # the lines read since the last record ended
    at_eof = [False]

    def lines() -> Iterator[str]:
        with open(path, "rb") as fb:
            _check_text_file(path, fb.read(4))
            fb.seek(0)
            for i, raw in enumerate(fb, start=1):
                if i == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8):]
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    bad_lines.append(i)
                    line = raw.decode("utf-8", errors="replace")
                record.append(line)
                yield line
        at_eof[0] = True

    reader = csv.DictReader(lines(), delimiter=delimiter)
    try:
        reader.fieldnames  # noqa: B018 - reads the header
    except csv.Error as e:
        raise ValueError(f"{path}: line 1: malformed CSV header ({e})") from None
    if bad_lines and bad_lines[0] == 1:
        raise ValueError(f"{path}: line 1: the header is not valid UTF-8 "
                         "(is the file GB18030/GBK? convert it with iconv -f GB18030 -t UTF-8)")
    _check_unique(f"{path}: line 1", reader.fieldnames or [])
    prev_end = reader.line_num
    record.clear()
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            prev_end = reader.line_num
            record.clear()
            yield Row(reader.line_num, None, f"line {reader.line_num}: malformed CSV ({e})")
            continue
        start, end = prev_end + 1, reader.line_num
        prev_end = end
        first = start + next((k for k, ln in enumerate(record) if ln.strip()), 0)  # after skipped blank lines
        # the lenient reader takes any quote as opening or closing a field: one stray quote reads the lines up to
        # the next quote as one row; strict parsing tells a stray quote from a field over several lines
        wrong = _quoting_error("".join(record), delimiter) if at_eof[0] or end > first else None
        if at_eof[0] and wrong and "unexpected end of data" in wrong:
            if end > first:
                yield Row(end, None, f"line {first}: a quoted field is never closed, so line {first} to line "
                                     f"{end} (the end of the file) read as one row; fix the quoting")
            else:  # a file cut short in the middle of its last row
                yield Row(end, None, f"line {end}: a quoted field is never closed before the end of the file "
                                     "(was the file cut short?)")
            return
        record.clear()
        if wrong and end > first:
            yield Row(end, None, f"line {first}: a quote opened a field that closes in the middle of a cell "
                                 f"({wrong}), so line {first} to line {end} read as one row; fix the quoting")
            continue
        bad = [b for b in bad_lines if start <= b <= end]
        if bad:
            del bad_lines[:]
            yield Row(end, None, f"line {bad[0]}: invalid UTF-8 "
                                 "(is the file GB18030/GBK? convert it with iconv -f GB18030 -t UTF-8)")
            continue
        if None in row:  # more cells than header columns
            extra = row.pop(None)
            yield Row(end, None, f"line {end}: {len(extra)} more cells than the header")
            continue
        if None in row.values():  # fewer: the missing columns would read as absent, the row scored in part
            have = sum(v is not None for v in row.values())
            yield Row(end, None, f"line {end}: {have} cells, the header has {len(row)} (was the row cut short?)")
            continue
        yield Row(end, dict(row))


def _iter_parquet(path: Path, row_groups: list[int] | None = None, first_row: int = 1,
                  batch_rows: int = 4096) -> Iterator[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises ArrowInvalid/OSError for non-Parquet files
        raise ValueError(f"{path}: not a readable Parquet file ({e})") from None
    _check_unique(str(path), pf.schema_arrow.names, "schema")
    n = first_row - 1
    for batch in pf.iter_batches(batch_size=batch_rows, row_groups=row_groups):
        for rec in batch.to_pylist():
            n += 1
            yield Row(n, rec)


@dataclass(frozen=True)
class Shard:
    """A contiguous piece of one input file that can be read on its own (for distributed scoring).

    JSONL: bytes ``[start, end)`` beginning at line ``first``; Parquet: ``row_groups`` beginning at row
    ``first``; CSV/TSV: the whole file (quoted newlines make byte splits unsafe).
    """

    path: str
    fmt: str
    first: int = 1
    start: int = 0
    end: int | None = None
    row_groups: tuple[int, ...] | None = None


def plan_shards(path: str | Path, fmt: str | None = None, rows_per_shard: int = 5000) -> list[Shard]:
    """Split ``path`` into shards of about ``rows_per_shard`` rows; read in order, they give the file."""
    p = Path(path)
    fmt = fmt or detect_format(p)
    if fmt == "jsonl":
        shards = []
        with open(p, "rb") as f:
            start, first, line = 0, 1, 0
            for raw in iter(f.readline, b""):
                line += 1
                if line - first + 1 >= rows_per_shard:
                    shards.append(Shard(str(p), fmt, first, start, f.tell()))
                    start, first = f.tell(), line + 1
            if f.tell() > start or not shards:
                shards.append(Shard(str(p), fmt, first, start, f.tell()))
        return shards
    if fmt == "parquet":
        import pyarrow.parquet as pq

        md = pq.ParquetFile(p).metadata
        shards, group, first, rows = [], [], 1, 0
        for g in range(md.num_row_groups):
            group.append(g)
            rows += md.row_group(g).num_rows
            if rows >= rows_per_shard:
                shards.append(Shard(str(p), fmt, first, row_groups=tuple(group)))
                first += rows
                group, rows = [], 0
        if group or not shards:
            shards.append(Shard(str(p), fmt, first, row_groups=tuple(group)))
        return shards
    return [Shard(str(p), fmt)]


def iter_shard(shard: Shard) -> Iterator[Row]:
    """Rows of one shard, with the same line numbers and errors as ``iter_rows`` gives them."""
    p = Path(shard.path)
    if shard.fmt == "jsonl":
        return _iter_jsonl(p, shard.start, shard.end, shard.first)
    if shard.fmt == "parquet":
        return _iter_parquet(p, list(shard.row_groups or ()), shard.first)
    return iter_rows(p, shard.fmt)


def count_rows(path: str | Path, fmt: str | None = None) -> int | None:
    """Number of rows, cheaply: Parquet metadata, or non-blank lines of a JSONL file; None for CSV."""
    p = Path(path)
    fmt = fmt or detect_format(p)
    if fmt == "parquet":
        try:
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(p).metadata.num_rows)
        except Exception:  # the reader reports the real problem
            return None
    if fmt == "jsonl":
        n = 0
        with open(p, "rb") as f:
            for raw in f:
                if raw.strip():
                    n += 1
        return n
    return None


def columns(path: str | Path, fmt: str | None = None) -> list[str] | None:
    """Column names from a CSV/TSV header or a Parquet schema; None for JSONL (no header) or an unreadable file
    (the reader reports the real problem)."""
    p = Path(path)
    fmt = fmt or detect_format(p)
    try:
        if fmt in ("csv", "tsv"):
            with open(p, encoding="utf-8-sig", errors="replace", newline="") as f:
                names = next(csv.reader(f, delimiter="," if fmt == "csv" else "\t"), [])
            return None if any("\ufffd" in n for n in names) else names  # not UTF-8: the reader says so
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(p).schema_arrow.names)
    except Exception:  # noqa: BLE001 - pyarrow raises several types for a broken file
        return None
    return None


def iter_rows(path: str | Path, fmt: str | None = None) -> Iterator[Row]:
    """Stream rows of a JSONL/CSV/TSV/Parquet file; malformed rows come back with ``error`` and their line."""
    p = Path(path)
    fmt = fmt or detect_format(p)
    if fmt == "jsonl":
        return _iter_jsonl(p)
    if fmt in ("csv", "tsv"):
        return _iter_csv(p, "," if fmt == "csv" else "\t")
    if fmt == "parquet":
        return _iter_parquet(p)
    raise ValueError(f"unsupported format {fmt!r} (jsonl, csv, tsv, parquet)")
