"""Deterministic, seeded cloaking of Chinese text: one function per evasion family.

``FAMILIES[name](text, rng) -> str`` with ``rng`` a ``random.Random``: the same text and seed always give the same
cloaked text. Used by ``benchmarks/cloaked.py`` and ``qinglang evaluate --perturb``.

What gets cloaked (as in ToxiCloakCN, which perturbs offensive keywords): every occurrence of a target term
(``make_families(terms=...)``; the default targets are the offensive terms in ``data/normalize/homophones.tsv``);
in a text with no target term, a random ``rate`` share of its CJK characters (at least one), so safe texts are
cloaked too.

Families:

- ``homophone``        characters -> a different common character with the same toneless pinyin (傻逼 -> 煞笔)
- ``pinyin_full``      the term -> its full pinyin (傻逼 -> shabi)
- ``pinyin_initials``  the term -> pinyin initials (你妈死了 -> nmsl)
- ``lookalike``        characters -> look-alike characters (形近字: 马 -> ⻢, 人 -> ⼈, 傻 -> 儍)
- ``radical_split``    characters -> their components (拆字: 妈 -> 女马, 操 -> 扌喿)
- ``traditional``      simplified -> traditional (OpenCC s2t)
- ``emoji``            characters -> an emoji read as the same word or sound (草/操 -> 🌿, 狗 -> 🐶, 妈 -> 🐴)
- ``noise_insert``     symbols, spaces or emoji inserted between the term's characters (傻*逼, 傻 逼, 傻😂逼)
- ``zero_width``       zero-width characters inserted between the term's characters
- ``fullwidth``        the term -> full-width pinyin (ｓｈａｂｉ), other ASCII -> full width
- ``stylised``         the term -> stylised pinyin (𝐬𝐡𝐚𝐛𝐢, ⓢⓗⓐⓑⓘ, 𝔰𝔥𝔞𝔟𝔦)

``fullwidth`` and ``stylised`` dress the full pinyin, not the initials, so that they measure the width and style
steps; the ambiguity of initials (hr could be many words) is measured by ``pinyin_initials`` alone.

Substitutes for ``homophone`` are drawn from the 3,755 level-1 (most common) characters of GB 2312, as real
evaders use common characters; no dictionary beyond Python's codecs and pypinyin is needed.
"""
from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["FAMILIES", "cloak", "default_terms", "make_families"]

Family = Callable[[str, random.Random], str]

_CJK_RE = re.compile("[\u4e00-\u9fff]")
_DATA = Path(__file__).parent / "data" / "normalize"

# Component spellings used by evaders (拆字). Written independently of the normaliser's radicals.tsv and larger
# than it, so that the benchmark measures the normaliser's coverage rather than its own table.
_SPLITS = {
    "妈": "女马", "操": "扌喿", "好": "女子", "你": "亻尔", "他": "亻也", "她": "女也", "打": "扌丁", "死": "歹匕",
    "狗": "犭句", "猪": "犭者", "婊": "女表", "贱": "贝戋", "逼": "辶畐", "娼": "女昌", "妓": "女支", "奸": "女干",
    "吗": "口马", "吧": "口巴", "叮": "口丁", "搞": "扌高", "腿": "月退", "胸": "月匈", "浪": "氵良", "射": "身寸",
    "强": "弓虽", "张": "弓长", "语": "讠吾", "混": "氵昆", "饭": "饣反", "细": "纟田", "时": "日寸", "软": "车欠",
    "硬": "石更", "精": "米青", "做": "亻故", "什": "亻十", "们": "亻门", "蛆": "虫且", "蠢": "春虫虫", "粪": "米共",
    "骚": "马蚤", "杀": "乂木", "滚": "氵衮", "妹": "女未", "姐": "女且", "粉": "米分", "黑": "里灬", "明": "日月",
    "林": "木木", "鸡": "又鸟", "恶": "亚心", "怂": "从心", "贼": "贝戎", "淫": "氵㸒", "肏": "入肉", "草": "艹早",
    "鬼": "田儿厶", "渣": "氵查", "拉": "扌立", "圾": "土及",
}
# Emoji read as a word or its sound.
_EMOJI_FOR = {
    "狗": "🐶", "猪": "🐷", "屎": "💩", "草": "🌿", "操": "🌿", "艹": "🌿", "马": "🐴", "妈": "🐴", "鸡": "🐔",
    "蛇": "🐍", "鼠": "🐭", "猴": "🐒", "牛": "🐮", "花": "🌸", "无": "🈚", "有": "🈶", "可": "🉑", "禁": "🈲",
    "刀": "🔪", "药": "💊", "龟": "🐢", "鬼": "👻", "死": "💀", "桃": "🍑", "龙": "🐉", "蛙": "🐸", "逼": "🐝",
    "傻": "🤪", "你": "👉", "我": "👈",
}
_NOISE = ["*", " ", "~", "_", "-", "|", "/", ".", "·", "☆", "♡", "😂", "🙃", "👀", "#", "+", "^", "  "]
_ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
_STYLES = [0x1D41A, 0x1D44E, 0x1D482, 0x1D4EA, 0x1D51E, 0x1D586, 0x1D5BA, 0x1D5EE, 0x1D68A]  # bold, italic, ... 'a'
_CIRCLED_A = 0x24D0


