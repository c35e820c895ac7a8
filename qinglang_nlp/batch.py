"""Batch scoring of files: every input row yields exactly one output row (a result or an error record).

Post schema (input; names mappable with :class:`FieldMap`): ``id``, ``account`` (公众号 or Weibo user name),
``title``, ``content`` (text or WeChat HTML, cleaned by :func:`qinglang_nlp.html.clean_html`), or ``text``
(a Weibo post or comment: scored as is), ``url``, ``published_at``. Every other field is passed through
untouched under ``extra``.

Output record (JSONL; Parquet has the same columns, see :data:`OUTPUT_SCHEMA`)::

    {"id", "line", "account", "title", "url", "published_at",
     "scores": {category: float}, "labels": [...], "decision": "pass|review|block",
     "evidence": [{"start", "end", "text", "category", "source", ...}],   # offsets into the scored text
     "model": "name@version", "stage": 1|2 (cascade only), "truncated": true (only if), "extra": {...}}
    {"id", "line", ..., "error": "why the row could not be scored", "model": ...}

The scored text is ``title + "\\n" + cleaned content`` (or ``text``); ``--keep-text`` adds it as ``text``
so evidence offsets can be checked (``text[start:end] == evidence.text``).

Crash safety: :func:`score_file` appends committed chunks. JSONL output is fsynced and then the state file
``OUTPUT.state.json`` (written atomically) records how many rows and bytes are committed; on resume the output
is cut back to the committed size and that many input rows are skipped. Parquet output commits one part file
per chunk under ``OUTPUT.parts/`` and merges them into ``OUTPUT`` at the end.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import inspect
import itertools
import json
import math
import os
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from .io import Row, columns, count_rows, detect_format, iter_rows
from .taxonomy import CATEGORIES

__all__ = [
    "FieldMap", "ScoreSummary", "ResumeError", "row_text", "row_parts", "prepare_row", "score_rows", "score_groups",
    "score_file",
    "OUTPUT_SCHEMA", "to_arrow_rows", "read_scored", "unfinished_state",
]

# an entity in text without tags (a browser reads &#20667 without its ";" too; a name needs it: "AT&T", "Q&A")
_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+);?|&[a-zA-Z]+[0-9]*;")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _valid(s: str) -> str:
    """``s`` with lone surrogates (half an emoji, cut by a crawler) replaced by U+FFFD: UTF-8 cannot hold them."""
    return _SURROGATE.sub("\ufffd", s) if _SURROGATE.search(s) else s
STATE_VERSION = 1


@dataclass(frozen=True)
class FieldMap:
    """Input field names. ``text`` wins when non-empty; else ``title`` + ``content`` (HTML is cleaned)."""

    id: str = "id"
    text: str = "text"
    title: str = "title"
    content: str = "content"
    account: str = "account"
    url: str = "url"
    published_at: str = "published_at"

    def used(self) -> set[str]:
        """Field names consumed by the schema (the rest are passed through under ``extra``)."""
        return set(asdict(self).values())

    def check_columns(self, cols: list[str] | None, source: str) -> None:
        """Raise ``ValueError`` if a field mapped to a non-default name is not among ``cols``, or if no column
        holds text to score (every row would be an error row); ``cols`` None or empty: unknown."""
        if not cols:
            return
        default = FieldMap()
        for k, name in asdict(self).items():
            if name != getattr(default, k) and name not in cols:
                raise ValueError(f"field {name!r} ({_OPTION[k]}) is not a column of {source}; "
                                 f"its columns: {cols[:30]}")
        if not {self.text, self.title, self.content} & set(cols):
            sep = next((c for c in "\t,;|" if len(cols) == 1 and c in cols[0]), None)
            hint = ("" if sep is None else f" (one column: is the file separated by {sep!r}? "
                    + {"\t": "pass --format tsv)", ",": "pass --format csv)"}.get(sep, "save it as CSV)"))
            raise ValueError(f"{source} has no column {self.text!r}, {self.title!r} or {self.content!r} to score; "
                             f"its columns: {cols[:30]}{hint}; name the text column with --text-field "
                             "(or --title-field/--content-field)")


_OPTION = {"id": "--id-field", "text": "--text-field", "title": "--title-field", "content": "--content-field",
           "account": "--account-field", "url": "--url-field", "published_at": "--time-field"}


@dataclass
class ScoreSummary:
    """Counts of a scoring run (cumulative over resumed runs)."""

    rows: int = 0
    errors: int = 0
    flagged: dict[str, int] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)
    stages: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    duplicate_examples: list[dict[str, Any]] = field(default_factory=list)
    missing_ids: int = 0
    seconds: float = 0.0
    input_bytes: int = 0
    resumed_from: int = 0
    complete: bool = False

    def add(self, rec: dict[str, Any]) -> None:
        """Count one output record."""
        self.rows += 1
        if "error" in rec:
            self.errors += 1
            return
        self.decisions[rec["decision"]] = self.decisions.get(rec["decision"], 0) + 1
        for lab in rec["labels"]:
            self.flagged[lab] = self.flagged.get(lab, 0) + 1
        if "stage" in rec:
            k = str(rec["stage"])
            self.stages[k] = self.stages.get(k, 0) + 1

    def counts(self) -> dict[str, Any]:
        """The counters that a resumed run carries over."""
        return {"rows": self.rows, "errors": self.errors, "flagged": self.flagged, "decisions": self.decisions,
                "stages": self.stages}

    def to_dict(self) -> dict[str, Any]:
        """Everything, plus rates, as plain JSON."""
        d = asdict(self)
        scored_now = self.rows - self.resumed_from
        d["rows_per_s"] = round(scored_now / self.seconds, 2) if self.seconds > 0 else None
        whole = self.seconds > 0 and not self.resumed_from
        d["mb_per_s"] = round(self.input_bytes / 1e6 / self.seconds, 3) if whole else None
        return d

    def line(self) -> str:
        """One human line for the terminal."""
        fl = ", ".join(f"{c} {self.flagged.get(c, 0)}" for c in CATEGORIES)
        dec = ", ".join(f"{k} {v}" for k, v in sorted(self.decisions.items()))
        extra = f", resumed at row {self.resumed_from}" if self.resumed_from else ""
        st = f", stages {self.stages}" if self.stages else ""
        no_id = f", {self.missing_ids} rows without id" if self.missing_ids else ""
        return (f"{self.rows} rows, {self.errors} errors, flagged: {fl}; decisions: {dec}; "
                f"{self.duplicates} duplicate ids{no_id}{st}; {self.seconds:.1f}s{extra}")


class ResumeError(ValueError):
    """The existing partial output cannot be continued (different input, model or options)."""


class _Dups:
    """Remembers the first line of every id to report duplicates (never merges rows)."""

    def __init__(self, keep: int = 1000):
        self.first: dict[str, int] = {}
        self.count = 0
        self.missing = 0
        self.examples: list[dict[str, Any]] = []
        self.keep = keep

    def see(self, rid: Any, line: int) -> None:
        if rid is None or rid == "":
            self.missing += 1
            return
        key = rid if isinstance(rid, str) else json.dumps(rid, default=str)
        first = self.first.setdefault(key, line)
        if first != line:
            self.count += 1
            if len(self.examples) < self.keep:
                shown = _valid(rid) if isinstance(rid, str) else rid if isinstance(rid, (int, float)) else key
                self.examples.append({"id": shown, "first_line": first, "line": line})


def _clean_content(v: str) -> str:
    from .html import clean_html, decode_entities, looks_like_html  # WeChat articles arrive as HTML

    if looks_like_html(v):
        cleaned = clean_html(v)
        return cleaned if isinstance(cleaned, str) else cleaned.text
    # clean_html leaves text without tags as it is: a crawled paragraph's entities are decoded here
    return decode_entities(v) if _ENTITY.search(v) else v


def row_text(data: dict[str, Any], fields: FieldMap) -> str:
    """The text to score for one row; raises ``ValueError`` naming the missing or non-text field.

    An empty ``text`` (a CSV cell has no null) gives way to a non-empty title or content.
    """
    title, body = row_parts(data, fields)
    return body if title is None else title + "\n" + body


def row_parts(data: dict[str, Any], fields: FieldMap) -> tuple[str | None, str]:
    """``(title, body)`` of one row: the non-empty title and the cleaned content of a row scored as title +
    content (the model keeps the title in front of every window of the body), else ``(None, text)``.
    :func:`row_text` is ``title + "\\n" + body``, the string evidence offsets index. Raises like it."""
    if fields.text in data and data[fields.text] is not None:
        v = data[fields.text]
        if not isinstance(v, str):
            raise ValueError(f"field {fields.text!r} is {type(v).__name__}, not text")
        if v or not (data.get(fields.title) or data.get(fields.content)):
            return None, v
    parts: dict[str, str] = {}
    for f in (fields.title, fields.content):
        v = data.get(f)
        if v is None:
            continue
        if not isinstance(v, str):
            raise ValueError(f"field {f!r} is {type(v).__name__}, not text")
        if f == fields.content:
            v = _clean_content(v)
        parts[f] = v
    if not parts:
        raise ValueError(f"row has no {fields.text!r} (or {fields.title!r}/{fields.content!r}) field; "
                         f"fields: {sorted(data)[:12]}")
    title = parts.get(fields.title)
    if title and fields.content in parts:
        return title, parts[fields.content]
    return None, "\n".join(parts.values())


_MAX_DEPTH = 100  # nesting of a passed-through value (deeper would overflow the stack somewhere)


def _plain(v: Any, depth: int = 0) -> Any:
    """JSON-safe copy of a passthrough value (datetimes from Parquet become ISO strings; NaN and infinities,
    which JSON cannot hold, become null; lone surrogates U+FFFD). Raises ``ValueError`` past ``_MAX_DEPTH``
    levels of nesting."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (_dt.datetime, _dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if isinstance(v, (dict, list, tuple)) and depth >= _MAX_DEPTH:
        raise ValueError(f"nested more than {_MAX_DEPTH} levels deep")
    if isinstance(v, dict):
        return {_valid(str(k)): _plain(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x, depth + 1) for x in v]
    if isinstance(v, str):
        return _valid(v)
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


