"""Tests of the fast paths of qinglang_nlp.normalize (issue 3 throughput work).

Each fast path must give exactly what the plain path gives: batch results equal one-text-at-a-time results
(text, alignment, parts, repeats) on real Chinese comments and on generated text; the windowed NFKC check equals
``unicodedata.is_normalized``; the rewritten regexes find exactly what the earlier, slower forms found.
"""
from __future__ import annotations

import csv
import importlib
import os
import re
import threading
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qinglang_nlp.normalize import NormalizeConfig, Normalized, normalize, normalize_batch

N = importlib.import_module("qinglang_nlp.normalize")  # the package attribute `normalize` is the function

DATA = Path(os.environ.get("QINGLANG_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

# Real comment shapes: Douyin [emoticons], @mentions, #topics#, full-width punctuation, laughter runs, noise
# between characters, word emoji, traditional characters, pinyin abbreviations, combining marks.
REAL = [
    "哈哈哈哈哈哈[捂脸][捂脸]笑死我了，。。。",
    "@张三 你这个傻 逼🐶，nmsl！！！",
    "#饭圈乱象# 【热搜】某某的粉丝又在控评了……yyds",
    "這個視頻太好笑了吧 666666",
    "傻*逼 ＳＢ 𝐬𝐛 ⓢⓑ 儍逼 扌喿 草🌿 煞笔",
    "cafe\u0301 과\u11a8 ㈱ ① ⒈ ß 〇壹贰",
    "零宽\u200b字符\ufeff和变体选择符❤\ufe0f",
    "http://t.cn/A6abc 转发 www.weibo.com/123 看看",
    "",
]


def snapshot(n: Normalized) -> tuple:
    return n.text, n.original, n.alignments, n.parts, n.repeats


def chnci_comments(limit: int) -> list[str]:
    path = DATA / "chnci" / "train.csv"
    if not path.exists():
        pytest.skip(f"{path} not found (set QINGLANG_DATA to the shared data folder)")
    out = []
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            out.append(row["content"])
            if len(out) >= limit:
                break
    return out


# ---- batch (joined chunks, shared alignment, lazy parts) == one text at a time ------------------------------

@pytest.mark.parametrize("cfg", [NormalizeConfig(), NormalizeConfig(homophones=False),
                                 NormalizeConfig(noise=False, casefold=False)])
def test_batch_equals_single_on_real_examples(cfg: NormalizeConfig) -> None:
    texts = REAL * 3 + ["<p>段落</p>傻 逼", "\U0010fffd哈", "字" * (N._BATCH_CHARS + 5)]
    assert [snapshot(n) for n in normalize_batch(texts, cfg)] == [snapshot(normalize(t, cfg)) for t in texts]


def test_batch_equals_single_on_chnci_comments() -> None:
    texts = chnci_comments(3000)
    many = normalize_batch(texts)
    assert sum(bool(n.parts) for n in many) > 100  # the comments do exercise parts and repeats
    assert sum(bool(n.repeats) for n in many) > 10
    assert [snapshot(n) for n in many] == [snapshot(normalize(t)) for t in texts]


_PIECES = st.sampled_from(
    list("傻逼煞笔沙比哈我你妈草操扌喿女马體們 *#@【】[]🐶🌿💩\u200b\ufe0fＳＢsbnm1 .,，。！\n①ßé\u0301가\u11a8<")
    + ["[doge]", "@张三", "#话题#", "http://t.cn/x", "哈哈哈哈", "nmsl", "\U0001d42c"]
)
_COMMENT = st.lists(_PIECES, max_size=25).map("".join)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.one_of(_COMMENT, st.text(max_size=30)), min_size=1, max_size=12))
def test_property_batch_equals_single_in_full(texts: list[str]) -> None:
    # joined chunks are long (numpy and windowed paths); single short texts take the plain paths
    assert [snapshot(n) for n in normalize_batch(texts)] == [snapshot(normalize(t)) for t in texts]