def _cached(key: str, build: Callable[[], object]) -> object:
    from .normalize import _cached as cached  # one lazily built, thread-safe cache per process

    return cached("perturb:" + key, build)


def _syllable(ch: str) -> str:
    from .normalize import _syllables

    return _syllables().get(ch, "")


def _common(ch: str) -> bool:
    """Whether ``ch`` is one of the 3,755 level-1 (most common) characters of GB 2312."""
    try:
        b = ch.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return len(b) == 2 and 0xB0 <= b[0] <= 0xD7


def _homophones() -> dict[str, list[str]]:
    """Syllable -> the common (GB 2312 level-1) characters with that syllable, in code-point order."""
    def build() -> dict[str, list[str]]:
        from .normalize import _syllables

        by: dict[str, list[str]] = {}
        for ch, syl in _syllables().items():
            if "\u4e00" <= ch <= "\u9fff" and _common(ch):
                by.setdefault(syl, []).append(ch)
        return {k: sorted(v) for k, v in by.items()}
    return _cached("homophones", build)  # type: ignore[return-value]


def _lookalikes() -> dict[str, list[str]]:
    """Character -> look-alikes: Kangxi / supplement radicals and compatibility ideographs, plus variants.tsv."""
    def build() -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for lo, hi in ((0x2E80, 0x2F00), (0x2F00, 0x2FE0), (0xF900, 0xFB00), (0x2F800, 0x2FA20)):
            for cp in range(lo, hi):
                c = chr(cp)
                if unicodedata.category(c) == "Cn":
                    continue
                base = unicodedata.normalize("NFKC", c)
                if len(base) == 1 and base != c:
                    out.setdefault(base, []).append(c)
        with open(_DATA / "variants.tsv", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("#") or "\t" not in line:
                    continue
                var, std = line.rstrip("\n").split("\t")[:2]
                if var != std:
                    out.setdefault(std, []).append(var)
        return out
    return _cached("lookalikes", build)  # type: ignore[return-value]


def _s2t():
    def build():
        import opencc

        return opencc.OpenCC("s2t")
    return _cached("s2t", build)


def default_terms() -> list[str]:
    """Offensive target terms from the normaliser's homophone table (canonical forms)."""
    terms = set()
    with open(_DATA / "homophones.tsv", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("#") or "\t" not in line:
                continue
            terms.add(line.rstrip("\n").split("\t")[1])
    return sorted(terms)


def _spans(text: str, terms: list[str], rng: random.Random, rate: float) -> list[tuple[int, int]]:
    """Spans to cloak: target-term occurrences (longest first, non-overlapping), else random CJK characters."""
    taken = [False] * len(text)
    spans = []
    for t in terms:
        start = 0
        while True:
            i = text.find(t, start)
            if i < 0:
                break
            if not any(taken[i:i + len(t)]):
                spans.append((i, i + len(t)))
                for k in range(i, i + len(t)):
                    taken[k] = True
            start = i + 1
    if spans:
        return sorted(spans)
    cjk = [m.start() for m in _CJK_RE.finditer(text)]
    if not cjk:
        return []
    k = max(1, round(rate * len(cjk)))
    chosen = sorted(rng.sample(cjk, min(k, len(cjk))))
    # group adjacent characters into spans (initials / pinyin work on words)
    out: list[tuple[int, int]] = []
    for p in chosen:
        if out and out[-1][1] == p:
            out[-1] = (out[-1][0], p + 1)
        else:
            out.append((p, p + 1))
    return out


def _rewrite(text: str, spans: list[tuple[int, int]], fn: Callable[[str], str]) -> str:
    out, pos = [], 0
    for s, e in spans:
        out.append(text[pos:s])
        out.append(fn(text[s:e]))
        pos = e
    out.append(text[pos:])
    return "".join(out)


def _per_char(fn: Callable[[str], str]) -> Callable[[str], str]:
    return lambda span: "".join(fn(c) for c in span)


def _initial(c: str) -> str:
    s = _syllable(c)
    return s[0] if s else c


def _stylise(s: str, rng: random.Random) -> str:
    base = rng.choice(_STYLES + [_CIRCLED_A])
    out = []
    for c in s:
        x = chr(base + ord(c) - 0x61) if "a" <= c <= "z" else c
        if unicodedata.category(x) == "Cn":  # holes in the math alphabets (italic h is U+210E, not U+1D455)
            x = "\u210e" if c == "h" else chr(_STYLES[0] + ord(c) - 0x61)
        out.append(x)
    return "".join(out)


def make_families(terms: Iterable[str] | None = None, rate: float = 0.2) -> dict[str, Family]:
    """Cloaking functions targeting ``terms`` (default ``default_terms()``), longest terms first."""
    # ties broken by the text, so the order (and every cloaked text) does not depend on Python's hash seed
    tl = sorted({t for t in (default_terms() if terms is None else terms) if t}, key=lambda t: (-len(t), t))

    def family(fn_for: Callable[[random.Random], Callable[[str], str]]) -> Family:
        def run(text: str, rng: random.Random) -> str:
            if not isinstance(text, str):
                raise TypeError(f"cloaking expects str, got {type(text).__name__}")
            spans = _spans(text, tl, rng, rate)
            return _rewrite(text, spans, fn_for(rng)) if spans else text
        return run

    def homophone(rng: random.Random) -> Callable[[str], str]:
        table = _homophones()

        def one(c: str) -> str:
            cands = [x for x in table.get(_syllable(c), []) if x != c]
            return rng.choice(cands) if cands else c
        return _per_char(one)

    def pinyin_full(rng: random.Random) -> Callable[[str], str]:
        return _per_char(lambda c: _syllable(c) or c)

    def pinyin_initials(rng: random.Random) -> Callable[[str], str]:
        return _per_char(_initial)

    def lookalike(rng: random.Random) -> Callable[[str], str]:
        table = _lookalikes()
        return _per_char(lambda c: rng.choice(table[c]) if c in table else c)

    def radical_split(rng: random.Random) -> Callable[[str], str]:
        return _per_char(lambda c: _SPLITS.get(c, c))

    def traditional(rng: random.Random) -> Callable[[str], str]:
        conv = _s2t()
        return lambda span: conv.convert(span)

    def emoji(rng: random.Random) -> Callable[[str], str]:
        return _per_char(lambda c: _EMOJI_FOR.get(c, c))

    def noise_insert(rng: random.Random) -> Callable[[str], str]:
        return lambda span: "".join(c + (rng.choice(_NOISE) if i < len(span) - 1 else "")
                                    for i, c in enumerate(span)) if len(span) > 1 else span + rng.choice(_NOISE)

    def zero_width(rng: random.Random) -> Callable[[str], str]:
        return lambda span: "".join(c + rng.choice(_ZERO_WIDTH) for c in span)

    def fullwidth(rng: random.Random) -> Callable[[str], str]:
        return _per_char(lambda c: "".join(chr(ord(x) + 0xFEE0) for x in (_syllable(c) or c)) if _syllable(c) else c)

    def stylised(rng: random.Random) -> Callable[[str], str]:
        return lambda span: _stylise("".join(_syllable(c) or c for c in span), rng)

    fams = {
        "homophone": homophone, "pinyin_full": pinyin_full, "pinyin_initials": pinyin_initials,
        "lookalike": lookalike, "radical_split": radical_split, "traditional": traditional, "emoji": emoji,
        "noise_insert": noise_insert, "zero_width": zero_width, "fullwidth": fullwidth, "stylised": stylised,
    }
    out = {name: family(f) for name, f in fams.items()}
    base_full = out["fullwidth"]

    def fullwidth_all(text: str, rng: random.Random) -> str:
        t = base_full(text, rng)  # the targets become full-width pinyin, remaining ASCII goes full width too
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in t)
    out["fullwidth"] = fullwidth_all
    return out


FAMILIES: dict[str, Family] = make_families()


def cloak(text: str, family: str, seed: int = 0) -> str:
    """Cloak ``text`` with one family, seeded by ``seed`` and the text (stable across runs and processes)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown cloaking family {family!r}; known: {sorted(FAMILIES)}")
    import hashlib

    h = int(hashlib.sha256(f"{seed}:{family}:{text}".encode()).hexdigest()[:16], 16)
    return FAMILIES[family](text, random.Random(h))