def prepare_row(data: dict[str, Any] | None, fields: FieldMap) -> dict[str, Any]:
    """The schema fields of one input row (id, account, title, url, published_at, extra).

    Raises ``ValueError`` naming the field whose value is nested too deeply to copy.
    """
    if not data:
        return {"id": None}

    def plain(k: str) -> Any:
        try:
            return _plain(data[k])
        except ValueError as e:
            raise ValueError(f"field {k!r} is {e}") from None

    meta: dict[str, Any] = {"id": plain(fields.id) if fields.id in data else None}
    for k in ("account", "title", "url", "published_at"):
        name = getattr(fields, k)
        if data.get(name) is not None:
            meta[k] = plain(name)
    used = fields.used()
    extra = {_valid(k): plain(k) for k in data if k not in used}
    if extra:
        meta["extra"] = extra
    return meta


def _model_name(model: Any) -> str:
    return getattr(model, "name", type(model).__name__)


def score_rows(model: Any, rows: Iterable[Row], fields: FieldMap = FieldMap(), batch_size: int = 64,
               keep_text: bool = False) -> Iterator[dict[str, Any]]:
    """Yield one output record per input row, in input order.

    ``model`` is a :class:`~qinglang_nlp.moderator.Moderator` or a :class:`~qinglang_nlp.cascade.Cascade`
    (whose records also carry ``stage``).
    """
    for group in score_groups(model, rows, fields, batch_size, keep_text):
        yield from group


