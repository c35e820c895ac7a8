"""Evasion-proof normalisation of Chinese social text, with an alignment back to the original.

Design (after Hugging Face ``tokenizers``' ``NormalizedString``): every step is a small named object with one
``normalize(work)`` method; the steps run in a fixed order (``STEP_ORDER``) inside a ``Sequence``, and one
alignment map (for every current character, its ``(start, end)`` span in the ORIGINAL text) is carried through
all of them, including steps that delete, merge or expand characters. Evidence found on the normalised text is
mapped back with ``Normalized.to_original(start, end)``.

Steps, in order (each switchable in ``NormalizeConfig``, saved with a model so training and inference agree):

1. ``invisible``     delete zero-width characters, variation selectors, bidi/format and control characters
2. ``nfkc`` / ``fullwidth`` / ``stylised`` / ``casefold``  Unicode NFKC, full-width -> half-width, 𝐬𝐛 ⓢⓑ ①
   ⒈ 🅢 -> plain letters and digits, case folding (one fused table lookup)
3. ``html``          strip tags/scripts/styles of (WeChat-article) HTML, keep title and paragraph breaks
4. ``structure``     URLs, @mentions, #话题#, 【title】 and [bracket emoticons] recorded as ``parts``; URLs are
   protected from the later rewriting steps, of a mention only its ``@`` and the character that ends it (the
   name after ``@`` is text the reader sees and is normalised like any other: ``@你是沙比`` -> ``@你是傻逼``). An
   ``@`` between the two halves of an offensive term is noise, not a mention (``你是傻@逼`` -> ``你是傻逼``; see
   ``_insult_ats``)
5. ``noise``         noise symbols, spaces and emoji inserted BETWEEN two CJK characters are deleted (傻*逼, 傻 逼,
   傻🐶逼); Latin words, numbers and punctuation are never glued or removed. ``numerals`` (switched by
   ``stylised``) then turns runs of 壹贰叁 and 〇 next to digits into digits (after noise: 壹*贰 -> 12)
6. ``traditional``   traditional -> simplified through OpenCC (``t2s``)
7. ``variants``      variant / look-alike characters (儍 -> 傻, ⻢ -> 马)
8. ``radicals``      radical-split recombination (扌喿 -> 操, 女马 -> 妈)
9. ``repeats``       runs of one character longer than ``max_repeat`` collapse (哈哈哈哈哈 -> 哈哈哈); the run
   lengths are kept in ``Normalized.repeats``. The emoji, abbreviations and homophones steps collapse the runs
   their own edits make (sb逼逼逼 -> 傻逼逼逼), so that normalising twice changes nothing
10. ``emoji``        word emoji keep the emoji and gain their Chinese word (🐶 -> 🐶狗)
11. ``abbreviations`` Latin abbreviations, full pinyin and 饭圈 spellings -> canonical Chinese (nmsl -> 你妈死了);
   every output character aligns to the whole spelling; Latin spellings only at Latin word boundaries
12. ``homophones``   homophone spellings of offensive terms -> the canonical term (煞笔 -> 傻逼), by table and then,
   on the table's output, by whole-syllable pinyin match (the "pinyin step")
13. ``restore``      (off by default) context-aware restoration: homophones, full pinyin and confident initials
   decoded with a character trigram LM (``qinglang_nlp.restore``; 沙比 -> 傻逼 in context, jintian -> 今天, 非常ex
   -> 非常恶心); each output character aligns to the whole spelling it replaces; protected parts (URLs, @mentions …)
   are left alone. Around the restored text the ``noise`` step runs again (its pinyin is CJK now), and then the
   ``homophones`` step over the whole text (shabi -> 煞笔 -> 傻逼), each if switched on

The pinyin view (``pinyin_view``) is not part of ``.text``; it is computed lazily, only when asked.
``normalize_batch`` normalises many texts in one pass over a joined string (same result, much less overhead).
``explain`` returns each step's changes with offsets into the original (for ``qinglang normalize --explain``).

Speed: the common path is C-level work over the whole string (numpy code-point tables for the 1:1 maps and for
"is there anything to do", regexes that skip ahead on a first-character class, OpenCC only on windows around
traditional characters); Python-level work is proportional to the number of changes, not to the length of the
text. ``normalize_batch`` runs every step once per chunk of about 200,000 joined characters; the texts of a chunk
share its alignment arrays (``_Chunk``), and their offsets there and their ``Part``/``Repeat`` objects are
derived only when first read. On long texts (a chunk) several steps work on the code points with numpy tables
(which characters are noise, CJK, 1:n maps, NFKC-unstable, candidates of the table steps and of abbreviations),
and the structure step keeps its thousands of parts per MB as numpy columns.
The work state encodes its text's code points and collects its astral characters once and shares them between
steps. Tables are built lazily on first use, once per process, under a lock (under a second in total).
"""
from __future__ import annotations

import bisect
import functools
import operator
import re
import string
import threading
import unicodedata
from array import array
from collections.abc import Callable, Iterable
from collections.abc import Sequence as _Seq
from dataclasses import asdict, dataclass, fields
from itertools import accumulate, compress, islice, repeat
from pathlib import Path
from typing import Any, NamedTuple

from . import _gc

__all__ = [
    "STEP_ORDER",
    "NormalizeConfig",
    "Normalized",
    "Part",
    "PinyinView",
    "Repeat",
    "abbreviation_table",
    "explain",
    "fandom_glossary",
    "normalize",
    "normalize_batch",
    "pinyin_view",
    "syllable_string",
    "to_pinyin",
]

DATA_DIR = Path(__file__).parent / "data" / "normalize"

STEP_ORDER: tuple[str, ...] = (
    "invisible", "unicode", "html", "structure", "noise", "numerals", "traditional", "variants", "radicals", "repeats",
    "emoji", "abbreviations", "homophones", "restore",
)