def test_lazy_parts_are_built_once_and_agree_across_threads() -> None:
    texts = ["[doge]哈哈哈哈哈@李四 ok"] * 50
    many = normalize_batch(texts)
    got: list[tuple] = []
    threads = [threading.Thread(target=lambda n=n: got.append((n.parts, n.repeats))) for n in many]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    want = (normalize(texts[0]).parts, normalize(texts[0]).repeats)
    assert want[0] and want[1]
    assert all(g == want for g in got)
    assert many[0].parts is many[0].parts  # resolved once, then kept


def test_public_constructor_still_works() -> None:
    n = Normalized("ＡＢ", "ab", [(0, 1), (1, 2)])
    assert n.to_original(0, 2) == (0, 2) and n.parts == () and n.repeats == ()
    assert Normalized("ab", "ab").alignments == [(0, 1), (1, 2)]


# ---- windowed NFKC check == unicodedata.is_normalized ------------------------------------------------------

_NFKC_ALPHABET = st.sampled_from(
    [chr(c) for c in (*range(0x41, 0x7B), 0x300, 0x301, 0x327, 0x3099, 0x309A, 0xE9, 0x1100, 0x1161, 0x11A8,
                      0xAC00, 0x0B47, 0x0B3E, 0xFF21, 0x2460, 0x4E00, 0x6C49, 0x304B, 0x2F00, 0xF900, 0x1D42C)]
)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_NFKC_ALPHABET, min_size=N._SHORT, max_size=200).map("".join), st.booleans())
def test_property_windowed_nfkc_check_equals_is_normalized(t: str, normalise_first: bool) -> None:
    if normalise_first:
        t = unicodedata.normalize("NFKC", t)
    assert N._nfkc_normal(t) == unicodedata.is_normalized("NFKC", t)


def test_windowed_nfkc_check_on_real_text() -> None:
    long = "中文评论,很正常。" * 10  # as the unicode step leaves it: the full-width comma is not NFKC
    assert N._nfkc_normal(long) is True
    assert N._nfkc_normal(long + "，") is False
    assert N._nfkc_normal(long + "cafe\u0301") is False  # e + combining acute composes to é
    assert N._nfkc_normal(long + "caf\u00e9") is True
    assert N._nfkc_normal(long + "\u1100\u1161") is False  # Hangul jamo L + V compose
    assert N._nfkc_normal("\u0301" * 100) == unicodedata.is_normalized("NFKC", "\u0301" * 100)


def test_invisible_table_matches_the_character_class() -> None:
    table = N._invisible_table()
    rx = re.compile(f"[{N._INVISIBLE}]")
    found = {m.start() for m in rx.finditer("".join(map(chr, range(0xD800))))}
    found |= {0xE000 + m.start() for m in rx.finditer("".join(map(chr, range(0xE000, 0x110000))))}
    assert set(table.nonzero()[0].tolist()) == found


# ---- rewritten regexes find what the earlier forms found --------------------------------------------------

_NOISY = st.lists(st.sampled_from(list("傻逼哈你 *.#@~🐶🌿💩😀👍a1[]【】\n") + ["[doge]", "@张三"]), max_size=40).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_NOISY)
def test_property_noise_regex_equals_the_consuming_form(t: str) -> None:
    old = re.compile(f"[{N.CJK}]([{N._NOISE}]+)(?=[{N.CJK}])")
    assert [m.span() for m in N._noise_res()["noise"].finditer(t)] == [m.span(1) for m in old.finditer(t)]


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_NOISY)
def test_property_noise_around_word_emoji_equals_the_whole_text_regex(t: str) -> None:
    r = N._noise_res()
    alt = "|".join(re.escape(c) for c in sorted(r["we"]))
    nw = f"(?:(?!{alt})[{N._NOISE}])+"
    old = re.compile(f"(?:{alt})({nw})(?=[{N.CJK}]|{alt})|(?<=[{N.CJK}])({nw})(?={alt})")
    want = [m.span(1) if m.start(1) >= 0 else m.span(2) for m in old.finditer(t)]
    astral = frozenset(c for c in t if ord(c) > 0xFFFF)
    assert N.NoiseStep._around_word_emoji(t, r, astral) == want


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(list("hHtTpPsSwW:/.@#【】[]a1哈\n") + ["http://", "www.", "[doge]", "[12]"]),
                max_size=30).map("".join))