def score_groups(model: Any, rows: Iterable[Row], fields: FieldMap = FieldMap(), batch_size: int = 64,
                 keep_text: bool = False) -> Iterator[list[dict[str, Any]]]:
    """Like :func:`score_rows`, one list per model call (or per error row).

    :func:`score_file` commits only between groups, so a resumed run sends the model exactly the batches
    an uninterrupted run sends: scores stay identical even for a model whose output depends on the batch.
    """
    pending: list[tuple[Row, dict[str, Any], str, str, str | None, str]] = []
    staged = hasattr(model, "predict_staged")
    # a Moderator (or a cascade of them) takes the title apart: it reads it in front of every window of a long
    # body; a wrapper without ``titles=`` gets the joined text, as before. Evidence indexes the joined text.
    titled = "titles" in inspect.signature(model.predict_staged if staged else model.predict_batch).parameters
    name = _model_name(model)

    def run(items: list[tuple[str, str | None, str]]) -> list[Any]:
        """Results for ``(joined text, title, body)`` items."""
        texts = [t for t, _, _ in items]
        if titled and any(ti for _, ti, _ in items):
            bodies, titles = [b for _, _, b in items], [ti for _, ti, _ in items]
            if staged:
                out = model.predict_staged(bodies, batch_size=batch_size, titles=titles)
            else:
                out = [(r, None) for r in model.predict_batch(bodies, batch_size=batch_size, titles=titles)]
        elif staged:
            out = model.predict_staged(texts, batch_size=batch_size)
        else:
            out = [(r, None) for r in model.predict_batch(texts, batch_size=batch_size)]
        if len(out) != len(texts):
            raise RuntimeError(f"model {name} returned {len(out)} results for {len(texts)} texts")
        return out

    def run_or_isolate(items: list[tuple[str, str | None, str]]) -> list[Any]:
        """Results; when the model fails on the batch, each item alone, an exception standing for an item the
        model fails on. A model that fails on every item and on a plain text is broken: that raises."""
        try:
            return run(items)
        except Exception as batch_error:  # noqa: BLE001 - whatever the model raises, one post must not stop the job
            out: list[Any] = []
            for it in items:
                try:
                    out.append(run([it])[0])
                except Exception as e:  # noqa: BLE001
                    out.append(e)
            if all(isinstance(o, Exception) for o in out):
                try:
                    run([(_PROBE, None, _PROBE)])
                except Exception:  # noqa: BLE001
                    raise batch_error from None
            return out

    def flush() -> list[dict[str, Any]]:
        items = [(p[2], p[4], p[5]) for p in pending]  # as read: the model truncates again and says so
        out = run_or_isolate(items) if items else []
        recs = []
        for (row, meta, _, text, _, _), res_stage in zip(pending, out):
            if isinstance(res_stage, Exception):
                err = _valid(f"the model failed on this row ({type(res_stage).__name__}: {res_stage})")
                recs.append(_ordered({"line": row.line, **meta, "error": err, "model": name}))
                continue
            res, stage = res_stage
            rec = {"line": row.line, **meta, **res.to_dict()}
            rec.setdefault("model", name)
            if stage is not None:
                rec["stage"] = stage
            if keep_text:
                rec["text"] = text
            recs.append(_ordered(rec))
        pending.clear()
        return recs

    for row in rows:
        err = row.error
        try:
            meta = prepare_row(row.data, fields)
        except ValueError as e:  # a value nested too deeply: the row, with the id when that can be copied
            rid = (row.data or {}).get(fields.id)
            rid = _valid(rid) if isinstance(rid, str) else rid if isinstance(rid, int) else None
            meta, err = {"id": rid}, err or str(e)
        text = scored = title = body = None
        if err is None:
            try:
                title, body = row_parts(row.data, fields)
                text = body if title is None else title + "\n" + body
                scored = model.prepare(text, f"line {row.line}")[0]
            except (TypeError, ValueError) as e:
                err = str(e)
            except ImportError as e:  # e.g. the HTML cleaner is missing
                err = f"cannot clean this row: {e}"
        if err is not None:
            if pending:
                yield flush()
            yield [_ordered({"line": row.line, **meta, "error": err, "model": name})]
            continue
        pending.append((row, meta, text, scored, title, body))
        if len(pending) >= batch_size:
            yield flush()
    if pending:
        yield flush()


