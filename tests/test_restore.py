"""Tests of qinglang_nlp.restore: a tiny LM built here from a few sentences (no shared data needed), the edit
contract (sorted, non-overlapping, inside the text), idempotence on arbitrary Unicode, and the shipped LM."""
from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qinglang_nlp.normalize import NormalizeConfig, normalize, normalize_batch
from qinglang_nlp.restore import (
    LM_PATH,
    CharLM,
    RestoreConfig,
    _apply,
    _blocked,
    _compose,
    _syllable_aliases,
    build_charlm,
    initialisms,
    restore,
    restore_batch,
    restore_edits,
    restore_edits_batch,
)

SENTENCES = [
    "我今天去北京", "我明天去北京", "我们去北京玩", "你今天去哪里", "他今天去上海", "我今天很开心",
    "你就是个傻逼", "这个傻逼又来了", "真是个傻逼", "你妈死了", "你妈的", "我的妈呀",
    "煞费苦心", "凶神恶煞", "一支铅笔", "笔记本电脑", "写字用笔", "沙发很软", "沙子很多",
    "今天天气真好", "我们去公园散步吧", "没有人喜欢你", "我没有钱", "大家都很喜欢", "北京欢迎你",
]
CORPUS = SENTENCES * 5


@pytest.fixture(scope="module")
def tiny() -> CharLM:
    return build_charlm(CORPUS, min_count=1, min_bigram=1, min_trigram=1, cand_min_count=1)


def _check_edits(text: str, edits: list[tuple[int, int, str]]) -> None:
    last = 0
    for s, e, r in edits:
        assert 0 <= last <= s < e <= len(text), (text, edits)
        assert isinstance(r, str) and r
        last = e


# -- the tiny LM -------------------------------------------------------------------------------------------

def test_tiny_lm_builds_deterministically(tiny: CharLM) -> None:
    again = build_charlm(CORPUS, min_count=1, min_bigram=1, min_trigram=1, cand_min_count=1)
    assert set(again.arrays) == set(tiny.arrays)
    for k in tiny.arrays:
        assert np.array_equal(np.asarray(tiny.arrays[k]), np.asarray(again.arrays[k])), k


def test_tiny_lm_probabilities(tiny: CharLM) -> None:
    i = tiny.ids("我今天去北京")
    seen = tiny.bigram(i[:-1], i[1:])
    assert np.all(seen < 0)
    # a seen bigram is more likely than an unseen one, and the trigram agrees
    assert tiny.bigram(tiny.ids("傻")[0], tiny.ids("逼")[0]) > tiny.bigram(tiny.ids("煞")[0], tiny.ids("逼")[0])
    a, b, c = tiny.ids("个傻逼")
    assert tiny.trigram(a, b, c) > tiny.trigram(a, tiny.ids("煞")[0], c)
    # probabilities of all continuations of one context sum to (at most) one
    ctx = tiny.ids("今")[0]
    total = np.exp(tiny.bigram(np.full(tiny.V, ctx), np.arange(tiny.V))).sum()
    assert 0.9 < total <= 1.0001


def test_tiny_lm_roundtrips_through_a_file(tiny: CharLM, tmp_path) -> None:
    p = tmp_path / "lm.npz"
    tiny.save(p)
    back = CharLM.load(p)
    assert restore("我今天qu北京", lm=back) == restore("我今天qu北京", lm=tiny)
    with pytest.raises(FileNotFoundError, match="build it with training/build_charlm.py"):
        CharLM.load(tmp_path / "missing.npz")


def test_full_pinyin_decodes(tiny: CharLM) -> None:
    assert restore("我今天qu北京", lm=tiny) == "我今天去北京"
    assert restore_edits("我今天qu北京", lm=tiny) == [(3, 5, "去")]
    assert restore("你就是个shabi", lm=tiny) == "你就是个傻逼"