def test_property_structure_regex_equals_the_class_first_form(t: str) -> None:
    u = N._URL_BODY
    old = re.compile(rf"[hH][tT][tT][pP][sS]?://{u}|[wW][wW][wW]\.{u}|@[\w\-]+|#[^#\n]+#"
                     r"|【[^【】\n]+】|\[(?!\d+\])\w{1,10}\]")  # no length limit on mentions, titles (1b36c2d, ada88c7)
    assert [m.span() for m in N._STRUCT_RE.finditer(t)] == [m.span() for m in old.finditer(t)]


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(_COMMENT)
def test_property_astral_set_is_a_superset_after_every_step(t: str) -> None:
    w = N._Work(t * 4)  # long enough for the numpy paths
    for step in N._sequence(NormalizeConfig()).steps:
        step.normalize(w)
        assert w.astral_chars() >= {c for c in w.text if ord(c) > 0xFFFF}


# ---- _Work.apply and _Work.protected fast paths == their general forms ------------------------------------

def _alignment(w) -> list[tuple[int, int]]:
    if w.starts is None:
        return [(i, i + 1) for i in range(len(w.text))]
    return list(zip(w.starts, w.ends))


@st.composite
def _text_and_edits(draw):
    text = draw(st.text(alphabet="這個視頻儍逼哈😀ab…", min_size=1, max_size=40))
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=12)))
    edits, pos = [], 0
    for s, e in zip(cuts[0::2], cuts[1::2]):
        if s < pos:
            continue
        same = draw(st.booleans())
        repl = "这" * (e - s) if same else draw(st.sampled_from(["", "...", "傻", "😀草"]))
        anchor = (None, None) if same or draw(st.booleans()) else (s, e)
        edits.append((s, e, repl, *anchor))
        pos = e
    return text, edits, draw(st.booleans())


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(_text_and_edits())
def test_property_apply_without_log_equals_the_logged_general_path(case) -> None:
    text, edits, aligned_first = case
    fast, slow = N._Work(text), N._Work(text)
    if aligned_first:  # start from a non-identity alignment, as after an earlier step
        for w in (fast, slow):
            w.apply([(0, 1, "xy", None, None)], "setup")
        edits = [(s + 1, e + 1, r, a if a is None else a + 1, b if b is None else b + 1) for s, e, r, a, b in edits]
    slow.log = []  # the logged path is the general loop
    fast.apply(edits, "t")
    slow.apply(edits, "t")
    assert fast.text == slow.text
    assert _alignment(fast) == _alignment(slow)


def test_same_length_edits_keep_the_alignment_arrays() -> None:
    w = N._Work("這個視頻，…好看")
    w.apply([(5, 6, "...", None, None)], "t")  # 1:n: a new alignment
    arrays = (w.starts, w.ends)
    w.apply([(0, 1, "这", None, None), (2, 4, "视频", None, None)], "t")
    assert w.text == "这個视频，...好看" and (w.starts, w.ends) == arrays
    assert _alignment(w)[5:8] == [(5, 6)] * 3