_PROBE = "今天天气不错"  # a text every working model scores


_KEY_ORDER = ("id", "line", "account", "title", "url", "published_at", "error", "scores", "labels", "decision",
              "evidence", "truncated", "model", "stage", "text", "extra")


def _ordered(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: rec[k] for k in _KEY_ORDER if k in rec}


# -- Parquet output ----------------------------------------------------------------------------------

def _arrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("Parquet output needs pyarrow (pip install pyarrow)") from None
    return pa, pq


def output_schema():
    """The Arrow schema of Parquet output (the same for the local and the Ray engine)."""
    pa, _ = _arrow()
    span = pa.struct([("start", pa.int64()), ("end", pa.int64()), ("text", pa.string()),
                      ("category", pa.string()), ("source", pa.string()), ("term", pa.string()),
                      ("sublabel", pa.string()), ("list_name", pa.string()), ("view", pa.string()),
                      ("severity", pa.int64()), ("score", pa.float64())])
    return pa.schema([
        ("id", pa.string()), ("line", pa.int64()), ("account", pa.string()), ("title", pa.string()),
        ("url", pa.string()), ("published_at", pa.string()), ("error", pa.string()),
        ("scores", pa.struct([(c, pa.float64()) for c in CATEGORIES])), ("labels", pa.list_(pa.string())),
        ("decision", pa.string()), ("evidence", pa.list_(span)), ("truncated", pa.bool_()),
        ("model", pa.string()), ("stage", pa.int8()), ("text", pa.string()), ("extra", pa.string()),
    ])


OUTPUT_SCHEMA = "see output_schema()"  # documented name; the schema itself needs pyarrow