def test_homophone_restored_and_clean_text_kept(tiny: CharLM) -> None:
    # the tiny LM's probabilities are far higher than a real one's: every character is screened in, and the
    # keep prior is small; the sentences it was built from still stay as they are
    cfg = RestoreConfig(screen=0.0, homophone_cost=2.0)
    assert restore("你就是个煞笔", lm=tiny, config=cfg) == "你就是个傻逼"
    assert restore_edits("你就是个煞笔", lm=tiny, config=cfg) == [(4, 5, "傻"), (5, 6, "逼")]
    assert restore("你就是个煞笔", lm=tiny, config=RestoreConfig(screen=0.0, homophone_cost=50.0)) == "你就是个煞笔"
    for s in SENTENCES:
        assert restore(s, lm=tiny, config=cfg) == s, s


def test_initials_need_confidence(tiny: CharLM) -> None:
    cfg = RestoreConfig(initials_margin=0.0)
    assert restore("我j天去北京", lm=tiny, config=cfg) == "我今天去北京"
    assert restore("我j天去北京", lm=tiny, config=RestoreConfig(initials=False)) == "我j天去北京"
    assert restore("我j天去北京", lm=tiny, config=RestoreConfig(initials_margin=1e9)) == "我j天去北京"


def test_latin_next_to_urls_digits_and_capitals_is_left_alone(tiny: CharLM) -> None:
    for t in ("见 http://qu.com/beijing", "u1s1我今天", "我今天Qu北京", "邮箱qu@beijing"):
        assert restore(t, lm=tiny) == t, t


def test_sentence_punctuation_is_not_a_join() -> None:
    assert _blocked("访问www.baidu.com吧", 2, 5) and _blocked("访问www.baidu.com吧", 6, 11)
    assert _blocked("a_b 好", 0, 1) and _blocked("邮箱qu@beijing", 2, 4)
    assert not _blocked("你是shabi?对", 2, 7) and not _blocked("你是shabi.", 2, 7) and not _blocked("(shabi)", 1, 6)


def test_umlaut_syllables_are_aliased() -> None:
    # LM files built before the ü fix named 女 "nuv"; evaders type nv, lv, and lue / nue for lüe
    got = _syllable_aliases({"nuv": 0, "luve": 1, "ma": 2})
    assert got == {"nv": 0, "lve": 1, "lue": 1, "ma": 2}


def test_initialism_table_rows_match_their_words(tmp_path) -> None:
    rows = initialisms()
    assert ("ex", "恶心") in rows and ("qj", "强奸") in rows and ("xs", "笑死") in rows
    bad = tmp_path / "initials.tsv"
    bad.write_text("# initials\tword\ngs\t恶心\n", encoding="utf-8")
    with pytest.raises(ValueError, match="恶心.*'ex', not 'gs'"):
        initialisms(bad)


def test_switches(tiny: CharLM) -> None:
    off = RestoreConfig(homophones=False, pinyin=False, initials=False)
    assert restore_edits("你就是个煞笔，我今天qu北京", lm=tiny, config=off) == []


def test_batch_equals_single(tiny: CharLM) -> None:
    texts = ["我今天qu北京", "", "你就是个煞笔", "今天天气真好", "hello", "我j天去北京"]
    cfg = RestoreConfig(screen=0.0, homophone_cost=2.0)
    assert restore_edits_batch(texts, lm=tiny, config=cfg) == [restore_edits(t, lm=tiny, config=cfg) for t in texts]
    assert restore_edits_batch(texts, lm=tiny, config=cfg)[2] == [(4, 5, "傻"), (5, 6, "逼")]
    assert restore_batch(texts, lm=tiny) == [restore(t, lm=tiny) for t in texts]


def test_bad_input(tiny: CharLM) -> None:
    with pytest.raises(TypeError, match="index 1"):
        restore_edits_batch(["好", b"bytes"], lm=tiny)  # type: ignore[list-item]
    assert restore("\ud800傻\udfff", lm=tiny) == "\ud800傻\udfff"  # lone surrogates pass through
    assert restore("", lm=tiny) == ""


