"""Lexicon matching: deny and allow lists over normalised text, with hits as spans on the ORIGINAL text.

``LexiconMatcher`` runs an Aho-Corasick automaton (``ahocorasick_rs``) over two views of the
normalised text: the text itself and, for terms of at least two CJK characters, its toneless
pinyin, matched syllable by syllable (so 约泡 and 曰炮 hit 约炮, but 啥呢 sha|ne does not hit 善恶
shan|e). Each hit is checked against the term's constraints (whole word, Latin word boundary,
needs-context) and against the allow lists, which suppress any deny hit lying inside an allowed
term (路口交通 contains 口交通, so 口交 does not fire). Whole-word checks segment a window around
the hit like jieba does, from a compact cache of jieba's dictionary (see ``_jieba_words``).

``match_many`` matches a batch in one automaton pass; ``scan`` streams any number of raw texts through it a
chunk at a time, optionally over forked worker processes (``workers=N``), with the same spans in input order.

Edits (``add_term``, ``remove_term``, ``add_allow``, ``add_list``) are copy-on-write: they build a
new immutable snapshot and swap it in one assignment, so a matcher can be shared by threads.
Single-term edits only rebuild a small *delta* automaton (and removals only add a tombstone);
the large base automaton is rebuilt when the delta grows past ``delta_limit`` terms.

List file format (``.tsv``, the bundled lists): a header ``term category sublabel severity flags``
then one term per line, ``#`` starts a comment. ``flags`` is a comma-separated set of
``word`` (whole word only, decided with jieba), ``ctx=N`` (fires only with another deny hit within
N characters) or ``ctx=N:词1|词2`` (only with one of these words within N characters), ``latin``
/ ``nolatin`` (force the Latin word-boundary rule on/off; default on for terms that start or end
with a Latin letter or digit), ``nopy`` (no pinyin matching), ``allow`` (an allow entry; category
``*`` means every category). A ``.tsv`` term may hold ``{a|b}`` groups and then stands for every
combination (``{不|别}{引战|拉踩}`` is four terms; see ``expand_alternatives``). ``load_terms`` also reads plain ``.txt`` (one term per line), ``.csv``
(a header with at least ``term``) and ``.json`` (a list of strings or objects, or an object whose
keys are terms).
"""
from __future__ import annotations

import csv
import gc
import io
import json
import os
import re
import signal
import threading
import unicodedata
import warnings
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from itertools import accumulate, chain, islice
from pathlib import Path
from typing import Any

import numpy as np

from . import _gc
from .errors import DataError
from .normalize import (
    NormalizeConfig,
    Normalized,
    _to_original_many,
    normalize,
    normalize_batch,
    syllable_string,
)
from .result import Span, _span_from, _span_proto
from .taxonomy import CATEGORIES, SUBLABELS, TAXONOMY

__all__ = [
    "BUNDLED_LISTS",
    "LexiconMatcher",
    "Term",
    "bundled_path",
    "expand_alternatives",
    "hit_features",
    "load_terms",
]

BUNDLED_LISTS: tuple[str, ...] = ("fanquan", "vulgar", "allow")
ALL = "*"
_TSV_COLUMNS = ("term", "category", "sublabel", "severity", "flags")


def bundled_path(name: str) -> Path:
    """Path of a bundled list file (``fanquan``, ``vulgar`` or ``allow``)."""
    if name not in BUNDLED_LISTS:
        raise KeyError(f"unknown bundled list {name!r}; known: {list(BUNDLED_LISTS)}")
    return Path(str(resources.files("qinglang_nlp") / "data" / "lexicons" / f"{name}.tsv"))


# --------------------------------------------------------------------------------------- terms


@dataclass(frozen=True)
class Term:
    """One lexicon entry: the canonical spelling plus its labels and matching constraints.

    ``category`` is a category code (``fanquan``, ``vulgar``, ``rumor``); for an allow entry it may
    be ``None``/``"*"`` (suppresses deny hits of every category). ``context_window`` > 0 makes the
    term fire only when another deny hit, or one of ``context_terms``, lies within that many
    characters. ``latin_boundary=None`` means automatic (on for terms with Latin letters or
    digits at an edge).
    """

    term: str
    category: str | None
    sublabel: str | None = None
    severity: int = 2
    whole_word: bool = False
    context_window: int = 0
    context_terms: tuple[str, ...] = ()
    latin_boundary: bool | None = None
    pinyin: bool = True
    allow: bool = False
    list_name: str = "user"

    def __post_init__(self) -> None:
        if not isinstance(self.term, str) or not self.term.strip():
            raise ValueError(f"lexicon term must be a non-empty string, got {self.term!r}")
        if self.term != self.term.strip():
            object.__setattr__(self, "term", self.term.strip())
        cat = self.category
        if cat == ALL or cat == "":
            cat = None
            object.__setattr__(self, "category", None)
        if cat is None:
            if not self.allow:
                raise ValueError(f"term {self.term!r}: a deny term needs a category, one of {list(CATEGORIES)}")
        elif cat not in CATEGORIES:
            raise ValueError(f"term {self.term!r}: unknown category {cat!r}; known: {list(CATEGORIES)}")
        if self.sublabel is not None:
            if self.sublabel not in SUBLABELS:
                raise ValueError(f"term {self.term!r}: unknown sub-label {self.sublabel!r}; known: {sorted(SUBLABELS)}")
            if cat is not None and SUBLABELS[self.sublabel].category != cat:
                raise ValueError(
                    f"term {self.term!r}: sub-label {self.sublabel!r} belongs to "
                    f"{SUBLABELS[self.sublabel].category!r}, not {cat!r}"
                )
        if not isinstance(self.severity, int) or not 1 <= self.severity <= 3:
            raise ValueError(f"term {self.term!r}: severity must be an int 1-3, got {self.severity!r}")
        if not isinstance(self.context_window, int) or self.context_window < 0:
            raise ValueError(f"term {self.term!r}: context window must be an int >= 0, got {self.context_window!r}")
        if self.context_terms and self.context_window == 0:
            raise ValueError(f"term {self.term!r}: context terms given without a context window (ctx=N:...)")
        object.__setattr__(self, "context_terms", tuple(self.context_terms))

    @property
    def flags(self) -> str:
        """The constraints written in the list-file ``flags`` syntax."""
        out = []
        if self.allow:
            out.append("allow")
        if self.whole_word:
            out.append("word")
        if self.context_window:
            ctx = f"ctx={self.context_window}"
            out.append(ctx + (":" + "|".join(self.context_terms) if self.context_terms else ""))
        if self.latin_boundary is True:
            out.append("latin")
        elif self.latin_boundary is False:
            out.append("nolatin")
        if not self.pinyin:
            out.append("nopy")
        return ",".join(out)