def _s(v: Any) -> str | None:
    if v is None:
        return None
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def to_arrow_rows(records: list[dict[str, Any]]) -> dict[str, list]:
    """Columns for ``pyarrow.Table.from_pydict(cols, schema=output_schema())`` from output records."""
    cols: dict[str, list] = {k: [] for k in ("id", "line", "account", "title", "url", "published_at", "error",
                                              "scores", "labels", "decision", "evidence", "truncated", "model",
                                              "stage", "text", "extra")}
    for r in records:
        cols["id"].append(_s(r.get("id")))
        cols["line"].append(r["line"])
        for k in ("account", "title", "url", "published_at", "error", "decision", "model", "text"):
            cols[k].append(_s(r.get(k)))
        cols["scores"].append(r.get("scores"))
        cols["labels"].append(r.get("labels"))
        cols["evidence"].append(r.get("evidence"))
        cols["truncated"].append(bool(r.get("truncated", False)) if "error" not in r else None)
        cols["stage"].append(r.get("stage"))
        cols["extra"].append(json.dumps(r["extra"], ensure_ascii=False, sort_keys=True) if "extra" in r else None)
    return cols


def _arrow_table(records: list[dict[str, Any]]):
    pa, _ = _arrow()
    return pa.Table.from_pydict(to_arrow_rows(records), schema=output_schema())


def _from_arrow_row(r: dict[str, Any]) -> dict[str, Any]:
    """An output record back from a Parquet row (nulls dropped, ``extra`` parsed)."""
    out = {k: v for k, v in r.items() if v is not None}
    if out.get("truncated") is False:
        del out["truncated"]
    if "evidence" in out:
        out["evidence"] = [{k: v for k, v in s.items() if v is not None} for s in out["evidence"]]
    if "extra" in out:
        out["extra"] = json.loads(out["extra"])
    return _ordered(out)


