"""The 饭圈 corpus (``training/data/fanquan``): schema checks, loading with text references, near-duplicates.

Items follow ``training/data/fanquan/GUIDELINE.md`` §6. Text from datasets without a redistribution licence
(CHNCI, Weibo21, Weibo16, CED) is committed as ``"text": null`` plus a ``text_ref`` naming the shared file, the
0-based data row and the sha256 of the text; :func:`load_fanquan` fills the text in from ``QINGLANG_DATA``
(default ``../shared/data``) and drops, with a warning, the rows it cannot resolve or whose hash no longer matches.

    from qinglang_nlp.fanquan_corpus import load_fanquan
    train = load_fanquan("train")      # list of dicts, every one with a str "text"
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .datasets import data_dir as _shared_data_dir
from .errors import DataError
from .normalize import normalize
from .taxonomy import TAXONOMY

__all__ = [
    "ADJUDICABLE",
    "REQUIRED_FIELDS",
    "SPLITS",
    "STYLES",
    "SUBTYPES",
    "TEXT_REF_SOURCES",
    "UnresolvedTextWarning",
    "apply_adjudication",
    "corpus_dir",
    "dedup_key",
    "load_fanquan",
    "near_duplicate_groups",
    "near_duplicate_pairs",
    "read_adjudication",
    "read_jsonl",
    "resolve_texts",
    "shingles",
    "text_sha256",
    "validate",
    "validate_record",
]

SPLITS: tuple[str, ...] = ("train", "dev", "test")
#: sub-label codes of the ``fanquan`` category, plus ``"none"`` for negatives
SUBTYPES: tuple[str, ...] = tuple(s.code for c in TAXONOMY if c.code == "fanquan" for s in c.sublabels)
STYLES: tuple[str, ...] = (
    "weibo_comment", "weibo_post", "chaohua_post", "fan_group_msg", "wechat_article",
    "douyin_comment", "bilibili_comment", "xhs_comment", "social_comment",
)
REQUIRED_FIELDS: tuple[str, ...] = ("id", "text", "fanquan", "subtype", "vulgar", "rumor", "origin", "style")

#: dataset -> file -> column (CSV) or key (JSONL) holding the text; rows are 0-based data rows
TEXT_REF_SOURCES: dict[str, dict[str, str]] = {
    "chnci": {"train.csv": "content", "dev.csv": "content"},
    "weibo21": {"train.jsonl": "content", "val.jsonl": "content"},
    "weibo16": {"train.jsonl": "text", "dev.jsonl": "text"},
    "ced": {"train.jsonl": "text", "dev.jsonl": "text"},
    "cold": {"train.csv": "TEXT", "dev.csv": "TEXT"},
    "swsr": {"SexComment_train.csv": "comment_text", "SexComment_dev.csv": "comment_text"},
}
#: datasets whose licence lets us commit their text in ``text``; all others must use ``text_ref``
TEXT_ALLOWED: tuple[str, ...] = ("cold", "swsr")


class UnresolvedTextWarning(UserWarning):
    """Some corpus rows were dropped because their ``text_ref`` could not be resolved."""


def corpus_dir(path: str | os.PathLike | None = None) -> Path:
    """The corpus folder: ``path``, else ``training/data/fanquan`` in this checkout."""
    if path is not None:
        return Path(path)
    return Path(__file__).resolve().parent.parent / "training" / "data" / "fanquan"


_corpus_root = corpus_dir  # load_fanquan's parameter of the same name shadows the function


def text_sha256(text: str) -> str:
    """Hex sha256 of the UTF-8 bytes of ``text`` (the value stored in ``text_ref.sha256``)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read one JSON object per non-empty line; raises ``DataError`` naming the file and line."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"corpus file {p} not found")
    out: list[dict[str, Any]] = []
    with open(p, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise DataError(f"{p}:{n}: invalid JSON ({e})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{p}:{n}: expected a JSON object, got {type(obj).__name__}")
            out.append(obj)
    return out


# --- schema ---------------------------------------------------------------------------------------

def _check_ref(ref: Any) -> list[str]:
    if not isinstance(ref, dict):
        return [f"text_ref must be an object, got {type(ref).__name__}"]
    errs = []
    ds, fn, row, sha = ref.get("dataset"), ref.get("file"), ref.get("row"), ref.get("sha256")
    if ds not in TEXT_REF_SOURCES:
        errs.append(f"text_ref.dataset {ds!r} is not one of {sorted(TEXT_REF_SOURCES)}")
    elif fn not in TEXT_REF_SOURCES[ds]:
        errs.append(f"text_ref.file {fn!r} is not a known {ds} file {sorted(TEXT_REF_SOURCES[ds])}")
    if not isinstance(row, int) or isinstance(row, bool) or row < 0:
        errs.append(f"text_ref.row must be a non-negative int, got {row!r}")
    if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
        errs.append(f"text_ref.sha256 must be 64 lowercase hex digits, got {sha!r}")
    return errs


def validate_record(rec: Mapping[str, Any]) -> list[str]:
    """Problems with one corpus item (empty list if it follows GUIDELINE §6)."""
    errs = [f"missing field {k!r}" for k in REQUIRED_FIELDS if k not in rec]
    if errs:
        return errs
    if not isinstance(rec["id"], str) or not rec["id"]:
        errs.append(f"id must be a non-empty str, got {rec['id']!r}")
    text, ref = rec["text"], rec.get("text_ref")
    if text is None and ref is None:
        errs.append("text is null and there is no text_ref")
    if text is not None and (not isinstance(text, str) or not text.strip()):
        errs.append(f"text must be a non-empty str or null, got {text!r:.40}")
    if ref is not None:
        errs += _check_ref(ref)
    if rec["fanquan"] not in (0, 1) or isinstance(rec["fanquan"], bool):
        errs.append(f"fanquan must be 0 or 1, got {rec['fanquan']!r}")
    sub = rec["subtype"]
    if sub != "none" and sub not in SUBTYPES:
        errs.append(f"subtype {sub!r} is not 'none' or one of {list(SUBTYPES)}")
    elif (sub == "none") != (rec["fanquan"] == 0):
        errs.append(f"subtype {sub!r} does not agree with fanquan={rec['fanquan']!r} ('none' iff fanquan is 0)")
    for k in ("vulgar", "rumor"):
        if rec[k] not in (0, 1, None) or isinstance(rec[k], bool):
            errs.append(f"{k} must be 0, 1 or null, got {rec[k]!r}")
    origin = rec["origin"]
    if origin == "written":
        if text is None:
            errs.append("written items must carry their text")
    elif isinstance(origin, str) and origin.startswith("real:"):
        parts = origin.split(":")
        ds = parts[1] if len(parts) == 4 else None
        if ds is None or not parts[3].isdigit():
            errs.append(f"origin {origin!r} is not 'real:<dataset>:<file>:<row>'")
        elif text is not None and ds not in TEXT_ALLOWED:
            errs.append(f"text from {ds!r} must not be committed (licence): use text null + text_ref")
        elif ref is not None and isinstance(ref, dict) and (ref.get("dataset"), ref.get("file"), ref.get("row")) \
                != (ds, parts[2], int(parts[3])):
            errs.append(f"origin {origin!r} does not match text_ref {ref.get('dataset')}:{ref.get('file')}:"
                        f"{ref.get('row')}")
    else:
        errs.append(f"origin must be 'written' or 'real:<dataset>:<file>:<row>', got {origin!r}")
    if rec["style"] not in STYLES:
        errs.append(f"style {rec['style']!r} is not one of {list(STYLES)}")
    if "note" in rec and not isinstance(rec["note"], str):
        errs.append(f"note must be a str, got {type(rec['note']).__name__}")
    return errs


def validate(records: Iterable[Mapping[str, Any]], *, source: str = "records") -> None:
    """Raise ``DataError`` listing (up to 20) problems in ``records``, including duplicate ids."""
    problems: list[str] = []
    seen: dict[str, int] = {}
    for n, rec in enumerate(records):
        rid = rec.get("id", f"#{n}") if isinstance(rec, Mapping) else f"#{n}"
        if not isinstance(rec, Mapping):
            problems.append(f"{source} item #{n}: not an object")
            continue
        problems += [f"{source} item {rid!r}: {e}" for e in validate_record(rec)]
        if isinstance(rid, str):
            if rid in seen:
                problems.append(f"{source} item {rid!r}: duplicate id (also item #{seen[rid]})")
            seen.setdefault(rid, n)
    if problems:
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise DataError(f"{len(problems)} problem(s) in {source}:\n" + "\n".join(problems[:20]) + more)


# --- text references ------------------------------------------------------------------------------

@lru_cache(maxsize=16)
def _source_texts(path: str, column: str) -> tuple[str | None, ...]:
    p = Path(path)
    if p.suffix == ".csv":
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
        with open(p, encoding="utf-8-sig", newline="") as f:
            return tuple(r.get(column) for r in csv.DictReader(f))
    out: list[str | None] = []
    with open(p, encoding="utf-8") as f:
        for line in f:
            try:
                out.append(json.loads(line).get(column) if line.strip() else None)
            except ValueError:
                out.append(None)
    return tuple(out)


def _resolve_one(ref: Mapping[str, Any], root: Path) -> tuple[str | None, str]:
    ds, fn, row = ref["dataset"], ref["file"], ref["row"]
    path = root / ds / fn
    if not path.is_file():
        return None, f"{path} missing"
    texts = _source_texts(str(path), TEXT_REF_SOURCES[ds][fn])
    if row >= len(texts) or texts[row] is None:
        return None, f"{ds}/{fn} has no row {row}"
    text = texts[row]
    if text_sha256(text) != ref["sha256"]:
        return None, f"{ds}/{fn} row {row} changed (sha256 mismatch)"
    return text, ""


def resolve_texts(records: Sequence[Mapping[str, Any]], data_dir: str | os.PathLike | None = None,
                  ) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Copies of ``records`` with ``text`` filled from ``text_ref``; returns ``(resolved, [(id, reason)])``.

    Records that already carry text pass through; unresolvable ones are left out and listed with the reason.
    """
    root = _shared_data_dir(data_dir)
    out: list[dict[str, Any]] = []
    failed: list[tuple[str, str]] = []
    for rec in records:
        r = dict(rec)
        if r.get("text") is None:
            ref = r.get("text_ref")
            if not ref:
                failed.append((str(r.get("id")), "no text and no text_ref"))
                continue
            text, why = _resolve_one(ref, root)
            if text is None:
                failed.append((str(r.get("id")), why))
                continue
            r["text"] = text
        out.append(r)
    return out, failed


def load_fanquan(split: str, data_dir: str | os.PathLike | None = None,
                 corpus_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Items of one split (``train``, ``dev`` or ``test``), every ``text`` resolved.

    ``data_dir`` is the shared data folder (default ``$QINGLANG_DATA`` or ``../shared/data``) used for
    ``text_ref`` rows; ``corpus_dir`` the corpus folder (default ``training/data/fanquan``). Rows whose
    reference cannot be resolved are dropped and counted in an ``UnresolvedTextWarning``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = _corpus_root(corpus_dir) / f"{split}.jsonl"
    records = read_jsonl(path)
    validate(records, source=str(path))
    resolved, failed = resolve_texts(records, data_dir)
    if failed:
        kinds = Counter("sha256 mismatch" if "sha256" in why else "missing file" if why.endswith("missing")
                        else "no such row" for _, why in failed)
        warnings.warn(
            f"{path.name}: dropped {len(failed)} of {len(records)} items whose text_ref could not be resolved "
            f"from {_shared_data_dir(data_dir)} ({dict(kinds)}; first: {failed[0][0]}: {failed[0][1]})",
            UnresolvedTextWarning, stacklevel=2)
    return resolved


# --- adjudication ---------------------------------------------------------------------------------

#: label fields an adjudication row may set
ADJUDICABLE: tuple[str, ...] = ("fanquan", "subtype", "vulgar", "rumor")


def read_adjudication(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of ``adjudication.jsonl`` (``id, fields, a, b, final, rule, reason, source``), checked for shape.

    An absent file gives ``[]``. Raises ``DataError`` naming the line for a row without an id, with a
    ``final`` that sets a field other than :data:`ADJUDICABLE`, or with an id adjudicated twice.
    """
    p = Path(path)
    if not p.is_file():
        return []
    rows = read_jsonl(p)
    seen: set[str] = set()
    for n, row in enumerate(rows, 1):
        rid, final = row.get("id"), row.get("final")
        if not isinstance(rid, str) or not rid:
            raise DataError(f"{p} row {n}: missing id")
        if not isinstance(final, dict) or not final:
            raise DataError(f"{p} row {n} ({rid}): 'final' must be a non-empty object")
        bad = sorted(set(final) - set(ADJUDICABLE))
        if bad:
            raise DataError(f"{p} row {n} ({rid}): final sets {bad}; only {list(ADJUDICABLE)} may be adjudicated")
        if not isinstance(row.get("reason"), str) or not row["reason"].strip():
            raise DataError(f"{p} row {n} ({rid}): a reason is required")
        if rid in seen:
            raise DataError(f"{p} row {n}: id {rid} is adjudicated twice (merge the rows)")
        seen.add(rid)
    return rows


def apply_adjudication(records: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]],
                       ) -> tuple[list[dict[str, Any]], Counter[str], list[str]]:
    """Copies of ``records`` with each adjudication row's ``final`` labels applied (final labels win).

    Returns ``(records, changes, stale)``: ``changes`` counts changed values per field (``fanquan``,
    ``subtype`` …) plus ``"items"``; ``stale`` lists ids whose raw value no longer equals the row's ``a``
    (the raw file changed after adjudication; the final label is still applied). Raises ``DataError`` for an
    id that is not among ``records`` or when the result breaks the schema (e.g. ``subtype`` without
    ``fanquan``).
    """
    out = [dict(r) for r in records]
    by_id = {r["id"]: r for r in out}
    changes: Counter[str] = Counter()
    stale: list[str] = []
    for row in rows:
        rec = by_id.get(row["id"])
        if rec is None:
            raise DataError(f"adjudication row for {row['id']}: no such item in raw/*.jsonl")
        a = row.get("a") or {}
        if any(k in rec and rec[k] != v for k, v in a.items()):
            stale.append(row["id"])
        changed = False
        for k, v in row["final"].items():
            if rec.get(k) != v:
                rec[k] = v
                changes[k] += 1
                changed = True
        changes["items"] += changed
        problems = validate_record(rec)
        if problems:
            raise DataError(f"adjudication of {row['id']} gives an invalid item: {'; '.join(problems)}")
    return out, changes, stale