def _parse_flags(flags: str, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw in flags.replace(" ", ",").split(","):
        f = raw.strip()
        if not f:
            continue
        if f == "word":
            out["whole_word"] = True
        elif f == "latin":
            out["latin_boundary"] = True
        elif f == "nolatin":
            out["latin_boundary"] = False
        elif f == "nopy":
            out["pinyin"] = False
        elif f == "allow":
            out["allow"] = True
        elif f.startswith("ctx="):
            n, _, words = f[4:].partition(":")
            try:
                out["context_window"] = int(n)
            except ValueError:
                raise DataError(f"{where}: bad flag {f!r}: ctx=N needs an integer N") from None
            if words:
                out["context_terms"] = tuple(w for w in words.split("|") if w)
        else:
            raise DataError(f"{where}: unknown flag {f!r}; known: word, ctx=N[:a|b], latin, nolatin, nopy, allow")
    return out


def _make_term(row: Mapping[str, Any], defaults: dict[str, Any], where: str) -> Term:
    kw = dict(defaults)
    for k in ("category", "sublabel"):
        v = row.get(k)
        if v not in (None, ""):
            kw[k] = str(v).strip()
    sev = row.get("severity")
    if sev not in (None, ""):
        try:
            kw["severity"] = int(sev)
        except (TypeError, ValueError):
            raise DataError(f"{where}: severity must be 1-3, got {sev!r}") from None
    if row.get("flags"):
        kw.update(_parse_flags(str(row["flags"]), where))
    if str(row.get("allow", "")).strip().lower() in ("1", "true", "yes"):
        kw["allow"] = True
    if kw.get("category") is None and kw.get("sublabel"):
        kw["category"] = SUBLABELS[kw["sublabel"]].category if kw["sublabel"] in SUBLABELS else None
    term = str(row.get("term", ""))
    if term.strip() and all(unicodedata.category(c)[0] in "CZM" for c in term):
        raise DataError(f"{where}: term {term!r} has no visible character (only spaces, marks or format characters)")
    try:
        return Term(term, **kw)
    except ValueError as e:
        raise DataError(f"{where}: {e}") from None


_GROUP_RE = re.compile(r"\{([^{}]*)\}")
_SURROGATE = re.compile("[\ud800-\udfff]")  # lone surrogates: see find_rs


def expand_alternatives(term: str, limit: int = 10_000) -> list[str]:
    """Expand ``{a|b}`` groups of a ``.tsv`` term: ``{不|别}引战`` -> ``["不引战", "别引战"]``.

    Groups multiply (``{不|别}{引战|拉踩}`` gives four terms); an empty alternative (``{|不}``) is
    allowed. Raises ``ValueError`` on unbalanced braces or when more than ``limit`` terms result.
    """
    parts = _GROUP_RE.split(term)  # literal, group, literal, group, ..., literal
    if any("{" in x or "}" in x for x in parts[::2]):
        raise ValueError(f"unbalanced braces in term {term!r}")
    out = [""]
    for j, part in enumerate(parts):
        alts = part.split("|") if j % 2 else [part]
        out = [o + a for o in out for a in alts]
        if len(out) > limit:
            raise ValueError(f"term {term!r} expands to more than {limit} terms")
    return list(dict.fromkeys(o for o in out if o.strip()))


def load_terms(
    path: str | os.PathLike[str],
    *,
    category: str | None = None,
    sublabel: str | None = None,
    severity: int = 2,
    allow: bool = False,
    list_name: str | None = None,
    encoding: str = "utf-8-sig",
) -> list[Term]:
    """Read terms from a ``.tsv``/``.txt``/``.csv``/``.json`` file (format in the module docstring).

    Keyword arguments give the defaults for columns a file lacks (a plain ``.txt`` list needs
    ``category`` unless ``allow=True``). ``list_name`` defaults to the file stem.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"lexicon file {str(p)!r} does not exist")
    defaults: dict[str, Any] = {
        "category": category,
        "sublabel": sublabel,
        "severity": severity,
        "allow": allow,
        "list_name": list_name or p.stem,
    }
    try:
        text = p.read_text(encoding=encoding)
    except UnicodeDecodeError as e:
        raise DataError(f"lexicon file {str(p)!r} is not {encoding} text: {e}") from None
    suffix = p.suffix.lower()
    rows: list[tuple[str, Mapping[str, Any]]] = []
    if suffix in (".tsv", ".txt"):
        header: list[str] | None = None
        for i, line in enumerate(text.splitlines(), 1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cells = [c.strip() for c in line.split("\t")] if suffix == ".tsv" else [line.strip()]
            if suffix == ".tsv" and header is None:
                header = cells
                if "term" not in header:
                    raise DataError(f"{p}:{i}: a .tsv list needs a header row with a 'term' column")
                continue
            if header and len(cells) > len(header) and any(cells[len(header):]):
                raise DataError(f"{p}:{i}: {len(cells)} cells but the header has {len(header)} columns "
                                f"({', '.join(header)}); extra cells {cells[len(header):]}")
            row = dict(zip(header, cells)) if header else {"term": cells[0]}
            if suffix == ".tsv" and "{" in row.get("term", ""):
                try:
                    alts = expand_alternatives(row["term"])
                except ValueError as e:
                    raise DataError(f"{p}:{i}: {e}") from None
                rows.extend((f"{p}:{i}", {**row, "term": a}) for a in alts)
                continue
            rows.append((f"{p}:{i}", row))
    elif suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "term" not in reader.fieldnames:
            raise DataError(f"{p}: a .csv list needs a header row with a 'term' column, got {reader.fieldnames}")
        for i, row in enumerate(reader, 2):
            if (row.get("term") or "").strip():
                rows.append((f"{p}:{i}", row))
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{p}: invalid JSON: {e}") from None
        items = list(data) if isinstance(data, (list, dict)) else None
        if items is None:
            raise DataError(f"{p}: JSON lexicon must be a list or an object, got {type(data).__name__}")
        for i, item in enumerate(items):
            if isinstance(item, str):
                rows.append((f"{p}[{i}]", {"term": item}))
            elif isinstance(item, dict):
                rows.append((f"{p}[{i}]", item))
            else:
                raise DataError(f"{p}[{i}]: expected a string or an object, got {type(item).__name__}")
    else:
        raise DataError(f"lexicon file {str(p)!r}: unsupported extension {suffix!r} (use .tsv, .txt, .csv or .json)")
    return [_make_term(row, defaults, where) for where, row in rows if str(row.get("term", "")).strip()]


# ------------------------------------------------------------------------------------ automata


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x2FA1F or 0xF900 <= o <= 0xFAFF


def _is_latin(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


Finder = Callable[[str], list[tuple[int, int, int]]]


def _needs_checks(t: Term, key: str) -> bool:
    lb = t.latin_boundary
    latin_edge = lb is True or (lb is None and (_is_latin(key[0]) or _is_latin(key[-1])))
    return t.whole_word or latin_edge


def _build_finder(keys: list[str], backend: str) -> Finder | None:
    """Return ``find(text) -> [(key_index, start, end)]`` over all (overlapping) occurrences."""
    if not keys:
        return None
    if backend == "rs":
        import ahocorasick_rs

        ac = ahocorasick_rs.AhoCorasick(keys, matchkind=ahocorasick_rs.MatchKind.Standard, store_patterns=False)

        def find_rs(text: str) -> list[tuple[int, int, int]]:
            try:
                return ac.find_matches_as_indexes(text, overlapping=True)
            except UnicodeEncodeError:
                # a lone surrogate (half an emoji cut by a crawler) cannot cross into Rust; no term holds one, and
                # U+FFFD keeps every offset, so the rest of the text is still matched
                return ac.find_matches_as_indexes(_SURROGATE.sub("\ufffd", text), overlapping=True)

        return find_rs
    if backend == "py":
        import ahocorasick

        auto = ahocorasick.Automaton()
        for i, k in enumerate(keys):
            auto.add_word(k, (i, len(k)))
        auto.make_automaton()

        def find_py(text: str) -> list[tuple[int, int, int]]:
            return [(i, end - n + 1, end + 1) for end, (i, n) in auto.iter(text)]

        return find_py
    raise ValueError(f"unknown Aho-Corasick backend {backend!r}; use 'rs' (ahocorasick_rs) or 'py' (pyahocorasick)")


@dataclass(frozen=True)
class _Keyed:
    """A term with its normalised text key and (optional) pinyin key."""

    term: Term
    key: str
    pinyin_key: str | None
    checks: bool  # has a whole-word or Latin-boundary constraint to test per hit
    context_keys: tuple[str, ...] = ()  # normalised context words (ctx=N:a|b)
    # Derived from ``term`` once, so that the per-hit code reads one attribute instead of a chain:
    window: int = field(init=False, compare=False, repr=False)  # term.context_window
    plain: bool = field(init=False, compare=False, repr=False)  # a deny entry without constraints: a lone hit of it is final
    span_proto: dict = field(init=False, compare=False, repr=False)  # its spans' fields but the per-hit ones
    slot: tuple = field(init=False, compare=False, repr=False)  # (key, category): an entry's place in its list

    def __post_init__(self) -> None:
        t = self.term
        object.__setattr__(self, "window", t.context_window)
        object.__setattr__(self, "plain", not (self.checks or t.context_window or t.allow))
        object.__setattr__(self, "span_proto", _span_proto(t.category or "", "lexicon", t.term, t.sublabel,
                                                           t.list_name, t.severity))
        object.__setattr__(self, "slot", (self.key, t.category))


class _Index:
    """Immutable pair of automata (text view, pinyin view) over a set of keyed terms."""

    __slots__ = ("cat", "plain_key", "py_find", "py_keys", "py_payload", "size", "text_find", "text_keys", "text_payload")

    def __init__(self, entries: Iterable[_Keyed], backend: str):
        by_text: dict[str, list[_Keyed]] = {}
        by_py: dict[str, list[_Keyed]] = {}
        n = 0
        for e in entries:
            n += 1
            by_text.setdefault(e.key, []).append(e)
            if e.pinyin_key:
                by_py.setdefault(e.pinyin_key, []).append(e)
        self.size = n
        self.text_keys = list(by_text)
        self.text_payload = [tuple(v) for v in by_text.values()]
        # per text key: whether it has exactly one entry, a deny entry without rules; a text whose hits are all of
        # such keys needs nothing but nesting, done for many texts at once (``_match_normed``, pinyin view off)
        self.plain_key = np.array([len(v) == 1 and v[0].plain for v in self.text_payload], dtype=bool)
        cats: dict[str | None, int] = {}  # category -> a number, for nesting in bulk
        self.cat = np.array([cats.setdefault(v[0].term.category, len(cats)) for v in self.text_payload],
                            dtype=np.int64)
        self.text_find = _build_finder(self.text_keys, backend)
        self.py_keys = list(by_py)
        self.py_payload = [tuple(v) for v in by_py.values()]
        self.py_find = _build_finder(self.py_keys, backend)


@dataclass(frozen=True)
class _Snapshot:
    """Everything one ``match`` call reads; never mutated after construction."""

    lists: Mapping[str, Mapping[tuple, _Keyed]]  # list name -> (text key, category) -> entry
    base: _Index
    delta: _Index | None
    dead: frozenset[tuple[str, tuple]]  # (list name, (key, category)) of base entries removed or replaced
    delta_map: Mapping[tuple[str, str], _Keyed] = field(default_factory=dict)


# Characters that jieba keeps together in one block (``jieba.re_han_default``); every other
# character is a token of its own, so a hit next to one of them needs no dictionary at all.
_JIEBA_BLOCK_RE = re.compile("[\u4E00-\u9FD5a-zA-Z0-9+#&\\._%\\-]")


def _jieba_words() -> tuple[dict[str, int], int, dict[str, int]]:
    """jieba's dictionary as ``{word: frequency}``, the total, and the longest word per first character.

    jieba's own start-up builds a 500k-entry prefix dictionary (about 1 s). Whole-word checks only
    need the words themselves: the first call parses ``jieba/dict.txt`` once (about 0.4 s) and
    writes the three tables to ``$QINGLANG_CACHE`` (default ``~/.cache/qinglang_nlp``); later
    processes read that file (about 0.15 s). An unwritable cache directory is not an error.
    """
    import array
    import sys

    import jieba

    src = Path(jieba.__file__).with_name(jieba.DEFAULT_DICT_NAME)
    st = src.stat()
    from .cache import cache_dir

    path = cache_dir() / f"jieba-words-v2-{jieba.__version__}-{st.st_size}-{int(st.st_mtime)}.bin"
    try:  # layout: 3 lengths (8 bytes each), words (utf-8, "\n"-joined), uint32 frequencies, first characters, uint8 lengths
        blob = path.read_bytes()
        nw, nf, nc = (int.from_bytes(blob[k:k + 8], "little") for k in (0, 8, 16))
        words = blob[24:24 + nw].decode("utf-8").split("\n")
        freqs = array.array("I")
        freqs.frombytes(blob[24 + nw:24 + nw + nf])
        if sys.byteorder != "little":
            freqs.byteswap()
        firsts = blob[24 + nw + nf:24 + nw + nf + nc].decode("utf-8")
        lengths = blob[24 + nw + nf + nc:]
        if len(words) == len(freqs) and len(firsts) == len(lengths):
            return dict(zip(words, freqs)), sum(freqs), dict(zip(firsts, lengths))
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    freq: dict[str, int] = {}
    longest: dict[str, int] = {}
    with open(src, encoding="utf-8") as f:
        for line in f:
            parts = line.split(" ")
            if len(parts) >= 2 and parts[0]:
                w = parts[0]
                freq[w] = int(parts[1])
                if len(w) > longest.get(w[0], 0):
                    longest[w[0]] = min(len(w), 255)
    raw = "\n".join(freq).encode("utf-8")
    freqs = array.array("I", freq.values())
    if sys.byteorder != "little":
        freqs.byteswap()
    fb, fl = "".join(longest).encode("utf-8"), bytes(longest.values())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        head = b"".join(x.to_bytes(8, "little") for x in (len(raw), len(freqs) * freqs.itemsize, len(fb)))
        tmp.write_bytes(head + raw + freqs.tobytes() + fb + fl)
        os.replace(tmp, path)
    except OSError:
        pass
    return freq, sum(freq.values()), longest


def _compact_jieba() -> Any:
    """A ``jieba.Tokenizer`` over the compact word dictionary; it segments exactly like jieba's own.

    jieba finds the words starting at each position by walking a prefix dictionary; this subclass
    tries every length up to the longest word that starts with that character instead, which gives
    the same word graph without the prefix entries. Route, frequencies and the HMM for unknown words
    are jieba's own code.
    """
    import jieba

    freq, total, longest = _jieba_words()

    class CompactTokenizer(jieba.Tokenizer):  # type: ignore[misc]
        def get_DAG(self, sentence: str) -> dict[int, list[int]]:  # jieba's method name
            get = self.FREQ.get
            most = longest.get
            n = len(sentence)
            dag = {}
            for k in range(n):
                ends = [i for i in range(k, min(n, k + most(sentence[k], 1))) if get(sentence[k:i + 1])]
                dag[k] = ends or [k]
            return dag

    tk = CompactTokenizer()
    tk.FREQ = freq
    tk.total = total
    tk.initialized = True
    return tk


class _WordSegmenter:
    """Whole-word checks with jieba's segmentation, without jieba's global state or start-up.

    A hit next to a character outside jieba's word blocks (punctuation, spaces, emoji) or at the
    edge of the text is decided without a dictionary. Otherwise a window of ``WINDOW`` characters
    on each side is segmented by ``_compact_jieba`` (loaded on the first such check).
    """

    WINDOW = 12

    def __init__(self) -> None:
        self._tk: Any = None
        self._lock = threading.Lock()

    def _tokenizer(self) -> Any:
        if self._tk is None:
            with self._lock:
                if self._tk is None:
                    self._tk = _compact_jieba()
        return self._tk

    @staticmethod
    def _trivial(text: str, i: int) -> bool:
        """True when position ``i`` is a token boundary whatever the dictionary says."""
        return i <= 0 or i >= len(text) or not (_JIEBA_BLOCK_RE.match(text[i - 1]) and _JIEBA_BLOCK_RE.match(text[i]))

    def is_word(self, text: str, start: int, end: int) -> bool:
        """True when ``text[start:end]`` starts and ends on jieba token boundaries."""
        if self._trivial(text, start) and self._trivial(text, end):
            return True
        lo = max(0, start - self.WINDOW)
        hi = min(len(text), end + self.WINDOW)
        bounds = {lo, hi}
        for _w, s, e in self._tokenizer().tokenize(text[lo:hi], HMM=True):
            bounds.add(lo + s)
            bounds.add(lo + e)
        return start in bounds and end in bounds


_Hit = tuple  # (start, end, _Keyed, view, orig_start, orig_end): start and end on the normalised text, the
# other two on the original (mapped for all hits of a batch at once); plain tuples, cheapest to make


def _span_order(sp: Span) -> tuple[int, int, str, str]:
    """The order of a text's spans."""
    return sp.start, sp.end, sp.category, sp.term or ""


# ------------------------------------------------------------------------------------- matcher


class LexiconMatcher:
    """Deny/allow lexicon matcher returning ``Span``s on the original text.

    ``lists`` maps a list name to terms (``Term`` objects or strings) or to a file path;
    ``config`` is the ``NormalizeConfig`` used for the terms and for plain-string input (pass the
    model's config so that keys and texts are normalised the same way); ``pinyin`` switches the
    pinyin view; ``backend`` picks ``ahocorasick_rs`` (``"rs"``) or ``pyahocorasick`` (``"py"``).
    The constructor only stores its arguments: automata are built on first use.
    """

    def __init__(
        self,
        lists: Mapping[str, Iterable[Term | str] | str | os.PathLike[str]] | None = None,
        *,
        config: NormalizeConfig | dict | None = None,
        pinyin: bool = True,
        backend: str = "rs",
        delta_limit: int = 256,
    ):
        self.lists = dict(lists or {})
        self.config = config
        self.pinyin = pinyin
        self.backend = backend
        self.delta_limit = delta_limit
        self._snap: _Snapshot | None = None
        self._lock = threading.RLock()
        self._words = _WordSegmenter()
        self._key_cache: dict[str, tuple[str, str]] = {}  # term -> keys; written only under self._lock

    @classmethod
    def default(cls, **kwargs: Any) -> LexiconMatcher:
        """A matcher over the bundled lists: 饭圈 (``fanquan``), 低俗 (``vulgar``) and ``allow``."""
        return cls({name: bundled_path(name) for name in BUNDLED_LISTS}, **kwargs)

    # -- building --------------------------------------------------------------------------

    @property
    def _cfg(self) -> NormalizeConfig:
        c = self.config
        return c if isinstance(c, NormalizeConfig) else NormalizeConfig.from_dict(c)

    def _keys(self, raw: list[str]) -> list[tuple[str, str]]:
        """(normalised text, syllable string) of each term, through a per-matcher cache (called under the lock).

        The syllable string (``syllable_string``) has one private-use character per CJK character standing
        for its toneless pinyin syllable (傻逼 and 煞笔 give the same string); it is empty for terms with fewer
        than two CJK characters or when the pinyin view is off.
        """
        cache = self._key_cache
        todo = list(dict.fromkeys(r for r in raw if r not in cache))
        if todo:
            cfg = self._cfg
            normed = normalize_batch(todo, cfg) if len(todo) > 1 else [normalize(todo[0], cfg)]
            for r, nz in zip(todo, normed):
                py = syllable_string(nz.text) if self.pinyin and sum(map(_is_cjk, nz.text)) >= 2 else ""
                cache[r] = (nz.text, py)
        return [cache[r] for r in raw]

    def _keyed_many(self, terms: list[Term]) -> list[_Keyed]:
        """Normalise many terms in one ``normalize_batch`` call and give each its text and pinyin keys.

        Pinyin keys exist only for deny terms of at least two CJK characters that allow pinyin.
        """
        self._keys([w for t in terms for w in t.context_terms])  # all context words in one batch (cached)
        out = []
        for t, (k, py) in zip(terms, self._keys([t.term for t in terms])):
            if not k or _SEP in k:
                raise ValueError(f"term {t.term!r} (list {t.list_name!r}) is empty after normalisation or has NUL")
            pk = py if (t.pinyin and not t.allow and py and py != k) else None
            ctx = tuple(x for x, _ in self._keys(list(t.context_terms))) if t.context_terms else ()
            out.append(_Keyed(t, k, pk, _needs_checks(t, k), ctx))
        return out

    def _coerce(self, name: str, terms: Any, defaults: Mapping[str, Any]) -> list[Term]:
        if isinstance(terms, (str, os.PathLike)):
            return load_terms(terms, list_name=name, **defaults)
        out = []
        for t in terms:
            if isinstance(t, Term):
                out.append(t if t.list_name == name else replace(t, list_name=name))
            elif isinstance(t, str):
                out.append(Term(t, list_name=name, **defaults))
            else:
                raise TypeError(f"list {name!r}: expected Term or str items, got {type(t).__name__}")
        return out

    def _snapshot_from(self, lists: Mapping[str, Mapping[str, _Keyed]]) -> _Snapshot:
        entries = [e for lst in lists.values() for e in lst.values()]
        return _Snapshot(lists, _Index(entries, self.backend), None, frozenset(), {})

    def _keyed_list(self, terms: Iterable[Term]) -> dict[tuple, _Keyed]:
        """One entry per (normalised key, category) of a list.

        Spellings that normalise to one key (傻逼, sb, 傻b, shabi) are one term to the matcher: the first one
        in the list is kept. When a later spelling sets another severity, sub-label or flags, those cannot
        apply (the text cannot tell the spellings apart) and a ``UserWarning`` names both. The same term in
        two categories gives two entries.
        """
        out: dict[tuple, _Keyed] = {}
        for k in self._keyed_many(list(terms)):
            old = out.setdefault(k.slot, k)
            if old is not k:
                a, b = old.term, k.term
                if (a.severity, a.sublabel, a.flags) != (b.severity, b.sublabel, b.flags):
                    warnings.warn(
                        f"lexicon list {b.list_name!r}: {b.term!r} (severity {b.severity}, sub-label {b.sublabel}, "
                        f"flags {b.flags!r}) normalises to {k.key!r} like {a.term!r} (severity {a.severity}, "
                        f"sub-label {a.sublabel}, flags {a.flags!r}), which is kept", UserWarning, stacklevel=4)
        return out

    def _get(self) -> _Snapshot:
        snap = self._snap
        if snap is None:
            with self._lock:
                if self._snap is None:
                    lists: dict[str, dict[str, _Keyed]] = {}
                    for name, terms in self.lists.items():
                        lists[name] = self._keyed_list(self._coerce(name, terms, {}))
                    self._snap = self._snapshot_from(lists)
                snap = self._snap
        return snap

    def build(self) -> LexiconMatcher:
        """Build the automata now (otherwise done on first use); returns ``self``."""
        self._get()
        return self

    def _edit(self, adds: Iterable[Term] = (), removes: Iterable[tuple[str, str]] = ()) -> None:
        """Apply edits copy-on-write: new list maps, a new small delta automaton, one atomic swap."""
        with self._lock:
            old = self._get()
            lists = dict(old.lists)
            dead = set(old.dead)
            delta = dict(old.delta_map)
            for name, slot in removes:
                lst = dict(lists[name])
                del lst[slot]
                lists[name] = lst
                dead.add((name, slot))
                delta.pop((name, slot), None)
            keyed = self._keyed_many(list(adds)) if adds else []
            for k in keyed:
                lst = dict(lists.get(k.term.list_name, {}))
                lst[k.slot] = k
                lists[k.term.list_name] = lst
                dead.add((k.term.list_name, k.slot))
                delta[(k.term.list_name, k.slot)] = k
            if len(delta) > self.delta_limit:
                self._snap = self._snapshot_from(lists)  # compaction: one full rebuild
                return
            self._snap = _Snapshot(
                lists,
                old.base,
                _Index(delta.values(), self.backend) if delta else None,
                frozenset(dead),
                delta,
            )

    # -- editing ---------------------------------------------------------------------------

    def add_term(
        self,
        term: Term | str,
        *,
        list_name: str = "user",
        category: str | None = None,
        sublabel: str | None = None,
        severity: int = 2,
        flags: str = "",
    ) -> Term:
        """Add one deny term to ``list_name`` (replacing the entry with the same normalised key and category);
        takes effect on the next ``match``.

        Pass a ``Term`` or a string plus ``category``/``sublabel``/``severity``/``flags``
        (flags as in list files, e.g. ``"word"`` or ``"ctx=10"``).
        """
        if isinstance(term, Term):
            t = replace(term, list_name=list_name if list_name != "user" else term.list_name)
        else:
            kw: dict[str, Any] = _parse_flags(flags, f"term {term!r}") if flags else {}
            if category is None and sublabel in SUBLABELS:
                category = SUBLABELS[sublabel].category
            t = Term(term, category, sublabel, severity, list_name=list_name, **kw)
        self._edit(adds=[t])
        return t

    def add_allow(self, term: str, category: str | None = None, *, list_name: str = "allow") -> Term:
        """Add an allow term: deny hits of ``category`` (all when ``None``) inside its span are dropped."""
        t = Term(term, category, allow=True, list_name=list_name)
        self._edit(adds=[t])
        return t

    def remove_term(self, term: str, list_name: str | None = None) -> int:
        """Remove ``term`` from ``list_name`` (from every list when ``None``); returns how many entries were removed.

        Entries are found by their normalised key, in every category: a spelling that normalises like a
        listed term removes that term (``sb`` removes 傻逼, as the normaliser makes them one word), with a
        ``UserWarning`` naming the spelling removed. Raises ``KeyError`` when the term is in none of the lists.
        """
        with self._lock:  # re-entrant: _edit takes it again
            snap = self._get()
            key = self._keys([term.strip()])[0][0]
            names = [list_name] if list_name is not None else list(snap.lists)
            if list_name is not None and list_name not in snap.lists:
                raise KeyError(f"no lexicon list named {list_name!r}; lists: {sorted(snap.lists)}")
            found = [(n, (key, c)) for n in names for c in (*CATEGORIES, None) if (key, c) in snap.lists[n]]
            others = sorted({snap.lists[n][slot].term.term for n, slot in found} - {term.strip()})
            if others:
                warnings.warn(f"remove_term({term!r}): it normalises to {key!r}, so the entries spelled "
                              f"{others} are removed", UserWarning, stacklevel=2)
            if not found:
                where = f"list {list_name!r}" if list_name else f"any list ({sorted(snap.lists)})"
                raise KeyError(f"term {term!r} is not in {where}")
            self._edit(removes=found)
            return len(found)

    def add_list(
        self,
        name: str,
        terms_or_path: Iterable[Term | str] | str | os.PathLike[str],
        *,
        category: str | None = None,
        sublabel: str | None = None,
        severity: int = 2,
        allow: bool = False,
    ) -> int:
        """Add or replace the named list (terms, or a .tsv/.txt/.csv/.json path); returns its size.

        ``category``/``sublabel``/``severity``/``allow`` are defaults for entries that do not set
        them (plain strings, or file rows without those columns). Rebuilds the base automaton once.
        """
        defaults: dict[str, Any] = {"category": category, "sublabel": sublabel, "severity": severity, "allow": allow}
        if category is None and sublabel in SUBLABELS:
            defaults["category"] = SUBLABELS[sublabel].category
        terms = self._coerce(name, terms_or_path, defaults)
        with self._lock:
            old = self._get()
            lists = dict(old.lists)
            lists[name] = self._keyed_list(terms)
            self._snap = self._snapshot_from(lists)
        return len(lists[name])

    def remove_list(self, name: str) -> None:
        """Drop the named list (one rebuild)."""
        with self._lock:
            old = self._get()
            if name not in old.lists:
                raise KeyError(f"no lexicon list named {name!r}; lists: {sorted(old.lists)}")
            lists = {n: v for n, v in old.lists.items() if n != name}
            self._snap = self._snapshot_from(lists)

    def terms(self, list_name: str | None = None) -> list[Term]:
        """The current terms (of one list, or of all lists)."""
        snap = self._get()
        names = [list_name] if list_name is not None else list(snap.lists)
        return [e.term for n in names for e in snap.lists[n].values()]

    @property
    def list_names(self) -> list[str]:
        """Names of the loaded lists."""
        return list(self._get().lists)

    def __len__(self) -> int:
        return sum(len(v) for v in self._get().lists.values())

    def __repr__(self) -> str:
        snap = self._snap
        if snap is None:
            return f"LexiconMatcher(lists={list(self.lists)}, not built)"
        sizes = {n: len(v) for n, v in snap.lists.items()}
        return f"LexiconMatcher({sizes}, pinyin={self.pinyin})"

    # -- matching --------------------------------------------------------------------------

    def match(self, text: str | Normalized) -> list[Span]:
        """All deny hits in ``text`` (a ``str`` or a ``Normalized``) as ``Span``s sorted by start."""
        return self.match_many([text])[0]

    def match_many(self, texts: Iterable[str | Normalized]) -> list[list[Span]]:
        """``match`` for many texts: one automaton pass over all of them (much less per-call overhead).

        Plain strings are normalised with ``normalize_batch`` and this matcher's config. For a long
        stream of raw texts ``scan`` is faster (normalisation in chunks of its best size, optional workers).
        """
        items = list(texts)
        normed: list[Normalized] = []
        kinds = set(map(type, items))  # one C-level pass; all plain strings is the common case
        if kinds == {str}:
            normed = normalize_batch(items, self._cfg)
        elif kinds == {Normalized}:
            normed = items  # type: ignore[assignment]
        else:
            raw_idx = [i for i, x in enumerate(items) if not isinstance(x, Normalized)]
            for i in raw_idx:
                if not isinstance(items[i], str):
                    raise TypeError(f"match() expects str or Normalized, got {type(items[i]).__name__} (item {i})")
            if raw_idx:
                done = dict(zip(raw_idx, normalize_batch([items[i] for i in raw_idx], self._cfg)))
                normed = [done[i] if i in done else items[i] for i in range(len(items))]  # type: ignore[misc]
            else:
                normed = items  # type: ignore[assignment]
        # The cyclic garbage collector is paused while the spans are built (as in normalize_batch): the many
        # small acyclic objects set off collections that traverse the caller's whole heap.
        with _gc.paused():
            return self._match_normed(normed)

    def scan(self, texts: Iterable[str], *, chunk_size: int = 2048, workers: int = 1) -> Iterator[list[Span]]:
        """Stream ``match`` over raw strings: yields each text's spans (what ``match_many`` gives) in input order.

        Texts are read, normalised and matched ``chunk_size`` at a time, so memory stays bounded and
        ``normalize_batch`` runs at its best call size. ``workers`` is the number of processes that match,
        this one included: ``workers - 1`` forked helpers each hold this matcher, and this process, besides handing out chunks and collecting
        spans, matches a chunk itself whenever every helper has two in hand. Needs the ``fork`` start method
        (Linux); the helpers stop when the generator is exhausted or closed. Every chunk is matched with the
        lists as they are when the first result is asked for: edits made during a scan apply to the next scan.
        A ``list`` or ``tuple`` of texts is likewise read as it is then (changes to it during the scan are not
        seen); any other iterable is read a chunk at a time.
        A non-``str`` item raises ``TypeError`` naming its index, and an exception from ``texts`` itself
        propagates, once the spans of all earlier chunks have been yielded.
        """
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"scan(): chunk_size must be an int >= 1, got {chunk_size!r}")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"scan(): workers must be an int >= 1, got {workers!r}")
        if isinstance(texts, (str, Normalized)):
            raise TypeError(f"scan() expects an iterable of str, got one {type(texts).__name__}")
        snap = self._get()  # one snapshot for the whole scan, whichever process matches a chunk
        # a list or tuple is read as it is when the scan starts (a shallow copy); with workers, the helpers inherit
        # the copy, and a chunk is sent to one as two numbers instead of its pickled texts
        seq = list(texts) if isinstance(texts, (list, tuple)) else None
        chunks = _chunks(texts if seq is None else seq, chunk_size)
        if workers == 1:
            work: Iterator[list[list[Span]]] = (self._scan_chunk(chunk, snap) for chunk in chunks)
        else:
            work = self._scan_pool(chunks, workers, snap, seq)
        # The cyclic garbage collector is paused while ``work`` runs and is as the caller has it while the caller
        # holds spans: collections set off between chunks would traverse every span the caller keeps, again and
        # again (12 % of scan(workers=2)'s wall time measured). A caller that turns it off between chunks keeps it
        # off; closing at a yield leaves it as the caller has it. (Here, not in a helper generator: one more level
        # of ``yield from`` costs 2-4 % in one process.)
        ours = True  # the collector is paused by this generator, not by the caller
        _gc.pause()
        try:
            for ready in work:
                ours = False
                _gc.resume()
                yield from ready
                _gc.pause()
                ours = True
        finally:
            try:
                work.close()  # a pool's helpers stop now, not when the generator is collected
            finally:
                if ours:
                    _gc.resume()

    def _scan_chunk(self, texts: list[str], snap: _Snapshot | None = None, make: Callable = _span_from,
                    order: Callable = _span_order) -> list[list[Span]]:
        """``match_many`` of checked raw strings, normalised ``_NORM_BATCH`` at a time (``make``, ``order``: as
        ``_match_normed``)."""
        cfg = self._cfg
        with _gc.paused():
            if len(texts) <= _NORM_BATCH:
                return self._match_normed(normalize_batch(texts, cfg), snap, make, order)
            out: list[list[Span]] = []
            for a in range(0, len(texts), _NORM_BATCH):
                out += self._match_normed(normalize_batch(texts[a:a + _NORM_BATCH], cfg), snap, make, order)
            return out

    def _scan_pool(self, chunks: Iterator[list[str]], workers: int, snap: _Snapshot,
                   seq: list[str] | None = None) -> Iterator[list[list[Span]]]:
        """``scan``'s chunks with ``workers - 1`` forked helpers (each chunk's spans, in order); this process matches
        a chunk when they are all busy. ``seq``: the list ``chunks`` cuts, inherited by the helpers (a chunk is then
        sent as its bounds in it)."""
        import multiprocessing
        from concurrent.futures import Future, ProcessPoolExecutor

        if "fork" not in multiprocessing.get_all_start_methods():
            raise RuntimeError("scan(workers > 1) needs the 'fork' start method, which this platform lacks")
        if multiprocessing.current_process().daemon:
            raise RuntimeError("scan(workers > 1) cannot fork from a daemonic process (a multiprocessing.Pool "
                               "worker); use workers=1 there")
        helpers = workers - 1
        pool = ProcessPoolExecutor(helpers, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_pool_init, initargs=(self, snap, seq))
        # one entry per chunk in input order: a helper's Future, or the spans this process found (a list it fills
        # a piece at a time, handing out more chunks between the pieces so that no helper runs dry)
        queue: deque[Future | list[list[Span]]] = deque()
        limit = 4 * workers  # chunks read ahead at most
        state: dict[str, Any] = {"done": False, "error": None, "at": 0}  # at: where the next chunk starts in seq
        sent: dict[Future, list[str]] = {}  # a helper's chunk: its spans' text is cut from it here
        protos = _protos(snap)

        def read() -> list[str] | None:
            if state["done"]:
                return None
            try:
                chunk = next(chunks)
                state["at"] += len(chunk)
                return chunk
            except StopIteration:
                state["done"] = True
            except Exception as e:  # noqa: BLE001 -- a bad item or a failing iterable: earlier chunks first
                state["done"], state["error"] = True, e
            return None

        def feed() -> None:
            """Hand out chunks until every helper has two in hand."""
            while len(queue) < limit and sum(isinstance(q, Future) and not q.done() for q in queue) < 2 * helpers:
                chunk = read()
                if chunk is None:
                    return
                end = state["at"]
                fut = pool.submit(_pool_scan, chunk if seq is None else (end - len(chunk), end))
                sent[fut] = chunk
                queue.append(fut)

        def front() -> list[list[Span]]:
            item = queue.popleft()
            if isinstance(item, Future):
                return _unpack(item.result(), sent.pop(item), protos)
            return item

        try:
            while True:
                while queue and (len(queue) >= limit or not isinstance(queue[0], Future) or queue[0].done()):
                    yield front()  # what is ready, in order (and a bound on what waits behind a slow chunk)
                feed()
                chunk = read()  # every helper has two in hand: this process matches the next chunk itself
                if chunk is None:
                    break
                mine: list[list[Span]] = []
                queue.append(mine)
                for a in range(0, len(chunk), _NORM_BATCH):
                    mine += self._scan_chunk(chunk[a:a + _NORM_BATCH], snap)
                    feed()
            while queue:
                yield front()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if state["error"] is not None:
            raise state["error"]

    def _match_normed(self, normed: list[Normalized], snap: _Snapshot | None = None, make: Callable = _span_from,
                      order: Callable = _span_order) -> list[list[Span]]:
        """Each text's spans. ``make(entry.span_proto, start, end, text, view)`` makes a span and ``order`` sorts
        a text's spans (``_record``/``_record_order`` in a scan helper, which sends numbers, not ``Span``s)."""
        snap = snap or self._snap or self._get()
        indexes = [snap.base] if snap.delta is None else [snap.base, snap.delta]
        dead = snap.dead
        out: list[list[Span]] = [[] for _ in normed]
        joined, starts = _join([n.text for n in normed])
        pinyin = self.pinyin and any(idx.py_find is not None for idx in indexes)
        # every automaton's raw hits (key index, start, end on ``joined``), each mapped in one numpy step to its
        # text, its offsets there and its offsets in the original
        runs = []  # (index, index number, view, key, text, start, end, original start, original end), arrays
        for idx_no, idx in enumerate(indexes):
            if idx.text_find is not None:
                got = idx.text_find(joined)
                if got:
                    runs.append((idx, idx_no, "text", *_place(normed, starts, got)))
        if pinyin:
            ids = syllable_string(joined)
            for idx_no, idx in enumerate(indexes):
                if idx.py_find is not None:
                    got = [h for h in idx.py_find(ids)  # no private-use character of the text itself, and some CJK
                           if not _PUA_RE.search(joined, h[1], h[2]) and _CJK_RE.search(joined, h[1], h[2])]
                    if got:  # ("made" is no 妈的)
                        runs.append((idx, idx_no, "pinyin", *_place(normed, starts, got)))
        if not runs:
            return out
        if not pinyin and not dead and len(runs) == 1:
            # texts whose hits are all of plain deny entries, one per key (most texts with a hit): nesting dropped
            # and spans made here, in bulk; the other texts go through the rules below
            idx, _, _, ki, ti, ns, ne, os_, oe = runs[0]
            plain = idx.plain_key[ki]
            if not plain.all():
                other = np.zeros(len(normed), dtype=bool)
                other[ti[~plain]] = True
                plain &= ~other[ti]
            if plain.any():
                sel = np.flatnonzero(plain)
                keep = sel[_not_nested(ti[sel], idx.cat[ki[sel]], ns[sel], ne[sel])]
                payload = idx.text_payload
                last, spans = -1, None
                for k, i, s, e, a, b in zip(ki[keep].tolist(), ti[keep].tolist(), ns[keep].tolist(),
                                            ne[keep].tolist(), os_[keep].tolist(), oe[keep].tolist()):
                    entry = payload[k][0]
                    n = normed[i]
                    piece = n.original[a:b]
                    view = "text" if piece.casefold() == n.text[s:e] else "variant"  # normalisation changed it
                    span = make(entry.span_proto, a, b, piece, view)
                    if i == last:
                        spans.append(span)  # type: ignore[union-attr]
                        continue
                    if spans is not None and len(spans) > 1:
                        spans.sort(key=order)
                    last, spans = i, [span]
                    out[i] = spans
                if spans is not None and len(spans) > 1:
                    spans.sort(key=order)
                rest = ~plain
                runs = [(idx, 0, "text", ki[rest], ti[rest], ns[rest], ne[rest], os_[rest], oe[rest])]
        deny: dict[int, list[_Hit]] = {}
        allow: dict[int, list[_Hit]] = {}
        # (start, end, id(entry)) of text-view hits of entries with a pinyin key: the pinyin view finds them
        # again, and such a duplicate changes no outcome (same constraints, allow and context result; the
        # text view wins it in _dedup_views), so it is not added; most texts then keep the one-hit fast path
        twins: set[tuple[int, int, int]] | None = set() if pinyin else None
        special: set[int] = set()  # texts with a deny hit that has a rule to check (not ``plain``)
        with_py: set[int] = set()  # texts with a pinyin-view hit
        for idx, idx_no, view, ki, ti, ns, ne, os_, oe in runs:
            payload = idx.text_payload if view == "text" else idx.py_payload
            check_dead = idx_no == 0 and bool(dead)
            for kx, i, s, e, a, b in zip(ki.tolist(), ti.tolist(), ns.tolist(), ne.tolist(), os_.tolist(),
                                         oe.tolist()):
                for k in payload[kx]:
                    if check_dead and (k.term.list_name, k.slot) in dead:
                        continue
                    if view == "text":
                        if twins is not None and k.pinyin_key is not None:
                            twins.add((i, s, id(k), e))
                        if k.term.allow:
                            into = allow
                        else:
                            into = deny
                            if not k.plain:
                                special.add(i)
                    else:
                        if (i, s, id(k), e) in twins:  # type: ignore[operator]
                            continue
                        with_py.add(i)
                        if not k.plain:
                            special.add(i)
                        into = deny
                    hits = into.get(i)
                    if hits is None:
                        into[i] = [(s, e, k, view, a, b)]
                    else:
                        hits.append((s, e, k, view, a, b))
        for i, raw in deny.items():
            if i in special or i in allow:
                hits = self._rules(normed[i].text, raw, allow.get(i))
            elif len(raw) == 1:
                hits = raw  # nothing to check
            else:
                hits = _drop_nested(raw)
            if not hits:
                continue
            if i in with_py:
                hits = _dedup_views(hits)
            n = normed[i]
            orig, text = n.original, n.text
            spans = []
            for ns_, ne_, entry, view, a, b in hits:
                piece = orig[a:b]
                if view == "text" and piece.casefold() != text[ns_:ne_]:
                    view = "variant"  # normalisation changed the spelling
                spans.append(make(entry.span_proto, a, b, piece, view))
            if len(spans) > 1:
                spans.sort(key=order)
            out[i] = spans
        return out

    def _rules(self, t: str, deny: list[_Hit], allow: list[_Hit] | None) -> list[_Hit]:
        """Constraints, allow lists, context, nesting: the hits of normalised text ``t`` that stay."""
        if any(h[2].checks for h in deny):
            deny = [h for h in deny if not h[2].checks or self._constraints_ok(t, h)]
        if allow and deny:
            deny = _drop_allowed(deny, allow)
        if any(h[2].window for h in deny):
            deny = _context_filter(t, deny)
        return _drop_nested(deny) if deny else []

    def _constraints_ok(self, t: str, h: _Hit) -> bool:
        ns, ne, entry = h[0], h[1], h[2]
        term = entry.term
        lb = term.latin_boundary
        key = entry.key
        if lb is None or lb:
            if (lb or _is_latin(key[0])) and ns > 0 and _is_latin(t[ns]) and _is_latin(t[ns - 1]):
                return False
            if (lb or _is_latin(key[-1])) and ne < len(t) and _is_latin(t[ne - 1]) and _is_latin(t[ne]):
                return False
        return not term.whole_word or self._words.is_word(t, ns, ne)