@dataclass(frozen=True)
class NormalizeConfig:
    """Named, individually switchable normalisation steps (saved in a model's config).

    Every step is on by default except ``restore`` (the context-aware homophone/pinyin restorer of
    ``qinglang_nlp.restore``: about 1 MB/s, so models switch it on in their config). ``max_repeat`` is the longest run of one character that is kept.
    ``targets`` optionally names a UTF-8 file of extra offensive terms (one per line) that the ``abbreviations``
    step also restores from their full pinyin (>= 5 letters) and initials (>= 4 letters) ("" = only the built-in
    tables); spellings shared by two terms are skipped. Extra terms are not matched by homophone: a large list
    rewrites ordinary words (没有 -> 美幼).
    """

    html: bool = True
    invisible: bool = True
    nfkc: bool = True
    fullwidth: bool = True
    stylised: bool = True
    casefold: bool = True
    structure: bool = True
    noise: bool = True
    traditional: bool = True
    variants: bool = True
    radicals: bool = True
    repeats: bool = True
    max_repeat: int = 3
    emoji: bool = True
    abbreviations: bool = True
    homophones: bool = True
    restore: bool = False
    targets: str = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "targets":
                if not isinstance(v, str):
                    raise TypeError(f"NormalizeConfig.targets must be a path (str), got {type(v).__name__}")
            elif f.name == "max_repeat":
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise ValueError(f"NormalizeConfig.max_repeat must be an int >= 1, got {v!r}")
            elif not isinstance(v, bool):
                raise TypeError(f"NormalizeConfig.{f.name} must be a bool, got {type(v).__name__} {v!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field, for a model's config file."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> NormalizeConfig:
        """Inverse of ``to_dict``; missing keys take their defaults, unknown keys raise ``ValueError``."""
        if not d:
            return cls()
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown normalisation steps {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)

    @classmethod
    def none(cls) -> NormalizeConfig:
        """A config with every step off (``.text`` equals the input)."""
        return cls(**{f.name: False for f in fields(cls) if f.name not in ("max_repeat", "targets")})


class Part(NamedTuple):
    """A structured part of the text: kind is url, mention, topic, title, emoticon or emoji.

    ``start``/``end`` index the normalised text, ``orig_start``/``orig_end`` the original.
    """

    kind: str
    start: int
    end: int
    orig_start: int
    orig_end: int
    value: str


class Repeat(NamedTuple):
    """A collapsed run: ``char`` occurred ``count`` times at ``orig_start:orig_end``; the kept run is at start:end."""

    char: str
    count: int
    start: int
    end: int
    orig_start: int
    orig_end: int


# --------------------------------------------------------------------------------------------------------------
# Normalized
# --------------------------------------------------------------------------------------------------------------

class _Chunk:
    """What the Normalized objects of one batch chunk (or one ``normalize`` call) share: the alignment arrays of
    the joined text (``None`` = identity), the lists of the chunk's normalised texts and originals (``texts``,
    ``originals``: text ``k`` of the chunk is ``texts[k]``), and the raw parts (columnar structure parts, see
    ``_Work.struct``, and tuples) and repeats (original offsets).

    Everything else is derived on first use, not while the batch runs (most callers never need it): each text's
    offsets in the joined normalised text and in the joined original (``offsets``), and the parts and repeats
    sorted, with text ``k``'s own at ``parts[part_at[k]:part_at[k + 1]]`` (``index``; ``part_at`` None = no
    parts, likewise ``rep_at``). Threads may race to derive them: both compute the same values."""

    __slots__ = ("_index", "_offs", "_raw", "ends", "originals", "starts", "texts")

    def __init__(self, starts: array | None, ends: array | None, texts: list[str], originals: list[str],
                 parts: list | None = None, repeats: list | None = None, sort_repeats: bool = True,
                 struct: tuple[Any, Any, Any] | None = None):
        self.starts, self.ends, self.texts, self.originals = starts, ends, texts, originals
        self._raw = (struct, parts, repeats, sort_repeats)
        self._offs: tuple[list[int], list[int]] | None = None
        self._index: tuple | None = None

    def offsets(self) -> tuple[list[int], list[int]]:
        """``(los, bases)``: every text's offset in the joined normalised text and in the joined original."""
        got = self._offs
        if got is None:
            n = len(self.texts)
            got = self._offs = (_offsets(map(len, self.texts), n), _offsets(map(len, self.originals), n))
        return got

    def index(self) -> tuple[list, list[int] | None, list, list[int] | None]:
        """``(parts, part_at, repeats, rep_at)``: the raw parts sorted by original span, the raw repeats (sorted
        by original start in a batch chunk), and where each text's own begin."""
        got = self._index
        if got is None:
            struct, parts, repeats, sort_repeats = self._raw
            bases = self.offsets()[1]
            parts = _all_parts(struct, parts or [])
            parts = sorted(parts, key=_part_key) if parts else []
            repeats = (sorted(repeats, key=_repeat_key) if sort_repeats else list(repeats)) if repeats else []
            got = self._index = (parts, _first_at([p[1] for p in parts], bases) if parts else None,
                                 repeats, _first_at([r[2] for r in repeats], bases) if repeats else None)
        return got


def _first_at(sorted_starts: list[int], bases: list[int]) -> list[int]:
    """For every text offset in ``bases`` (plus the end), the index of the first item starting at or after it."""
    if len(bases) < _SHORT:
        return [bisect.bisect_left(sorted_starts, b) for b in bases] + [len(sorted_starts)]
    import numpy as np

    return np.searchsorted(np.fromiter(sorted_starts, dtype=np.int64, count=len(sorted_starts)),
                           np.fromiter(bases, dtype=np.int64, count=len(bases))).tolist() + [len(sorted_starts)]


class Normalized:
    """Normalised text plus, for every normalised character, its span ``(start, end)`` in the original.

    ``parts`` lists structured parts (URLs, mentions, topics, titles, emoticons, word emoji) and ``repeats`` the
    collapsed character runs with their original counts (a feature for the model).

    The texts of one ``normalize_batch`` chunk share one alignment (a ``_Chunk``; ``_k`` is this text's index
    there), and ``Part``/``Repeat`` objects are built when first read: most callers never read them, and building
    them for every emoticon of a batch cost about a third of the batch time.
    """

    __slots__ = ("_chunk", "_k", "_parts", "_repeats", "original", "text")

    def __init__(
        self,
        original: str,
        text: str,
        alignments: list[tuple[int, int]] | None = None,
        *,
        parts: _Seq[Part] = (),
        repeats: _Seq[Repeat] = (),
    ):
        self.original = original
        self.text = text
        self._repeats = tuple(repeats)
        self._parts = tuple(parts)
        self._k = 0
        if alignments is None:
            if len(original) != len(text):
                raise ValueError("alignments are required when text and original differ in length")
            self._chunk = _Chunk(None, None, [text], [original])
        else:
            if len(alignments) != len(text):
                raise ValueError(f"{len(alignments)} alignments for a text of {len(text)} characters")
            self._chunk = _Chunk(array("i", [a for a, _ in alignments]), array("i", [b for _, b in alignments]),
                                 [text], [original])

    # In batch results ``_parts`` and ``_repeats`` stay unset until first read (one attribute less to set on
    # 18,000 objects per MB).

    @property
    def parts(self) -> tuple[Part, ...]:
        """Structured parts, in order of their position in the original."""
        try:
            return self._parts
        except AttributeError:
            self._resolve()
            return self._parts

    @property
    def repeats(self) -> tuple[Repeat, ...]:
        """Collapsed runs of one character, with their original counts."""
        try:
            return self._repeats
        except AttributeError:
            self._resolve()
            return self._repeats

    def _resolve(self) -> None:
        """Build the ``Part`` and ``Repeat`` objects of this text from the chunk's raw (original-offset) ones."""
        c, k, text = self._chunk, self._k, self.text
        los, bases = c.offsets()
        starts, lo, base = c.starts, los[k], bases[k]
        parts, part_at, repeats, rep_at = c.index()
        hi = lo + len(text)

        def to_norm(os_: int, oe: int) -> tuple[int, int]:
            if starts is None:
                return os_ - base, oe - base
            return bisect.bisect_left(starts, os_, lo, hi) - lo, bisect.bisect_left(starts, oe, lo, hi) - lo

        plist = []
        if part_at is not None:
            for kind, os_, oe, value in parts[part_at[k]:part_at[k + 1]]:
                s, e = to_norm(os_, oe)
                plist.append(Part(kind, s, e, os_ - base, oe - base, value if kind == "emoji" else text[s:e]))
        rlist = []
        if rep_at is not None:
            for ch, cnt, os_, oe in repeats[rep_at[k]:rep_at[k + 1]]:
                s, e = to_norm(os_, oe)
                rlist.append(Repeat(ch, cnt, s, e, os_ - base, oe - base))
        self._repeats = tuple(rlist)  # threads may race here: both build the same values
        self._parts = tuple(plist)

    @property
    def alignments(self) -> list[tuple[int, int]]:
        """For every normalised character, its ``(start, end)`` span in the original."""
        n = len(self.text)
        c = self._chunk
        if c.starts is None:
            return [(i, i + 1) for i in range(n)]
        los, bases = c.offsets()
        lo, b = los[self._k], bases[self._k]
        return [(s - b, e - b) for s, e in zip(c.starts[lo:lo + n], c.ends[lo:lo + n])]

    def _span(self, i: int) -> tuple[int, int]:
        c = self._chunk
        if c.starts is None:
            return i, i + 1
        los, bases = c.offsets()
        j = los[self._k] + i
        b = bases[self._k]
        return c.starts[j] - b, c.ends[j] - b

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map the normalised span ``[start, end)`` to a span of the original text."""
        if not (0 <= start <= end <= len(self.text)):
            raise ValueError(f"span {start}:{end} is outside the normalised text of length {len(self.text)}")
        if start == end:
            pos = self._span(start)[0] if start < len(self.text) else len(self.original)
            return pos, pos
        s = self._span(start)[0]
        e = self._span(end - 1)[1]
        return s, max(s, e)

    def to_normalized(self, orig_start: int, orig_end: int) -> tuple[int, int]:
        """Smallest normalised span whose characters come from inside ``[orig_start, orig_end)`` of the original."""
        starts = [a for a, _ in self.alignments]
        return bisect.bisect_left(starts, orig_start), bisect.bisect_left(starts, orig_end)

    def __repr__(self) -> str:
        return f"Normalized({self.text!r})"


def _to_original_many(normed: _Seq[Normalized], which: Any, starts: Any, ends: Any) -> tuple[Any, Any]:
    """``normed[which[h]].to_original(starts[h], ends[h])`` for every ``h`` at once (the lexicon's hits), as two
    numpy arrays (original starts, original ends). ``which``, ``starts`` and ``ends`` are int64 numpy arrays;
    every span must be non-empty and inside its text (not checked). One numpy gather over the alignment arrays
    of the batch chunks the texts come from, instead of two offset look-ups per span in Python."""
    import numpy as np

    if not len(which):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    def one_by_one() -> tuple[Any, Any]:
        pairs = [normed[i].to_original(s, e) for i, s, e in zip(which.tolist(), starts.tolist(), ends.tolist())]
        return (np.fromiter((p[0] for p in pairs), dtype=np.int64, count=len(pairs)),
                np.fromiter((p[1] for p in pairs), dtype=np.int64, count=len(pairs)))

    if not set(map(type, normed)) <= {Normalized}:  # a subclass may map differently: ask each text
        return one_by_one()
    chunks = list(map(_CHUNK_OF, normed))
    first = chunks[0]
    n = len(normed)
    if first.starts is not None and len(first.texts) == n and chunks.count(first) == n \
            and list(map(_K_OF, normed)) == list(range(n)):
        # the usual case: the texts of one batch chunk, in order
        s_all = np.frombuffer(first.starts, dtype=np.int32)
        e_all = np.frombuffer(first.ends, dtype=np.int32)
        lo = _offsets_np(first.texts)[which]
        base = _offsets_np(first.originals)[which]
    else:
        # several chunks (texts normalised alone in a batch, or hand-made): their alignments end to end, and every
        # text's offsets (in its chunk's joined texts) one after the other, chunk by chunk
        uniq = list(dict.fromkeys(chunks))
        if sum(len(c.starts) if c.starts is not None else sum(map(len, c.texts)) for c in uniq) > 64 * len(which) + 4096:
            # texts picked from many large chunks (a few hits against whole chunks' arrays): concatenating those
            # arrays would cost more than asking each text
            return one_by_one()
        number = {id(c): j for j, c in enumerate(uniq)}
        s_parts, e_parts, lo_parts, base_parts, row_at = [], [], [], [], []
        size = rows = 0
        for c in uniq:
            if c.starts is None:  # identity: joined original offsets equal joined normalised ones
                total = int(_offsets_np(c.texts)[-1]) + len(c.texts[-1])
                s_parts.append(np.arange(total, dtype=np.int32))
                e_parts.append(np.arange(1, total + 1, dtype=np.int32))
            else:
                s_parts.append(np.frombuffer(c.starts, dtype=np.int32))
                e_parts.append(np.frombuffer(c.ends, dtype=np.int32))
            lo_parts.append(_offsets_np(c.texts) + size)
            base_parts.append(_offsets_np(c.originals))
            row_at.append(rows)
            size += len(s_parts[-1])
            rows += len(c.texts)
        s_all, e_all = np.concatenate(s_parts), np.concatenate(e_parts)
        chunk_no = np.fromiter(map(number.__getitem__, map(id, chunks)), dtype=np.int64, count=n)[which]
        row = np.array(row_at, dtype=np.int64)[chunk_no] + np.fromiter(map(_K_OF, normed), dtype=np.int64,
                                                                         count=n)[which]
        lo = np.concatenate(lo_parts)[row]
        base = np.concatenate(base_parts)[row]
    o_start = s_all[lo + starts] - base  # the first character's start
    o_end = np.maximum(e_all[lo + ends - 1] - base, o_start)  # the last one's end (never before the start)
    return o_start, o_end


_CHUNK_OF, _K_OF = operator.attrgetter("_chunk"), operator.attrgetter("_k")


def _offsets_np(texts: list[str]) -> Any:
    """``_offsets`` of these texts as an int64 numpy array of ``len(texts)`` values (no total)."""
    import numpy as np

    out = np.zeros(len(texts), dtype=np.int64)
    if len(texts) > 1:
        np.cumsum(np.fromiter(map(len, texts[:-1]), dtype=np.int64, count=len(texts) - 1) + _SEP_LEN, out=out[1:])
    return out


# --------------------------------------------------------------------------------------------------------------
# Work state and edits (the single alignment map carried through all steps)
# --------------------------------------------------------------------------------------------------------------

# An edit ``(s, e, repl, anchor_s, anchor_e)`` replaces work.text[s:e] by ``repl``. When len(repl) == e - s and
# no anchor is given, characters align one-to-one; otherwise every output character aligns to the union of the
# anchor span (default: s:e) in the original. Deletions have repl "", insertions s == e plus an anchor.


def _identity(n: int) -> tuple[array, array]:
    """Alignment arrays of an unchanged text of length n (built with numpy: 20x faster than array(range))."""
    if n < _SHORT:
        return array("i", range(n)), array("i", range(1, n + 1))
    import numpy as np

    r = np.arange(n + 1, dtype=np.int32)
    starts, ends = array("i"), array("i")
    starts.frombytes(r[:-1].tobytes())
    ends.frombytes(r[1:].tobytes())
    return starts, ends


# Parts whose characters later steps leave alone. A URL is kept whole (the "sb" of t.cn/A6sb is no insult). Of a
# mention only its "@" is protected (``_Work.protected`` gives the marker's span, not the part's): on Weibo a
# mention runs from "@" to the next space or punctuation, so "@你是沙比" may name a user, but for moderation the
# name is content the reader sees, and protecting it let "@" in front of an insult defeat every later step
# (audit finding). The name is normalised like any other text; the noise step keeps the space or punctuation
# that ends a mention (``_Work.mention_ends``), so that the mention ends in the same place when the output is
# normalised again (idempotence of the text and of the parts). Topics, titles and [emoticons] are ordinary text
# and are normalised too: "[你是沙比]" is no Weibo emoticon and is shown as the text it is (the price: the real
# [草泥马] emoticon becomes [操你妈], as 草泥马 does anywhere else).
_PROTECTED = frozenset({"url", "mention"})
_NOISE_PROTECTED = _PROTECTED | {"topic"}  # the # of #话题# is not noise
_MARKERS = frozenset("@#[]")
_KIND, _START, _END = operator.itemgetter(0), operator.itemgetter(1), operator.itemgetter(2)
_ED_START, _ED_END, _ED_REPL = _KIND, _START, _END  # the same getters on an edit (s, e, repl, anchor_s, anchor_e)


def _protected_end(part: tuple) -> int:
    """The end of a part's protected span: its own end, or for a mention the end of its ``@``."""
    return part[1] + 1 if part[0] == "mention" else part[2]


class _Work:
    """Mutable state passed through the steps: current text, alignment arrays, parts and repeats."""

    __slots__ = ("_astral", "_cand", "_cps", "_prot", "ends", "inner_mentions", "inner_urls", "log", "noise_ats",
                 "original", "parts", "repeats", "starts", "struct", "text")

    def __init__(self, original: str, log: list | None = None):
        self.original = original
        self.text = original
        self.starts: array | None = None  # None = identity alignment
        self.ends: array | None = None
        self.parts: list[tuple[str, int, int, str | None]] = []  # (kind, orig_s, orig_e, value: emoji only)
        # the structure step's parts of a long text, columnar: (kind codes into _KIND_NAMES, orig starts, orig
        # ends) as numpy arrays, in text order; they come before ``parts`` (see ``all_parts``)
        self.struct: tuple[Any, Any, Any] | None = None
        self.repeats: list[tuple[str, int, int, int]] = []  # (char, count, orig_s, orig_e)
        self.inner_mentions: list[tuple[int, int]] = []  # ORIGINAL spans of @mentions inside topics/titles
        self.inner_urls: list[tuple[int, int]] = []  # ORIGINAL spans of URLs inside topics/titles
        # ORIGINAL positions of "@" signs that are noise inside a word, not mentions (see ``_insult_ats``): the
        # structure step does not see them, the noise step deletes them
        self.noise_ats: list[int] = []
        self.log = log
        self._prot: dict[frozenset[str], tuple[list[int], list[int]]] | None = None
        self._astral: tuple[str, frozenset[str]] | None = None
        self._cps: tuple[str, Any] | None = None
        self._cand: tuple[str, list[int]] | None = None

    def codepoints(self) -> Any:
        """The current text as a numpy array of code points (uint32), encoded once per version of the text."""
        got = self._cps
        if got is None or got[0] is not self.text:
            import numpy as np

            got = self._cps = (self.text, np.frombuffer(self.text.encode("utf-32-le", "surrogatepass"), dtype="<u4"))
        return got[1]

    def remember_codepoints(self, cps: Any, astral: frozenset[str] | None = None) -> None:
        """Record the code points of the current text (and so its astral characters, unless given), which a step
        has at hand."""
        import numpy as np

        self._cps = (self.text, cps)
        if astral is None:
            astral = frozenset(map(chr, np.unique(cps[cps >= 0x10000]).tolist()))
        self._astral = (self.text, astral)

    def astral_chars(self) -> frozenset[str]:
        """The astral characters (emoji, rare CJK) that the current text may contain: a superset, shared by the
        steps' character finders (which only use it to skip a scan). Computed once, then carried through edits
        (which delete characters or insert their replacements) instead of rescanning the text after each step."""
        got = self._astral
        if got is None or got[0] is not self.text:
            got = self._astral = (self.text, frozenset(_ASTRAL.findall(self.text)))
        return got[1]

    def candidates(self) -> list[int]:
        """Sorted positions in the current text of every character that the numerals, traditional, variants or
        radicals step looks for (``_cand_finder``): one scan shared by the four steps, each of which filters it by
        its own characters. Carried through edits that keep the length (those four steps' usual edits); any other
        edit makes the next call scan again."""
        got = self._cand
        if got is None or got[0] is not self.text:
            if len(self.text) >= _SHORT:  # one table lookup per code point: twice as fast as the regex scan
                import numpy as np

                pos = np.flatnonzero(_cand_table().take(self.codepoints())).tolist()
            else:
                pos = _cand_finder().positions(self.text, self.astral_chars())
            got = self._cand = (self.text, pos)
        return got[1]

    def orig_span(self, s: int, e: int) -> tuple[int, int]:
        if self.starts is None:
            return s, e
        if s >= e:
            p = self.starts[s] if s < len(self.text) else (self.ends[-1] if len(self.text) else 0)
            return p, p
        return self.starts[s], self.ends[e - 1]

    def has_parts(self) -> bool:
        """Whether any part has been recorded."""
        return self.struct is not None or bool(self.parts)

    def all_parts(self) -> list[tuple[str, int, int, str | None]]:
        """Every part as a ``(kind, orig_s, orig_e, value)`` tuple: the columnar structure parts, then ``parts``."""
        return _all_parts(self.struct, self.parts)

    def protected(self, kinds: frozenset[str]) -> tuple[list[int], list[int]]:
        """ORIGINAL-text starts and ends of the protected spans of the parts of these kinds, sorted (cached until
        parts change): a part's whole span, except for a mention, of which only the ``@`` is protected (see
        ``_PROTECTED``)."""
        if self._prot is None:
            self._prot = {}
        got = self._prot.get(kinds)
        if got is None:
            inner = bool(self.inner_mentions and "mention" in kinds or self.inner_urls and "url" in kinds)
            if self.struct is not None and not inner and all(p[0] not in kinds for p in self.parts):
                # the columnar structure parts (thousands per MB) selected by numpy; they come in text order, so
                # they are sorted, which the check confirms (else: the general way)
                codes, os_, oe = self.struct
                sel = _kind_mask(kinds)[codes]
                starts, ends = os_[sel], oe[sel]
                if "mention" in kinds:
                    ends = ends.copy()
                    at = codes[sel] == 1  # the code of "mention" (_KIND_NAMES)
                    ends[at] = starts[at] + 1
                if bool((starts[1:] > starts[:-1]).all()):
                    got = self._prot[kinds] = (starts.tolist(), ends.tolist())
                    return got
            # C-level loops; the parts come in text order, so they are usually sorted already, which the check
            # below confirms (else: the general way)
            parts = self.all_parts()
            parts = list(compress(parts, map(kinds.__contains__, map(_KIND, parts))))
            starts = list(map(_START, parts))
            if not inner and all(map(operator.lt, starts, islice(starts, 1, None))):
                got = self._prot[kinds] = (starts, list(map(_protected_end, parts)))
                return got
            spans = list(zip(starts, map(_protected_end, parts)))
            if inner:
                # mentions inside topics/titles are protected like any mention (their "@"), so that a title that
                # is one only on a later pass changes nothing. Parts never overlap, these do: an "@" inside a
                # protected topic is dropped below (``is_protected`` needs spans that do not nest)
                if "mention" in kinds:
                    spans += [(s, s + 1) for s, _ in self.inner_mentions]
                if "url" in kinds:  # and URLs inside them, whole, like any URL
                    spans += self.inner_urls
            spans.sort()
            if inner:
                flat, last = [], -1
                for s, e in spans:
                    if s >= last:
                        flat.append((s, e))
                        last = e
                spans = flat
            got = self._prot[kinds] = ([s for s, _ in spans], [e for _, e in spans])
        return got

    def mention_ends(self) -> list[int]:
        """Sorted CURRENT-text positions of the characters that end a mention (the first character after its
        name; mentions inside topics and titles included): the noise step keeps a run holding one or ending right
        before one, so that the mention ends there again when the output is normalised once more."""
        ends: list[int] = []
        if self.struct is not None:
            codes, _, oe = self.struct
            ends = oe[codes == 1].tolist()
        ends += [e for kind, _, e, _ in self.parts if kind == "mention"]
        ends += [e for _, e in self.inner_mentions]
        if not ends:
            return ends
        ends.sort()
        if self.starts is None:
            return ends
        # the first current character from at or after the original end (its alignment starts are sorted)
        if len(ends) < _SHORT:
            return [bisect.bisect_left(self.starts, e) for e in ends]
        import numpy as np

        return np.searchsorted(np.frombuffer(self.starts, dtype=np.int32), ends).tolist()

    def is_protected(self, s: int, e: int, kinds: frozenset[str] | None = None) -> bool:
        """Whether current span ``[s, e)`` overlaps a URL or the ``@`` of a mention (or a part of ``kinds``)."""
        n = len(self.text)
        s, e = max(0, s), min(n, e)
        if s >= e:
            return False
        os_, oe = self.orig_span(s, e)
        starts, ends = self.protected(_PROTECTED if kinds is None else kinds)
        i = bisect.bisect_left(starts, max(oe, os_ + 1)) - 1
        return i >= 0 and ends[i] > os_

    def apply(self, edits: list, step: str) -> None:
        """Apply sorted, non-overlapping edits to the text and the alignment."""
        if not edits:
            return
        text = self.text
        if self.log is None and all(a is None and len(r) == e - s for s, e, r, a, _ in edits):
            # 1:1 replacements only (traditional, variants, numerals): every character keeps its alignment, so
            # the arrays stay as they are (copying them cost ~0.2 ms per step and chunk)
            out = []
            pos = 0
            for s, e, r, _, _ in edits:
                out.append(text[pos:s])
                out.append(r)
                pos = e
            out.append(text[pos:])
            cand = self._cand
            self._after_edit(text, "".join(out), edits)
            if cand is not None and cand[0] is text:
                chars = _cand_finder().chars
                edited: set[int] = set()
                added = []
                for s, e, r, _, _ in edits:
                    edited.update(range(s, e))
                    added += [s + i for i, c in enumerate(r) if c in chars]
                kept = [p for p in cand[1] if p not in edited] if edited else cand[1]
                self._cand = (self.text, sorted(kept + added) if added else kept)
            return
        if self.starts is None:
            starts, ends = _identity(len(text))
        else:
            starts, ends = self.starts, self.ends
        if self.log is None and not any(map(_ED_REPL, edits)):
            # deletions only (noise, invisible): the kept pieces of the text and of both arrays are cut and joined
            # by C-level maps, with no Python code per edit
            cuts = list(map(slice, [0, *map(_ED_END, edits)], [*map(_ED_START, edits), len(text)]))
            ns, ne = array("i"), array("i")
            ns.frombytes(b"".join(map(memoryview(starts).__getitem__, cuts)))
            ne.frombytes(b"".join(map(memoryview(ends).__getitem__, cuts)))
            self.starts, self.ends = ns, ne
            self._after_edit(text, "".join(map(text.__getitem__, cuts)), edits)
            return
        if self.log is None and all(a == s and b == e > s for s, e, _, a, b in edits):
            # every edit anchored to its own span (1:n maps, repeats, abbreviations): each output character of
            # an edit gets the span's first start and last end; pieces joined by C-level maps as above
            ss, es = list(map(_ED_START, edits)), list(map(_ED_END, edits))
            reps = list(map(_ED_REPL, edits))
            ks = list(map(len, reps))
            cuts = list(map(slice, [0, *es], [*ss, len(text)]))
            firsts = list(map(slice, ss, map((1).__add__, ss)))
            lasts = list(map(slice, map((-1).__add__, es), es))
            n = 2 * len(edits) + 1
            texts: list[Any] = [None] * n
            texts[0::2] = map(text.__getitem__, cuts)
            texts[1::2] = reps
            new = []
            for arr, spans in ((starts, firsts), (ends, lasts)):
                pieces: list[Any] = [None] * n
                pieces[0::2] = map(memoryview(arr).__getitem__, cuts)
                pieces[1::2] = map(operator.mul, map(arr.__getitem__, spans), ks)
                out_arr = array("i")
                out_arr.frombytes(b"".join(pieces))
                new.append(out_arr)
            self.starts, self.ends = new
            self._after_edit(text, "".join(texts), edits)
            return
        out: list[str] = []
        ns = array("i")
        ne = array("i")
        pos = 0
        log = self.log
        for s, e, repl, a, b in edits:
            if s > pos:
                out.append(text[pos:s])
                ns += starts[pos:s]
                ne += ends[pos:s]
            if repl:
                k = len(repl)
                if a is None and k == e - s:
                    ns += starts[s:e]
                    ne += ends[s:e]
                else:
                    a0 = s if a is None else a
                    b0 = e if b is None else b
                    os_ = starts[a0] if a0 < len(text) else (ends[-1] if len(text) else 0)
                    oe = ends[b0 - 1] if b0 > a0 else os_
                    ns += array("i", [os_]) * k
                    ne += array("i", [oe]) * k
                out.append(repl)
            if log is not None:
                a0 = s if a is None else a
                b0 = e if b is None else b
                if b0 > a0:
                    os_, oe = starts[a0], ends[b0 - 1]
                else:
                    os_ = oe = starts[a0] if a0 < len(text) else len(self.original)
                log.append({"start": os_, "end": oe, "original": self.original[os_:oe],
                            "before": text[s:e], "after": repl})
            pos = e
        if pos < len(text):
            out.append(text[pos:])
            ns += starts[pos:]
            ne += ends[pos:]
        self.starts, self.ends = ns, ne
        self._after_edit(text, "".join(out), edits)

    def _after_edit(self, text: str, new_text: str, edits: list) -> None:
        """Swap in the edited text, carrying the astral-character superset through the edits."""
        got = self._astral
        if got is not None and got[0] is text:
            added = "".join(ed[2] for ed in edits if ed[2] and not ed[2].isascii())
            self._astral = (new_text, got[1] | frozenset(_ASTRAL.findall(added)) if added else got[1])
        self.text = new_text

    def replace_same_length(self, new_text: str) -> None:
        """Swap in a text of the same length whose characters align one-to-one with the current one."""
        if self.log is not None and new_text != self.text:
            old = self.text
            i, n = 0, len(old)
            while i < n:
                if old[i] != new_text[i]:
                    j = i
                    while j < n and old[j] != new_text[j]:
                        j += 1
                    os_, oe = self.orig_span(i, j)
                    self.log.append({"start": os_, "end": oe, "original": self.original[os_:oe],
                                     "before": old[i:j], "after": new_text[i:j]})
                    i = j
                else:
                    i += 1
        self.text = new_text


# --------------------------------------------------------------------------------------------------------------
# Character classes and lazily loaded tables
# --------------------------------------------------------------------------------------------------------------

CJK = "\u2e80-\u2eff\u2f00-\u2fdf\u3005\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
_INVISIBLE_BMP = (
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
)
_INVISIBLE_AST = "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
_INVISIBLE = _INVISIBLE_BMP + _INVISIBLE_AST
_INVISIBLE_RE = re.compile(f"[{_INVISIBLE}]+")
# a single-character class (no "+") lets re skip ahead quickly: 5x faster for the common "nothing found" case
_INVISIBLE_HINT = re.compile(f"[{_INVISIBLE_BMP}]")
_INVISIBLE_AST_RE = re.compile(f"[{_INVISIBLE_AST}]")
_EMOJI = (
    "\u2190-\u21ff\u2300-\u23ff\u2460-\u24ff\u2500-\u27bf\u2900-\u297f\u2b00-\u2bff\u3297\u3299"
    "\U0001f000-\U0001faff"
)
# Noise: spaces, ASCII/CJK decoration symbols and emoji/pictographs. Sentence punctuation is not noise, except
# the ASCII full stop, which Chinese text does not use between two characters (傻.逼).
_NOISE = " \t\u3000.*#@&^~_|/\\\\+=`$%\\-\u00b7\u2022\u30fb\u2605\u2606\u203b\u00d7\u00f7\u2014\u2015" + _EMOJI  # not < >: removing them could make a tag on a second pass (fuzz)
_LOCK = threading.RLock()
_CACHE: dict[str, Any] = {}


def _read_tsv(name: str, ncols: int = 2) -> list[list[str]]:
    rows = []
    path = DATA_DIR / name
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) < ncols:
                raise ValueError(f"{path}:{lineno}: expected {ncols} tab-separated columns, got {line!r}")
            rows.append(cols)
    return rows


def _cached(key: str, build: Callable[[], Any]) -> Any:
    """Per-process lazily built, thread-safe cache."""
    v = _CACHE.get(key)
    if v is None:
        with _LOCK:
            v = _CACHE.get(key)
            if v is None:
                v = build()
                _CACHE[key] = v
    return v


_SOURCE_HASH: list[str] = []


def _disk_cached(key: str, build: Callable[[], Any], data: str = "") -> Any:
    """:func:`_cached` for a numpy table over all code points, also kept in ``$QINGLANG_CACHE`` between processes.

    Building such a table scans all 1.1 million code points (about 0.1-0.2 s each, a third of a cold start);
    reading it back takes a millisecond. The file name carries a hash of this module's source, the Unicode
    database version and the Python and numpy versions, so a changed class or table is rebuilt. Any failure to
    read or write the cache falls back to building (an unwritable cache folder is not an error). ``data``: what
    else the table is built from (e.g. the emoji.tsv entries), also in the file name's hash."""
    def load_or_build() -> Any:
        import hashlib
        import sys

        import numpy as np

        from .cache import cache_dir, write_atomic

        path = None
        try:
            if not _SOURCE_HASH:
                _SOURCE_HASH.append(hashlib.sha256(Path(__file__).read_bytes()).hexdigest())
            h = hashlib.sha256(f"{_SOURCE_HASH[0]}|{unicodedata.unidata_version}|{sys.version_info[:2]}|"
                               f"{np.__version__}|{key}|{data}".encode())
            path = cache_dir() / f"normalize-{key}-{h.hexdigest()[:20]}.npy"
            arr = np.load(path, allow_pickle=False)
            if arr.shape == (0x110000,):
                return arr
        except Exception:  # noqa: BLE001, S110 -- missing, truncated or foreign file (or no source): build it
            pass
        arr = build()
        if path is not None:
            write_atomic(path, lambda fh: np.save(fh, arr, allow_pickle=False))
        return arr
    return _cached(key, load_or_build)


def _once(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Decorator: a zero-argument builder run once per process, on first use, under the lock."""
    box: list[Any] = []

    def get() -> Any:
        if box:
            return box[0]
        with _LOCK:
            if not box:
                box.append(fn())
        return box[0]
    get.__name__, get.__doc__ = fn.__name__, fn.__doc__
    return get


def _charclass(chars: Iterable[str]) -> str:
    """Regex class body for a set of characters, as ranges."""
    cps = sorted(set(map(ord, chars)))
    out, i = [], 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        out.append(re.escape(chr(cps[i])) + ("-" + re.escape(chr(cps[j])) if j > i else ""))
        i = j + 1
    return "".join(out)


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


class _CharFinder:
    """Positions of characters from a set. ``re`` is slow on classes with many astral literals (0.9 s/MB for
    OpenCC's 4,572 traditional characters), so BMP characters use a class and astral ones a set lookup."""

    def __init__(self, chars: Iterable[str]):
        chars = set(chars)
        self.chars = frozenset(chars)
        bmp = [c for c in chars if ord(c) < 0x10000]
        self.astral = frozenset(c for c in chars if ord(c) >= 0x10000)
        self.rx = re.compile(f"[{_charclass(bmp)}]") if bmp else None

    def _astral_in(self, text: str, astral: frozenset[str] | None) -> bool:
        if not self.astral:
            return False
        if astral is None:
            return _ASTRAL.search(text) is not None and not self.astral.isdisjoint(_ASTRAL.findall(text))
        return not self.astral.isdisjoint(astral)

    def search(self, text: str, astral: frozenset[str] | None = None) -> bool:
        """Whether any character of the set occurs in ``text``; ``astral``: the text's astral characters, if known
        (``_Work.astral_chars``), which saves a scan."""
        return (self.rx is not None and self.rx.search(text) is not None) or self._astral_in(text, astral)

    def positions(self, text: str, astral: frozenset[str] | None = None) -> list[int]:
        """Sorted positions of the set's characters in ``text`` (``astral`` as for ``search``)."""
        pos = [m.start() for m in self.rx.finditer(text)] if self.rx is not None else []
        if self._astral_in(text, astral):
            ast = self.astral
            pos += [m.start() for m in _ASTRAL.finditer(text) if m.group() in ast]
            pos.sort()
        return pos


# --------------------------------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------------------------------

class Step:
    """A normalisation step: ``name`` and one ``normalize(work)`` method that edits the work state."""

    name = "step"

    def normalize(self, w: _Work) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class HtmlStep(Step):
    """Strip HTML (WeChat articles): tags, scripts, styles and comments; keep title and paragraph breaks.

    Runs after ``unicode`` so that tags spelled in full width (＜ｐ＞) are tags too; text decoded from entities
    (``&#xFF33;``) goes through the earlier steps (``fold``) so that the result is stable.
    """

    name = "html"

    def __init__(self, fold: list[Step] | None = None):
        self.fold_steps = fold or []
        self._nfkc = next((st for st in self.fold_steps if isinstance(st, UnicodeStep) and st.flags[0]), None)

    def _fold(self, s: str) -> str:
        w = _Work(s)
        for step in self.fold_steps:
            step.normalize(w)
        return w.text

    def normalize(self, w: _Work) -> None:
        if "<" not in w.text:  # looks_like_html needs an ASCII "<" (a full-width one is folded by unicode)
            return
        from .html import break_edits, html_edits, looks_like_html

        # Repeat to a fixed point: removing one tag can join the pieces of another ("<<b>b>"), and a second
        # normalisation must not find anything left to strip (idempotence; found by tests/fuzz). Bounded.
        start = w.text
        for _ in range(_HTML_MAX_PASSES):
            if not looks_like_html(w.text):
                break
            before = w.text
            w.apply(html_edits(w.text, self._fold if self.fold_steps else None), self.name)
            w.apply(break_edits(w.text), self.name)
            if w.text == before:
                break
        # a removed tag (or a decoded entity) can bring a combining mark to a letter: n<b>\u0301 -> n\u0301, which
        # the unicode step of the next pass composed (ń); compose it now
        uni = self._nfkc
        if uni is not None and w.text != start and not _nfkc_normal(
                w.text, w.codepoints() if len(w.text) >= _SHORT else None):
            uni._compose(w, uni.flags[3])


_HTML_MAX_PASSES = 8


@_once
def _invisible_table():
    """Numpy bool table: True for the code points that the invisible step deletes (the ``_INVISIBLE`` class)."""
    def build():
        import numpy as np

        flag = np.zeros(0x110000, dtype=bool)
        for part in (range(0xD800), range(0xE000, 0x110000)):  # every code point but the surrogates
            everything = "".join(map(chr, part))
            flag[[part.start + m.start() for m in _INVISIBLE_HINT_ALL.finditer(everything)]] = True
        return flag
    return _disk_cached("invisible_table", build)


_INVISIBLE_HINT_ALL = re.compile(f"[{_INVISIBLE}]")


class InvisibleStep(Step):
    """Delete zero-width characters, variation selectors, format and control characters (not \\t \\n \\r)."""

    name = "invisible"

    def normalize(self, w: _Work) -> None:
        text = w.text
        if len(text) >= _SHORT:  # one table lookup per character (3x faster than the two regex scans below)
            if not _invisible_table().take(w.codepoints()).any():
                return
        elif _INVISIBLE_HINT.search(text) is None and (
                _ASTRAL.search(text) is None or _INVISIBLE_AST_RE.search(text) is None):
            return
        w.apply([(m.start(), m.end(), "", None, None) for m in _INVISIBLE_RE.finditer(w.text)], self.name)


_FIN_NUM = "〇壹贰貳叁參肆伍陆陸柒捌玖"
_FIN_MAP = str.maketrans("〇壹贰貳叁參肆伍陆陸柒捌玖", "0122334566789")
_FIN_ANY = re.compile(f"[{_FIN_NUM}][{_FIN_NUM}]*")  # "[x][x]*", not "[x]+": the former scans ahead fast
_FIN_SET = frozenset(_FIN_NUM)
_FIN_ONE = re.compile(f"[{_FIN_NUM}]")  # no "+": re scans ahead fast for the nothing-found case
_STYLISED_RANGES = (
    (0x00AA, 0x00BA), (0x00B2, 0x00B9), (0x2070, 0x209F), (0x2100, 0x218F), (0x2460, 0x24FF), (0x2776, 0x2793),
    (0x3220, 0x3247), (0x3251, 0x32BF), (0x1D400, 0x1D7FF), (0x1F100, 0x1F1AF),
)
_MARK_CATS = {"Mn", "Mc", "Me"}
# Code points whose NFKC or case folding can differ from themselves lie outside the big blocks of CJK ideographs,
# Hangul syllables and Yi; skipping those blocks halves the one-off cost of building the table.
_TABLE_RANGES = ((1, 0x3400), (0x4DC0, 0x4E00), (0xA000, 0xAC00), (0xD7A4, 0xD800), (0xE000, 0x20000),
                 (0x2F800, 0x30000))


def _table_index(cp: int) -> int:
    k = 0
    for lo, hi in _TABLE_RANGES:
        if lo <= cp < hi:
            return k + cp - lo
        k += hi - lo
    raise KeyError(cp)


def _unicode_tables(nfkc: bool, fullwidth: bool, stylised: bool, casefold: bool):
    """Build (numpy 1:1 table or None, dict of 1:1 maps, dict of 1:n maps, regex of 1:n chars) for a flag set."""
    import numpy as np

    cps = [i for lo, hi in _TABLE_RANGES for i in range(lo, hi)]
    chars = [chr(i) for i in cps]
    joined = "\x00".join(chars)
    cur = chars
    if nfkc:
        cur = unicodedata.normalize("NFKC", joined).split("\x00")
    else:
        cur = list(chars)
        if fullwidth:
            for k, i in enumerate(cps):
                if 0xFF01 <= i <= 0xFF5E:
                    cur[k] = chr(i - 0xFEE0)
                elif i == 0x3000:
                    cur[k] = " "
        if stylised:
            for lo, hi in _STYLISED_RANGES:
                for i in range(lo, hi + 1):
                    k = _table_index(i)
                    r = unicodedata.normalize("NFKC", chars[k])
                    if r != chars[k] and r.isascii():
                        cur[k] = r
    if stylised:  # negative circled / squared Latin letters have no NFKC decomposition
        for base in (0x1F150, 0x1F170):
            for j in range(26):
                cur[_table_index(base + j)] = chr(0x61 + j) if casefold else chr(0x41 + j)
    if casefold:
        folded = "\x00".join(cur).casefold().split("\x00")
        if nfkc:
            folded = unicodedata.normalize("NFKC", "\x00".join(folded)).split("\x00")
            folded = "\x00".join(folded).casefold().split("\x00")
        cur = folded
    one: dict[int, int] = {}
    many: dict[str, str] = {}
    for c, r in zip(chars, cur):
        if r != c:
            r = _INVISIBLE_RE.sub("", r)
            if len(r) == 1:
                one[ord(c)] = ord(r)
            else:
                many[c] = r
    table = None
    if one:
        table = np.arange(0x110000, dtype=np.uint32)
        table[list(one)] = list(one.values())
    many_re = _CharFinder(many) if many else None
    return table, one, many, many_re




@_once
def _marks_re() -> re.Pattern:
    def build() -> re.Pattern:
        marks = [chr(i) for i in range(0x30000) if not 0xD800 <= i < 0xE000
                 and (unicodedata.category(chr(i)) in _MARK_CATS or unicodedata.combining(chr(i)))]
        marks += [chr(i) for i in range(0x1160, 0x1200)] + [chr(i) for i in range(0xD7B0, 0xD800)]
        # a line break is no base: in a batch, the one that ends the separator before a text beginning with marks
        # joined their cluster, which aligned the text's first characters to it (to_original gave -1)
        return re.compile(f"[^\n][{_charclass(marks)}]+")
    return _cached("marks_re", build)


_SHORT = 64


@_once
def _not_stable():
    """Numpy bool table: True for every code point that can make a text non-NFKC on its own or with its
    neighbours (NFKC changes it, it has a combining class, it is a mark or a Hangul jamo, or it lies in
    planes 3-14, which are not checked one by one). A text with none of them is NFKC-normal (every character has
    NFKC_Quick_Check=Yes and combining class 0)."""
    def build():
        import numpy as np

        flag = np.zeros(0x110000, dtype=bool)
        cps = [i for i in range(1, 0x30000) if not 0xD800 <= i < 0xE000]  # 0 is the separator
        chars = [chr(i) for i in cps]
        for c, r in zip(chars, unicodedata.normalize("NFKC", "\x00".join(chars)).split("\x00")):
            if r != c or unicodedata.combining(c) or unicodedata.category(c) in _MARK_CATS:
                flag[ord(c)] = True
        flag[0x1100:0x1200] = flag[0xD7B0:0xD800] = True  # Hangul jamo compose with their neighbours
        # lone surrogates and planes 3-14 (rare; tags and variation selectors): check the slow way. Planes 15-16
        # are private use (NFKC leaves them alone, combining class 0; the batch separator is one of them).
        flag[0xD800:0xE000] = flag[0x30000:0xF0000] = True
        return flag
    return _disk_cached("not_stable", build)


def _unicode_flags(flags: tuple[bool, bool, bool, bool], many: dict[str, str]) -> tuple[Any, frozenset[str]]:
    """For ``UnicodeStep._chunk_path``: a uint8 table over all code points (1: has a 1:n map, 2: unstable for
    NFKC (only when ``nfkc``), 4: astral, except the batch separator's character) and the 1:n-mapped characters
    whose replacement is empty or holds an unstable character (after which the NFKC check must look)."""
    def build():
        import numpy as np

        t = np.zeros(0x110000, dtype=np.uint8)
        t[0x10000:] = 4
        t[ord(_SEP_CHAR)] = 0  # not astral here (the caller adds it); private use: NFKC-stable, no 1:n map
        if flags[0]:
            t[_not_stable()] |= 2
        if many:
            t[[ord(c) for c in many]] |= 1
        bad = frozenset(c for c, r in many.items()
                        if not r or (flags[0] and any(_not_stable()[ord(x)] for x in r)))
        return t, bad
    return _cached(f"unicode_flags:{flags}", build)


def _nfkc_normal(text: str, a: Any = None) -> bool:
    """``unicodedata.is_normalized("NFKC", text)``, checked only around the characters that can make a text
    non-normal. NFKC can be computed segment by segment, split before any character with Quick_Check=Yes and
    combining class 0 (here: ASCII and CJK unified ideographs). The full check cost about 12 ms per MB of
    comments (a few characters make it compute the whole NFKC); the table lookup and windows cost about 1 ms."""
    if len(text) < _SHORT:
        return unicodedata.is_normalized("NFKC", text)
    import numpy as np

    if a is None:
        a = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    hits = np.flatnonzero(_not_stable().take(a))
    if not hits.size:
        return True
    bounds = np.flatnonzero((a < 0x80) | ((a >= 0x4E00) & (a < 0xA000)))
    if not bounds.size:
        return unicodedata.is_normalized("NFKC", text)
    k = np.searchsorted(bounds, hits, side="right")  # bounds[k - 1] <= hit < bounds[k]
    lo = np.where(k > 0, bounds[np.maximum(k - 1, 0)], 0).tolist()
    hi = np.where(k < len(bounds), bounds[np.minimum(k, len(bounds) - 1)], len(text)).tolist()
    end = -1
    for s, e in zip(lo, hi):
        if e <= end:  # same window as the previous hit
            continue
        if not unicodedata.is_normalized("NFKC", text[s:e]):
            return unicodedata.is_normalized("NFKC", text)  # rare: let the full check decide
        end = e
    return True


class UnicodeStep(Step):
    """NFKC, full-width -> half-width, stylised letters and digits -> plain, case folding (one table lookup)."""

    name = "unicode"

    def __init__(self, nfkc: bool, fullwidth: bool, stylised: bool, casefold: bool):
        self.flags = (nfkc, fullwidth, stylised, casefold)
        self._res: tuple | None = None

    def normalize(self, w: _Work) -> None:
        nfkc, _, _, casefold = self.flags
        if not any(self.flags):
            return
        if self._res is None:
            self._res = _cached(f"unicode:{self.flags}", lambda: _unicode_tables(*self.flags))
        table, one, many, many_re = self._res
        text = w.text
        if text.isascii():
            if casefold and not text.islower() and any("A" <= c <= "Z" for c in text):
                w.replace_same_length(text.lower())
            return
        # 1:1 maps (width, stylised, case, most NFKC): alignment unchanged
        if table is not None and len(text) >= _SHORT:
            self._chunk_path(w, table, many)
            return
        if table is not None:
            new = text.translate(one)
            if new != text:
                w.replace_same_length(new)
        # 1:n maps (⑩ -> 10, ⒈ -> 1., ß -> ss, ㎏ -> kg): each output aligns to its source character
        if many_re is not None and many_re.search(w.text, w.astral_chars()):
            t = w.text
            w.apply([(i, i + 1, many[t[i]], i, i + 1) for i in many_re.positions(t, w.astral_chars())], self.name)
        if nfkc and not _nfkc_normal(w.text, w.codepoints() if len(w.text) >= _SHORT else None):
            self._compose(w, casefold)

    def _chunk_path(self, w: _Work, table: Any, many: dict[str, str]) -> None:
        """The same as the general path for a long text, with one numpy pass after the 1:1 map instead of three
        scans: a flag table gives, for every character of the mapped text, whether it has a 1:n map (bit 1),
        can make the text non-NFKC (bit 2, ``_not_stable``) or is astral (bit 4). The 1:n positions, the astral
        characters and whether the NFKC check can pass without looking (no unstable character is left after
        the 1:n maps, and none of the inserted replacements holds one) come from the few flagged positions."""
        import numpy as np

        nfkc, casefold = self.flags[0], self.flags[3]
        flags, unstable_repl = _unicode_flags(self.flags, many)
        a = w.codepoints()
        b = table.take(a)  # take: twice as fast as table[a]
        if not np.array_equal(a, b):
            w.replace_same_length(b.tobytes().decode("utf-32-le", "surrogatepass"))
        f = flags.take(b)
        nz = np.flatnonzero(f != 0)  # nonzero of a bool array: 10x faster than of the uint8 one
        fz = f[nz]
        # the mapped code points are the new text's: later steps reuse them and the astral characters (the
        # batch separator, astral and frequent, is not flagged: it is added by a string search)
        astral = frozenset(map(chr, b[nz[(fz & 4) != 0]].tolist()))
        w.remember_codepoints(b, astral | _SEP_SET if _SEP_CHAR in w.text else astral)
        pos = nz[(fz & 1) != 0].tolist()
        check = False
        if pos:
            t = w.text
            w.apply([(i, i + 1, many[t[i]], i, i + 1) for i in pos], self.name)
            check = not unstable_repl.isdisjoint(map(t.__getitem__, pos))
        if nfkc and (check or len(w.text) < _SHORT or bool(((fz & 3) == 2).any())) and not _nfkc_normal(
                w.text, w.codepoints() if len(w.text) >= _SHORT else None):
            self._compose(w, casefold)

    def _compose(self, w: _Work, casefold: bool) -> None:
        """Slow path: base + combining sequences (and Hangul jamo) normalised as clusters."""
        def fix(s: str) -> str:
            for _ in range(3):
                r = unicodedata.normalize("NFKC", s)
                if casefold:
                    r = unicodedata.normalize("NFKC", r.casefold())
                r = _INVISIBLE_RE.sub("", r)
                if r == s:
                    break
                s = r
            return s

        edits = []
        for m in _marks_re().finditer(w.text):
            g = m.group()
            r = fix(g)
            if r != g:
                # what stays as it is at either end keeps its own alignment, only the rest aligns to the rest: a
                # base that does not change (/ + reordered marks after http://t.cn/ made the URL part end with the
                # marks, which the next pass left out), a mark after a composed base (@e + U+0301 U+0301 -> @é +
                # U+0301: the mention @é ended after the last mark, on the next pass before it)
                a, b = _common_ends(g, r)
                edits.append((m.start() + a, m.end() - b, r[a:len(r) - b], m.start() + a, m.end() - b))
        w.apply(edits, self.name)
        if not unicodedata.is_normalized("NFKC", w.text):
            # last resort: normalise chunks that start at a stable ASCII/CJK character
            edits = []
            for m in re.finditer(f"[\\x00-\\x09\\x0b-\\x7f{CJK}]?[^\\x00-\\x7f{CJK}]+", w.text):  # no "\\n": above
                g = m.group()
                r = fix(g)
                if r != g:
                    edits.append((m.start(), m.end(), r, m.start(), m.end()))
            w.apply(edits, self.name)


def _common_ends(g: str, r: str) -> tuple[int, int]:
    """How many characters ``g`` and its different normalisation ``r`` share at the start and at the end, leaving
    at least one character of ``g`` in between."""
    n = min(len(g) - 1, len(r))
    a = 0
    while a < n and g[a] == r[a]:
        a += 1
    b = 0
    while a + b < n and g[-1 - b] == r[-1 - b]:
        b += 1
    return a, b


_URL_BODY = r"[A-Za-z0-9\-._~:/?#@!$&*+=%;,]*[A-Za-z0-9/#=_\-]"  # ASCII only: a URL never swallows CJK
# Plain alternatives that each start with a literal (no classes, no named groups, no IGNORECASE): re then
# builds a set of first characters and skips ahead on it (3x faster than "[hH]..." first, 10x faster than named
# groups). The kind is read off the first character of the match.
_URL_ALTS = (rf"h[tT][tT][pP][sS]?://{_URL_BODY}|H[tT][tT][pP][sS]?://{_URL_BODY}"
             rf"|w[wW][wW]\.{_URL_BODY}|W[wW][wW]\.{_URL_BODY}")
_URL_RE = re.compile(_URL_ALTS)
_STRUCT_RE = re.compile(
    _URL_ALTS
    + r"|@[\w\-]+"  # no length limit either (a 30-character one made the mention end, and so what is normalised
    # around that end, depend on what the repeats step shrinks: @ and 23 x 傻 then 你好你好nmsl傻; hypothesis finding)
    r"|#[^#\n]+#"  # no length limit: a limit makes the topic depend on what later steps shrink (fuzz finding)
    r"|【[^【】\n]+】"  # nor here (with a limit of 60, 【#话题# and 70 x 哈】 was a title only once the repeats step
    # had shrunk it, on the next pass, whose noise step then deleted the "# " that the first pass had kept)
    r"|\[(?!\d+\])\w{1,10}\]"
)
_STRUCT_KIND = {"@": "mention", "#": "topic", "【": "title", "[": "emoticon"}
_MENTION_RE = re.compile(r"@[\w\-]+")
_STRUCT_HINT = re.compile(r"[@#【\[hHwW]")


class StructureStep(Step):
    """Record URLs, @mentions, #话题#, 【title】 and [emoticon] as parts (what later steps leave alone of them:
    ``_PROTECTED``)."""

    name = "structure"

    def normalize(self, w: _Work) -> None:
        if _STRUCT_HINT.search(w.text) is None:
            return
        if len(w.text) >= _SHORT and w.struct is None and not w.parts and not w.noise_ats:
            self._columnar(w)
            return
        if w.noise_ats:
            self._without_noise_ats(w)
            return
        text, kinds, orig = w.text, _STRUCT_KIND, w.orig_span
        spans = [m.span() for m in _STRUCT_RE.finditer(text)]  # thousands per MB: one list, no per-match calls
        # no value (None): a part's value is read off the final text when the Part is built (only word emoji,
        # added by the emoji step, keep their own); slicing it here cost ~0.7 ms per MB
        if w.starts is None:
            w.parts += [(kinds.get(text[s], "url"), s, e, None) for s, e in spans]
        else:
            starts, ends = w.starts, w.ends
            w.parts += [(kinds.get(text[s], "url"), starts[s], ends[e - 1], None) for s, e in spans]
        for s, e in spans:
            if text[s] in "#【":
                _inner_parts(w, text, s, e, orig)
        w._prot = None

    @staticmethod
    def _without_noise_ats(w: _Work) -> None:
        """The parts of a text with "@" signs that are noise inside a word (``w.noise_ats``, see ``_insult_ats``):
        found in the text without them, as a second pass will find them once the noise step has deleted them
        (傻@@逼: no mention; @马@死: the mention "@马死", not "@马")."""
        text = w.text
        drop = set(_noise_at_positions(w))
        keep = [i for i in range(len(text)) if i not in drop]  # scan position -> current position
        scan = "".join(map(text.__getitem__, keep))
        for m in _STRUCT_RE.finditer(scan):
            g = m.group()
            w.parts.append((_STRUCT_KIND.get(g[0], "url"), *w.orig_span(keep[m.start()], keep[m.end() - 1] + 1), None))
            if g[0] in "#【":
                _inner_parts(w, scan, m.start(), m.end(), lambda a, b: w.orig_span(keep[a], keep[b - 1] + 1))
        w._prot = None

    @staticmethod
    def _columnar(w: _Work) -> None:
        """The same parts for a long text, kept as numpy arrays (``_Work.struct``) instead of one tuple each: the
        matches' offsets from the lengths of ``re.split``'s pieces (no match objects), their kinds from their
        first characters, their original spans from the alignment arrays."""
        import numpy as np

        text = w.text
        pieces = _STRUCT_SPLIT.split(text)  # gap, match, gap, match, ..., gap
        if len(pieces) == 1:
            return
        ends = np.cumsum(np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces)))
        s_cur, e_cur = ends[0:-1:2], ends[1::2]  # the matches' current spans
        first = np.frombuffer("".join(map(_FIRST, pieces[1::2])).encode("utf-32-le"), dtype="<u4")
        codes = np.zeros(len(first), dtype=np.uint8)  # 0: url (h H w W)
        for code, marker in enumerate(("@", "#", "【", "["), 1):
            codes[first == ord(marker)] = code
        if w.starts is None:
            w.struct = (codes, s_cur, e_cur)
        else:
            w.struct = (codes, np.frombuffer(w.starts, dtype=np.int32)[s_cur],
                        np.frombuffer(w.ends, dtype=np.int32)[e_cur - 1])
        for i in np.flatnonzero((codes == 2) | (codes == 3)).tolist():  # topics and titles
            _inner_parts(w, text, int(s_cur[i]), int(e_cur[i]), w.orig_span)
        w._prot = None


def _inner_parts(w: _Work, text: str, s: int, e: int, orig_span: Callable[[int, int], tuple[int, int]]) -> None:
    """Record the mentions and URLs inside the topic or title ``text[s:e]`` (``orig_span`` maps a span of ``text``
    to the original), which are protected as they would be outside one; kept apart from ``parts``, which never
    overlap. Mentions: otherwise a topic that only matches after later steps shrink it is normalised differently
    on a second pass (idempotence; found by tests/fuzz). URLs: otherwise their letters were rewritten
    (#活动 www.nmsl.com# became #活动 www.你妈死了.com#; found by a hypothesis run)."""
    if "@" in text[s:e]:
        for mm in _MENTION_RE.finditer(text, s + 1, e - 1):
            w.inner_mentions.append(orig_span(mm.start(), mm.end()))
    for mm in _URL_RE.finditer(text, s + 1, e - 1):
        w.inner_urls.append(orig_span(mm.start(), mm.end()))


def _noise_at_positions(w: _Work) -> list[int]:
    """Current positions of the "@" signs of ``w.noise_ats`` (original positions)."""
    text, starts = w.text, w.starts
    out = []
    for p in w.noise_ats:
        i = p if starts is None else bisect.bisect_left(starts, p)
        if i < len(text) and text[i] == "@" and (starts is None or starts[i] == p):
            out.append(i)
    return out


_STRUCT_SPLIT = re.compile(f"({_STRUCT_RE.pattern})")  # the same matches, returned by split between the gaps
_FIRST = operator.itemgetter(0)
_KIND_NAMES = ("url", "mention", "topic", "title", "emoticon")  # the codes of ``_Work.struct``
_KIND_MASKS: dict[frozenset[str], Any] = {}


def _kind_mask(kinds: frozenset[str]) -> Any:
    """numpy bool array: for every kind code of ``_Work.struct``, whether its kind is one of ``kinds``."""
    got = _KIND_MASKS.get(kinds)
    if got is None:
        import numpy as np

        got = _KIND_MASKS[kinds] = np.array([k in kinds for k in _KIND_NAMES])
    return got


def _all_parts(struct: tuple[Any, Any, Any] | None, parts: list) -> list:
    """The raw part tuples of columnar structure parts (``_Work.struct``) followed by ``parts``."""
    if struct is None:
        return list(parts)
    codes, os_, oe = struct
    return list(zip(map(_KIND_NAMES.__getitem__, codes.tolist()), os_.tolist(), oe.tolist(), repeat(None))) + parts


_HAN_TERM = re.compile("[\u4e00-\u9fff]{2,}")


@functools.cache
def _targets(path: str = "") -> dict[str, Any]:
    """Explicit homophone spellings, generic (pinyin-matched) targets and extra terms from ``path``."""
    def build() -> dict[str, Any]:
        explicit: dict[str, str] = {}
        generic: list[str] = []
        for row in _read_tsv("homophones.tsv"):
            if row[0] == "target":
                generic.append(row[1])
            else:
                if len(row[0]) != len(row[1]):
                    raise ValueError(f"homophones.tsv: {row[0]!r} and {row[1]!r} differ in length")
                explicit[row[0]] = row[1]
        bigrams = {t[i:i + 2] for t in list(explicit.values()) + generic for i in range(len(t) - 1)}
        extra: list[str] = []
        if path:
            try:
                lines = Path(path).read_text(encoding="utf-8").splitlines()
            except OSError as e:
                raise ValueError(f"NormalizeConfig.targets: cannot read {path!r} ({e})") from None
            extra = sorted({t.strip() for t in lines if _HAN_TERM.fullmatch(t.strip())})
        return {"explicit": explicit, "generic": generic, "bigrams": bigrams, "extra": extra}
    return _cached("targets:" + path, build)


@_once
def _emoji_table() -> dict[str, str]:
    def build() -> dict[str, str]:
        t = {r[0]: r[1] for r in _read_tsv("emoji.tsv")}
        bad = [k for k in t if len(k) != 1]
        if bad:
            raise ValueError(f"emoji.tsv: emoji must be single code points, got {bad}")
        return t
    return _cached("emoji", build)


@_once
def _noise_res() -> dict[str, Any]:
    def build():
        wes = [k for k in _emoji_table() if len(k) == 1]
        alt = "|".join(re.escape(c) for c in wes)
        nw = f"(?:(?!{alt})[{_NOISE}])+"
        return {
            # a maximal run of noise between two CJK characters. It starts with the noise class (rarer than CJK),
            # so that re skips ahead on it; the CJK on the left is checked by a look-behind (3x faster than
            # consuming it)
            "noise": re.compile(f"[{_NOISE}](?<=[{CJK}][{_NOISE}])[{_NOISE}]*(?=[{CJK}])"),
            "we": frozenset(wes),
            "we_finder": _CharFinder(wes),
            # noise next to a word emoji: the run after one (up to CJK or a word emoji), or the run between CJK
            # and one. Matched only at the (rare) word emoji's positions: a scan of the whole text costs ~90 ms/MB
            "after": re.compile(f"({nw})(?=[{CJK}]|{alt})"),
            "nw_char": re.compile(f"(?!{alt})[{_NOISE}]"),
            "cjk_char": re.compile(f"[{CJK}]"),
        }
    return _cached("noise_res", build)


@_once
def _noise_classes() -> Any:
    """uint8 table over all code points for ``NoiseStep._runs``: 1 noise character (``_NOISE``), 2 CJK, 4 a noise
    character that is a marker (@ #) or a word emoji."""
    def build():
        import numpy as np

        t = np.zeros(0x110000, dtype=np.uint8)
        everything = "".join(map(chr, range(0x110000)))  # lone surrogates included: re treats them as any char
        for bit, rx in ((1, f"[{_NOISE}]"), (2, f"[{CJK}]")):
            t[[m.start() for m in re.finditer(rx, everything)]] |= bit
        special = [ord(c) for c in _MARKERS | _noise_res()["we"]]
        t[special] |= (t[special] & 1) << 2
        return t
    return _disk_cached("noise_classes", build, "".join(sorted(_emoji_table())))  # word emoji come from emoji.tsv


class NoiseStep(Step):
    """Delete noise symbols, spaces and emoji inserted between two CJK characters (傻*逼, 傻 逼, 傻🐶逼).

    A word emoji (🌿 草) counts as a word: noise next to it is removed, and it is kept (the emoji step adds its
    word) unless the two CJK characters around it are part of a known offensive term (傻🐶逼 -> 傻逼).
    URLs, the ``@`` of a mention and the ``#`` of a topic are never touched, nor a run that holds the character
    ending a mention or ends right before it (``@小明 你好`` keeps its space: without it, the next pass would read
    ``@小明你好`` as the mention; ``@小明-🐶`` keeps its "-", part of the name, in every way the runs around a word
    emoji are cut); Latin words, digits and punctuation are never joined.
    """

    name = "noise"

    def normalize(self, w: _Work, windows: list[tuple[int, int]] | None = None) -> None:
        """Remove the noise; ``windows`` restricts the search to these current-text ranges."""
        r = _noise_res()
        text = w.text
        bounds = w.mention_ends() if w.has_parts() or w.inner_mentions else []
        if windows is None and len(text) >= _SHORT:
            spans = self._runs(w, bounds)
        else:
            ranges = [(0, len(text))] if windows is None else windows
            seen = -1
            spans = []
            for lo, hi in ranges:
                for m in r["noise"].finditer(text, lo, hi):
                    s, e = m.span()
                    if s - 1 < seen or s - 1 < lo:  # the CJK on the left must lie inside the window too
                        continue
                    seen = e
                    spans.append((s, e))
            if bounds:
                spans = [sp for sp in spans if not _touches_any(bounds, *sp)]
        edits: list[tuple] = []
        if isinstance(spans, tuple):  # from _runs: the plain runs, then the runs holding a marker or word emoji
            plain, spans = spans
            edits = list(zip(*plain, repeat(""), repeat(None), repeat(None))) if plain[0] else []
        we = r["we"]
        bigrams = _targets()["bigrams"]
        # the "@" signs that are noise inside a word (``_insult_ats``) are no markers: a run that holds one is
        # judged as if it were not there (傻*@逼 inside a #topic#: the * goes too, as on a second pass)
        drop = set(_noise_at_positions(w)) if windows is None and w.noise_ats else None
        if spans:
            for s, e in spans:
                run = text[s:e]
                # noise that is part of a part is kept: only the markers (@, #, [, ]) can be (URLs hold no CJK)
                if w.has_parts() and _has_markers(text, s, e, drop) and w.is_protected(s, e, _NOISE_PROTECTED):
                    continue
                if we.isdisjoint(run) or (text[s - 1] + text[e]) in bigrams:
                    edits.append((s, e, "", None, None))
                    continue
                for k, c in enumerate(run):  # keep the word emoji, drop the rest
                    if c not in we:
                        edits.append((s + k, s + k + 1, "", None, None))
            edits.sort(key=_ED_START)  # plain and special runs: two sorted lists (edits never share a start)
        if windows is None and r["we_finder"].search(text, w.astral_chars()):
            done = {ed[0] for ed in edits}
            for s, e in self._around_word_emoji(text, r, w.astral_chars()):
                if s not in done and not (w.has_parts() and _has_markers(text, s, e, drop)
                                          and w.is_protected(s, e, _NOISE_PROTECTED)) \
                        and not (bounds and _touches_any(bounds, s, e)):
                    edits.append((s, e, "", None, None))
            edits.sort()
        if windows is None and w.noise_ats:
            # an "@" inside a word (傻@逼) is deleted whatever is around it now, as on the pass that judged it
            covered = [(ed[0], ed[1]) for ed in edits]
            extra = [(i, i + 1, "", None, None) for i in _noise_at_positions(w)
                     if not any(a <= i < b for a, b in covered)]
            if extra:
                edits = sorted(edits + extra, key=_ED_START)
        w.apply(edits, self.name)

    @staticmethod
    def _runs(w: _Work, bounds: _Seq[int] = ()) -> tuple[tuple[list[int], list[int]], list[tuple[int, int]]]:
        """What ``finditer`` of the noise regex finds, from the code points (numpy; 3x faster than the regex
        scan): the maximal runs of noise characters with a CJK character on either side, less those holding a
        position of ``bounds`` (sorted) or ending right before one. Returned as the starts and ends of the runs
        holding neither a marker (@ #) nor a word emoji, and the spans of the others."""
        import numpy as np

        cls = _noise_classes().take(w.codepoints())
        noise = (cls & 1).view(bool)
        edges = np.flatnonzero(noise[1:] != noise[:-1]) + 1  # where a run starts or ends (none at 0 or n)
        if noise[0]:
            edges = edges[1:]  # a run at the start has no CJK on its left
        starts, ends = edges[0::2], edges[1::2]
        starts = starts[:len(ends)]  # a run at the end has no CJK on its right
        ok = (cls[starts - 1] & cls[ends] & 2) != 0
        if bounds and starts.size:  # runs that end a mention are kept (see the class docstring)
            b = np.asarray(bounds)
            k = np.searchsorted(b, starts)
            ok &= ~((k < b.size) & (b[np.minimum(k, b.size - 1)] <= ends))
        starts, ends = starts[ok], ends[ok]
        special = np.flatnonzero((cls & 4) != 0)  # noise characters that are markers or word emoji (rare)
        if special.size and starts.size:
            k = np.searchsorted(special, starts)
            has = special[np.minimum(k, special.size - 1)] < ends
            has &= k < special.size
            odd = list(zip(starts[has].tolist(), ends[has].tolist()))
            starts, ends = starts[~has], ends[~has]
        else:
            odd = []
        return (starts.tolist(), ends.tolist()), odd

    @staticmethod
    def _around_word_emoji(text: str, r: dict[str, Any], astral: frozenset[str]) -> list[tuple[int, int]]:
        """Noise runs next to word emoji, left to right: a run of non-emoji noise between a CJK character and a
        word emoji, and a run after a word emoji that is followed by CJK or another word emoji. (Such runs never
        overlap: a run before an emoji starts after CJK, a run after one ends at CJK or an emoji.)"""
        nw_char, cjk_char, after = r["nw_char"].match, r["cjk_char"].match, r["after"].match
        out = []
        for p in r["we_finder"].positions(text, astral):
            s = p
            while s > 0 and nw_char(text, s - 1):
                s -= 1
            if s < p and s > 0 and cjk_char(text, s - 1):
                out.append((s, p))
            m = after(text, p + 1)
            if m is not None:
                out.append(m.span(1))
        return out


def _has_markers(text: str, s: int, e: int, drop: set[int] | None) -> bool:
    """Whether ``text[s:e]`` holds a marker (@ # [ ]), not counting the positions in ``drop``."""
    run = text[s:e] if drop is None else "".join(text[i] for i in range(s, e) if i not in drop)
    return not _MARKERS.isdisjoint(run)


def _touches_any(sorted_pos: list[int], s: int, e: int) -> bool:
    """Whether one of the sorted positions lies in ``[s, e]``: the span holds it or ends right before it."""
    k = bisect.bisect_left(sorted_pos, s)
    return k < len(sorted_pos) and sorted_pos[k] <= e


class NumeralStep(Step):
    """Runs of financial numerals and 〇 (壹贰叁, 二〇二三 next to digits) -> digits; part of ``stylised``.

    Runs after ``noise`` so that 壹*贰 and 壹贰 give the same result.
    """

    name = "numerals"

    def normalize(self, w: _Work) -> None:
        text = w.text
        found = [p for p in w.candidates() if text[p] in _FIN_SET]
        if not found:
            return
        edits = []
        runs = []  # maximal runs of the numerals (what _FIN_ANY.finditer finds), from their positions
        for p in found:
            if runs and runs[-1][1] == p:
                runs[-1][1] = p + 1
            else:
                runs.append([p, p + 1])
        url_tails = brackets = None
        for s, e in runs:  # runs of two or more, or next to an ASCII digit
            if e - s >= 2 or (s > 0 and "0" <= text[s - 1] <= "9") or (e < len(text) and "0" <= text[e] <= "9"):
                if s > 0 and text[s - 1] in _URL_CHARS:
                    if url_tails is None:
                        url_tails = {m.end() for m in _URL_LEAD.finditer(text)}
                    if s in url_tails:
                        continue
                if brackets is None:
                    brackets = [m.span() for m in _DIGIT_EMOTICON.finditer(text)] if "[" in text else []
                if brackets:
                    i = bisect.bisect_right(brackets, (s,)) - 1
                    if i >= 0 and e < brackets[i][1]:
                        continue
                edits.append((s, e, text[s:e].translate(_FIN_MAP), None, None))
        w.apply(edits, self.name)


_URL_CHARS = frozenset(string.ascii_letters + string.digits + "-._~:/?#@!$&*+=%;,")  # ``_URL_BODY``'s characters
# A URL's start and every URL character after it: where a match ends, ASCII digits written there would be read by
# a second pass as part of a URL (the URL the structure step found, extended: www.a.com壹贰 -> www.a.com12; or a
# new one: www.壹贰叁.com -> www.123.com). Found by explore-mode hypothesis runs; the numerals stay as written.
_URL_LEAD = re.compile(r"(?:h[tT][tT][pP][sS]?://|H[tT][tT][pP][sS]?://|w[wW][wW]\.|W[wW][wW]\.)"
                       r"[A-Za-z0-9\-._~:/?#@!$&*+=%;,]*")
# An [emoticon] that would hold only digits once its numerals are: the structure step reads "[壹贰]" as one, which
# "[12]" is not (``_STRUCT_RE``: "[1]" is a footnote), so the next pass lost it; its numerals stay as written.
_DIGIT_EMOTICON = re.compile(rf"\[[\d{_FIN_NUM}]{{1,10}}\]")


@_once
def _opencc():
    """The process-wide OpenCC t2s converter, created lazily and thread-safely."""
    def build():
        import opencc
        return opencc.OpenCC("t2s")
    return _cached("opencc", build)


@_once
def _trad_re() -> _CharFinder:
    def build() -> re.Pattern:
        conv = _opencc()
        chars = [chr(i) for r in ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00), (0x20000, 0x2A6E0))
                 for i in range(*r)]
        out = conv.convert("\n".join(chars)).split("\n")
        if len(out) != len(chars):
            raise RuntimeError("OpenCC changed the number of lines while building the traditional-character table")
        return _CharFinder(c for c, o in zip(chars, out) if c != o)
    return _cached("trad_re", build)


