"""Context-aware restoration of homophone and pinyin cloaking: a noisy-channel corrector over a character LM.

    from qinglang_nlp.restore import restore, restore_edits
    restore("你就是个煞笔")          # -> "你就是个傻逼" (when the LM prefers it by a wide margin)
    restore_edits("我们qu北京")      # -> [(2, 4, "去")]   edits on the INPUT text, sorted, non-overlapping

Model: the intended text ``w`` maximises ``log P_LM(w) + log P(observed | w)``.

- ``P_LM`` is an interpolated Kneser-Ney character bigram model (:class:`CharLM`), built by
  ``training/build_charlm.py`` from the TRAIN splits of the trainable datasets and shipped as
  ``qinglang_nlp/data/charlm.npz`` (counts turned into log-probabilities; no text). Loaded lazily on first use.
- The channel keeps every character with probability close to 1. Three kinds of edit are possible, each paying a
  fixed cost (the "strong prior to keep"), so a replacement needs a large LM margin:

  (a) homophone: a CJK character may stand for another common character that shares one of its toneless pinyin
      readings (pypinyin, all readings). Only characters whose two bigrams with their neighbours are unlikely
      (``screen``) are considered; runs of such characters are decoded jointly by Viterbi.
  (b) full pinyin: a run of ``a-z`` letters that segments into valid pinyin syllables decodes to hanzi (Viterbi
      over segmentations x candidate characters), if that beats the LM score of the letters themselves by
      ``pinyin_margin``.
  (c) pinyin initials: a run of 1-6 letters that does not segment into syllables is read as one initial per
      character, with a much larger margin (``initials_margin``), so only initials the LM is confident about
      (``我j天`` -> ``我今天``, ``nmsl``) are decoded.

Latin runs touching digits, other letters' cases or URL punctuation are left alone. Upper-case letters are not
pinyin here: run this after ``normalize`` (which case-folds).

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
    "restore",
    "restore_batch",
    "restore_edits",
    "restore_edits_batch",
]

LM_PATH = Path(__file__).parent / "data" / "charlm.npz"
BOS, UNK, DIGIT, SPACE = 0, 1, 2, 3
_NSPECIAL = 4
MAX_PASSES = 4
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
        nfd = unicodedata.normalize("NFD", r)
        s = "".join("v" if x == "\u0308" else x for x in nfd if not unicodedata.combining(x) or x == "\u0308")
        s = s.lower()
        if s and s.isascii() and s.isalpha() and s not in out:
            out.append(s)
    return out


# --------------------------------------------------------------------------------------------------------------
# The character LM
# --------------------------------------------------------------------------------------------------------------

class CharLM:
    """Interpolated Kneser-Ney character bigram LM plus the channel's candidate tables, as numpy arrays.

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
        if not (len(self.pcont) == len(self.lam) == self.V and len(self.bi_keys) == len(self.bi_logp)):
            raise ValueError("character LM arrays have inconsistent sizes")
        self.hom_ptr = np.asarray(arrays["hom_ptr"], dtype=np.int64)
        self.hom_ids = np.asarray(arrays["hom_ids"], dtype=np.int32)
        names = str(np.asarray(arrays["syl_names"]).item())
        self.syl_index = {s: i for i, s in enumerate(names.split("\n")) if s}
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

    # -- lookups ---------------------------------------------------------------------------------------------
    def ids(self, text: str) -> np.ndarray:
        """Ids of the characters of ``text``."""
        a = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
        return self.table[a].astype(np.int64)

    def bigram(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """log P(b | a), element-wise (broadcasting) over id arrays."""
        a, b = np.broadcast_arrays(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
        key = a * self.V + b
        idx = np.searchsorted(self.bi_keys, key)
        idx[idx >= len(self.bi_keys)] = 0
        found = self.bi_keys[idx] == key
        return np.where(found, self.bi_logp[idx], self.lam[a] + self.pcont[b])

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


def build_charlm(texts: Iterable[str], *, min_count: int = 3, min_bigram: int = 2, cand_min_count: int = 5,
                 hom_per_syllable: int = 30, syl_per_syllable: int = 24, per_initial: int = 60,
                 meta: dict[str, Any] | None = None) -> CharLM:
    """Count characters and bigrams of ``texts`` and build a :class:`CharLM` (deterministic for the same input).

    ``min_count``: characters seen fewer times are UNK; ``min_bigram``: bigrams seen fewer times are not stored
    (they back off); ``cand_min_count``: the channel only proposes characters seen at least this often.
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
    arrays = {
        "chars": chars, "pcont": np.log(pcont).astype(np.float32), "lam": np.log(lam).astype(np.float32),
        "bi_keys": keys[keep].astype(np.uint32 if V * V < 2**32 else np.int64),
        "bi_logp": np.log(p[keep]).astype(np.float16),
    }
    arrays.update(_channel_tables(vocab, uni, cand_min_count, hom_per_syllable, syl_per_syllable, per_initial))
    info = {"discount": D, "tokens": len(ids), "texts": len(texts), "vocab": len(vocab),
            "bigrams_seen": len(keys), "bigrams_stored": int(keep.sum()), "min_count": min_count,
            "min_bigram": min_bigram, "cand_min_count": cand_min_count, **(meta or {})}
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
    ``homophone_cost``: cost of each homophone replacement. ``pinyin_margin``/``pinyin_cost``: a full-pinyin run
    decodes only if its best hanzi path, minus ``pinyin_cost`` per syllable, beats the letters by the margin.
    ``initials_margin``/``initials_cost``: the same for initials (``initials=False`` switches them off).
    """

    homophones: bool = True
    pinyin: bool = True
    initials: bool = True
    screen: float = -12.0
    homophone_cost: float = 8.0
    pinyin_margin: float = 0.0
    pinyin_cost: float = 1.0
    initials_margin: float = 6.0
    initials_cost: float = 3.0
    max_run: int = 40
    max_initials: int = 6


_LATIN_RE = re.compile(r"[a-z]+")
_BLOCK = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789./@:_-=?&%#+\\~")


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
        # group consecutive suspects into segments [s, e) of padded positions
        breaks = np.flatnonzero(np.diff(sus) != 1)
        seg_s = np.concatenate([[sus[0]], sus[breaks + 1]])
        seg_e = np.concatenate([sus[breaks], [sus[-1]]]) + 1
        which = np.searchsorted(starts, seg_s - 1, side="right") - 1
        for s, e, k in zip(seg_s.tolist(), seg_e.tolist(), which.tolist()):
            path = self._viterbi([lm.homophones(int(i)) for i in ids[s:e]], int(ids[s - 1]), int(ids[e]),
                                 cfg.homophone_cost)
            base = int(starts[k]) + 1
            for j, (i_new, i_old) in enumerate(zip(path, ids[s:e].tolist())):
                if i_new != i_old:
                    pos = s + j - base
                    out[k].append((pos, pos + 1, lm.char(i_new)))
        return out

    def _viterbi(self, cands: list[np.ndarray], left: int, right: int, cost: float) -> list[int]:
        """Best path through per-position candidate arrays (first candidate = observed, free; others pay cost)."""
        lm = self.lm
        c0 = cands[0]
        pen = [np.where(np.arange(len(c)) == 0, 0.0, -cost) for c in cands]
        score = lm.bigram(left, c0) + pen[0]
        back = []
        for j in range(1, len(cands)):
            trans = lm.bigram(cands[j - 1][:, None], cands[j][None, :]) + score[:, None]
            arg = trans.argmax(axis=0)
            back.append(arg)
            score = trans[arg, np.arange(len(cands[j]))] + pen[j]
        score = score + lm.bigram(cands[-1], right)
        best = int(score.argmax())
        path = [best]
        for arg in reversed(back):
            best = int(arg[best])
            path.append(best)
        path.reverse()
        return [int(c[p]) for c, p in zip(cands, path)]

    # -- Latin runs ----------------------------------------------------------------------------------------
    def _latin(self, text: str) -> list[Edit]:
        lm, cfg = self.lm, self.cfg
        edits: list[Edit] = []
        for m in _LATIN_RE.finditer(text):
            s, e = m.span()
            if e - s > cfg.max_run:
                continue
            lc = text[s - 1] if s > 0 else ""
            rc = text[e] if e < len(text) else ""
            if lc in _BLOCK or rc in _BLOCK:
                continue
            run = m.group()
            left = int(lm.ids(lc)[0]) if lc else BOS
            right = int(lm.ids(rc)[0]) if rc else BOS
            rid = lm.ids(run)
            chain = np.concatenate([[left], rid, [right]])
            keep = float(lm.bigram(chain[:-1], chain[1:]).sum())
            best = None
            if cfg.pinyin:
                best = self._decode_pinyin(run, left, right)
                if best is not None and best[0] - keep <= cfg.pinyin_margin:
                    best = None
            if best is None and cfg.initials and len(run) <= cfg.max_initials:
                cands = [lm.initial(x) for x in run]
                if all(len(c) for c in cands):
                    sc, ids_ = self._viterbi_free(cands, left, right)
                    if sc - cfg.initials_cost * len(run) - keep > cfg.initials_margin:
                        best = (sc, ids_)
            if best is not None:
                edits.append((s, e, "".join(lm.char(i) for i in best[1])))
        return edits

    def _viterbi_free(self, cands: list[np.ndarray], left: int, right: int) -> tuple[float, list[int]]:
        """Best hanzi path (score, ids) with every position free to take any of its candidates."""
        lm = self.lm
        score = lm.bigram(left, cands[0])
        back = []
        for j in range(1, len(cands)):
            trans = lm.bigram(cands[j - 1][:, None], cands[j][None, :]) + score[:, None]
            arg = trans.argmax(axis=0)
            back.append(arg)
            score = trans[arg, np.arange(len(cands[j]))]
        score = score + lm.bigram(cands[-1], right)
        best = int(score.argmax())
        total = float(score[best])
        path = [best]
        for arg in reversed(back):
            best = int(arg[best])
            path.append(best)
        path.reverse()
        return total, [int(c[p]) for c, p in zip(cands, path)]

    def _decode_pinyin(self, run: str, left: int, right: int) -> tuple[float, list[int]] | None:
        """Viterbi over syllable segmentations x candidates; (score - cost per syllable, ids) or None."""
        lm, cost = self.lm, self.cfg.pinyin_cost
        n = len(run)
        # best[p] = (candidate ids, scores, backpointers: list of (prev position, prev index)) at run position p
        best: list[tuple[np.ndarray, np.ndarray, list[tuple[int, int]]] | None] = [None] * (n + 1)
        best[0] = (np.array([left]), np.zeros(1), [(-1, -1)])
        for p in range(n):
            if best[p] is None:
                continue
            prev_ids, prev_sc, _ = best[p]
            for q in range(p + 1, min(n, p + lm.max_syl) + 1):
                cands = lm.syllable(run[p:q])
                if cands is None or not len(cands):
                    continue
                trans = lm.bigram(prev_ids[:, None], cands[None, :]) + prev_sc[:, None]
                arg = trans.argmax(axis=0)
                sc = trans[arg, np.arange(len(cands))] - cost
                cur = best[q]
                if cur is None:
                    best[q] = (cands, sc, [(p, int(a)) for a in arg])
                else:  # merge: same candidate id may arrive by two segmentations; keep both entries
                    best[q] = (np.concatenate([cur[0], cands]), np.concatenate([cur[1], sc]),
                               cur[2] + [(p, int(a)) for a in arg])
        if best[n] is None:
            return None
        ids_, sc, _ = best[n]
        final = sc + lm.bigram(ids_, right)
        k = int(final.argmax())
        total = float(final[k])
        path, q = [], n
        while q > 0:
            path.append(int(best[q][0][k]))
            q, k = best[q][2][k]
        path.reverse()
        return total, path


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
    result: list[tuple[int, int, str, bool]] = []
    j, n = 0, len(split)
    for s, e, r in second:
        while j < n and split[j][0] + len(split[j][3]) <= s:
            result.append(split[j][1:])
            j += 1
        k = j
        while j < n and split[j][0] < e:
            j += 1
        covered = split[k:j]
        if not covered:
            continue
        cs = covered[0][0]
        joined = "".join(p[3] for p in covered)
        result.append((covered[0][1], covered[-1][2], joined[:s - cs] + r + joined[e - cs:], True))
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