@pytest.mark.parametrize("times", [1, 3])  # 3: long enough for the columnar structure parts (_Work.struct)
def test_protected_spans_equal_the_sorted_general_form(times: int) -> None:
    text = "#话题 @张三 说# [doge]看@李四 http://t.cn/A6ab 【标题@王五】[捂脸]" * times
    for extra_emoji in (False, True):
        w = N._Work(text)
        N.StructureStep().normalize(w)
        assert (w.struct is not None) == (times > 1) and w.has_parts()
        if extra_emoji:
            w.parts.append(("emoji", 0, 1, "狗"))  # the emoji step appends out of order; not a protected kind
        for kinds in (N._PROTECTED, N._NOISE_PROTECTED, frozenset({"topic", "title"}), frozenset({"emoji"}),
                      frozenset({"mention", "emoticon"})):
            # of a mention only its "@" is protected
            spans = [(s, s + 1 if kind == "mention" else e) for kind, s, e, _ in w.all_parts() if kind in kinds]
            if "mention" in kinds:  # and of a mention inside a topic or title too, unless the topic is protected
                spans += [(s, s + 1) for s, _ in w.inner_mentions]
            spans.sort()
            spans = [sp for i, sp in enumerate(spans) if not any(a <= sp[0] < b for a, b in spans[:i])]
            w._prot = None
            assert w.protected(kinds) == ([s for s, _ in spans], [e for _, e in spans])
    w.parts, w.struct = [("mention", 9, 12, None), ("url", 0, 5, None)], None  # out of order: sorted
    w.inner_mentions, w._prot = [], None
    assert w.protected(N._PROTECTED) == ([0, 9], [5, 10])


def test_columnar_structure_parts_equal_the_tuples() -> None:
    text = "#话题 @张三 说# [doge]看@李四 http://t.cn/A6ab 【标题@王五】[捂脸][12] www.Weibo.com/1 @@x" * 3
    for shift in (False, True):  # from the identity alignment, and from one changed by an earlier step
        short, long_ = N._Work(text), N._Work(text)
        if shift:
            for w in (short, long_):
                w.apply([(0, 1, "##", 0, 1)], "setup")
        short.parts = [("emoji", 10**6, 10**6 + 1, "狗")]  # a part already there: the tuple path
        N.StructureStep().normalize(short)
        N.StructureStep().normalize(long_)
        assert long_.struct is not None and short.struct is None
        assert long_.all_parts() == short.parts[1:]
        assert long_.inner_mentions == short.inner_mentions and len(long_.inner_mentions) == 6


# ---- one shared candidate scan for the numerals, traditional, variants and radicals steps ------------------

_CAND_TEXT = st.lists(st.sampled_from(list("壹贰〇陆伍1a這個視頻儍逼扌喿女马口丁月手日哈 *") + ["😀", "𠮷"]),
                      max_size=60).map("".join)


def _old_table_edits(step, w) -> list[tuple]:
    t, rx = step._table()
    if isinstance(rx, N._CharFinder):
        return [(i, i + 1, t[w.text[i]], None, None) for i in rx.positions(w.text)]
    return [(m.start(), m.end(), t[m.group()], None, None) for m in rx.finditer(w.text)]


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_CAND_TEXT)
def test_property_shared_candidates_give_the_per_step_scans(t: str) -> None:
    w = N._Work(t)
    assert w.candidates() == N._cand_finder().positions(t)
    # numerals: runs rebuilt from the candidates are what the earlier regex found
    fin = [p for p in w.candidates() if t[p] in N._FIN_SET]
    runs = [m.span() for m in N._FIN_ANY.finditer(t)]
    assert [p for s, e in runs for p in range(s, e)] == fin
    for step in (N.VariantStep(), N.RadicalStep()):  # the table steps edit where the plain scan found keys
        plain = N._Work(w.text)
        plain.starts, plain.ends = w.starts, w.ends
        plain.apply(_old_table_edits(step, plain), step.name)
        step.normalize(w)
        assert (w.text, _alignment(w)) == (plain.text, _alignment(plain)), step.name
        assert w.candidates() == N._cand_finder().positions(w.text)  # carried through the edits == a rescan


def test_candidates_on_real_cloaked_text() -> None:
    for t in ["壹贰叁肆 二〇二三年 陆军", "這個視頻儍逼 扌喿你 女马的 口丁咚", "月手女身口日车石 hello"]:
        ns = normalize(t)
        w = N._Work(t)
        N._sequence(NormalizeConfig()).run(w)
        assert ns.text == w.text
    assert normalize("這個視頻儍逼，扌喿").text == "这个视频傻逼,操"