_CTX = 6
_SURROGATE = re.compile("[\ud800-\udfff]")  # a lone surrogate (JSON "\\ud800") has no UTF-8 form


class TraditionalStep(Step):
    """Traditional -> simplified with OpenCC's t2s data (phrase-aware, converter cached per process)."""

    name = "traditional"

    def normalize(self, w: _Work) -> None:
        text = w.text
        trad = _trad_re().chars
        found = [p for p in w.candidates() if text[p] in trad]
        if not found:
            return
        conv = _opencc()
        edits = []
        # cluster traditional characters closer than the phrase context, convert a window around each cluster
        windows: list[list[int]] = []
        for p in found:
            if windows and p - windows[-1][1] <= 2 * _CTX:
                windows[-1][1] = p + 1
            else:
                windows.append([p, p + 1])
        for s, e in windows:
            ws, we = max(0, s - _CTX), min(len(text), e + _CTX)
            seg = text[ws:we]
            if _SURROGATE.search(seg) is not None:  # OpenCC encodes to UTF-8, which raises on a lone surrogate;
                seg = _SURROGATE.sub("\ufffd", seg)  # U+FFFD (kept by OpenCC) stands in, one character for one
            conv_seg = conv.convert(seg)
            if len(conv_seg) == len(seg):
                i = 0
                while i < len(seg):
                    if seg[i] != conv_seg[i]:
                        j = i
                        while j < len(seg) and seg[j] != conv_seg[j]:
                            j += 1
                        edits.append((ws + i, ws + j, conv_seg[i:j], None, None))
                        i = j
                    else:
                        i += 1
            else:  # a phrase changed length: convert the traditional characters one by one
                for k in range(s, e):
                    c = text[k]
                    r = conv.convert(c)
                    if r != c:
                        edits.append((k, k + 1, r, None, None) if len(r) == 1 else (k, k + 1, r, k, k + 1))
        edits.sort()
        merged = []
        last = -1
        for ed in edits:
            if ed[0] >= last:
                merged.append(ed)
                last = ed[1]
        w.apply(merged, self.name)


