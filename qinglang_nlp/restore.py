"""Context-aware restoration of homophone and pinyin cloaking: a noisy-channel corrector over a character LM.

    from qinglang_nlp.restore import restore, restore_edits
    restore("今天天汽真好")          # -> "今天天气真好"   (homophone; the shipped LM, default thresholds)
    restore("你就是个shabi")         # -> "你就是个傻逼"   (full pinyin)
    restore_edits("我今天qu北京")    # -> [(3, 5, "去")]  edits on the INPUT text, sorted, non-overlapping

Model: the intended text ``w`` maximises ``log P_LM(w) + log P(observed | w)``.

- ``P_LM`` is a character trigram model (absolute discounting, interpolated down to a Kneser-Ney bigram model;
  :class:`CharLM`), built by
  ``training/build_charlm.py`` from the TRAIN splits of the trainable datasets and shipped as
  ``qinglang_nlp/data/charlm.npz`` (counts turned into log-probabilities; no text). Loaded lazily on first use.
- The channel keeps every character with probability close to 1. Three kinds of edit are possible, each paying a
  fixed cost (the "strong prior to keep"), so a replacement needs a large LM margin:

  (a) homophone: a CJK character may stand for another common character that shares one of its toneless pinyin
      readings (pypinyin, all readings). Only characters whose two bigrams with their neighbours are unlikely
      (``screen``) and that one candidate improves by a wide margin on its own (or pairs of such characters the
      LM has hardly seen together, ``pair_screen``) are considered; runs of one or two such characters are
      decoded jointly (all candidate pairs), longer runs two characters at a time.
  (b) full pinyin: a run of ``a-z`` letters that segments into valid pinyin syllables decodes to hanzi (trigram
      beam search over segmentations x candidate characters), if that beats the LM score of the letters themselves by
      ``pinyin_margin``.
  (c) pinyin initials: a run of 1-6 letters that does not segment into syllables is read as one initial per
      character (characters whose first reading starts with the letter), with a much larger margin
      (``initials_margin``), so only initials the LM is confident about (``我j天`` -> ``我今天``) are decoded; or,
      for 2+ letters, as a dictionary word with those initials (``CharLM.initials_words``: the initialism table
      ``data/normalize/initials.tsv`` with a prior bonus, the bundled vulgar and 饭圈 lexicon terms, jieba's
      general dictionary) with a smaller margin (``words_margin``): 非常ex -> 非常恶心, 被qj了 -> 被强奸了.

Latin runs are decoded left to right, each with the runs decoded before it as its left context. Full pinyin
accepts ü as v (nv, lve) and lüe as lue.

Latin runs touching digits or other letters' cases, or joined to other letters and digits by URL punctuation
(www.baidu.com, a_b), are left alone; punctuation before CJK, a space or the end of the text is not a join.
Upper-case letters are not pinyin here: run this after ``normalize`` (which case-folds).

``restore`` is idempotent: edits are applied until a pass finds nothing (at most ``MAX_PASSES`` passes); a text
that has not settled by then is returned unchanged, so ``restore(restore(x)) == restore(x)`` always holds.

Circularity: the homophone and pinyin channels are the same relation (same toneless pinyin) that
``qinglang_nlp.perturb`` uses to cloak, so the benchmark measures how well the LM picks the intended character
among the candidates, not whether the channel is the right model of real evaders.
"""
from __future__ import annotations

import json
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "LM_PATH",
    "CharLM",
    "RestoreConfig",
    "build_charlm",
    "default_lm",
    "initialisms",
    "restore",
    "restore_batch",
    "restore_edits",
    "restore_edits_batch",
]

LM_PATH = Path(__file__).parent / "data" / "charlm.npz"
BOS, UNK, DIGIT, SPACE = 0, 1, 2, 3
_NSPECIAL = 4
MAX_PASSES = 4
_PAIR_CANDS = 16  # candidates per position when two characters are decoded jointly
_LATIN_BEAM = 16  # beam width of the pinyin / initials decoders
_DENSE = 3000  # ids below this get a dense bigram table (3000 x 3000 float16 = 18 MB)
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
Edit = tuple[int, int, str]


def _is_cjk(c: str) -> bool:
    return "\u4e00" <= c <= "\u9fff"


def _canon(c: str) -> str:
    """The character the LM counts ``c`` as (NFKC, lower case; digits and spaces collapse to one class each)."""
    k = unicodedata.normalize("NFKC", c).lower()
    return k if len(k) == 1 else c


def _readings(c: str) -> list[str]:
    """All toneless pypinyin readings of a character (ü written v, as ``normalize`` and ``perturb`` do)."""
    from pypinyin.pinyin_dict import pinyin_dict

    raw = pinyin_dict.get(ord(c))
    if not raw:
        return []
    out = []
    for r in raw.split(","):
        s = _toneless(r)
        if s and s.isascii() and s.isalpha() and s not in out:
            out.append(s)
    return out


def _toneless(reading: str) -> str:
    """A pypinyin reading without tone marks, ü written v (nǚ -> nv, lüè -> lve), lower case."""
    out = []
    for ch in reading:
        nfd = unicodedata.normalize("NFD", ch)
        out.append("v" if "\u0308" in nfd else "".join(x for x in nfd if not unicodedata.combining(x)))
    return "".join(out).lower()


def _syllable_aliases(index: dict[str, int]) -> dict[str, int]:
    """Syllable index with ü spellings fixed and aliased: LM files built before the ü fix name 女 "nuv" (u + the
    diaeresis as v); evaders type nv / lv, and lue / nue for lüe."""
    out = {(s.replace("uv", "v") if "uv" in s else s): j for s, j in index.items()}
    for v_form, u_form in (("lve", "lue"), ("nve", "nue")):
        if v_form in out and u_form not in out:
            out[u_form] = out[v_form]
    return out


# --------------------------------------------------------------------------------------------------------------
# The character LM
# --------------------------------------------------------------------------------------------------------------