# --- near-duplicates -------------------------------------------------------------------------------

def dedup_key(text: str) -> str:
    """``normalize(text)`` with punctuation, symbols, spaces and control characters removed."""
    return "".join(ch for ch in normalize(text).text if unicodedata.category(ch)[0] not in "PSZC")


def shingles(key: str, n: int = 5) -> frozenset[str]:
    """Character ``n``-grams of ``key`` (the whole key when it is shorter than ``n``)."""
    if len(key) <= n:
        return frozenset([key])
    return frozenset(key[i:i + n] for i in range(len(key) - n + 1))


_PRIME = (1 << 31) - 1


def _hash31(s: str) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "little") % _PRIME


def near_duplicate_pairs(keys: Sequence[str], threshold: float = 0.8, n: int = 5, num_perm: int = 64,
                         bands: int = 16, seed: int = 1) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, whose ``n``-gram Jaccard similarity is at least ``threshold``.

    Candidates come from MinHash LSH (``bands`` bands of ``num_perm // bands`` rows; recall above 99.9 % at
    Jaccard 0.8 with the defaults); every candidate is confirmed with the exact Jaccard. Deterministic.
    """
    if num_perm % bands:
        raise ValueError(f"num_perm ({num_perm}) must be a multiple of bands ({bands})")
    sets = [shingles(k, n) for k in keys]
    rng = np.random.default_rng(seed)
    a = rng.integers(1, _PRIME, size=num_perm, dtype=np.uint64)
    b = rng.integers(0, _PRIME, size=num_perm, dtype=np.uint64)
    rows = num_perm // bands
    buckets: dict[tuple[int, bytes], list[int]] = {}
    for i, s in enumerate(sets):
        h = np.fromiter((_hash31(x) for x in s), dtype=np.uint64, count=len(s))
        sig = ((h[:, None] * a[None, :] + b[None, :]) % _PRIME).min(axis=0)
        for band in range(bands):
            buckets.setdefault((band, sig[band * rows:(band + 1) * rows].tobytes()), []).append(i)
    cand: set[tuple[int, int]] = set()
    for members in buckets.values():
        if len(members) > 1:
            for x in range(len(members)):
                for y in range(x + 1, len(members)):
                    cand.add((members[x], members[y]))
    out = []
    for i, j in sorted(cand):
        si, sj = sets[i], sets[j]
        if len(si & sj) >= threshold * len(si | sj):
            out.append((i, j))
    return out


def near_duplicate_groups(keys: Sequence[str], threshold: float = 0.8, n: int = 5) -> list[int]:
    """Group number per key: keys linked by a chain of near-duplicate pairs share a group (union-find)."""
    parent = list(range(len(keys)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in near_duplicate_pairs(keys, threshold, n):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    return [find(i) for i in range(len(keys))]