# ---- Latin abbreviations: one branch per first letter == the flat alternation ------------------------------

def _flat_latin(flags: int = 0) -> re.Pattern:
    latin = []
    for key in sorted(N._abbr("")["table"], key=len, reverse=True):
        if key.isascii():
            sep = N._SEP2 if len(key) <= 2 else N._SEP3
            first = re.escape(key[0]) + f"(?<![a-z0-9]{re.escape(key[0])})"
            latin.append(first + "".join(sep + re.escape(c) for c in key[1:]) + "(?![a-z0-9])")
    return re.compile("|".join(latin), flags)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(list("nmslcbtdyxwzqpSBNM1 *._-哈") + ["nmsl", "yyds", "sb", "cnm", "xswl", "awsl"]),
                max_size=30).map("".join))
def test_property_grouped_latin_abbreviations_equal_the_flat_alternation(t: str) -> None:
    r = N._abbr("")
    for rx, flat in ((r["latin"], _flat_latin()), (r["latin_i"], _flat_latin(re.IGNORECASE))):
        assert [m.span() for m in rx.finditer(t)] == [m.span() for m in flat.finditer(t)]
        assert [m.span() for m in rx.finditer(t.upper())] == [m.span() for m in flat.finditer(t.upper())]


def test_deletions_only_apply_equals_the_general_path() -> None:
    text = "傻 逼*哈哈\u200b 你好 . 世界" * 20
    edits = [(m.start(), m.end(), "", None, None) for m in re.finditer(r"[ *.\u200b]+", text)]
    fast, slow = N._Work(text), N._Work(text)
    for w in (fast, slow):  # from a non-identity alignment, as after an earlier step
        w.apply([(0, 1, "傻傻", 0, 1)], "setup")
    edits = [(s + 1, e + 1, r, a, b) for s, e, r, a, b in edits]
    slow.log = []
    fast.apply(edits, "t")
    slow.apply(edits, "t")
    assert fast.text == slow.text and fast.text.startswith("傻傻逼哈哈你好世界")
    assert _alignment(fast) == _alignment(slow)


def test_self_anchored_apply_equals_the_general_path() -> None:
    text = "好看…哈哈哈哈哈 nmsl ⑩ 𝐬𝐛" * 20
    edits = []
    for m in re.finditer(r"…|哈{3,}|nmsl|⑩|𝐬𝐛", text):
        s, e = m.span()
        repl = {"…": "...", "nmsl": "你妈死了", "⑩": "10", "𝐬𝐛": "sb"}.get(m.group(), "哈")
        edits.append((s, e, repl, s, e))
    fast, slow = N._Work(text), N._Work(text)
    for w in (fast, slow):  # from a non-identity alignment, as after an earlier step
        w.apply([(0, 1, "好好", 0, 1)], "setup")
    edits = [(s + 1, e + 1, r, a + 1, b + 1) for s, e, r, a, b in edits]
    slow.log = []
    fast.apply(edits, "t")
    slow.apply(edits, "t")
    assert fast.text == slow.text and fast.text.startswith("好好看...哈 你妈死了 10 sb")
    assert _alignment(fast) == _alignment(slow)


# ---- numpy paths for long texts (session 4) == the plain paths that short texts take -----------------------
# ``_SHORT`` is the length from which the numpy paths run (unicode flags, noise runs, abbreviation candidates,
# invisible table); with it set out of reach every text takes the plain regex paths, which must agree exactly.

LONG_REAL = [
    "哈哈 哈哈哈哈哈[捂脸] 笑死 我了…… @张三 你 这个傻 逼 🐶 ，nmsl ！ 傻b 蒸煮 s*b 真的 zqsg n m s l 你 S.B 好",
    "#饭圈乱象# 【热搜】某某的 粉丝 又在 控评 了……yyds 這個視頻 太 好笑 了 cnm awsl ① ⒈ ß ㎏ 〇壹贰",
    "零宽\u200b字符 和 变体 选择符❤\ufe0f 草 🌿 逼 傻 🐶 逼 傻*逼 傻.逼 a.b 1 2 http://t.cn/A6abc 看 看",
    "café\u0301 과\u11a8 ＳＢ 𝐬𝐛 ⓢⓑ 儍逼 扌喿 女马 煞笔 tmd wc 😀 😀 \U0010fffd 傻 # 逼 傻 @ 逼 #话题 @李四 说#",
]