class _TableStep(Step):
    """Rewrite every occurrence of the table's keys (one regex alternation, longest first)."""

    name = "table"
    file = ""

    _res: tuple[dict[str, str], Any] | None = None

    def _table(self) -> tuple[dict[str, str], Any]:
        if self._res is not None:
            return self._res

        def build():
            t = {r[0]: r[1] for r in _read_tsv(self.file)}
            if all(len(k) == 1 and len(v) == 1 for k, v in t.items()):
                return t, _CharFinder(t)
            keys = sorted(t, key=len, reverse=True)
            return t, re.compile("|".join(re.escape(k) for k in keys))
        self._res = _cached("table:" + self.file, build)
        return self._res

    def normalize(self, w: _Work) -> None:
        t, rx = self._table()
        text = w.text
        # the table's keys can only start at the shared candidates (every first character of a key is one)
        if isinstance(rx, _CharFinder):
            w.apply([(i, i + 1, t[text[i]], None, None) for i in w.candidates() if text[i] in t
                     if not (w.has_parts() and w.is_protected(i, i + 1))], self.name)
            return
        firsts = _first_chars(self)
        edits = []
        last = 0
        for p in w.candidates():  # = rx.finditer(text): the leftmost match at or after the last one's end
            if p < last or text[p] not in firsts:
                continue
            m = rx.match(text, p)
            if m is not None:
                last = m.end()
                if not (w.has_parts() and w.is_protected(p, last)):
                    edits.append((p, last, t[m.group()], None, None))
        w.apply(edits, self.name)