# -- compose: edits of several passes expressed on the original ---------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abc傻逼", max_size=12), st.randoms(use_true_random=False))
def test_compose_equals_sequential_application(text: str, rnd: random.Random) -> None:
    def rand_edits(t: str) -> list[tuple[int, int, str]]:
        out, pos = [], 0
        while pos < len(t):
            s = rnd.randint(pos, len(t))
            if s >= len(t):
                break
            e = rnd.randint(s + 1, min(len(t), s + 3))
            out.append((s, e, rnd.choice(["x", "yy", "去", "傻逼"])))
            pos = e + rnd.randint(0, 2)
        return out
    first = rand_edits(text)
    mid = _apply(text, first)
    second = rand_edits(mid)
    both = _compose(text, first, second)
    _check_edits(text, both)
    assert _apply(text, both) == _apply(mid, second)


# -- properties on arbitrary Unicode and CJK-heavy text ------------------------------------------------------

CJK_HEAVY = st.text(alphabet=st.sampled_from(list("".join(SENTENCES)) + list("abqushjnmlz ，。!1") + ["😂"]),
                    max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=40), CJK_HEAVY))
def test_idempotent_and_edits_inside(tiny: CharLM, text: str) -> None:
    for cfg in (RestoreConfig(), RestoreConfig(screen=0.0, homophone_cost=1.0, initials_margin=-5.0)):
        edits = restore_edits(text, lm=tiny, config=cfg)
        _check_edits(text, edits)
        once = _apply(text, edits)
        assert restore(once, lm=tiny, config=cfg) == once


# -- the shipped LM (skips when qinglang_nlp/data/charlm.npz is absent) --------------------------------------

shipped = pytest.mark.skipif(not LM_PATH.is_file(), reason=f"{LM_PATH} not built (training/build_charlm.py)")


@shipped
def test_shipped_lm_file() -> None:
    assert LM_PATH.stat().st_size < 8_000_000
    lm = CharLM.load(LM_PATH)
    assert "toxicn" not in " ".join(lm.meta.get("data_sha256", {}))
    assert lm.meta.get("split") == "carved train"
    assert lm.meta["vocab"] > 3000


@shipped
def test_shipped_lm_restores_real_cases() -> None:
    assert restore("我今天qu北京") == "我今天去北京"
    assert restore("你就是个shabi，滚") == "你就是个傻逼，滚"
    assert restore("今天天汽真好") == "今天天气真好"  # homophone typo
    assert restore("我j天去北京") == "我今天去北京"  # one confident initial
    for clean in ("今天天气真好，我们去公园散步吧", "没有人喜欢你", "这部电影的配乐很好听，推荐大家去看",
                  "hello world 你好", "理性追星，拒绝集资，从我做起"):
        assert restore(clean) == clean


@shipped
def test_shipped_lm_reads_initials_as_words_only_in_context() -> None:
    assert restore("感到非常ex，用大量消毒剂") == "感到非常恶心，用大量消毒剂"
    assert restore("你自己被qj了，别人不承认") == "你自己被强奸了，别人不承认"  # initialism table
    assert restore("都是tynq的嘴脸") == "都是田园女权的嘴脸"  # bundled vulgar lexicon term
    assert restore("感到非常ex，用大量消毒剂", config=RestoreConfig(words_margin=1e9)) == "感到非常ex，用大量消毒剂"
    for clean in ("这个cp好甜", "我是ok的", "今晚pk赛加油", "i love you 你好"):
        assert restore(clean) == clean, clean