def _snapshots(texts: list[str], cfg: NormalizeConfig) -> list[tuple]:
    out = []
    for n in normalize_batch(texts, cfg):
        spans = [(0, len(n.text)), (0, 0)] + [(i, min(len(n.text), i + 2)) for i in range(0, len(n.text), 3)]
        out.append((*snapshot(n), [n.to_original(s, e) for s, e in spans]))
    return out


@pytest.mark.parametrize("cfg", [NormalizeConfig(), NormalizeConfig(homophones=False),
                                 NormalizeConfig(casefold=False), NormalizeConfig(invisible=False, structure=False)])
def test_numpy_paths_equal_the_plain_paths_on_real_text(cfg: NormalizeConfig) -> None:
    texts = LONG_REAL + REAL + [t * 3 for t in LONG_REAL]
    fast = _snapshots(texts, cfg) + [snapshot(normalize(t, cfg)) for t in LONG_REAL]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(N, "_SHORT", 10**9)
        plain = _snapshots(texts, cfg) + [snapshot(normalize(t, cfg)) for t in LONG_REAL]
    assert fast == plain


def test_numpy_paths_equal_the_plain_paths_on_chnci_comments() -> None:
    texts = chnci_comments(3000)
    for cfg in (NormalizeConfig(homophones=False), NormalizeConfig(stylised=False, casefold=False)):
        fast = _snapshots(texts, cfg)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(N, "_SHORT", 10**9)
            plain = _snapshots(texts, cfg)
        assert fast == plain


_NOISY_LONG = st.lists(st.sampled_from(list("傻逼哈你草 *.#@~🐶🌿💩😀a1[]【】\n…①") + ["[doge]", "@张三", "sb", "nmsl", "傻b",
                                                                               "@小明 ", "@nmsl", "\U0010fffd", "\u200b"]),
                       min_size=20, max_size=80).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_NOISY_LONG, min_size=1, max_size=4))
def test_property_numpy_paths_equal_the_plain_paths(texts: list[str]) -> None:
    cfg = NormalizeConfig(homophones=False)
    fast = _snapshots(texts, cfg)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(N, "_SHORT", 10**9)
        plain = _snapshots(texts, cfg)
    assert fast == plain


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_NOISY_LONG)
def test_property_noise_runs_from_code_points_equal_the_regex(t: str) -> None:
    w = N._Work(t)
    (starts, ends), odd = N.NoiseStep._runs(w)
    want = [m.span() for m in N._noise_res()["noise"].finditer(t)]
    assert sorted([*zip(starts, ends), *odd]) == want
    special = N._MARKERS | N._noise_res()["we"]
    assert odd == [(s, e) for s, e in want if not special.isdisjoint(t[s:e])]


def test_noise_class_table_matches_the_character_classes() -> None:
    table = N._noise_classes()
    for bit, cls in ((1, N._NOISE), (2, N.CJK)):
        rx = re.compile(f"[{cls}]")
        found = {m.start() for m in rx.finditer("".join(map(chr, range(0x110000))))}
        assert set(((table & bit) != 0).nonzero()[0].tolist()) == found
    assert table[ord("@")] & 4 and table[ord("🐶")] & 4 and not table[ord("[")] & 4 and not table[ord(" ")] & 4


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(list("nmslcbtdyxwzqpSB1 *._-哈傻b蒸煮正真沙煞xX\n") + ["nmsl", "yyds", "sb", "cnm", "xswl",
                                                                               "傻b", "蒸煮", "ſb", " s*b ", "n m s l",
                                                                               " s.b ", "y-y-d-s"]),
                min_size=N._SHORT, max_size=120).map("".join))