def _place(normed: list[Normalized], starts: Any, got: list[tuple[int, int, int]]) -> tuple[Any, ...]:
    """An automaton's hits ``(key index, start, end)`` on the joined texts (``starts``: each text's offset there)
    as int64 arrays: key index, text, start and end in that text, start and end in its original."""
    found = np.fromiter(chain.from_iterable(got), dtype=np.int64, count=3 * len(got))
    ki, s, e = found[0::3], found[1::3], found[2::3]
    ti = starts.searchsorted(s, "right") - 1
    base = starts[ti]
    s, e = s - base, e - base
    os_, oe = _to_original_many(normed, ti, s, e)
    return ki, ti, s, e, os_, oe


_NEST_LIMIT = 1 << 62  # _not_nested's int64 codes stay below this


def _not_nested(ti: Any, cat: Any, ns: Any, ne: Any) -> Any:
    """``_drop_nested`` of many texts' hits at once (int64 arrays: text, category number, start, end; in automaton
    order): the positions of the hits that stay, ordered by text, then as ``_drop_nested`` returns them. A hit goes
    when an earlier one in (start, -end) order of its text and category reaches further, or as far from further left.
    """
    h = len(ti)
    pos = np.arange(h, dtype=np.int64)
    order = np.lexsort((pos, -ne, ns, cat, ti))  # per (text, category) in (start, -end) order, ties as found
    t_o, c_o, s_o, e_o = ti[order], cat[order], ns[order], ne[order]
    first = np.ones(h, dtype=bool)
    first[1:] = (t_o[1:] != t_o[:-1]) | (c_o[1:] != c_o[:-1])
    group = np.cumsum(first) - 1
    width = h + 1
    step = (int(e_o.max()) + 1) * width
    if (int(group[-1]) + 1) * step < _NEST_LIMIT:
        # running best per group: the largest end so far and, among equal ends, the earliest hit (so its start),
        # as one int64 code per hit; each group's codes lie above all earlier groups' (``group * step``)
        code = e_o * width + (width - 1 - np.arange(h, dtype=np.int64))
        run = np.maximum.accumulate(code + group * step) - group * step
        prev = np.empty(h, dtype=np.int64)
        prev[0] = code[0]  # (the first hit has no predecessor: any valid code)
        prev[1:] = run[:-1]
        best_end = prev // width
        best_start = s_o[width - 1 - prev % width]
        drop = ~first & ((best_end > e_o) | ((best_end == e_o) & (best_start < s_o)))
    else:  # so many hits in long texts that the codes would overflow int64: the same walk in Python
        drop = np.zeros(h, dtype=bool)
        b_end = b_start = 0
        for j, (f, s, e) in enumerate(zip(first.tolist(), s_o.tolist(), e_o.tolist())):
            if f:
                b_end, b_start = e, s
            elif b_end > e or (b_end == e and b_start < s):
                drop[j] = True
            elif e > b_end:
                b_end, b_start = e, s
    kept = order[~drop]
    return kept[np.lexsort((kept, -ne[kept], ns[kept], ti[kept]))]