class CharLM:
    """Interpolated Kneser-Ney character bigram + trigram LM plus the channel's candidate tables, as numpy arrays.

    ``arrays`` holds ``chars`` (code points of ids 4..), ``pcont``/``lam`` (log continuation probability and log
    back-off weight per id), ``bi_keys``/``bi_logp`` (sorted ``a * V + b`` keys of the stored bigrams and their
    log-probabilities), the homophone candidates (``hom_ptr``/``hom_ids``, CSR by id), the pinyin syllables
    (``syl_names`` joined by newlines, ``syl_ptr``/``syl_ids``) and the initials (``ini_ptr``/``ini_ids``,
    one row per letter a-z). ``meta`` is a JSON string (data hashes, parameters).
    """

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        need = ("chars", "pcont", "lam", "bi_keys", "bi_logp", "hom_ptr", "hom_ids", "syl_names", "syl_ptr",
                "syl_ids", "ini_ptr", "ini_ids")
        missing = [k for k in need if k not in arrays]
        if missing:
            raise ValueError(f"character LM is missing arrays {missing}")
        self.arrays = arrays
        self.chars = np.asarray(arrays["chars"], dtype=np.uint32)
        self.V = _NSPECIAL + len(self.chars)
        self.pcont = np.asarray(arrays["pcont"], dtype=np.float32)
        self.lam = np.asarray(arrays["lam"], dtype=np.float32)
        self.bi_keys = np.asarray(arrays["bi_keys"], dtype=np.int64)
        self.bi_logp = np.asarray(arrays["bi_logp"], dtype=np.float32)
        if "tri_delta" in arrays:  # trigram keys a*V*V + b*V + c, stored as first key + uint32 deltas
            d = np.asarray(arrays["tri_delta"], dtype=np.int64)
            self.tri_keys = np.cumsum(d) + int(np.asarray(arrays["tri_first"]).item()) if len(d) else d
            self.tri_logp = np.asarray(arrays["tri_logp"], dtype=np.float32)
            self.tri_lam = np.asarray(arrays["tri_lam"], dtype=np.float32)  # per stored bigram (context)
        else:
            self.tri_keys = np.zeros(0, dtype=np.int64)
            self.tri_logp = self.tri_lam = np.zeros(0, dtype=np.float32)
        if not (len(self.pcont) == len(self.lam) == self.V and len(self.bi_keys) == len(self.bi_logp)):
            raise ValueError("character LM arrays have inconsistent sizes")
        self.hom_ptr = np.asarray(arrays["hom_ptr"], dtype=np.int64)
        self.hom_ids = np.asarray(arrays["hom_ids"], dtype=np.int32)
        names = str(np.asarray(arrays["syl_names"]).item())
        self.syl_index = _syllable_aliases({s: i for i, s in enumerate(names.split("\n")) if s})
        self.syl_ptr = np.asarray(arrays["syl_ptr"], dtype=np.int64)
        self.syl_ids = np.asarray(arrays["syl_ids"], dtype=np.int32)
        self.ini_ptr = np.asarray(arrays["ini_ptr"], dtype=np.int64)
        self.ini_ids = np.asarray(arrays["ini_ids"], dtype=np.int32)
        self.max_syl = max((len(s) for s in self.syl_index), default=0)
        meta = arrays.get("meta")
        self.meta: dict[str, Any] = json.loads(str(np.asarray(meta).item())) if meta is not None else {}
        table = _id_table(self.chars)
        self.table = table
        self.has_hom = np.diff(self.hom_ptr) > 1  # ids with at least one other candidate
        # dense log P(b | a) for the most frequent ids (a gather instead of a binary search)
        self.N = n = min(self.V, _DENSE)
        dense = (self.lam[:n, None] + self.pcont[None, :n]).astype(np.float16)
        ka, kb = self.bi_keys // self.V, self.bi_keys % self.V
        m = (ka < n) & (kb < n)
        dense[ka[m], kb[m]] = self.bi_logp[m]
        self.dense = dense.ravel()
        # an upper bound of log P(c | any context) per id (stored n-grams or back-off), for exact pruning
        top = np.asarray(self.lam.max() + self.pcont, dtype=np.float64)
        if len(self.bi_keys):
            np.maximum.at(top, (self.bi_keys % self.V).astype(np.int64), self.bi_logp.astype(np.float64))
        if len(self.tri_keys):
            np.maximum.at(top, (self.tri_keys % self.V).astype(np.int64), self.tri_logp.astype(np.float64))
        self.max_logp = np.minimum(top + 0.01, 0.0)  # slack for float16 rounding
        # initials: the characters whose FIRST reading starts with the letter (all readings put 吃 under q, 是
        # under t), most frequent first; recomputed here so that LM files built before this rule follow it too
        per = int(np.diff(self.ini_ptr).max()) if len(self.ini_ptr) > 1 else 0
        self.ini_ptr, self.ini_ids = _first_reading_initials(self.chars, per)
        self.ini_max = np.array([float(self.max_logp[self.initial(x)].max()) if len(self.initial(x)) else -np.inf
                                 for x in _LETTERS])
        self._words: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

    # -- lookups ---------------------------------------------------------------------------------------------
    def ids(self, text: str) -> np.ndarray:
        """Ids of the characters of ``text``."""
        a = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
        return self.table[a].astype(np.int64)

    def bigram(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """log P(b | a), element-wise (broadcasting) over id arrays."""
        a, b = np.broadcast_arrays(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
        n = self.N
        small = (a < n) & (b < n)
        if small.all():
            return self.dense[a * n + b].astype(np.float32)
        out = np.empty(a.shape, dtype=np.float32)
        out[small] = self.dense[a[small] * n + b[small]]
        big = ~small
        a, b = a[big], b[big]
        back = self.lam[a] + self.pcont[b]
        if len(self.bi_keys):
            key = a * self.V + b
            idx = np.minimum(np.searchsorted(self.bi_keys, key), len(self.bi_keys) - 1)
            back = np.where(self.bi_keys[idx] == key, self.bi_logp[idx], back)
        out[big] = back
        return out

    def trigram(self, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        """log P(c | a b), element-wise (broadcasting); backs off to the bigram through the context's weight."""
        a, b, c = np.broadcast_arrays(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64),
                                      np.asarray(c, dtype=np.int64))
        low = self.bigram(b, c)
        if not len(self.tri_keys) or not len(self.bi_keys):
            return low
        ctx = a * self.V + b
        j = np.minimum(np.searchsorted(self.bi_keys, ctx), len(self.bi_keys) - 1)
        lam = np.where(self.bi_keys[j] == ctx, self.tri_lam[j], 0.0)
        key = ctx * self.V + c
        idx = np.minimum(np.searchsorted(self.tri_keys, key), len(self.tri_keys) - 1)
        return np.where(self.tri_keys[idx] == key, self.tri_logp[idx], lam + low)

    def homophones(self, i: int) -> np.ndarray:
        """Candidate ids for observed id ``i`` (itself first)."""
        return self.hom_ids[self.hom_ptr[i]:self.hom_ptr[i + 1]]

    def syllable(self, s: str) -> np.ndarray | None:
        """Candidate ids for a toneless pinyin syllable, or None if ``s`` is not one."""
        j = self.syl_index.get(s)
        return None if j is None else self.syl_ids[self.syl_ptr[j]:self.syl_ptr[j + 1]]

    def initial(self, letter: str) -> np.ndarray:
        """Candidate ids for one pinyin initial letter."""
        j = ord(letter) - 97
        return self.ini_ids[self.ini_ptr[j]:self.ini_ptr[j + 1]]

    def initials_words(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Initials (``ex``, ``tynq``) -> (ids of the words they may stand for as a words x letters array, whether
        each word is a known initialism): the initialisms of ``data/normalize/initials.tsv`` first, then the
        terms of the bundled vulgar and 饭圈 lexicons, then the most frequent words of jieba's general dictionary
        (2-6 characters, every character in the LM). Built on first use."""
        if self._words is None:
            with _LOCK:
                if self._words is None:
                    self._words = _initials_words_cached(self)
        return self._words

    def char(self, i: int) -> str:
        """The character of a vocabulary id."""
        return chr(int(self.chars[i - _NSPECIAL]))

    def save(self, path: str | Path) -> None:
        """Write the arrays to a compressed ``.npz`` file."""
        np.savez_compressed(path, **self.arrays)

    @classmethod
    def load(cls, path: str | Path) -> CharLM:
        """Read an LM written by :meth:`save`."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"character LM {p} not found (build it with training/build_charlm.py)")
        with np.load(p, allow_pickle=False) as z:
            return cls({k: z[k] for k in z.files})


def build_charlm(texts: Iterable[str], *, min_count: int = 3, min_bigram: int = 2, min_trigram: int = 2,
                 cand_min_count: int = 5,
                 hom_per_syllable: int = 30, syl_per_syllable: int = 24, per_initial: int = 60,
                 meta: dict[str, Any] | None = None) -> CharLM:
    """Count characters and bigrams of ``texts`` and build a :class:`CharLM` (deterministic for the same input).

    ``min_count``: characters seen fewer times are UNK; ``min_bigram``/``min_trigram``: n-grams seen fewer times
    are not stored (they back off); ``cand_min_count``: the channel only proposes characters seen at least this often.
    """
    from collections import Counter

    texts = [t for t in texts if isinstance(t, str) and t]
    cc: Counter[str] = Counter()
    for t in texts:
        cc.update(t)
    canon_count: Counter[str] = Counter()
    for c, n in cc.items():
        k = _canon(c)
        if k.isdigit() or k.isspace() or (0xD800 <= ord(k) < 0xE000):
            continue
        canon_count[k] += n
    for x in _LETTERS:  # letters always have ids: the LM scores Latin runs kept as they are
        canon_count.setdefault(x, 0)
    vocab = sorted((c for c, n in canon_count.items() if n >= min_count or c in _LETTERS),
                   key=lambda c: (-canon_count[c], ord(c)))
    chars = np.array([ord(c) for c in vocab], dtype=np.uint32)
    V = _NSPECIAL + len(vocab)
    proto = _id_table(chars)
    # bigram counts over BOS t BOS t BOS ...
    seq = [np.zeros(1, dtype=np.int64)]
    for t in texts:
        seq.append(proto[np.frombuffer(t.encode("utf-32-le", "surrogatepass"), dtype="<u4")].astype(np.int64))
        seq.append(np.zeros(1, dtype=np.int64))
    ids = np.concatenate(seq)
    keys, counts = np.unique(ids[:-1] * V + ids[1:], return_counts=True)
    a, b = keys // V, keys % V
    n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
    D = n1 / (n1 + 2 * n2) if n1 + 2 * n2 > 0 else 0.75
    ca = np.bincount(a, weights=counts, minlength=V)
    na = np.bincount(a, minlength=V).astype(np.float64)
    nb = np.bincount(b, minlength=V).astype(np.float64)
    pcont = (nb + 0.5) / (nb.sum() + 0.5 * V)  # add-half so unseen ids keep some mass
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(ca > 0, D * na / np.maximum(ca, 1), 1.0)
    p = np.maximum(counts - D, 0) / ca[a] + lam[a] * pcont[b]
    keep = counts >= min_bigram
    uni = np.bincount(ids, minlength=V)
    bi_keys = keys[keep]
    bi_logp16 = np.log(p[keep]).astype(np.float16)
    arrays = {
        "chars": chars, "pcont": np.log(pcont).astype(np.float32), "lam": np.log(lam).astype(np.float32),
        "bi_keys": bi_keys.astype(np.uint32 if V * V < 2**32 else np.int64), "bi_logp": bi_logp16,
    }
    # trigrams: interpolated absolute discounting down to the stored bigram model (what the runtime computes)
    tkeys, tcounts = np.unique((ids[:-2] * V + ids[1:-1]) * V + ids[2:], return_counts=True)
    tctx = tkeys // V
    t1, t2 = int((tcounts == 1).sum()), int((tcounts == 2).sum())
    D3 = t1 / (t1 + 2 * t2) if t1 + 2 * t2 > 0 else 0.75
    uctx, inv = np.unique(tctx, return_inverse=True)
    n_ctx = np.bincount(inv, weights=tcounts)
    n1_ctx = np.bincount(inv).astype(np.float64)
    lam3 = D3 * n1_ctx / n_ctx
    pos = np.searchsorted(bi_keys, uctx)
    pos[pos >= len(bi_keys)] = 0
    stored_ctx = bi_keys[pos] == uctx
    tri_lam = np.zeros(len(bi_keys), dtype=np.float64)
    tri_lam[pos[stored_ctx]] = np.log(lam3[stored_ctx])
    tkeep = (tcounts >= min_trigram) & stored_ctx[inv]
    b_ = (tkeys // V) % V
    c_ = tkeys % V
    bj = np.searchsorted(bi_keys, b_ * V + c_)
    bj[bj >= len(bi_keys)] = 0
    low = np.where(bi_keys[bj] == b_ * V + c_, bi_logp16[bj].astype(np.float64),
                   np.log(lam[b_]) + np.log(pcont[c_]))
    p3 = np.maximum(tcounts - D3, 0) / n_ctx[inv] + lam3[inv] * np.exp(low)
    tk = tkeys[tkeep]
    delta = np.diff(tk)
    if len(delta) and delta.max() >= 2**32:
        raise ValueError("trigram key gaps do not fit uint32; raise min_trigram or shrink the vocabulary")
    arrays.update({"tri_first": np.array(int(tk[0]) if len(tk) else 0, dtype=np.int64),
                   "tri_delta": np.concatenate([[0], delta]).astype(np.uint32) if len(tk) else np.zeros(0, np.uint32),
                   "tri_logp": np.log(p3[tkeep]).astype(np.float16), "tri_lam": tri_lam.astype(np.float16)})
    arrays.update(_channel_tables(vocab, uni, cand_min_count, hom_per_syllable, syl_per_syllable, per_initial))
    info = {"discount": D, "tokens": len(ids), "texts": len(texts), "vocab": len(vocab),
            "bigrams_seen": len(keys), "bigrams_stored": int(keep.sum()), "trigrams_seen": len(tkeys),
            "trigrams_stored": int(tkeep.sum()), "discount3": D3, "min_count": min_count,
            "min_bigram": min_bigram, "min_trigram": min_trigram, "cand_min_count": cand_min_count, **(meta or {})}
    arrays["meta"] = np.array(json.dumps(info, ensure_ascii=False, sort_keys=True))
    return CharLM(arrays)


def _id_table(chars: np.ndarray) -> np.ndarray:
    """Code point -> id: vocabulary characters (and their NFKC / lower-case forms), digit and space classes, UNK."""
    V = _NSPECIAL + len(chars)
    table = np.full(0x110000, UNK, dtype=np.uint16 if V < 65535 else np.uint32)
    table[chars] = np.arange(_NSPECIAL, V, dtype=table.dtype)
    for cp in range(0x10000):
        if table[cp] == UNK and not (0xD800 <= cp < 0xE000):
            c = chr(cp)
            k = _canon(c)
            if k.isdigit() or (c.isdigit() and not _is_cjk(c)):
                table[cp] = DIGIT
            elif k.isspace():
                table[cp] = SPACE
            elif k != c and len(k) == 1 and table[ord(k)] != UNK:
                table[cp] = table[ord(k)]
    return table


def _csr(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(r) for r in rows])
    flat = np.array([x for r in rows for x in r], dtype=np.int32)
    return ptr, flat


def _channel_tables(vocab: list[str], uni: np.ndarray, min_count: int, k_hom: int, k_syl: int,
                    k_ini: int) -> dict[str, np.ndarray]:
    """Homophone, syllable and initial candidate tables (ids sorted by frequency, most frequent first)."""
    by_syl: dict[str, list[int]] = {}
    readings: dict[int, list[str]] = {}
    for j, c in enumerate(vocab):
        i = _NSPECIAL + j
        if not _is_cjk(c):
            continue
        rs = _readings(c)
        readings[i] = rs
        if uni[i] >= min_count:
            for s in rs:
                by_syl.setdefault(s, []).append(i)  # vocab is in frequency order already
    V = _NSPECIAL + len(vocab)
    hom_rows: list[list[int]] = []
    for i in range(V):
        row = [i]
        for s in readings.get(i, []):
            row += [x for x in by_syl.get(s, [])[:k_hom] if x not in row]
        hom_rows.append(row if len(row) > 1 else [i])
    syls = sorted(by_syl)
    syl_rows = [by_syl[s][:k_syl] for s in syls]
    ini_rows = []
    for x in _LETTERS:
        ranked = sorted({i for s in syls if s[0] == x for i in by_syl[s]}, key=lambda i: (-uni[i], i))
        ini_rows.append(ranked[:k_ini])
    hom_ptr, hom_ids = _csr(hom_rows)
    syl_ptr, syl_ids = _csr(syl_rows)
    ini_ptr, ini_ids = _csr(ini_rows)
    return {"hom_ptr": hom_ptr, "hom_ids": hom_ids, "syl_names": np.array("\n".join(syls)),
            "syl_ptr": syl_ptr, "syl_ids": syl_ids, "ini_ptr": ini_ptr, "ini_ids": ini_ids}


def _first_reading_initials(chars: np.ndarray, per: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR rows a-z: ids of CJK characters whose first pypinyin reading starts with the letter, by frequency."""
    from .normalize import _syllables

    syl = _syllables()
    rows: list[list[int]] = [[] for _ in _LETTERS]
    for j, cp in enumerate(chars.tolist()):
        c = chr(cp)
        r = syl.get(c, "") if _is_cjk(c) else ""
        if r and "a" <= r[0] <= "z" and len(rows[ord(r[0]) - 97]) < per:
            rows[ord(r[0]) - 97].append(_NSPECIAL + j)  # ids are in frequency order
    return _csr(rows)


_WORDS_PER_KEY = 40
_WORD_LEN = (2, 6)


INITIALS_PATH = Path(__file__).parent / "data" / "normalize" / "initials.tsv"


def initialisms(path: str | Path = INITIALS_PATH) -> list[tuple[str, str]]:
    """``(initials, word)`` rows of an initialism table (``data/normalize/initials.tsv``); a row whose initials
    are not those of its word (first pinyin reading of each character) is an error."""
    from .normalize import _syllables

    syl = _syllables()
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 2:
            raise ValueError(f"{path}:{n}: expected initials<TAB>word, got {line!r}")
        key, word = cols[0], cols[1]
        actual = "".join(syl.get(c, "?")[:1] for c in word)
        if key != actual:
            raise ValueError(f"{path}:{n}: {word!r} has the initials {actual!r}, not {key!r}")
        rows.append((key, word))
    return rows


def _initials_words(lm: CharLM) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from importlib import resources

    from .lexicon import bundled_path
    from .normalize import _syllables

    syl = _syllables()
    table = [w for _, w in initialisms()]
    words: list[str] = list(table)
    for name in ("vulgar", "fanquan"):
        for line in bundled_path(name).read_text(encoding="utf-8").splitlines():
            term = line.split("\t", 1)[0]
            if term and not line.startswith("#") and term != "term":
                words.append(term)
    ranked: list[tuple[int, str]] = []
    with (resources.files("jieba") / "dict.txt").open(encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                ranked.append((-int(parts[1]), parts[0]))
    words += [w for _, w in sorted(ranked)]
    # character -> (initial, id) for the CJK characters of the LM with a reading
    info = {c: (r[0], _NSPECIAL + j) for j, c in enumerate(map(chr, lm.chars.tolist()))
            if _is_cjk(c) and (r := syl.get(c, "")) and "a" <= r[0] <= "z"}
    by_key: dict[str, list[list[int]]] = {}
    known: dict[str, list[bool]] = {}
    in_table = set(table)
    seen: set[str] = set()
    lo, hi = _WORD_LEN
    for w in words:
        if not lo <= len(w) <= hi or w in seen:
            continue
        seen.add(w)
        got = [info.get(c) for c in w]
        if None in got:
            continue
        row = by_key.setdefault("".join(x[0] for x in got), [])  # type: ignore[index]
        if len(row) < _WORDS_PER_KEY:
            row.append([x[1] for x in got])  # type: ignore[index]
            known.setdefault("".join(x[0] for x in got), []).append(w in in_table)  # type: ignore[index]
    return {k: (np.array(v, dtype=np.int64), np.array(known[k])) for k, v in by_key.items()}


def _initials_words_cached(lm: CharLM) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """:func:`_initials_words`, kept in ``$QINGLANG_CACHE`` (about 2 s of CPU to build, 0.1 s to read back).

    The file name carries a hash of everything the table depends on (the LM's characters and their readings, the
    building code, the initialism table, the bundled lists, jieba's dictionary file and the word limits). Any failure to read or write the cache falls back to building."""
    import hashlib
    import inspect

    import jieba
    import pypinyin

    from .cache import cache_dir, write_atomic
    from .lexicon import bundled_path
    from .normalize import _syllables

    h = hashlib.sha256(repr(("initials-words-v1", _WORD_LEN, _WORDS_PER_KEY, _NSPECIAL)).encode())
    try:
        h.update(inspect.getsource(_initials_words).encode())
    except (OSError, TypeError):  # installed without sources (.pyc only): the version string above must do
        pass
    h.update(np.ascontiguousarray(lm.chars).tobytes())
    syl = _syllables()  # the readings the table is built from, not only the version that produced them
    h.update("\n".join(syl.get(c, "") for c in map(chr, lm.chars.tolist())).encode())
    for p in (INITIALS_PATH, bundled_path("vulgar"), bundled_path("fanquan")):
        h.update(Path(p).read_bytes())
    src = Path(jieba.__file__).with_name(jieba.DEFAULT_DICT_NAME)
    st = src.stat()
    h.update(f"{jieba.__version__}|{st.st_size}|{int(st.st_mtime)}|{pypinyin.__version__}".encode())
    path = cache_dir() / f"initials-words-{h.hexdigest()[:20]}.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = str(z["keys"]).split("\n")
            counts, ids, known = z["counts"], z["ids"], z["known"]
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        pos = kpos = 0
        for key, k in zip(keys, counts.tolist()):
            n = k * len(key)
            out[key] = (ids[pos:pos + n].astype(np.int64).reshape(k, len(key)), known[kpos:kpos + k].copy())
            pos, kpos = pos + n, kpos + k
        if pos == len(ids) and kpos == len(known):
            return out
    except Exception:  # noqa: BLE001, S110 -- a missing, truncated or foreign cache file only means: build it
        pass
    table = _initials_words(lm)
    keys = list(table)
    write_atomic(path, lambda fh: np.savez(
        fh, keys=np.array("\n".join(keys)),
        counts=np.array([len(table[k][1]) for k in keys], dtype=np.int32),
        ids=np.concatenate([table[k][0].ravel() for k in keys]).astype(np.int32) if keys else np.zeros(0, np.int32),
        known=np.concatenate([table[k][1] for k in keys]) if keys else np.zeros(0, bool)))
    return table


_LOCK = threading.Lock()
_DEFAULT: list[CharLM] = []


def default_lm() -> CharLM:
    """The shipped LM (``qinglang_nlp/data/charlm.npz``), loaded once per process on first use."""
    if not _DEFAULT:
        with _LOCK:
            if not _DEFAULT:
                _DEFAULT.append(CharLM.load(LM_PATH))
    return _DEFAULT[0]


# --------------------------------------------------------------------------------------------------------------
# The corrector
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RestoreConfig:
    """Decision thresholds (natural-log units). Tuned on the carved DEV split (``benchmarks/restore_quality.py``).

    ``screen``: a CJK character is a homophone suspect only if log P(c | left) + log P(right | c) is below this.
    ``homophone_cost``: cost of each homophone replacement; a run of suspects is decoded only if one of them has
    a single-character bigram gain above ``homophone_cost - screen_slack``, or if it is a pair of suspects whose
    inner bigram log-probability is below ``pair_screen`` (a word cloaked whole, 讹薪 for 恶心; 0 switches this
    off). ``pinyin_margin``/``pinyin_cost``: a full-pinyin run
    decodes only if its best hanzi path, minus ``pinyin_cost`` per syllable, beats the letters by the margin.
    ``initials_margin``/``initials_cost``: the same for initials (``initials=False`` switches them off);
    ``words_margin`` replaces ``initials_margin`` when the best reading of 2+ initials is a dictionary word
    (:meth:`CharLM.initials_words`: ex -> 恶心, tynq -> 田园女权) rather than a string of frequent characters;
    ``table_bonus`` is added to the score of the words of the initialism table (``data/normalize/initials.tsv``).
    """

    homophones: bool = True
    pinyin: bool = True
    initials: bool = True
    screen: float = -12.0
    homophone_cost: float = 10.0
    screen_slack: float = 4.0
    pinyin_margin: float = 8.0
    pinyin_cost: float = 1.0
    initials_margin: float = 8.0
    initials_cost: float = 3.0
    words_margin: float = 4.0
    table_bonus: float = 4.0
    pair_screen: float = -11.0
    max_run: int = 40
    max_initials: int = 6


_LATIN_RE = re.compile(r"[a-z]+")
_ALNUM = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_JOINERS = set("./@:_-=?&%#+\\~'")  # join Latin into URLs, paths, e-mail addresses, identifiers
_OPEN = -1  # a context position with nothing known (the next Latin run, not yet decoded)


def _blocked(text: str, s: int, e: int) -> bool:
    """Whether the Latin run ``text[s:e]`` belongs to a larger Latin token: a letter or digit touches it, or a
    joiner (``.``, ``@``, ``_`` …) stands between it and another letter or digit (www.baidu.com, a_b, x@y.cn).
    A joiner before CJK, a space or the end of the text is sentence punctuation (你是shabi? 对)."""
    for at, beyond in ((s - 1, s - 2), (e, e + 1)):
        if 0 <= at < len(text):
            c = text[at]
            if c in _ALNUM:
                return True
            if c in _JOINERS and 0 <= beyond < len(text) and text[beyond] in _ALNUM:
                return True
    return False


class _Restorer:
    def __init__(self, lm: CharLM, cfg: RestoreConfig) -> None:
        self.lm, self.cfg = lm, cfg

    # -- one pass over a batch -------------------------------------------------------------------------------
    def pass_batch(self, texts: Sequence[str]) -> list[list[Edit]]:
        out: list[list[Edit]] = [[] for _ in texts]
        latin_done: list[list[Edit]] = [[] for _ in texts]
        if self.cfg.pinyin or self.cfg.initials:
            for k, t in enumerate(texts):
                if _LATIN_RE.search(t):
                    latin_done[k] = self._latin(t)
        if not self.cfg.homophones:
            return latin_done
        # homophones, on the text with the Latin decodes applied
        cur = [_apply(t, e) if e else t for t, e in zip(texts, latin_done)]
        hom = self._homophones_batch(cur)
        for k in range(len(texts)):
            out[k] = _compose(texts[k], latin_done[k], hom[k]) if hom[k] else latin_done[k]
        return out

    def _homophones_batch(self, texts: Sequence[str]) -> list[list[Edit]]:
        lm, cfg = self.lm, self.cfg
        out: list[list[Edit]] = [[] for _ in texts]
        joined = "\x00".join(texts)
        ids = np.empty(len(joined) + 2, dtype=np.int64)
        ids[0] = ids[-1] = BOS
        ids[1:-1] = lm.ids(joined)
        starts = np.zeros(len(texts), dtype=np.int64)
        if len(texts) > 1:
            starts[1:] = np.cumsum([len(t) + 1 for t in texts[:-1]])
            ids[starts[1:]] = BOS  # separators (padded index = start - 1 + 1)
        lp = lm.bigram(ids[:-1], ids[1:])  # lp[i] = log P(ids[i+1] | ids[i])
        keep = lp[:-1] + lp[1:]  # keep[j] for padded position j + 1
        sus = np.flatnonzero(lm.has_hom[ids[1:-1]] & (keep < cfg.screen)) + 1
        if not len(sus):
            return out
        # second screen: the best single-character bigram gain of each suspect over keeping it
        sid = ids[sus]
        lo, n_c = lm.hom_ptr[sid], lm.hom_ptr[sid + 1] - lm.hom_ptr[sid]
        owner = np.repeat(np.arange(len(sus)), n_c)
        first = np.concatenate([[0], np.cumsum(n_c)[:-1]])
        cand = lm.hom_ids[np.repeat(lo - first, n_c) + np.arange(int(n_c.sum()))]
        gain = lm.bigram(ids[sus - 1][owner], cand) + lm.bigram(cand, ids[sus + 1][owner]) - keep[sus - 1][owner]
        best = np.maximum.reduceat(np.where(cand == sid[owner], -np.inf, gain), first)
        # in runs of 3+ suspects (names, rare words), drop members that no single candidate improves at all
        seg_id = np.concatenate([[0], np.cumsum(np.diff(sus) != 1)])
        drop = (np.bincount(seg_id)[seg_id] >= 3) & (best < 0)
        sus, best = sus[~drop], best[~drop]
        if not len(sus):
            return out
        # group consecutive suspects into segments [s, e) of padded positions; decode the promising ones
        breaks = np.flatnonzero(np.diff(sus) != 1)
        seg_first = np.concatenate([[0], breaks + 1])
        promising = np.maximum.reduceat(best, seg_first) > cfg.homophone_cost - cfg.screen_slack
        if cfg.pair_screen < 0:  # two suspects side by side, a pair the LM has hardly seen: a word cloaked whole
            # (讹薪 for 恶心) gains only jointly
            seg_n = np.diff(np.append(seg_first, len(sus)))
            pair = sus[seg_first]
            promising |= (seg_n == 2) & (lp[np.minimum(pair, len(lp) - 1)] < cfg.pair_screen)
        seg_s = sus[seg_first][promising]
        seg_e = np.concatenate([sus[breaks], [sus[-1]]])[promising] + 1
        if not len(seg_s):
            return out
        # segments of 3+ characters are decoded two characters at a time (with the observed neighbours as context);
        # the fixed-point loop of restore_edits_batch revisits them with the new context
        lens = seg_e - seg_s
        n_chunks = (lens + 1) // 2
        chunk_s = np.repeat(seg_s, n_chunks) + 2 * (np.arange(int(n_chunks.sum())) - np.repeat(
            np.concatenate([[0], np.cumsum(n_chunks)[:-1]]), n_chunks))
        chunk_len = np.minimum(2, np.repeat(seg_e, n_chunks) - chunk_s)
        for decode, mask in ((self._single, chunk_len == 1), (self._pair, chunk_len == 2)):
            if mask.any():
                for pos, c in zip(*decode(ids, chunk_s[mask])):
                    k = int(np.searchsorted(starts, pos - 1, side="right")) - 1
                    out[k].append((pos - int(starts[k]) - 1, pos - int(starts[k]), lm.char(c)))
        return [sorted(e) for e in out]

    def _single(self, ids: np.ndarray, P: np.ndarray) -> tuple[list[int], list[int]]:
        """Vectorised decode of one-character segments at padded positions ``P``: (positions, new ids) changed."""
        lm, cost = self.lm, self.cfg.homophone_cost
        last = len(ids) - 1
        l1, r1 = ids[P - 1], ids[P + 1]
        l2 = np.where(l1 == BOS, BOS, ids[np.maximum(P - 2, 0)])
        r2 = np.where(r1 == BOS, BOS, ids[np.minimum(P + 2, last)])
        obs = ids[P]
        lo, n_c = lm.hom_ptr[obs], lm.hom_ptr[obs + 1] - lm.hom_ptr[obs]
        owner = np.repeat(np.arange(len(P)), n_c)
        first = np.concatenate([[0], np.cumsum(n_c)[:-1]])
        cand = lm.hom_ids[np.repeat(lo - first, n_c) + np.arange(int(n_c.sum()))]
        L2, L1, R1, R2 = l2[owner], l1[owner], r1[owner], r2[owner]
        score = lm.trigram(L2, L1, cand) + lm.trigram(L1, cand, R1)
        score = score + np.where(R1 == BOS, 0.0, lm.trigram(cand, R1, R2)) - cost * (cand != obs[owner])
        best = np.maximum.reduceat(score, first)
        hit = np.flatnonzero(score >= best[owner])
        hit = hit[np.concatenate([[True], owner[hit][1:] != owner[hit][:-1]])]  # first best per position
        changed = cand[hit] != obs[owner[hit]]
        return P[owner[hit][changed]].tolist(), cand[hit][changed].tolist()

    def _pair(self, ids: np.ndarray, P: np.ndarray) -> tuple[list[int], list[int]]:
        """Vectorised decode of two-character segments starting at padded positions ``P``: every candidate pair
        is scored; returns the (positions, new ids) that change."""
        lm, cost = self.lm, self.cfg.homophone_cost
        last = len(ids) - 1
        l1, r1 = ids[P - 1], ids[P + 2]
        l2 = np.where(l1 == BOS, BOS, ids[np.maximum(P - 2, 0)])
        r2 = np.where(r1 == BOS, BOS, ids[np.minimum(P + 3, last)])
        o1, o2 = ids[P], ids[P + 1]
        n1 = np.minimum(lm.hom_ptr[o1 + 1] - lm.hom_ptr[o1], _PAIR_CANDS)  # the observed + the most frequent
        n2 = np.minimum(lm.hom_ptr[o2 + 1] - lm.hom_ptr[o2], _PAIR_CANDS)
        npair = n1 * n2
        owner = np.repeat(np.arange(len(P)), npair)
        first = np.concatenate([[0], np.cumsum(npair)[:-1]])
        local = np.arange(int(npair.sum())) - first[owner]
        i1, i2 = local // n2[owner], local % n2[owner]
        c1 = lm.hom_ids[lm.hom_ptr[o1][owner] + i1]
        c2 = lm.hom_ids[lm.hom_ptr[o2][owner] + i2]
        L2, L1, R1, R2 = l2[owner], l1[owner], r1[owner], r2[owner]
        score = (lm.trigram(L2, L1, c1) + lm.trigram(L1, c1, c2) + lm.trigram(c1, c2, R1)
                 + np.where(R1 == BOS, 0.0, lm.trigram(c2, R1, R2))
                 - cost * ((c1 != o1[owner]).astype(np.float64) + (c2 != o2[owner])))
        best = np.maximum.reduceat(score, first)
        hit = np.flatnonzero(score >= best[owner])
        hit = hit[np.concatenate([[True], owner[hit][1:] != owner[hit][:-1]])]
        pos: list[int] = []
        new: list[int] = []
        for h in hit.tolist():
            j = int(owner[h])
            for off, c, o in ((0, c1[h], o1[j]), (1, c2[h], o2[j])):
                if c != o:
                    pos.append(int(P[j]) + off)
                    new.append(int(c))
        return pos, new

    @staticmethod
    def _ctx(ids: np.ndarray, at: int, step: int) -> tuple[int, int]:
        """Two context ids from padded position ``at`` outward (left: (far, near); right: (near, far)); a text
        boundary (BOS) hides what lies beyond it."""
        near = int(ids[at]) if 0 <= at < len(ids) else BOS
        far = int(ids[at + step]) if near != BOS and 0 <= at + step < len(ids) else BOS
        return (far, near) if step < 0 else (near, far)

    def _chain(self, seq: Sequence[int], left: tuple[int, int], right: tuple[int, int]) -> float:
        """Trigram log-probability of ``seq`` between its contexts."""
        lm = self.lm
        tail = [] if right[0] == _OPEN else [right[0]] if right[0] == BOS or right[1] == _OPEN else list(right)
        chain = np.array([left[0], left[1], *seq, *tail], dtype=np.int64)
        return float(lm.trigram(chain[:-2], chain[1:-1], chain[2:]).sum())

    def _words(self, run: str, left: tuple[int, int], right: tuple[int, int]) -> tuple[float, list[int]] | None:
        """Best dictionary word for the initials ``run`` in context, scored as ``_decode`` scores a path."""
        got = self.lm.initials_words().get(run)
        if got is None:
            return None
        words, known = got
        tail = [] if right[0] == _OPEN else [right[0]] if right[0] == BOS or right[1] == _OPEN else list(right)
        k = len(words)
        chain = np.concatenate([np.tile(np.array(left, dtype=np.int64), (k, 1)), words,
                                np.tile(np.array(tail, dtype=np.int64), (k, 1))], axis=1)
        score = self.lm.trigram(chain[:, :-2], chain[:, 1:-1], chain[:, 2:]).sum(axis=1) + self.cfg.table_bonus * known
        j = int(score.argmax())
        return float(score[j]) - self.cfg.initials_cost * len(run), words[j].tolist()

    def _initials_bound(self, run: str, left: tuple[int, int], right: tuple[int, int]) -> float:
        """An upper bound of the initials decode score of ``run`` (the value ``_decode`` would return)."""
        lm = self.lm
        first = lm.initial(run[0])
        if not len(first):
            return -np.inf
        bound = float(lm.trigram(left[0], left[1], first).max())
        bound += sum(float(lm.ini_max[ord(x) - 97]) for x in run[1:])
        if right[0] != _OPEN:
            bound += float(lm.max_logp[right[0]])
            if right[0] != BOS and right[1] != _OPEN:
                bound += float(lm.max_logp[right[1]])
        return bound - self.cfg.initials_cost * len(run)

    def _decode(self, edges: list[list[tuple[int, np.ndarray, np.ndarray]]], left: tuple[int, int],
                right: tuple[int, int], beam: int = 48) -> tuple[float, list[int]] | None:
        """Best path through a lattice by trigram beam search: ``edges[p]`` lists ``(q, candidate ids, costs)``
        from node p to node q (nodes 0..len(edges)); returns (score, ids) or None when node n is unreachable."""
        lm = self.lm
        V = lm.V
        n = len(edges)
        # per node: score, prev-prev id, prev id, back node, back index
        nodes: list[tuple[np.ndarray, ...] | None] = [None] * (n + 1)
        pend: list[list[tuple[np.ndarray, ...]]] = [[] for _ in range(n + 1)]
        nodes[0] = (np.zeros(1), np.array([left[0]]), np.array([left[1]]), np.array([-1]), np.array([-1]))
        for p in range(n + 1):
            if p > 0:
                if not pend[p]:
                    continue
                sc, a, b, bn, bi = (np.concatenate(x) for x in zip(*pend[p]))
                order = np.argsort(-sc, kind="stable")
                _, first = np.unique((a[order] * V + b[order]), return_index=True)  # best per trigram state
                keep = order[np.sort(first)][:beam]
                nodes[p] = (sc[keep], a[keep], b[keep], bn[keep], bi[keep])
                pend[p] = []
            if p == n:
                break
            cur = nodes[p]
            if cur is None:
                continue
            sc, _, b, _, _ = cur
            a = cur[1]
            for q, cands, cost in edges[p]:
                t = sc[:, None] + lm.trigram(a[:, None], b[:, None], cands[None, :]) + cost[None, :]
                B, K = t.shape
                pend[q].append((t.ravel(), np.repeat(b, K), np.tile(cands, B), np.full(B * K, p),
                                np.repeat(np.arange(B), K)))
        last = nodes[n]
        if last is None:
            return None
        sc, a, b, bn, bi = last
        final = sc + (lm.trigram(a, b, np.full(len(b), right[0])) if right[0] != _OPEN else 0.0)
        if right[0] not in (BOS, _OPEN) and right[1] != _OPEN:
            final = final + lm.trigram(b, np.full(len(b), right[0]), np.full(len(b), right[1]))
        k = int(final.argmax())
        total = float(final[k])
        path, q = [], n
        while q > 0:
            node = nodes[q]
            path.append(int(node[2][k]))
            q, k = int(node[3][k]), int(node[4][k])
        path.reverse()
        return total, path

    # -- Latin runs ----------------------------------------------------------------------------------------
    def _latin(self, text: str) -> list[Edit]:
        """Decode the Latin runs of ``text`` left to right; each run sees the decoded runs before it as its left
        context, and a Latin letter two characters to its right (the next run, not yet decoded) as no context."""
        lm, cfg = self.lm, self.cfg
        edits: list[Edit] = []
        tail, prev = "", 0  # the last two characters of the text as decoded so far, up to ``prev``
        for m in _LATIN_RE.finditer(text):
            s, e = m.span()
            tail = (tail + text[prev:s])[-2:]
            prev = s
            if e - s > cfg.max_run or _blocked(text, s, e):
                continue
            run = m.group()
            ctx = lm.ids(tail)
            left = (BOS, BOS) if not len(ctx) else (BOS, int(ctx[-1])) if len(ctx) == 1 else (int(ctx[0]), int(ctx[1]))
            rctx = lm.ids(text[e:e + 2])
            right = (BOS, BOS) if not len(rctx) else (int(rctx[0]), BOS) if len(rctx) == 1 else (
                int(rctx[0]), _OPEN if text[e + 1] in _LETTERS else int(rctx[1]))
            keep = self._chain(lm.ids(run).tolist(), left, right)
            best = None
            if cfg.pinyin:
                edges = [[(q, c, np.full(len(c), -cfg.pinyin_cost)) for q in range(p + 1, min(len(run), p + lm.max_syl) + 1)
                          if (c := lm.syllable(run[p:q])) is not None and len(c)] for p in range(len(run))]
                reach = [True] + [False] * len(run)
                for p, out_edges in enumerate(edges):
                    if reach[p]:
                        for q, _, _ in out_edges:
                            reach[q] = True
                best = self._decode(edges, left, right, _LATIN_BEAM) if reach[-1] else None
                if best is not None and best[0] - keep <= cfg.pinyin_margin:
                    best = None
            if best is None and cfg.initials and len(run) <= cfg.max_initials and \
                    keep < -min(cfg.initials_margin, cfg.words_margin) - cfg.initials_cost * len(run):
                # a dictionary word needs ``words_margin``, any string of characters ``initials_margin``
                found = []
                word = self._words(run, left, right)
                if word is not None and word[0] - keep > cfg.words_margin:
                    found.append(word)
                # upper bound of any character-by-character decode (exact first step, best case for the others)
                if self._initials_bound(run, left, right) - keep > cfg.initials_margin:
                    edges = [[(p + 1, c, np.full(len(c), -cfg.initials_cost))] for p, x in enumerate(run)
                             if len(c := lm.initial(x))]
                    chars = self._decode(edges, left, right, _LATIN_BEAM) if len(edges) == len(run) else None
                    if chars is not None and chars[0] - keep > cfg.initials_margin:
                        found.append(chars)
                best = max(found, key=lambda f: f[0]) if found else None
            if best is not None:
                repl = "".join(lm.char(i) for i in best[1])
                edits.append((s, e, repl))
                tail = (tail + repl)[-2:]
            else:
                tail = (tail + run)[-2:]
            prev = e
        return edits


def _apply(text: str, edits: Sequence[Edit]) -> str:
    out, pos = [], 0
    for s, e, r in edits:
        out.append(text[pos:s])
        out.append(r)
        pos = e
    out.append(text[pos:])
    return "".join(out)


def _compose(original: str, first: Sequence[Edit], second: Sequence[Edit]) -> list[Edit]:
    """Edits on ``original`` equal to applying ``first`` (on original) then ``second`` (on the result)."""
    pieces: list[tuple[int, int, str, bool]] = []  # pieces of the intermediate text: (orig s, orig e, text, edited)
    pos = 0
    for s, e, r in first:
        if s > pos:
            pieces.append((pos, s, original[pos:s], False))
        pieces.append((s, e, r, True))
        pos = e
    if pos < len(original):
        pieces.append((pos, len(original), original[pos:], False))
    # split unedited pieces at the boundaries of ``second``; edited pieces are only ever taken whole
    cuts = sorted({x for s, e, _ in second for x in (s, e)})
    split: list[tuple[int, int, int, str, bool]] = []  # (intermediate start, orig s, orig e, text, edited)
    cur = 0
    for os_, oe, t, ed in pieces:
        if ed:
            split.append((cur, os_, oe, t, True))
        else:
            last = 0
            for c in [c - cur for c in cuts if cur < c < cur + len(t)] + [len(t)]:
                split.append((cur + last, os_ + last, os_ + c, t[last:c], False))
                last = c
        cur += len(t)
    # group the second edits by the pieces they touch (two edits inside one edited piece form one group)
    groups: list[list[int]] = []  # [first piece, end piece, first edit, end edit]
    j, n = 0, len(split)
    for k, (s, e, _) in enumerate(second):
        while j < n and split[j][0] + len(split[j][3]) <= s:
            j += 1
        lo = j
        hi = lo
        while hi < n and split[hi][0] < e:
            hi += 1
        if groups and lo < groups[-1][1]:
            groups[-1][1], groups[-1][3] = max(groups[-1][1], hi), k + 1
        else:
            groups.append([lo, hi, k, k + 1])
    result: list[tuple[int, int, str, bool]] = []
    j = 0
    for lo, hi, k0, k1 in groups:
        result.extend(p[1:] for p in split[j:lo])
        covered = split[lo:hi]
        cs = covered[0][0]
        joined = "".join(p[3] for p in covered)
        text = _apply(joined, [(s - cs, e - cs, r) for s, e, r in second[k0:k1]])
        result.append((covered[0][1], covered[-1][2], text, True))
        j = hi
    result.extend(p[1:] for p in split[j:])
    return [(os_, oe, t) for os_, oe, t, ed in result if ed and t != original[os_:oe]]


_RESTORERS: dict[tuple[int, RestoreConfig], _Restorer] = {}


def _restorer(lm: CharLM | None, config: RestoreConfig | None) -> _Restorer:
    lm = lm or default_lm()
    cfg = config or RestoreConfig()
    key = (id(lm), cfg)
    r = _RESTORERS.get(key)
    if r is None or r.lm is not lm:
        r = _RESTORERS[key] = _Restorer(lm, cfg)
    return r


def restore_edits_batch(texts: Sequence[str], lm: CharLM | None = None,
                        config: RestoreConfig | None = None) -> list[list[Edit]]:
    """:func:`restore_edits` for many texts at once (one vectorised screening pass per round)."""
    for k, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"restore expects str, got {type(t).__name__} at index {k}")
    r = _restorer(lm, config)
    edits: list[list[Edit]] = [[] for _ in texts]
    current = list(texts)
    live = [k for k, t in enumerate(texts) if t]
    for _ in range(MAX_PASSES):
        if not live:
            return edits
        found = r.pass_batch([current[k] for k in live])
        nxt = []
        for k, e in zip(live, found):
            if e:
                edits[k] = _compose(texts[k], edits[k], e) if edits[k] else list(e)
                current[k] = _apply(texts[k], edits[k])
                nxt.append(k)
        live = nxt
    for k in live:  # did not settle: leave the text unchanged (keeps restore idempotent)
        edits[k] = []
    return edits


def restore_edits(text: str, lm: CharLM | None = None, config: RestoreConfig | None = None) -> list[Edit]:
    """Sorted, non-overlapping ``(start, end, replacement)`` edits on ``text`` that undo homophone/pinyin cloaking."""
    return restore_edits_batch([text], lm, config)[0]


def restore(text: str, lm: CharLM | None = None, config: RestoreConfig | None = None) -> str:
    """``text`` with :func:`restore_edits` applied."""
    return _apply(text, restore_edits(text, lm, config))


def restore_batch(texts: Sequence[str], lm: CharLM | None = None, config: RestoreConfig | None = None) -> list[str]:
    """:func:`restore` for many texts."""
    return [_apply(t, e) for t, e in zip(texts, restore_edits_batch(texts, lm, config))]