def _first_chars(step: _TableStep) -> frozenset[str]:
    """The first characters of the keys of a table step."""
    return _cached("first_chars:" + step.file, lambda: frozenset(k[0] for k in step._table()[0]))


@_once
def _cand_finder() -> _CharFinder:
    """Every character at which the numerals, traditional, variants or radicals step can change the text."""
    chars = set(_FIN_NUM) | _trad_re().chars
    for step in (VariantStep(), RadicalStep()):
        chars |= _first_chars(step)
    return _CharFinder(chars)


@_once
def _cand_table() -> Any:
    """numpy bool table over all code points: the characters of ``_cand_finder``."""
    def build():
        import numpy as np

        t = np.zeros(0x110000, dtype=bool)
        t[[ord(c) for c in _cand_finder().chars]] = True
        return t
    return _cached("cand_table", build)


class VariantStep(_TableStep):
    """Variant and look-alike characters -> the standard character (儍 -> 傻, ⻢ -> 马)."""

    name = "variants"
    file = "variants.tsv"


class RadicalStep(_TableStep):
    """Radical-split spellings recombined (扌喿 -> 操, 女马 -> 妈, 口丁 -> 叮); output aligns to both parts."""

    name = "radicals"
    file = "radicals.tsv"


_DELIMITED = frozenset({"topic", "title", "emoticon"})