def _dedup_views(hits: list[_Hit]) -> list[_Hit]:
    """Hits of a text with some pinyin-view hits, less those a text-view hit of the same place and category (or
    of the same term and list) makes redundant; text-view hits win."""
    if len(hits) == 1:
        return hits
    seen: set[tuple] = set()
    out = []
    for h in sorted(hits, key=_text_first):  # text-view hits win duplicates
        ns, ne, entry, view = h[:4]
        term = entry.term
        cat_key = (ns, ne, term.category)
        ident = (ns, ne, term.term, term.list_name)
        if ident in seen or (view == "pinyin" and cat_key in seen):
            continue
        seen.add(cat_key)
        seen.add(ident)
        out.append(h)
    return out


def _text_first(h: _Hit) -> tuple[bool, int, int]:
    return h[3] != "text", h[0], h[1]


# Texts per normalize_batch call in scan (10 MB of CHNCI/COLD/SWSR comments, CPU time, at 55c374f: normalize_batch
# alone 14.0 / 16.1 / 17.5 / 17.8 / 18.0 MB/s at 256 / 512 / 1,024 / 2,048 / 4,096 texts a call; scan 7 % faster at
# 1,024 than at 512 over 9 paired runs; benchmarks/lexicon_s6.md). Session 5 had found 512 best (lexicon_s5.md).
_NORM_BATCH = 1024