def read_scored(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Stream output records from a scored JSONL file, a Parquet file, or a folder of Parquet parts (Ray)."""
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.parquet"))
        if not files:
            raise ValueError(f"{p}: folder has no .parquet files")
    elif str(p).lower().endswith(".parquet"):
        files = [p]
    else:
        st = unfinished_state(p)
        limit = st.get("bytes") if st and st.get("output_format") == "jsonl" else None
        with open(p, "rb") as f:
            end = 0
            for i, raw in enumerate(f, 1):
                end += len(raw)
                if limit is not None and end > limit:
                    return  # written after the last commit of an interrupted run: resuming cuts it off
                if raw.strip():
                    try:
                        yield json.loads(raw.decode("utf-8"))
                    except ValueError as e:
                        raise ValueError(f"{p}: line {i}: not a scored record ({e})") from None
        return
    _, pq = _arrow()
    for fpath in files:
        for batch in pq.ParquetFile(fpath).iter_batches(batch_size=2048):
            for r in batch.to_pylist():
                yield _from_arrow_row(r)


# -- resumable file scoring --------------------------------------------------------------------------

def _fingerprint(path: Path) -> dict[str, Any]:
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(1 << 20 if st.st_size > 2 << 20 else -1))  # up to 2 MiB: all of it
        if st.st_size > 2 << 20:
            f.seek(st.st_size - (1 << 20))
            h.update(f.read())
    return {"bytes": st.st_size, "sha256_head_tail": h.hexdigest()}


def _write_json_atomic(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def state_path(output: str | os.PathLike) -> Path:
    """Where the resume state of ``output`` lives."""
    return Path(str(output) + ".state.json")


def unfinished_state(output: str | os.PathLike) -> dict[str, Any] | None:
    """The resume state of ``output`` if a scoring run wrote it and has not finished; else None."""
    try:
        st = json.loads(state_path(output).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return st if isinstance(st, dict) and not st.get("complete") else None


def parts_dir(output: str | os.PathLike) -> Path:
    """Where committed Parquet parts of ``output`` live until the final merge."""
    return Path(str(output) + ".parts")


class _Sink:
    """Committed-chunk writer for one output file (JSONL or Parquet)."""

    def __init__(self, output: Path, out_fmt: str, state: dict[str, Any]):
        self.output, self.fmt, self.state = output, out_fmt, state
        self.spath = state_path(output)
        if out_fmt == "jsonl":
            self.f = open(output, "ab")
            self.f.truncate(state["bytes"])  # cut off a chunk written after the last commit
            self.f.seek(state["bytes"])
        else:
            self.pdir = parts_dir(output)
            self.pdir.mkdir(parents=True, exist_ok=True)
            keep = {f"part-{k:06d}.parquet" for k in range(state["parts"])}
            for f in self.pdir.iterdir():  # parts written after the last commit, or temporaries
                if f.name not in keep:
                    f.unlink()

    def commit(self, records: list[dict[str, Any]], summary: ScoreSummary) -> None:
        if not records:
            return
        if self.fmt == "jsonl":
            data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
            self.f.write(data)
            self.f.flush()
            os.fsync(self.f.fileno())
            self.state["bytes"] += len(data)
        else:
            _, pq = _arrow()
            name = f"part-{self.state['parts']:06d}.parquet"
            tmp = self.pdir / (name + ".tmp")
            pq.write_table(_arrow_table(records), tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, self.pdir / name)
            _fsync_dir(self.pdir)
            self.state["parts"] += 1
        self.state["rows"] += len(records)
        self.state["counts"] = summary.counts()
        _write_json_atomic(self.spath, self.state)

    def finish(self) -> None:
        if self.fmt == "jsonl":
            self.f.close()
        else:
            pa, pq = _arrow()
            tmp = self.output.with_name(self.output.name + ".tmp")
            with pq.ParquetWriter(tmp, output_schema()) as w:
                for k in range(self.state["parts"]):
                    w.write_table(pq.read_table(self.pdir / f"part-{k:06d}.parquet", schema=output_schema()))
                if self.state["parts"] == 0:
                    w.write_table(pa.Table.from_pylist([], schema=output_schema()))
            os.replace(tmp, self.output)
        self.state["complete"] = True
        _write_json_atomic(self.spath, self.state)
        if self.fmt == "parquet":
            shutil.rmtree(self.pdir, ignore_errors=True)

    def close(self) -> None:
        if self.fmt == "jsonl" and not self.f.closed:
            self.f.close()


def _model_identity(model: Any) -> dict[str, Any]:
    """What besides its name makes a model score differently: its files (manifest) and whether it has a
    lexicon; for a cascade, both stages and the gates. What a model object cannot tell is left out."""
    if hasattr(model, "first") and hasattr(model, "second"):
        out = {"first": _model_identity(model.first), "second": _model_identity(model.second),
               "lexicon_gate": getattr(model, "lexicon_gate", None), "window_gate": getattr(model, "window_gate", None)}
        gate = out["window_gate"].get("gate") if isinstance(out["window_gate"], dict) else None
        gate_files = _manifest_hash(Path(gate)) if gate else None
        if gate_files is not None:  # a gate re-fitted into the same folder gates other windows
            out["window_gate_files"] = gate_files
        return out
    out = {}
    files = _manifest_hash(Path(model.path)) if getattr(model, "path", None) else None
    if files is not None:
        out["files"] = files
    if hasattr(model, "lexicon"):
        out["lexicon"] = model.lexicon is not None
        if model.lexicon is not None and hasattr(model.lexicon, "terms"):
            # user lists (qinglang score --lexicon/--allow-list, or edits in Python) change what is flagged
            terms = sorted(json.dumps(dataclasses.asdict(t), ensure_ascii=False, sort_keys=True)
                           for t in model.lexicon.terms())
            out["lexicon_terms"] = hashlib.sha256("\n".join(terms).encode("utf-8")).hexdigest()
    return out


def _manifest_hash(folder: Path) -> str | None:
    """sha256 of a model or gate folder's manifest file list (which holds every file's sha256); None without one."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    except (ValueError, KeyError, TypeError):
        return hashlib.sha256(manifest.read_bytes()).hexdigest()