def test_property_abbreviation_candidates_give_the_finditer_matches(t: str) -> None:
    r = N._abbr("")
    w = N._Work(t.lower())
    got = [m.span() for m in N.AbbreviationStep()._matches(w, r)]
    text = w.text
    want = [m.span() for m in r["latin"].finditer(text)]
    if r["first"].search(text):
        want += [m.span() for m in r["other"].finditer(text)]
    assert got == want


def test_unicode_chunk_path_keeps_the_exact_astral_set() -> None:
    t = "𝐬𝐛 哈哈 😀 \U0010fffd ① … ß 𠮷" * 10
    w = N._Work(t)
    N.UnicodeStep(True, True, True, True).normalize(w)
    assert w.astral_chars() == {c for c in w.text if ord(c) > 0xFFFF}
    assert w.text.startswith("sb 哈哈 😀 \U0010fffd 1 ... ss 𠮷")


def test_batch_offsets_and_sorted_parts_are_derived_on_first_use() -> None:
    texts = ["[doge]哈哈哈哈哈@李四 ok", "傻 逼……", "#话题# 好"] * 40
    many = normalize_batch(texts)
    chunk = many[0]._chunk
    assert chunk._offs is None and chunk._index is None  # nothing per text computed while the batch ran
    assert many[40].to_original(0, 2) == normalize(texts[40]).to_original(0, 2)
    assert chunk._offs is not None and chunk._index is None
    assert [n.parts for n in many] == [normalize(t).parts for t in texts]
    assert chunk._index is not None


def test_abbreviation_candidates_on_real_spellings() -> None:
    t = "你 nmsl 哈 n m s l 哈 s*b 和 s.b、s_b 还有 y-y-d-s 傻b 蒸煮 xswl zqsg abcsb sb1 " * 4
    r = N._abbr("")
    got = [m.group() for m in N.AbbreviationStep()._matches(N._Work(t), r)]
    assert got == [m.group() for m in r["latin"].finditer(t)] + [m.group() for m in r["other"].finditer(t)]
    assert {"nmsl", "n m s l", "s*b", "s.b", "s_b", "y-y-d-s", "傻b", "蒸煮"} <= set(got)
    assert "sb1" not in got and not any(g.startswith("csb") for g in got)


def test_code_point_tables_are_kept_on_disk_and_rebuilt_when_damaged(tmp_path, monkeypatch):
    """The code-point tables (a third of a cold start to build) come back from $QINGLANG_CACHE; a damaged or
    foreign file is rebuilt, never an error."""
    import importlib

    import numpy as np

    nm = importlib.import_module("qinglang_nlp.normalize")
    monkeypatch.setenv("QINGLANG_CACHE", str(tmp_path))
    calls = []

    def build():
        calls.append(1)
        t = np.zeros(0x110000, dtype=np.uint8)
        t[0x4E00:0xA000] = 2  # CJK
        return t

    key = f"test_table_{id(calls)}"
    first = nm._disk_cached(key, build)
    files = list(tmp_path.glob(f"normalize-{key}-*.npy"))
    assert calls == [1] and len(files) == 1
    nm._CACHE.pop(key)
    again = nm._disk_cached(key, build)  # a new process would do this: read back, not built
    assert calls == [1] and np.array_equal(first, again)
    for damage in (b"not a numpy file", np.zeros(5, np.uint8).tobytes()):
        files[0].write_bytes(damage)
        nm._CACHE.pop(key)
        assert np.array_equal(nm._disk_cached(key, build), first)
    assert len(calls) == 3
    nm._CACHE.pop(key)
    monkeypatch.setenv("QINGLANG_CACHE", str(tmp_path / "a-file"))
    (tmp_path / "a-file").write_text("x")  # the cache folder cannot be made: built, no error
    assert np.array_equal(nm._disk_cached(key, build), first)
    nm._CACHE.pop(key)