def _keeps_run(w: _Work, text: str, s: int, e: int) -> bool:
    """Whether the repeat run ``[s, e)`` is left alone: it overlaps a URL or a mention's ``@``, or it is a run of a
    delimiter (# 【 [) that holds a topic's, title's or emoticon's own delimiter: collapsing ####@# would merge the
    topic's opening # into the run, and the next pass would find another topic (idempotence; found by
    tests/test_normalize_s5.py's property test)."""
    return w.is_protected(s, e) or (text[s] in "#【[" and w.is_protected(s, e, _DELIMITED))


class RepeatStep(Step):
    """Collapse runs of one character longer than ``max_repeat`` (digits and newlines are never collapsed)."""

    name = "repeats"

    def __init__(self, max_repeat: int):
        self.max_repeat = max_repeat
        self.rx = re.compile(r"([^\d\n\U0010fffd])\1{" + str(max_repeat) + ",}", re.DOTALL)

    def _runs(self, text: str) -> list[tuple[int, int]]:
        if len(text) < _SHORT:
            return [(m.start(), m.end()) for m in self.rx.finditer(text)]
        import numpy as np

        a = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
        same = np.empty(len(a) + 1, dtype=np.int8)
        same[0] = same[-1] = 0
        np.equal(a[1:], a[:-1], out=same[1:-1].view(bool))
        d = np.diff(same)
        starts = np.flatnonzero(d == 1)
        ends = np.flatnonzero(d == -1)
        keep = (ends - starts) >= self.max_repeat
        out = []
        for s, e in zip(starts[keep].tolist(), ends[keep].tolist()):
            c = text[s]
            if not (c.isdecimal() or c == "\n" or c == "\U0010fffd"):
                out.append((s, e + 1))
        return out

    def normalize(self, w: _Work) -> None:
        runs = self._runs(w.text)
        if not runs:
            return
        k = self.max_repeat
        text = w.text
        edits = []
        for s, e in runs:
            if w.has_parts() and _keeps_run(w, text, s, e):
                continue
            os_, oe = w.orig_span(s, e)
            w.repeats.append((text[s], e - s, os_, oe))
            # the last kept character absorbs the dropped ones, so evidence covers the whole run
            edits.append((s + k - 1, e, text[s], s + k - 1, e))
        w.apply(edits, self.name)

    def collapse_near(self, w: _Work, orig_spans: list[tuple[int, int]]) -> None:
        """Collapse the runs through the current characters that come from these ORIGINAL spans (the edits of a
        later step: ``sb逼逼逼`` -> ``傻逼逼逼逼`` after the abbreviations step, ``沙比逼逼逼`` after homophones),
        so that normalising the output again changes nothing. A run's record replaces the records of the runs it
        absorbs, its count covers theirs (``sb逼逼逼逼逼`` -> one run of 6 逼)."""
        text = w.text
        n = len(text)
        if not orig_spans or n <= self.max_repeat:
            return
        starts = w.starts
        runs: list[tuple[int, int]] = []
        for os_, oe in orig_spans:
            if starts is None:
                lo, hi = os_, oe
            else:  # the current characters whose span starts inside [os_, oe) (alignment starts are sorted)
                lo = bisect.bisect_left(starts, os_)
                hi = bisect.bisect_left(starts, oe, lo) if oe > os_ else lo
            lo, hi = max(0, min(lo, n) - 1), min(n, hi + 1)  # the neighbours may continue a run
            while lo > 0 and text[lo - 1] == text[lo]:
                lo -= 1
            while hi < n and text[hi] == text[hi - 1]:
                hi += 1
            runs += [(m.start(), m.end()) for m in self.rx.finditer(text, lo, hi)]
        if not runs:
            return
        runs = sorted(set(runs))
        k = self.max_repeat
        edits, records = [], []
        for s, e in runs:
            if (edits and s < edits[-1][1]) or (w.has_parts() and _keeps_run(w, text, s, e)):
                continue
            os_, oe = w.orig_span(s, e)
            records.append((text[s], e - s, os_, oe))
            edits.append((s + k - 1, e, text[s], s + k - 1, e))
        if not edits:
            return
        kept = []
        for rec in w.repeats:
            inside = next((i for i, (c, _, a, b) in enumerate(records)
                           if c == rec[0] and a <= rec[2] and rec[3] <= b), None)
            if inside is None:
                kept.append(rec)
            else:  # absorbed: the new run counts the characters that the earlier collapse dropped
                c, cnt, a, b = records[inside]
                records[inside] = (c, cnt + rec[1] - k, a, b)
        w.repeats[:] = sorted(kept + records, key=operator.itemgetter(2))
        w.apply(edits, self.name)


@_once
def _emoji_finder() -> _CharFinder:
    return _CharFinder(_emoji_table())


class EmojiStep(Step):
    """Keep each emoji and add the Chinese word it stands for (🐶 -> 🐶狗, 🌿 -> 🌿草); ``repeats`` collapses the runs
    an added word makes (🐶狗狗狗 -> 🐶狗狗狗狗 -> 🐶狗狗狗)."""

    name = "emoji"

    def __init__(self, repeats: RepeatStep | None = None):
        self.repeats = repeats

    def normalize(self, w: _Work) -> None:
        t = _emoji_table()
        finder = _emoji_finder()
        text = w.text
        found = finder.positions(text, w.astral_chars())
        if not found:
            return
        edits = []
        for s in found:
            e = s + 1
            name = t[text[s]]
            os_, oe = w.orig_span(s, e)
            w.parts.append(("emoji", os_, oe, text[s]))
            nxt = text[e:e + len(name)]
            if nxt == name or (len(nxt) == len(name) and syllable_string(nxt) == syllable_string(name)):
                continue  # already followed by its word, or by a homophone the homophones step made of it
            edits.append((e, e, name, s, e))
        _apply_and_collapse(w, edits, self.name, self.repeats)


_SEP2 = "[*._\\-]?"
_SEP3 = "[ *._\\-]?"


def _abbr_key(spelling: str) -> str:
    """Lookup key of a spelling: lower case; separators removed from all-Latin spellings."""
    s = spelling.lower()
    return _ABBR_SEP_RE.sub("", s) if s.isascii() else s


_ABBR_SEP_RE = re.compile("[ *._\\-]")


@functools.cache
def _abbr(path: str = "") -> dict[str, Any]:
    def build():
        table = {_abbr_key(r[0]): r[1] for r in _read_tsv("abbreviations.tsv", 2)}
        # full pinyin (>= 4 letters) and pinyin initials (>= 3 letters) of every offensive target term
        syl = _syllables()
        tg = _targets(path)
        for term in sorted(set(tg["generic"]) | set(tg["explicit"].values())):
            sy = [syl.get(c, "") for c in term]
            if all(sy):
                full, initials = "".join(sy), "".join(x[0] for x in sy)
                if len(full) >= 4:
                    table.setdefault(full, term)
                if len(initials) >= 3:
                    table.setdefault(initials, term)
        # extra terms: stricter lengths (short initials collide with English words); ambiguous keys are dropped
        seen: dict[str, str | None] = {}
        for term in tg["extra"]:
            sy = [syl.get(c, "") for c in term]
            if all(sy):
                for key, minimum in (("".join(sy), 5), ("".join(x[0] for x in sy), 4)):
                    if len(key) >= minimum and key not in table:
                        seen[key] = term if seen.get(key, term) == term else None
        table.update({k: v for k, v in seen.items() if v is not None})
        by_first: dict[str, list[str]] = {}  # Latin keys by first letter (keys are lower case), longest first
        other = []
        for key in sorted(table, key=len, reverse=True):
            if key.isascii():
                sep = _SEP2 if len(key) <= 2 else _SEP3
                by_first.setdefault(key[0], []).append(
                    "".join(sep + re.escape(c) for c in key[1:]) + "(?![a-z0-9])")
            else:
                post = "(?![a-z0-9])" if key[-1].isascii() else ""
                other.append(re.escape(key) + post)
        # One branch per first letter, its keys in the same order as in the flat alternation (longest first):
        # only keys with the letter at hand can match there, so the first key that matches is the same, and re
        # tries ~2 keys per candidate letter instead of all 47 (3.6 -> 2.4 ms/MB). The look-behind comes after
        # the first letter so that re can skip ahead on the first letters.
        latin = "|".join(re.escape(c) + f"(?<![a-z0-9]{re.escape(c)})(?:" + "|".join(rests) + ")"
                         for c, rests in by_first.items())
        return {
            "table": table,
            # after case folding the text is lower case: without IGNORECASE re skips ahead on first letters
            "latin": re.compile(latin),
            "latin_i": re.compile(latin, re.IGNORECASE),
            "other": re.compile("|".join(other), re.IGNORECASE),
            "first": re.compile(f"[{_charclass(k[0] for k in table if not k.isascii())}]"),
        }
    return _cached("abbr:" + path, build)


_LATIN_RE = re.compile("[a-zA-Z]")
_WINDOW = 64


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out


def _denoise_around(w: _Work, applied: list[tuple]) -> None:
    """Run the noise step near edits just applied (``applied`` as given to ``_Work.apply``): their CJK output can
    put noise between two CJK characters where there was Latin before."""
    windows, delta = [], 0
    for s, e, repl, _, _ in applied:
        ns = s + delta
        delta += len(repl) - (e - s)
        windows.append((max(0, ns - _WINDOW), min(len(w.text), ns + len(repl) + _WINDOW)))
    NoiseStep().normalize(w, _merge(windows))


def _apply_and_collapse(w: _Work, edits: list[tuple], step: str, repeats: RepeatStep | None) -> None:
    """Apply a step's edits, then (with ``repeats``) collapse the runs of one character that they made: the
    repeats step ran before them, and normalising the output again would collapse them then."""
    if repeats is None or not edits:
        w.apply(edits, step)
        return
    spans = [w.orig_span(s, e) if a is None else w.orig_span(a, b) for s, e, _, a, b in edits]
    w.apply(edits, step)
    repeats.collapse_near(w, spans)


_NAME_CHAR = re.compile(r"[\w\-]")  # a character that continues a mention's name (``_MENTION_RE``)