def _same_identity(a: Any, b: Any) -> bool:
    """Equal where both sides know a value (an older state, or a wrapper without a path, knows less)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return all(_same_identity(a[k], b[k]) for k in a.keys() & b.keys())
    return a == b


def _check_state(state: dict[str, Any], want: dict[str, Any], output: Path) -> None:
    for k in ("input", "input_fingerprint", "input_format", "output_format", "fields", "model", "options"):
        if state.get(k) != want.get(k):
            raise ResumeError(
                f"{output}: the partial output was written with a different {k.replace('_', ' ')} "
                f"({state.get(k)!r}, now {want.get(k)!r}); rerun with --overwrite to start over")
    if not _same_identity(state.get("model_identity", {}), want["model_identity"]):
        raise ResumeError(
            f"{output}: the partial output was written with a different model of the same name {want['model']!r} "
            f"(other model files or lexicon: {state.get('model_identity')!r}, now {want['model_identity']!r}); "
            "rerun with --overwrite to start over")


@contextlib.contextmanager
def _output_lock(output: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``OUTPUT.lock`` (POSIX ``flock``; no lock where ``fcntl`` is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    path = Path(str(output) + ".lock")
    busy = ValueError(f"{output} is being written by another qinglang score run (it holds {path.name}); "
                      "wait for it to finish or stop it, then rerun")
    with open(path, "a+b") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            same = os.fstat(f.fileno()).st_ino == os.stat(path).st_ino  # not unlinked by a run that just ended
        except (BlockingIOError, FileNotFoundError):
            same = False
        if not same:
            raise busy
        try:
            yield
        finally:
            path.unlink(missing_ok=True)  # before the lock is released, so no one locks a removed file


def _check_committed(state: dict[str, Any], output: Path, out_fmt: str) -> None:
    """Raise :class:`ResumeError` when what the state says is committed is no longer on disk."""
    again = "; rerun with --overwrite to score again"
    if out_fmt == "jsonl" or state.get("complete"):
        if not output.is_file():
            raise ResumeError(f"{output} is missing but {state_path(output).name} records {state['rows']} "
                              f"committed rows{again}")
        if out_fmt == "jsonl" and output.stat().st_size < state["bytes"]:
            raise ResumeError(f"{output} is shorter than its committed state ({state['bytes']} bytes){again}")
        return
    lost = [k for k in range(state["parts"]) if not (parts_dir(output) / f"part-{k:06d}.parquet").is_file()]
    if lost:
        raise ResumeError(f"{parts_dir(output)}: committed part {lost[0]} of {state['parts']} is missing{again}")


def score_file(model: Any, input_path: str | os.PathLike, output: str | os.PathLike | IO[str],
               fields: FieldMap = FieldMap(), batch_size: int = 64, fmt: str | None = None,
               out_fmt: str | None = None, resume: bool = True, overwrite: bool = False,
               chunk_rows: int = 1000, commit_seconds: float = 10.0, progress: bool = False,
               keep_text: bool = False) -> ScoreSummary:
    """Score a JSONL/CSV/TSV/Parquet file into JSONL or Parquet, one output row per input row, in order.

    ``output`` is a path (resumable: see the module docstring) or an open text stream (JSONL, not resumable).
    A finished output is left as it is unless ``overwrite``. Raises :class:`ResumeError` when a partial
    output was made from another input, model or options, and ``ValueError`` for unreadable input.
    """
    inp = Path(input_path)
    if inp.exists() and not inp.is_file():  # a pipe is read once: no fingerprint, progress count or resume
        raise ValueError(f"{inp} is not a regular file (a pipe or a device?); write it to a file first "
                         "(e.g. decompress posts.jsonl.gz to posts.jsonl) and score that")
    fmt = fmt or detect_format(inp)
    fields.check_columns(columns(inp, fmt), str(inp))
    rows_in = iter_rows(inp, fmt)
    first = next(rows_in, None)  # a header or file problem raises here, before any output is created
    rows_in = itertools.chain([] if first is None else [first], rows_in)
    summary = ScoreSummary(input_bytes=inp.stat().st_size)
    t0 = time.perf_counter()
    dups = _Dups()
    if not isinstance(output, (str, os.PathLike)):
        groups = score_groups(model, _track(rows_in, dups, fields), fields, batch_size, keep_text)
        for group in _progress(groups, progress, inp, fmt, 0):
            for rec in group:
                output.write(json.dumps(rec, ensure_ascii=False) + "\n")
                summary.add(rec)
        return _finish_summary(summary, dups, t0, True)

    out = Path(output)
    out_fmt = out_fmt or ("parquet" if str(out).lower().endswith(".parquet") else "jsonl")
    if out_fmt not in ("jsonl", "parquet"):
        raise ValueError(f"unsupported output format {out_fmt!r} (jsonl, parquet)")
    if out_fmt == "parquet":
        _arrow()
    if out.resolve() == inp.resolve() or (out.exists() and out.samefile(inp)):
        raise ValueError(f"output {out} is the input file; write the scores to another path")
    if out.is_dir():
        raise ValueError(f"output {out} is a folder; pass a file path ending in .jsonl or .parquet "
                         "(a folder output is for --engine ray)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with _output_lock(out):  # a second run on the same output would interleave its rows with ours
        spath = state_path(out)
        want = {"version": STATE_VERSION, "input": str(inp.resolve()), "input_fingerprint": _fingerprint(inp),
                "input_format": fmt, "output_format": out_fmt, "fields": asdict(fields), "model": _model_name(model),
                "model_identity": _model_identity(model), "batch_size": batch_size,
                "options": {"keep_text": keep_text, "cascade_cutoffs": getattr(model, "cutoffs", None)}}
        state = None
        if overwrite or not resume:
            if not overwrite and (out.exists() or spath.exists()):
                raise ResumeError(f"{out} exists; pass --overwrite to replace it (or --resume to continue it)")
            for p in (out, spath):
                if p.exists():
                    p.unlink()
            shutil.rmtree(parts_dir(out), ignore_errors=True)
        elif spath.exists():
            try:
                state = json.loads(spath.read_text(encoding="utf-8"))
            except ValueError as e:
                raise ResumeError(f"{spath}: unreadable resume state ({e}); rerun with --overwrite") from None
            _check_state(state, want, out)
            _check_committed(state, out, out_fmt)
            if state.get("complete"):
                shutil.rmtree(parts_dir(out), ignore_errors=True)  # a crash between the merge and the clean-up
                done = ScoreSummary(input_bytes=summary.input_bytes, **state.get("counts", {}),
                                    **state.get("ids", {}))
                done.resumed_from, done.complete = done.rows, True
                return done
            if state.get("batch_size", batch_size) != batch_size:  # unknown in an older state
                # the rows still to score must come in the batches an uninterrupted run sends (see score_groups)
                raise ResumeError(
                    f"{out}: the partial output was written with batch size {state['batch_size']} (now "
                    f"{batch_size}); rerun with --batch-size {state['batch_size']} to continue it, or with "
                    "--overwrite to start over")
        elif out.exists():
            raise ResumeError(f"{out} exists but has no resume state ({spath.name}); pass --overwrite to replace it")
        if state is None:
            state = {**want, "rows": 0, "bytes": 0, "parts": 0, "complete": False, "counts": {}}
            if out_fmt == "jsonl":
                out.write_bytes(b"")
            _write_json_atomic(spath, state)
        skip = int(state["rows"])
        for k, v in state.get("counts", {}).items():
            setattr(summary, k, v)
        summary.resumed_from = skip

        rows = _track(rows_in, dups, fields)
        for k in range(skip):  # rows committed before: re-read for duplicate ids, not scored again
            if next(rows, None) is None:
                raise ResumeError(f"{inp} has fewer rows ({k}) than the committed output ({skip}); "
                                  "rerun with --overwrite")
        sink = _Sink(out, out_fmt, state)
        try:
            chunk: list[dict[str, Any]] = []
            last = time.monotonic()
            groups = score_groups(model, rows, fields, batch_size, keep_text)
            for group in _progress(groups, progress, inp, fmt, skip):
                chunk.extend(group)
                for rec in group:
                    summary.add(rec)
                if len(chunk) >= chunk_rows or time.monotonic() - last >= commit_seconds:
                    sink.commit(chunk, summary)
                    chunk, last = [], time.monotonic()
            sink.commit(chunk, summary)
            state["ids"] = {"duplicates": dups.count, "duplicate_examples": dups.examples, "missing_ids": dups.missing}
            sink.finish()  # writes the state: a rerun of the finished job reports the same id counts
        finally:
            sink.close()
        return _finish_summary(summary, dups, t0, True)


def _track(rows: Iterator[Row], dups: _Dups, fields: FieldMap) -> Iterator[Row]:
    for row in rows:
        if row.data is not None:
            dups.see(row.data.get(fields.id), row.line)
        yield row


def _progress(groups: Iterator[list[dict[str, Any]]], on: bool, inp: Path, fmt: str, initial: int,
              ) -> Iterator[list[dict[str, Any]]]:
    """Pass groups through, with a tqdm bar (rows/s, ETA) on stderr when ``on``."""
    if not on:
        yield from groups
        return
    from tqdm import tqdm

    total = count_rows(inp, fmt)
    with tqdm(total=total, initial=initial, unit="rows", desc="scoring", file=sys.stderr, smoothing=0.1,
              dynamic_ncols=True) as bar:
        for group in groups:
            yield group
            bar.update(len(group))


def _finish_summary(summary: ScoreSummary, dups: _Dups, t0: float, complete: bool) -> ScoreSummary:
    summary.duplicates, summary.duplicate_examples, summary.missing_ids = dups.count, dups.examples, dups.missing
    summary.seconds = time.perf_counter() - t0
    summary.complete = complete
    return summary