def _chunks(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    """Lists of ``size`` texts (the last may be shorter); ``TypeError`` naming the first non-``str`` item."""
    it = iter(texts)
    done = 0
    while True:
        chunk = list(islice(it, size))
        if not chunk:
            return
        if not set(map(type, chunk)) <= {str}:  # one C-level pass; the loop only to name the culprit
            for i, t in enumerate(chunk):
                if not isinstance(t, str):
                    raise TypeError(f"scan() expects str items, got {type(t).__name__} (item {done + i})")
        done += len(chunk)
        yield chunk


_POOL_MATCHER: LexiconMatcher | None = None  # in a scan worker: the matcher it inherited
_POOL_SNAP: _Snapshot | None = None  # ... and the snapshot of its lists that the scan matches with
_POOL_SEQ: list[str] | None = None  # ... and the texts of the scan, where the caller had them all in a list


def _pool_init(matcher: LexiconMatcher, snap: _Snapshot, seq: list[str] | None = None) -> None:
    global _POOL_MATCHER, _POOL_SNAP, _POOL_SEQ
    _POOL_MATCHER, _POOL_SNAP, _POOL_SEQ = matcher, snap, seq
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the caller stops the scan and shuts the helpers down
    gc.freeze()  # the garbage collector leaves the inherited objects alone: fewer copy-on-write page copies


_VIEWS = ("text", "variant", "pinyin")
_VIEW_CODE = {v: i for i, v in enumerate(_VIEWS)}


def _record(proto: dict, start: int, end: int, text: str, view: str) -> tuple:
    """In a scan helper, what ``_span_from`` would make a span of (the text is cut again by the caller)."""
    return start, end, proto, view


def _record_order(r: tuple) -> tuple[int, int, str, str]:
    return r[0], r[1], r[2]["category"], r[2]["term"] or ""  # as _span_order


def _protos(snap: _Snapshot) -> dict[int, dict]:
    """``id(entry.span_proto) -> span_proto`` of every entry of the snapshot. A forked helper sends that id for
    each span: the snapshot existed before the fork and this process keeps it, so the id names the same entry."""
    out: dict[int, dict] = {}
    for idx in (snap.base, snap.delta):
        if idx is not None:
            for payload in (idx.text_payload, idx.py_payload):
                for entries in payload:
                    for k in entries:
                        out[id(k.span_proto)] = k.span_proto
    return out


def _pool_scan(texts: list[str] | tuple[int, int]) -> tuple[int, bytes, bytes]:
    """In a worker: the chunk's spans as numbers (cheaper to send and to turn into ``Span``s than their fields):
    per span its text and ``start, end, id(span_proto), view`` (int64, in order), and the view codes."""
    assert _POOL_MATCHER is not None
    if isinstance(texts, tuple):  # bounds in the inherited list
        assert _POOL_SEQ is not None
        texts = _POOL_SEQ[texts[0]:texts[1]]
    res = _POOL_MATCHER._scan_chunk(texts, _POOL_SNAP, _record, _record_order)
    nums: list[int] = []
    views = bytearray()
    for i, recs in enumerate(res):
        for a, b, proto, view in recs:
            nums += (i, a, b, id(proto))
            views.append(_VIEW_CODE[view])
    return len(texts), np.array(nums, dtype=np.int64).tobytes(), bytes(views)


def _unpack(packed: tuple[int, bytes, bytes], texts: list[str], protos: dict[int, dict]) -> list[list[Span]]:
    """A worker's answer back to one list of ``Span``s per text of ``texts``, the chunk it was sent."""
    n, nums, views = packed
    with _gc.paused():
        out: list[list[Span]] = [[] for _ in range(n)]
        flat = np.frombuffer(nums, dtype=np.int64).tolist()
        for i, a, b, p, v in zip(flat[0::4], flat[1::4], flat[2::4], flat[3::4], views):
            out[i].append(_span_from(protos[p], a, b, texts[i][a:b], _VIEWS[v]))
    return out


_SEP = "\x00"  # joins texts for one automaton pass; never inside a key (checked when keys are made)


def _join(texts: list[str]) -> tuple[str, Any]:
    """The texts joined by ``_SEP`` for one automaton pass, and each text's start offset (an int64 array)."""
    offs = np.zeros(len(texts), dtype=np.int64)
    if len(texts) > 1:
        np.cumsum(np.fromiter(map(len, texts[:-1]), dtype=np.int64, count=len(texts) - 1) + 1, out=offs[1:])
    return _SEP.join(texts), offs


_CJK_RE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")  # as _is_cjk
_PUA_RE = re.compile("[\ue000-\uf8ff]")  # the range syllable_string uses for syllables


def _drop_nested(hits: list[_Hit]) -> list[_Hit]:
    """Drop a hit lying strictly inside a longer hit of the same category (被开盒 covers 开盒)."""
    if len(hits) < 2:
        return hits
    hits = sorted(hits, key=_longest_first)
    best: dict[str | None, tuple[int, int]] = {}  # category -> (end, start) of the longest-reaching hit so far
    out = []
    for h in hits:
        ns, ne, entry = h[0], h[1], h[2]
        cat = entry.term.category
        b = best.get(cat)
        if b is not None and (b[0] > ne or (b[0] == ne and b[1] < ns)):
            continue
        out.append(h)
        if b is None or ne > b[0]:
            best[cat] = (ne, ns)
    return out


def _longest_first(h: _Hit) -> tuple[int, int]:
    return h[0], -h[1]


def _drop_allowed(deny: list[_Hit], allow: list[_Hit]) -> list[_Hit]:
    """The deny hits that no allow hit of their category (or of none) covers; O((d + a) log a), not d * a."""
    spans: dict[str | None, list[tuple[int, int]]] = {}
    for a_ns, a_ne, a_entry, *_ in allow:
        spans.setdefault(a_entry.term.category, []).append((a_ns, a_ne))
    reach: dict[str | None, tuple[list[int], list[int]]] = {}
    for cat, iv in spans.items():
        iv.sort()
        reach[cat] = [s for s, _ in iv], list(accumulate((e for _, e in iv), max))  # starts, furthest end so far
    out = []
    for h in deny:
        ns, ne = h[0], h[1]
        for cat in (None, h[2].term.category):
            r = reach.get(cat)
            if r is not None:
                j = bisect_right(r[0], ns)
                if j and r[1][j - 1] >= ne:
                    break
        else:
            out.append(h)
    return out


def _context_filter(t: str, hits: list[_Hit]) -> list[_Hit]:
    """Keep context-needing hits only when another hit (or one of their context words) is near."""
    out = []
    for h in hits:
        ns, ne, entry = h[0], h[1], h[2]
        w = entry.window
        if not w:
            out.append(h)
            continue
        words = entry.context_keys
        if words:
            left, right = t[max(0, ns - w):ns], t[ne:ne + w]
            if any(x in left or x in right for x in words):
                out.append(h)
            continue
        for o_ns, o_ne, o_entry, *_ in hits:
            if o_entry.key == entry.key or (o_ns < ne and ns < o_ne):
                continue  # the same term, or a hit overlapping this one (女装 inside 女装大佬), is no context
            gap = max(o_ns - ne, ns - o_ne)
            if gap <= w:
                out.append(h)
                break
    return out


def hit_features(spans: Iterable[Span]) -> dict[str, float]:
    """Fixed-key numeric features of lexicon hits for the classifier and the decision.

    Per category: ``lex_<cat>_count`` (hits), ``lex_<cat>_max_severity`` (0-3); per sub-label
    ``lex_<code>_count``; plus ``lex_any`` and ``lex_severe`` (1.0 when a severity-3 hit exists).
    """
    f: dict[str, float] = {}
    for c in TAXONOMY:
        f[f"lex_{c.code}_count"] = 0.0
        f[f"lex_{c.code}_max_severity"] = 0.0
        for s in c.sublabels:
            f[f"lex_{s.code}_count"] = 0.0
    f["lex_any"] = 0.0
    f["lex_severe"] = 0.0
    for sp in spans:
        if sp.source != "lexicon" or sp.category not in CATEGORIES:
            continue
        f["lex_any"] = 1.0
        f[f"lex_{sp.category}_count"] += 1.0
        sev = float(sp.severity or 0)
        key = f"lex_{sp.category}_max_severity"
        f[key] = max(f[key], sev)
        if sp.sublabel and f"lex_{sp.sublabel}_count" in f:
            f[f"lex_{sp.sublabel}_count"] += 1.0
        if sev >= 3:
            f["lex_severe"] = 1.0
    return f