def _joins_mention(text: str, mention_ends: list[int], s: int, e: int) -> bool:
    """Whether replacing ``text[s:e]`` would join a mention's name to the name characters after the edit: the edit
    starts in the name and holds the character that ends it (``_Work.mention_ends``), and a name character
    follows it. @n m s l傻 became @你妈死了傻 with the mention @n, which the next pass read as the mention
    @你妈死了傻 (found by a hypothesis run of the mentions' idempotence property); @sha bi 你好 -> @傻逼 你好 stays."""
    i = bisect.bisect_right(mention_ends, s)
    return i < len(mention_ends) and mention_ends[i] < e and _NAME_CHAR.match(text, e) is not None


def _abbr_starts(path: str) -> tuple[Any, Any, Any, Any] | None:
    """Tables for ``AbbreviationStep._matches`` (for the tables of ``_abbr(path)``): over ASCII (code points
    clipped to 127), the bit of each Latin key's first letter (``1 << (letter - 'a')``), for each character the
    bits of the first letters it can follow (a separator, or a second letter of a key), and whether it is
    [a-z0-9]; over all code points, a uint8 table for the other keys: 1 first character (under IGNORECASE, as
    ``other`` matches), 2 second character (IGNORECASE; every character if a key is one character long), 4 first
    character without IGNORECASE (the ``first`` gate). None if a Latin key does not start with a letter or is
    shorter than two (no such key now; the caller then scans the whole text)."""
    def build():
        import numpy as np

        table = _abbr(path)["table"]
        latin = [k for k in table if k.isascii()]
        if any(len(k) < 2 or not ("a" <= k[0] <= "z") for k in latin):
            return None
        first_bit = np.zeros(128, dtype=np.uint32)
        next_ok = np.zeros(128, dtype=np.uint32)
        alnum = np.zeros(128, dtype=bool)
        alnum[[ord(c) for c in "abcdefghijklmnopqrstuvwxyz0123456789"]] = True
        for k in latin:  # the regex: k[0], the look-behind, then (separator? + letter) for each further letter
            bit = 1 << (ord(k[0]) - ord("a"))
            first_bit[ord(k[0])] |= bit
            for c in " *._-" + k[1]:
                next_ok[ord(c)] |= bit
        others = sorted(k for k in table if not k.isascii())
        other = np.zeros(0x110000, dtype=np.uint8)
        if others:
            everything = "".join(map(chr, range(0x110000)))
            for bit, chars, flags in ((1, [k[0] for k in others], re.IGNORECASE), (4, [k[0] for k in others], 0),
                                      (2, [k[1] for k in others if len(k) > 1], re.IGNORECASE)):
                if chars:
                    rx = re.compile("|".join(map(re.escape, sorted(set(chars)))), flags)
                    other[[m.start() for m in rx.finditer(everything)]] |= bit
            if any(len(k) < 2 for k in others):
                other |= 2
        return first_bit, next_ok, alnum, other
    return _cached("abbr_starts:" + path, build)


class AbbreviationStep(Step):
    """Latin abbreviations, full pinyin and 饭圈 spellings -> canonical Chinese (nmsl -> 你妈死了, 蒸煮 -> 正主).

    Latin spellings match only at Latin word boundaries; every output character aligns to the whole spelling.
    """

    name = "abbreviations"

    def __init__(self, noise: bool = True, folded: bool = True, targets: str = "", repeats: RepeatStep | None = None):
        self.noise = noise
        self.folded = folded
        self.targets = targets
        self.repeats = repeats  # collapses the runs an expansion makes (sb逼逼逼 -> 傻逼逼逼逼 -> 傻逼逼逼)

    def normalize(self, w: _Work) -> None:
        r = _abbr(self.targets)
        table = r["table"]
        text = w.text
        edits = []
        if self.folded and len(text) >= _SHORT:
            matches = self._matches(w, r)
        else:
            matches = []
            if _LATIN_RE.search(text) is not None:
                matches += r["latin" if self.folded else "latin_i"].finditer(text)
            if r["first"].search(text) is not None:
                matches += r["other"].finditer(text)
        for m in matches:
            edits.append((m.start(), m.end(), table[_abbr_key(m.group())]))
        if not edits:
            return
        edits.sort()
        out, last = [], -1
        mends = w.mention_ends() if w.has_parts() else []
        for s, e, repl in edits:
            if s >= last and not (w.has_parts() and (w.is_protected(s, e) or _joins_mention(text, mends, s, e))):
                out.append((s, e, repl, s, e))
                last = e
        spans = [w.orig_span(s, e) for s, e, _, _, _ in out] if self.repeats is not None else []
        w.apply(out, self.name)
        if out and self.noise:
            # expansions are CJK: noise next to one is now between CJK characters (傻b*逼 -> 傻逼*逼 -> 傻逼逼)
            _denoise_around(w, out)
        if spans:
            self.repeats.collapse_near(w, spans)  # type: ignore[union-attr]

    def _matches(self, w: _Work, r: dict[str, Any]) -> list[re.Match]:
        """What ``finditer`` of the Latin (case-folded) and of the other spellings finds, tried only at the
        positions where a spelling can start, found from the code points with numpy (``_abbr_starts``): a
        Latin key's first letter not after [a-z0-9] and followed by a possible second character (a separator or
        a second letter of a key with that first letter); another key's first character followed by a possible
        second character. Walking the candidates left to right and skipping those inside the last match gives
        the same matches as ``finditer``, which tries every position (in 240,000 characters of comments: about
        850 Latin candidates and a few others; 3.1 -> 1.4 ms for the step)."""
        import numpy as np

        tables = _abbr_starts(self.targets)
        if tables is None:
            text = w.text
            return [*r["latin"].finditer(text), *(r["other"].finditer(text) if r["first"].search(text) else ())]
        first_bit, next_ok, alnum, other = tables
        cps = w.codepoints()
        # Latin: letters a-z (the uint32 difference wraps around below "a") with a next character that can
        # follow them in a key, and no [a-z0-9] before (the look-behind)
        let = np.flatnonzero((cps[:-1] - np.uint32(97)) < 26)
        let = let[(first_bit[cps[let]] & next_ok[np.minimum(cps[let + 1], 127)]) != 0]
        after = alnum[np.minimum(cps[let - 1], 127)]
        after[let == 0] = False
        out: list[re.Match] = []
        text = w.text
        for rx, cand in ((r["latin"], let[~after].tolist()), (r["other"], None)):
            if cand is None:
                c = other.take(cps)
                if not ((c & 4) != 0).any():  # no (case-sensitive) first character: finditer is not run
                    break
                cand = np.flatnonzero(((c[:-1] & 1) != 0) & ((c[1:] & 2) != 0)).tolist()
            match, last = rx.match, -1
            for p in cand:
                if p >= last:
                    m = match(text, p)
                    if m is not None:
                        out.append(m)
                        last = m.end()
        return out


# --------------------------------------------------------------------------------------------------------------
# Pinyin: per-character syllables (pypinyin default reading, toneless), syllable-id table for fast matching
# --------------------------------------------------------------------------------------------------------------

@_once
def _syllables() -> dict[str, str]:
    """Character -> toneless pinyin (first reading of pypinyin's character dictionary, as ``lazy_pinyin``)."""
    def build() -> dict[str, str]:
        from pypinyin.pinyin_dict import pinyin_dict

        keys = list(pinyin_dict)
        joined = "\n".join(v.split(",", 1)[0] for v in pinyin_dict.values())
        tones = {}
        for c in set(joined):
            if not c.isascii():
                nfd = unicodedata.normalize("NFD", c)
                base = "".join(x for x in nfd if not unicodedata.combining(x))
                tones[ord(c)] = "v" if "\u0308" in nfd else base.lower()
        plain = joined.translate(tones).lower().split("\n")
        return {chr(cp): py for cp, py in zip(keys, plain)}
    return _cached("syllables", build)


@_once
def _syllable_ids():
    """Numpy table: code point -> private-use code point standing for its syllable (non-CJK unchanged)."""
    def build():
        import numpy as np

        syl = _syllables()
        ids: dict[str, int] = {}
        table = np.arange(0x110000, dtype=np.uint32)
        trans: dict[int, int] = {}
        if len(set(syl.values())) > 0x1900:
            raise RuntimeError("more pinyin syllables than private-use code points")
        for ch, s in syl.items():
            i = ids.setdefault(s, 0xE000 + len(ids))
            table[ord(ch)] = i
            trans[ord(ch)] = i
        return table, trans
    return _cached("syllable_ids", build)


def syllable_string(text: str) -> str:
    """``text`` with every CJK character replaced by the private-use character of its toneless pinyin syllable (other
    characters kept; pypinyin default reading), same length: what the homophone step and the lexicon match on."""
    table, trans = _syllable_ids()
    if len(text) < _SHORT:
        return text.translate(trans)
    import numpy as np

    a = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    return table[a].tobytes().decode("utf-32-le", "surrogatepass")


def _reads_as_written(text: str, s: int, e: int, target: str) -> bool:
    """True when the spelling ``text[s:e]`` joins its neighbours better than ``target`` does, by the character LM
    of ``qinglang_nlp.restore`` on the two boundary bigrams: a generic pinyin match across ordinary words (发表自己
    holds 表自 = biao zi = 婊子) is then left alone. Only the boundaries count, because evasive spellings such as
    煞笔 are themselves common in social text. Without neighbours, or without the shipped LM file, it is False."""
    from . import restore

    # the batch separator is a text boundary, so that normalize_batch reads every text as normalize does
    left = s > 0 and not text.endswith(_BATCH_SEP, 0, s)
    right = e < len(text) and not text.startswith(_BATCH_SEP, e)
    if not (left or right) or not restore.LM_PATH.is_file():
        return False
    lm = restore.default_lm()

    def boundary(mid: str) -> float:
        total = 0.0
        if left:
            ids = lm.ids(text[s - 1] + mid[0])
            total += float(lm.bigram(ids[:1], ids[1:])[0])
        if right:
            ids = lm.ids(mid[-1] + text[e])
            total += float(lm.bigram(ids[:1], ids[1:])[0])
        return total

    return boundary(text[s:e]) > boundary(target)


class HomophoneStep(Step):
    """Homophone spellings of offensive terms -> the canonical term (煞笔 -> 傻逼, 辣鸡 -> 垃圾).

    Explicit spellings come from ``homophones.tsv``; the generic targets there are matched on whole pinyin
    syllables of any CJK spelling. Replacements have the same length, so the alignment stays one-to-one.
    """

    name = "homophones"

    def __init__(self, targets: str = "", repeats: RepeatStep | None = None):
        self.targets = targets
        self.repeats = repeats  # collapses the runs a replacement makes (沙比逼逼逼 -> 傻逼逼逼逼 -> 傻逼逼逼)
        self._res: tuple | None = None

    def normalize(self, w: _Work) -> None:
        def build():
            tg = _targets(self.targets)
            explicit = tg["explicit"]
            ex_re = re.compile("|".join(re.escape(k) for k in sorted(explicit, key=len, reverse=True)))
            # Extra terms are NOT matched here: on the COLD carved test, generic homophone matching of the 3,148
            # ToxiCN/SexHateLex terms rewrote 没有 -> 美幼, 男人 -> 腩人, 其实 -> 歧视 (732 rewrites in 1,000 texts).
            gen = {syllable_string(t): t for t in tg["generic"]}
            gen_re = re.compile("|".join(re.escape(k) for k in sorted(gen, key=len, reverse=True)))
            return explicit, ex_re, gen, gen_re
        if self._res is None:
            self._res = _cached("homophone_res:" + self.targets, build)
        explicit, ex_re, gen, gen_re = self._res
        # explicit spellings first, then the generic targets on their output: a generic match is judged (by its
        # neighbours, ``_reads_as_written``) on the characters that the text will have, as a second pass judges
        # it (草尼玛 -> 草你妈 by 尼玛, then 操你妈 by the pinyin; judged on 草尼玛, the match was refused, and a
        # second pass made 操你妈 of 草你妈)
        found = [(m.start(), m.end(), explicit[m.group()], None, None) for m in ex_re.finditer(w.text)]
        if found:
            self._apply(w, found)
        text = w.text
        edits = []
        for m in gen_re.finditer(syllable_string(text)):
            s, e = m.start(), m.end()
            target = gen[m.group()]
            if text[s:e] != target and not _reads_as_written(text, s, e, target):
                edits.append((s, e, target, None, None))
        if edits:
            self._apply(w, edits)

    def _apply(self, w: _Work, edits: list[tuple]) -> None:
        """Apply sorted, non-overlapping replacements but those in a protected part."""
        if edits and w.has_parts():
            edits = [ed for ed in edits if not w.is_protected(ed[0], ed[1])]
        if edits:
            _apply_and_collapse(w, edits, self.name, self.repeats)


def _emoji_word_positions(w: _Work) -> list[int]:
    """Sorted positions of the characters of the words that follow their word emoji (🐸蛙: the 蛙), added by the
    emoji step or already there: the restorer leaves them alone (it made 🐸蛙对不起 -> 🐸绝对不起, and a second pass
    added 蛙 again)."""
    text = w.text
    found = _emoji_finder().positions(text, w.astral_chars())
    if not found:
        return []
    table = _emoji_table()
    out: list[int] = []
    for p in found:
        word = table[text[p]]
        if text.startswith(word, p + 1):
            out += range(p + 1, p + 1 + len(word))
    return out


class RestoreStep(Step):
    """Context-aware homophone / pinyin restoration by ``qinglang_nlp.restore`` (a noisy channel over a character
    LM). The text is cut at the batch separator first, so a joined batch restores exactly as its texts one by one.

    Restored pinyin is CJK, so what the earlier steps left alone around it is revisited: noise now between two CJK
    characters (婊子养的 是 from ``biaoziyangde 是``) with ``noise``, homophone spellings the restorer chose
    because the LM knows them (shabi -> 煞笔 -> 傻逼) with ``homophones`` (the same tables as that step), and runs
    of one restored character (mamamama -> 马马马马 -> 马马马) with ``repeats``, so that normalising twice changes
    nothing more."""

    name = "restore"

    def __init__(self, noise: bool = False, homophones: HomophoneStep | None = None,
                 repeats: RepeatStep | None = None, chars: _Seq[Step] = ()):
        self.noise = noise
        self.homophones = homophones
        self.repeats = repeats
        self.chars = chars  # the traditional and variants steps, if on

    def normalize(self, w: _Work) -> None:
        from .restore import restore_edits_batch

        pieces = w.text.split(_BATCH_SEP)
        out: list[tuple] = []
        base = 0
        guard = _emoji_word_positions(w)
        for piece, edits in zip(pieces, restore_edits_batch(pieces)):
            for s, e, repl in edits:
                if not (w.has_parts() and w.is_protected(base + s, base + e)) \
                        and not (guard and _touches_any(guard, base + s, base + e - 1)):
                    out.append((base + s, base + e, repl, None, None))
            base += len(piece) + _SEP_LEN
        if not out:
            return
        w.apply(out, self.name)
        for step in self.chars:  # the LM's characters may be traditional or variants (傻hao + U+3099 -> 傻號)
            step.normalize(w)
        if self.noise:
            _denoise_around(w, out)
        if self.homophones is not None:
            self.homophones.normalize(w)
        if self.repeats is not None:
            before = len(w.repeats)
            self.repeats.normalize(w)
            if len(w.repeats) > before:  # kept in original order (normalize_batch indexes them per text)
                w.repeats.sort(key=operator.itemgetter(2))


# --------------------------------------------------------------------------------------------------------------
# Sequence, normalize, normalize_batch, explain
# --------------------------------------------------------------------------------------------------------------

class Sequence:
    """Steps applied in order to one work state."""

    def __init__(self, steps: list[Step]):
        self.steps = steps

    def run(self, w: _Work, explain: list | None = None) -> None:
        if explain is None:
            for step in self.steps:
                step.normalize(w)
            return
        for step in self.steps:
            w.log = []
            step.normalize(w)
            explain.append({"step": step.name, "changed": bool(w.log), "changes": w.log, "text": w.text})
        w.log = None