@shipped
def test_shipped_lm_decodes_nv_runs_in_order_and_whole_words() -> None:
    assert restore("又欺负nv人了") == "又欺负女人了"
    assert restore("谁告诉你反nvquan就是nanquan了") == "谁告诉你反女权就是男权了"
    assert restore("你谁?理中客?guinan?白骑士?") == "你谁?理中客?龟男?白骑士?"  # ? before CJK is not a join
    # a two-character word cloaked whole: neither character alone gains, the pair does
    assert restore("但是那个节目真的是让我讹薪到了") == "但是那个节目真的是让我恶心到了"
    assert restore("但是那个节目真的是让我讹薪到了", config=RestoreConfig(pair_screen=0.0)) == \
        "但是那个节目真的是让我讹薪到了"


ON = NormalizeConfig(restore=True)


@shipped
def test_normalize_step_cleans_up_after_restoring() -> None:
    # the space between restored pinyin and CJK is noise now; a homophone spelling the LM chose is mapped
    texts = ["我是湖北襄阳人，，biaoziyangde 是口头禅", "你是shabi？对", "temede给对面杀就算了"]
    got = [n.text for n in normalize_batch(texts, ON)]
    assert got == ["我是湖北襄阳人,,婊子养的是口头禅", "你是傻逼?对", "他妈的给对面杀就算了"]
    for t, n in zip(texts, normalize_batch(texts, ON)):
        one = normalize(t, ON)
        assert one.text == n.text and one.alignments == n.alignments
        assert normalize(one.text, ON).text == one.text
        i = one.text.find("婊子养的")
        if i >= 0:
            assert one.original[slice(*one.to_original(i, i + 4))] == "biaoziyangde"


@shipped
def test_normalize_batch_reads_the_separator_as_a_text_boundary_and_restored_runs_collapse() -> None:
    # the homophone step's boundary check once saw the batch separator as a right neighbour: 沙壁 at the end of a
    # text that was not last in its batch became 傻逼 in normalize_batch but not in normalize
    for cfg in (NormalizeConfig(), ON):
        texts = ["我接被沙壁", "你就是个沙壁", "我接被沙壁"]
        assert [n.text for n in normalize_batch(texts, cfg)] == [normalize(t, cfg).text for t in texts]
    # restored pinyin can make a run longer than max_repeat: it collapses in the same pass (idempotence)
    for t in ("mamamamama", "哈nvnvnvnv"):
        once = normalize(t, ON)
        assert normalize(once.text, ON).text == once.text
        assert [n.text for n in normalize_batch([t, "好" + t], ON)] == [once.text, normalize("好" + t, ON).text]
    assert normalize("mamamamama", ON).repeats[0].count == 5


@shipped
@settings(max_examples=100, deadline=None)
@given(st.one_of(st.text(max_size=30), CJK_HEAVY))
def test_shipped_lm_idempotent(text: str) -> None:
    edits = restore_edits(text)
    _check_edits(text, edits)
    once = _apply(text, edits)
    assert restore(once) == once


def test_initials_word_table_is_cached_between_processes_and_a_bad_cache_is_ignored(tmp_path, monkeypatch):
    from qinglang_nlp.restore import _initials_words, _initials_words_cached, default_lm

    monkeypatch.setenv("QINGLANG_CACHE", str(tmp_path))
    lm = default_lm()
    fresh = _initials_words(lm)
    first = _initials_words_cached(lm)           # builds and writes the cache file
    files = list(tmp_path.glob("initials-words-*.npz"))
    assert len(files) == 1
    again = _initials_words_cached(lm)           # reads it back
    for table in (first, again):
        assert table.keys() == fresh.keys()
        assert all(np.array_equal(table[k][0], fresh[k][0]) and np.array_equal(table[k][1], fresh[k][1])
                   for k in fresh)
    assert again["sb"][0].dtype == fresh["sb"][0].dtype
    good = files[0].read_bytes()
    for damaged in (b"not an npz file", good[: len(good) // 2], b""):   # foreign, truncated, empty: rebuilt
        files[0].write_bytes(damaged)
        assert _initials_words_cached(lm).keys() == fresh.keys()
    assert not list(tmp_path.glob("*.tmp.npz"))
