"""Dataset adapters: every labelled set in ``../shared/data`` mapped to one record schema.

Mapping (documented in README "Datasets"):

=========  ==========================  ==================================================
dataset    category                    label used
=========  ==========================  ==================================================
cold       vulgar                      ``label`` (1 offensive)
toxicn     vulgar (evaluation only)    ``toxic`` (CC BY-NC-ND: never used for training)
swsr       vulgar                      ``label`` (1 sexist)
chnci      vulgar                      ``label`` (1 cyberbullying); genre ``entainment`` kept as a 饭圈 candidate hint
weibo21    rumor                       ``label`` (1 fake)
weibo16    rumor                       ``label`` (1 rumor)
ced        rumor                       ``label`` (1 rumor)
fanquan    fanquan (+vulgar, rumor)    our corpus in ``training/data/fanquan``
=========  ==========================  ==================================================

Categories a dataset does not judge are ``None`` (unknown), never 0.

Splits: ``train`` and ``dev`` are the shared files minus our carved ``test`` split, which takes every row
whose text satisfies :func:`is_carved_test` (a fixed hash of the text, so identical texts always share a split).
Datasets without a dev file (ToxiCN) carve ``dev`` from train by the same hash (bucket 1).
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DataError
from .taxonomy import CATEGORIES

__all__ = [
    "DATASETS",
    "SPLITS",
    "TRAINABLE",
    "Record",
    "carve_bucket",
    "data_dir",
    "is_carved_test",
    "iter_dataset",
    "load_dataset",
    "load_generic",
]

SPLITS = ("train", "dev", "test")
_SALT = "qinglang-test:"


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The shared data folder: ``path``, else ``$QINGLANG_DATA``, else ``../shared/data`` beside the repo."""
    if path is not None:
        return Path(path)
    env = os.environ.get("QINGLANG_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def carve_bucket(text: str) -> int:
    """Bucket 0–9 of a text for our carved splits (stable across runs, machines and datasets)."""
    return int(hashlib.sha256((_SALT + text).encode("utf-8")).hexdigest(), 16) % 10


def is_carved_test(text: str) -> bool:
    """True if ``text`` belongs to our carved test split (bucket 0)."""
    return carve_bucket(text) == 0


@dataclass
class Record:
    """One labelled text. ``labels[c]`` is 1, 0 or None (category not judged by this dataset)."""

    text: str
    source: str
    id: str
    labels: dict[str, int | None]
    fine: dict[str, Any] = field(default_factory=dict)


def _labels(**known: int | None) -> dict[str, int | None]:
    out: dict[str, int | None] = {c: None for c in CATEGORIES}
    for k, v in known.items():
        out[k] = None if v is None else int(v)
    return out


def _need(path: Path) -> Path:
    if not path.is_file():
        raise DataError(f"dataset file {path} not found (set QINGLANG_DATA or pass data_dir)")
    return path


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with open(_need(path), encoding="utf-8-sig", newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            yield i, row


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(_need(path), encoding="utf-8") as f:
        for i, line in enumerate(f):
            if line.strip():
                try:
                    yield i, json.loads(line)
                except ValueError as e:
                    raise DataError(f"{path}:{i + 1}: invalid JSON ({e})") from None


# --- per-dataset readers: (data_dir, file_split) -> iterator of Record ------------------------------

def _cold(d: Path, fs: str) -> Iterator[Record]:
    for i, r in _csv_rows(d / "cold" / f"{fs}.csv"):
        yield Record(r["TEXT"], "cold", f"cold:{fs}:{i}", _labels(vulgar=int(r["label"])), {"topic": r["topic"]})


def _toxicn(d: Path, fs: str) -> Iterator[Record]:
    p = _need(d / "toxicn" / "train.json")
    rows = json.loads(p.read_text(encoding="utf-8"))
    for i, r in enumerate(rows):
        yield Record(r["content"], "toxicn", f"toxicn:train:{i}", _labels(vulgar=int(r["toxic"])),
                     {"toxic_type": r.get("toxic_type"), "expression": r.get("expression"),
                      "target": r.get("target"), "topic": r.get("topic")})


def _swsr(d: Path, fs: str) -> Iterator[Record]:
    for i, r in _csv_rows(d / "swsr" / f"SexComment_{fs}.csv"):
        yield Record(r["comment_text"], "swsr", f"swsr:{fs}:{i}", _labels(vulgar=int(r["label"])),
                     {"category": r.get("category") or None, "target": r.get("target") or None})


def _chnci(d: Path, fs: str) -> Iterator[Record]:
    for i, r in _csv_rows(d / "chnci" / f"{fs}.csv"):
        yield Record(r["content"], "chnci", f"chnci:{fs}:{i}", _labels(vulgar=int(r["label"])),
                     {"genre": r["genre"], "incident": r["incident"], "platform": r["platform"]})


def _rumor_jsonl(name: str, text_key: str, id_key: str | None, files: dict[str, str]) -> Callable:
    def read(d: Path, fs: str) -> Iterator[Record]:
        for i, r in _jsonl_rows(d / name / files[fs]):
            rid = f"{name}:{fs}:{r[id_key] if id_key else i}"
            fine = {"category": r["category"]} if "category" in r else {}
            yield Record(r[text_key], name, rid, _labels(rumor=int(r["label"])), fine)
    return read


# name -> (reader, file splits present, licence note)
DATASETS: dict[str, tuple[Callable[[Path, str], Iterator[Record]], tuple[str, ...], str]] = {
    "cold": (_cold, ("train", "dev"), "Apache-2.0"),
    "toxicn": (_toxicn, ("train",), "CC BY-NC-ND 4.0 — evaluation only"),
    "swsr": (_swsr, ("train", "dev"), "MIT"),
    "chnci": (_chnci, ("train", "dev"), "none stated — research only"),
    "weibo21": (_rumor_jsonl("weibo21", "content", None, {"train": "train.jsonl", "dev": "val.jsonl"}),
                ("train", "dev"), "research only"),
    "weibo16": (_rumor_jsonl("weibo16", "text", "eid", {"train": "train.jsonl", "dev": "dev.jsonl"}),
                ("train", "dev"), "none stated — research dataset"),
    "ced": (_rumor_jsonl("ced", "text", "id", {"train": "train.jsonl", "dev": "dev.jsonl"}),
            ("train", "dev"), "none stated — research dataset"),
}
#: datasets whose licence allows training the shipped model
TRAINABLE = ("cold", "swsr", "chnci", "weibo21", "weibo16", "ced", "fanquan")


def iter_dataset(name: str, split: str, data_dir_: str | os.PathLike | None = None) -> Iterator[Record]:
    """Stream the records of one carved split of a dataset."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if name == "fanquan":
        from .fanquan_corpus import load_fanquan  # our own corpus, with its own fixed splits

        for item in load_fanquan(split, data_dir=data_dir_):
            yield Record(item["text"], "fanquan", item["id"],
                         _labels(fanquan=item["fanquan"], vulgar=item.get("vulgar"), rumor=item.get("rumor")),
                         {"subtype": item.get("subtype"), "origin": item.get("origin"), "style": item.get("style"),
                          "origin_kind": str(item.get("origin", "")).split(":")[0]})
        return
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted([*DATASETS, 'fanquan'])}")
    reader, file_splits, _ = DATASETS[name]
    d = data_dir(data_dir_)
    if not d.is_dir():
        raise DataError(f"data folder {d} not found (set QINGLANG_DATA or pass --data)")
    for fs in file_splits:
        for rec in reader(d, fs):
            if not rec.text or not rec.text.strip():
                continue
            b = carve_bucket(rec.text)
            if b == 0:
                got = "test"
            elif "dev" not in file_splits and b == 1:
                got = "dev"
            else:
                got = fs
            if got == split:
                yield rec


def load_dataset(name: str, split: str, data_dir: str | os.PathLike | None = None,
                 limit: int | None = None) -> list[Record]:
    """All records of one carved split (``limit`` keeps the first N, in file order)."""
    out = []
    for rec in iter_dataset(name, split, data_dir):
        out.append(rec)
        if limit is not None and len(out) >= limit:
            break
    return out


def load_generic(path: str | os.PathLike, text_field: str = "text", label_field: str | None = "label",
                 category: str = "vulgar", id_field: str | None = None) -> list[Record]:
    """A JSONL or CSV file with a text column and a 0/1 label column for one category."""
    p = Path(path)
    if category not in CATEGORIES:
        raise ValueError(f"category must be one of {CATEGORIES}, got {category!r}")
    rows = _csv_rows(p) if p.suffix.lower() in (".csv", ".tsv") else _jsonl_rows(p)
    out = []
    for i, r in rows:
        if text_field not in r:
            raise DataError(f"{p}: row {i + 1} has no field {text_field!r} (fields: {sorted(r)})")
        lab = None
        if label_field:
            if label_field not in r:
                raise DataError(f"{p}: row {i + 1} has no field {label_field!r}")
            try:
                lab = int(float(r[label_field]))
            except (TypeError, ValueError):
                raise DataError(f"{p}: row {i + 1}: label {r[label_field]!r} is not 0/1") from None
            if lab not in (0, 1):
                raise DataError(f"{p}: row {i + 1}: label {lab} is not 0/1")
        rid = str(r[id_field]) if id_field and id_field in r else f"{p.name}:{i}"
        out.append(Record(str(r[text_field]), p.stem, rid, _labels(**{category: lab})))
    return out