def _sequence(cfg: NormalizeConfig) -> Sequence:
    # by identity first: hashing a 17-field frozen dataclass costs more than a short comment's invisible step
    got = _SEQS_BY_ID.get(id(cfg))
    if got is not None and got[0] is cfg:
        return got[1]
    seq = _SEQS.get(cfg)
    if seq is not None:
        if len(_SEQS_BY_ID) > 256:
            _SEQS_BY_ID.clear()
        _SEQS_BY_ID[id(cfg)] = (cfg, seq)  # the entry keeps cfg alive, so its id is not reused meanwhile
        return seq

    def build() -> Sequence:
        steps: list[Step] = []
        if cfg.invisible:
            steps.append(InvisibleStep())
        if cfg.nfkc or cfg.fullwidth or cfg.stylised or cfg.casefold:
            steps.append(UnicodeStep(cfg.nfkc, cfg.fullwidth, cfg.stylised, cfg.casefold))
        if cfg.html:
            steps.append(HtmlStep(fold=list(steps)))
        if cfg.structure:
            steps.append(StructureStep())
        if cfg.noise:
            steps.append(NoiseStep())
        if cfg.stylised:
            steps.append(NumeralStep())
        if cfg.traditional:
            steps.append(TraditionalStep())
        if cfg.variants:
            steps.append(VariantStep())
        if cfg.radicals:
            steps.append(RadicalStep())
        again = RepeatStep(cfg.max_repeat) if cfg.repeats else None  # for the runs the later steps make
        if again is not None:
            steps.append(again)
        if cfg.emoji:
            steps.append(EmojiStep(again))
        if cfg.abbreviations:
            steps.append(AbbreviationStep(noise=cfg.noise, folded=cfg.casefold, targets=cfg.targets, repeats=again))
        if cfg.homophones:
            steps.append(HomophoneStep(cfg.targets, again))
        if cfg.restore:
            steps.append(RestoreStep(cfg.noise, steps[-1] if cfg.homophones else None,  # type: ignore[arg-type]
                                     RepeatStep(cfg.max_repeat) if cfg.repeats else None,
                                     [st for st in steps if isinstance(st, (TraditionalStep, VariantStep))]))
        return Sequence(steps)
    with _LOCK:
        seq = _SEQS.get(cfg) or build()
        _SEQS[cfg] = seq
    return seq


def _config(config: NormalizeConfig | dict | None) -> NormalizeConfig:
    if config is None:
        return _DEFAULT
    if isinstance(config, NormalizeConfig):
        return config
    if isinstance(config, dict):
        return NormalizeConfig.from_dict(config)
    raise TypeError(f"config must be a NormalizeConfig, dict or None, got {type(config).__name__}")


_DEFAULT = NormalizeConfig()
_SEQS: dict[NormalizeConfig, Sequence] = {}
_SEQS_BY_ID: dict[int, tuple[NormalizeConfig, Sequence]] = {}


_part_key = operator.itemgetter(1, 2)  # (orig_start, orig_end) of a raw part
_repeat_key = operator.itemgetter(2)  # orig_start of a raw repeat


# An "@" inside a word. On Weibo and Douyin an "@" starts a mention wherever it stands, also right after a Chinese
# character (据@国防部, 回复@张三:, 卧槽@蓝沢夜: 4,010 in 2,156 of the 209,735 train comments of COLD, CHNCI,
# ToxiCN, SWSR, Weibo16/21 and CED in the shared data), so what comes before it cannot tell a mention from noise.
# What can: the characters on its two sides. When they read (by pinyin, as the homophone step reads them) as two
# neighbouring characters of an offensive target term (傻@逼, 沙@比, 你@妈死了, 脑*@残), the "@" is noise inside the
# word, like the "*" of 傻*逼; none of those 4,010 has such neighbours. A space before the "@" ends the word: that is
# how a mention is written after text or another mention (恭喜你 @马嘉祺; CHNCI's "@不长高秘籍  @叭叭tata" reads 鸡巴). The neighbours are judged on the NORMALISED
# text (the mention's name is normalised too: 你@女马 -> 你@妈), then the text is normalised again with those "@"
# deleted by the noise step (你妈): so the judgement is the one a second pass would make, and normalising twice
# changes nothing.
_NOISE_CHAR = re.compile(f"[{_NOISE}]")
_CJK_CHAR = re.compile(f"[{CJK}]")
_AT_PASSES = 4  # each pass only adds "@" signs to delete; a second is needed when deleting some makes another pair


@_once
def _target_bigram_syllables() -> frozenset[str]:
    """The syllable strings (``syllable_string``) of the neighbouring character pairs of the target terms."""
    return _cached("target_bigram_syllables", lambda: frozenset(map(syllable_string, _targets()["bigrams"])))


def _insult_ats(text: str) -> list[int]:
    """Positions in a normalised ``text`` of the "@" signs that are noise inside an offensive word: the "@" signs of a
    run of noise without spaces that ends in one (傻@逼, 傻🐶@逼, 傻@@逼) between two CJK characters that read as a
    pair of neighbouring characters of a target term."""
    bis = None
    out: list[int] = []
    noise, cjk = _NOISE_CHAR.match, _CJK_CHAR.match
    p = text.find("@")
    while p >= 0:  # str.find from "@" to "@": half the time of a regex scan for "@" before CJK (480k characters)
        if cjk(text, p + 1):
            k = p
            while k > 0 and noise(text, k - 1):
                k -= 1
            # a space before the "@" is how a mention is written (恭喜你 @马嘉祺, @秘籍  @叭叭): not inside a word
            if k > 0 and cjk(text, k - 1) and not any(map(str.isspace, text[k:p])):
                if bis is None:
                    bis = _target_bigram_syllables()
                if syllable_string(text[k - 1] + text[p + 1]) in bis:
                    out += [i for i in range(k, p + 1) if text[i] == "@"]  # every "@" of the noise between them
        p = text.find("@", p + 1)
    return out


def _run(text: str, cfg: NormalizeConfig, explain: list | None = None) -> _Work:
    """Run the steps of ``cfg`` over ``text``; again, with the "@" signs inside words deleted, while the output has
    any (``_insult_ats``)."""
    seq = _sequence(cfg)
    w = _Work(text)
    seq.run(w, explain)
    if "@" not in w.text or not (cfg.structure and cfg.noise):
        return w
    for _ in range(_AT_PASSES):
        found = _insult_ats(w.text)
        if not found:
            break
        marks = sorted({*w.noise_ats, *(w.orig_span(p, p + 1)[0] for p in found)})
        w = _Work(text)
        w.noise_ats = marks
        if explain is not None:
            explain.clear()
        seq.run(w, explain)
    return w


def normalize(text: str, config: NormalizeConfig | dict | None = None) -> Normalized:
    """Normalise ``text`` with every step of ``config`` (default: all on); see the module docstring."""
    if not isinstance(text, str):
        raise TypeError(f"normalize() expects str, got {type(text).__name__}")
    cfg = _config(config)
    w = _run(text, cfg)
    out = Normalized.__new__(Normalized)
    out.original, out.text, out._k = text, w.text, 0
    out._chunk = _Chunk(w.starts, w.ends, [w.text], [text], w.parts, w.repeats, sort_repeats=False, struct=w.struct)
    return out


_SEP_CHAR = "\U0010fffd"  # private use: a separator that no step changes
_SEP_SET = frozenset(_SEP_CHAR)
_BATCH_SEP = f"\n{_SEP_CHAR}\n"
_BATCH_CHARS = 200_000


def normalize_batch(texts: Iterable[str], config: NormalizeConfig | dict | None = None) -> list[Normalized]:
    """Normalise many texts; identical to ``[normalize(t) for t in texts]`` but runs each step once per chunk
    of joined texts, which removes most of the per-call overhead on short comments."""
    cfg = _config(config)
    texts = list(texts)
    if not set(map(type, texts)) <= {str}:  # one C-level pass; the loop only to name the culprit
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"normalize_batch(): item {i} is {type(t).__name__}, expected str")
    out: list[Normalized | None] = [None] * len(texts)
    # The cyclic garbage collector is paused while the batch runs: it allocates many small acyclic objects
    # (one Normalized per text), and the collections this triggers cost about 30 % of the time on 10 MB.
    # It is switched back on (if it was on) before returning, also on errors.
    with _gc.paused():  # counted across threads, as in the lexicon (see qinglang_nlp._gc)
        _batch(texts, cfg, out)
    return out  # type: ignore[return-value]


_SEP_LEN = len(_BATCH_SEP)
_HTML_HINT = re.compile("[<\uff1c]")


def _batch(texts: list[str], cfg: NormalizeConfig, out: list) -> None:
    """Split ``texts`` into chunks of about ``_BATCH_CHARS`` characters and normalise each chunk joined.

    Texts that cannot share a chunk (they contain the separator's private-use character, may be HTML, or are
    longer than a chunk) are normalised one by one; they are found by one scan of each joined chunk.
    """
    lens = list(map(len, texts))
    n = len(texts)
    # ends[i]: the end of text i (plus separator) in the join of all texts; for many texts a numpy array, so
    # that finding the chunks' ends makes no Python int per text
    if n < _SHORT:
        ends: Any = _offsets(lens, n)[1:]
        find = functools.partial(bisect.bisect_left, ends)
    else:
        import numpy as np

        ends = np.cumsum(np.fromiter(lens, dtype=np.int64, count=n) + _SEP_LEN)
        find = ends.searchsorted
    a = 0
    while a < n:
        b = min(n, int(find((int(ends[a - 1]) if a else 0) + _BATCH_CHARS)) + 1)
        idx = range(a, b)
        chunk_texts = texts[a:b]
        joined = _BATCH_SEP.join(chunk_texts)
        alone = set()
        if joined.count("\U0010fffd") != b - a - 1:
            alone.update(i for i in idx if "\U0010fffd" in texts[i])
        if cfg.html and ("<" in joined or "\uff1c" in joined):  # str search: faster than a regex scan
            offs = _offsets(lens[a:b], b - a)[1:]
            alone.update(a + bisect.bisect_right(offs, m.start()) for m in _HTML_HINT.finditer(joined))
        if max(lens[a:b]) > _BATCH_CHARS:
            alone.update(i for i in idx if lens[i] > _BATCH_CHARS)
        if alone:
            for i in sorted(alone):
                out[i] = normalize(texts[i], cfg)
            idx = [i for i in idx if i not in alone]
            chunk_texts = [texts[i] for i in idx]
            joined = _BATCH_SEP.join(chunk_texts)
        if idx:
            _run_chunk(chunk_texts, idx, joined, cfg, out)
        a = b


def _offsets(lens: Iterable[int], n: int) -> list[int]:
    """Offsets of ``n`` texts of these lengths in their join by ``_BATCH_SEP`` (n + 1 values: the last is the
    total)."""
    if n < _SHORT:
        return list(accumulate((n + _SEP_LEN for n in lens), initial=0))
    import numpy as np

    out = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.fromiter(lens, dtype=np.int64, count=n) + _SEP_LEN, out=out[1:])
    return out.tolist()


def _run_chunk(originals: list[str], idx: _Seq[int], joined: str, cfg: NormalizeConfig, out: list) -> None:
    """Normalise the texts ``originals`` (at ``idx`` in ``out``) joined (``joined``) and cut the result into one
    Normalized per text."""
    w = _Work(joined)
    _sequence(cfg).run(w)
    pieces = w.text.split(_BATCH_SEP)
    n = len(pieces)
    if n != len(originals):  # a step touched the separator: fall back to one text at a time
        for i, t in zip(idx, originals):
            out[i] = normalize(t, cfg)
        return
    redo = []
    if cfg.structure and cfg.noise and "@" in w.text:
        found = _insult_ats(w.text)
        if found:  # texts with an "@" inside a word are normalised again without it, one by one (see ``_run``)
            los = _offsets(map(len, pieces), n)
            redo = sorted({bisect.bisect_right(los, p) - 1 for p in found})
    chunk = _Chunk(w.starts, w.ends, pieces, originals, w.parts, w.repeats, struct=w.struct)
    objs = list(map(Normalized.__new__, repeat(Normalized, n)))
    for o, t, piece, k in zip(objs, originals, pieces, range(n)):  # the hot loop: 18,000 texts per MB
        o.original = t
        o.text = piece
        o._chunk = chunk
        o._k = k
    for k in redo:
        objs[k] = normalize(originals[k], cfg)
    if isinstance(idx, range):
        out[idx.start:idx.stop] = objs
    else:
        for i, o in zip(idx, objs):
            out[i] = o


def explain(text: str, config: NormalizeConfig | dict | None = None) -> list[dict[str, Any]]:
    """Run the steps one by one and return one record per step, for ``qinglang normalize --explain``.

    Each record: ``{"step": name, "changed": bool, "text": text after the step, "changes": [{"start", "end",
    "original", "before", "after"}]}`` where ``start``/``end`` are offsets in the ORIGINAL text,
    ``original`` is that slice, ``before``/``after`` the step's input and output for it.
    """
    if not isinstance(text, str):
        raise TypeError(f"explain() expects str, got {type(text).__name__}")
    cfg = _config(config)
    records: list[dict[str, Any]] = []
    _run(text, cfg, explain=records)
    return records


# --------------------------------------------------------------------------------------------------------------
# Pinyin view
# --------------------------------------------------------------------------------------------------------------

class PinyinView:
    """The normalised text with each CJK character replaced by its toneless pinyin (no separators).

    ``to_original`` maps a view span to the ORIGINAL text; ``is_boundary(pos)`` says whether ``pos`` starts or
    ends one source character's syllable, so matches can be restricted to whole syllables.
    """

    __slots__ = ("_offsets", "normalized", "text")

    def __init__(self, normalized: Normalized):
        syl = _syllables()
        src = normalized.text
        pieces = list(map(syl.get, src, src))
        self.text = "".join(pieces)
        self.normalized = normalized
        self._offsets = list(accumulate(map(len, pieces), initial=0))  # view offset of each source char

    def _char(self, pos: int) -> int:
        return bisect.bisect_right(self._offsets, pos) - 1

    def to_normalized(self, start: int, end: int) -> tuple[int, int]:
        """Map a view span to the span of normalised characters it touches."""
        if not (0 <= start <= end <= len(self.text)):
            raise ValueError(f"span {start}:{end} is outside the pinyin view of length {len(self.text)}")
        s = self._char(start) if start < len(self.text) else len(self.normalized.text)
        if end == start:
            return s, s
        e = self._char(end - 1) + 1
        return s, e

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map the view span ``[start, end)`` to a span of the original text."""
        s, e = self.to_normalized(start, end)
        return self.normalized.to_original(s, e)

    def is_boundary(self, pos: int) -> bool:
        """True where ``pos`` is the start or end of one source character's syllable."""
        if not 0 <= pos <= len(self.text):
            return False
        i = bisect.bisect_left(self._offsets, pos)
        return i < len(self._offsets) and self._offsets[i] == pos

    def __repr__(self) -> str:
        return f"PinyinView({self.text!r})"


def pinyin_view(n: Normalized) -> PinyinView:
    """Pinyin view of a normalised text (computed on demand; per-character lookups are cached)."""
    if not isinstance(n, Normalized):
        raise TypeError(f"pinyin_view() expects a Normalized, got {type(n).__name__}")
    return PinyinView(n)


def to_pinyin(term: str, config: NormalizeConfig | dict | None = None) -> str:
    """Normalise a lexicon term, then pinyin-ise it the same way as ``pinyin_view`` (to_pinyin("傻逼") == "shabi")."""
    return pinyin_view(normalize(term, config)).text


def abbreviation_table() -> list[dict[str, str]]:
    """The abbreviation / pinyin / 饭圈 expansion table: spelling, canonical, kind, gloss."""
    return [{"spelling": r[0], "canonical": r[1], "kind": r[2] if len(r) > 2 else "",
             "gloss": r[3] if len(r) > 3 else ""} for r in _read_tsv("abbreviations.tsv")]


def fandom_glossary() -> dict[str, str]:
    """饭圈 vocabulary (already canonical in the text) with a short English gloss."""
    return {r[0]: r[1] for r in _read_tsv("fandom.tsv")}
