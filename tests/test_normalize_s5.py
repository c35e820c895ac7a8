"""Session-5 normalisation fixes: runs of one character made after the repeats step (sb逼逼逼), and "@" inside an
insult (你是傻@逼). Each case failed on the code before the fix (commit 2bfce54)."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qinglang_nlp.normalize import explain, normalize, normalize_batch

# ---- runs made by the steps after ``repeats`` are collapsed too (normalising twice changes nothing) ----------
# The repeats step runs before the emoji, abbreviations and homophones steps; each of those can lengthen a run
# (sb逼逼逼 -> 傻逼逼逼逼), which a second pass then collapsed: normalize(normalize(x).text).text != normalize(x).text.
# Before the fix, 502 of 1,264 generated "spelling next to a run of its own character" strings were not idempotent.

_LATER_RUNS = [
    ("sb逼逼逼", "傻逼逼逼"),  # abbreviation expanded after the collapse
    ("sb*逼逼逼", "傻逼逼逼"),  # ... and the noise around the expansion removed
    ("哈哈sb逼逼逼逼逼", "哈哈傻逼逼逼"),
    ("傻傻傻 sb", "傻傻傻逼"),  # the run is on the left of the expansion
    ("你你你nmsl", "你你你妈死了"),
    ("cnm妈妈妈", "操你妈妈妈"),
    ("tmd的的的", "他妈的的的"),
    ("沙比逼逼逼", "傻逼逼逼"),  # homophone replaced after the collapse
    ("煞笔逼逼逼", "傻逼逼逼"),
    ("🤡丑丑丑", "🤡小丑丑丑"),  # the emoji's word added after the collapse
    ("🍋檬檬檬", "🍋柠檬檬檬"),
]


@pytest.mark.parametrize(("raw", "want"), _LATER_RUNS)
def test_runs_made_after_the_repeats_step_are_collapsed(raw: str, want: str) -> None:
    once = normalize(raw)
    assert once.text == want
    assert normalize(want).text == want
    assert normalize_batch([raw, "你好", raw])[2].text == want  # the batch path agrees


def test_collapsed_run_records_the_whole_original_run() -> None:
    # one record for the run, counting the characters both collapses dropped, its span covering the spelling
    n = normalize("sb逼逼逼逼逼")
    assert n.text == "傻逼逼逼"
    assert [(r.char, r.count, r.orig_start, r.orig_end) for r in n.repeats] == [("逼", 6, 0, 7)]
    assert n.to_original(1, 4) == (0, 7)
    n = normalize("沙比逼逼逼")
    assert [(r.char, r.count, r.orig_start, r.orig_end) for r in n.repeats] == [("逼", 4, 1, 5)]
    assert n.to_original(0, 2) == (0, 2)


def test_ordinary_runs_are_left_as_before() -> None:
    assert normalize("🍺酒酒酒酒").text == "🍺啤酒酒酒"  # the run the word makes is collapsed with the one after it
    assert normalize("sb比比比").text == "傻逼比比比"  # 比 is not 逼: no run
    assert normalize("nmsl死死死").text == "你妈死了死死死"  # 了 breaks the run
    assert normalize("哈哈哈哈哈sb").text == "哈哈哈傻逼"
    assert normalize("🐶狗狗狗").text == "🐶狗狗狗"  # already followed by its word: nothing added


# spellings that later steps rewrite, next to runs of one character (the shape of the bug), with some noise
_RUNNY = st.lists(st.one_of(
    st.sampled_from(["sb", "SB", "nmsl", "cnm", "tmd", "nmb", "沙比", "煞笔", "🤡", "🐶", " ", "*", "哈"]),
    st.tuples(st.sampled_from("逼妈的傻你操死了丑狗哈"), st.integers(1, 5)).map(lambda ck: ck[0] * ck[1])),
    max_size=8).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_RUNNY)
def test_property_runs_and_expansions_are_idempotent(t: str) -> None:
    once = normalize(t).text
    assert normalize(once).text == once


# ---- an "@" inside an insult is noise, not the start of a mention ----------------------------------------------
# Weibo and Douyin make an "@" a mention wherever it stands, also right after a Chinese character (据@国防部发布,
# 回复@张三:), so "傻@逼" was read as "傻" + the mention "@逼", whose "@" is protected: the insult survived. The "@"
# is noise when the characters around it read (by pinyin) as two neighbouring characters of an offensive term.

def _view(n) -> list[tuple]:
    return [(p.kind, p.value, p.orig_start, p.orig_end) for p in n.parts]


@pytest.mark.parametrize(("raw", "want"), [
    ("你是傻@逼", "你是傻逼"),
    ("傻@逼", "傻逼"),
    ("你是沙@比", "你是傻逼"),  # a homophone spelling: the pinyin reads 傻逼
    ("你是煞@笔吧", "你是傻逼吧"),
    ("傻*@逼", "傻逼"),  # other noise before the "@" (a space there starts a mention: test_review_s5.py)
    ("傻@@逼", "傻逼"),
    ("傻@逼你妈", "傻逼你妈"),  # the would-be mention's name is longer than the insult's tail
    ("你@妈死了", "你妈死了"),
    ("脑@残粉", "脑残粉"),
    ("你@女马", "你妈"),  # judged on the normalised neighbours: 你@女马 -> 你@妈 -> 你妈
    ("＠小明　你是傻＠逼", "@小明 你是傻逼"),  # full-width forms: the first "@" is a mention, the second is noise
])
def test_at_inside_an_insult_is_noise(raw: str, want: str) -> None:
    n = normalize(raw)
    assert n.text == want
    if "小明" not in raw:
        assert normalize(raw.replace("@", "")).text == want  # the same text as without the "@"
    assert normalize(want).text == want  # idempotent
    assert normalize_batch(["你好", raw, "@小明 你好"])[1].text == want


def test_at_inside_an_insult_gives_the_canonical_text_and_offsets() -> None:
    n = normalize("你是傻@逼")
    assert n.text == normalize("你是傻逼").text == "你是傻逼"
    assert n.parts == ()  # no mention "@逼"
    assert n.alignments == [(0, 1), (1, 2), (2, 3), (4, 5)]
    assert n.to_original(2, 4) == (2, 5)  # the evidence covers the whole spelling, "@" included
    assert n.original[slice(*n.to_original(2, 4))] == "傻@逼"
    n = normalize("#你是傻@逼# 好")
    assert n.text == "#你是傻逼# 好"
    assert _view(n) == [("topic", "#你是傻逼#", 0, 7)]  # a mention inside a topic: the same rule
    steps = [(r["step"], [(c["start"], c["before"]) for c in r["changes"]]) for r in explain("你是傻@逼") if r["changed"]]
    assert steps == [("noise", [(3, "@")])]  # explain shows the deletion where it happens


def test_real_mentions_after_chinese_characters_stay_mentions() -> None:
    assert normalize("你是傻@逼").text == "你是傻逼"  # the fix (failed before)
    # real comments of the shared data (CHNCI, Weibo21 shapes): mentions right after a Chinese character
    for raw, mention, span in [("回复@张三:你好", "@张三", (2, 5)), ("@偶像指数榜 打榜", "@偶像指数榜", (0, 6)),
                               ("据@国防部发布,12月10日", "@国防部发布", (1, 7)), ("请关注@生活点点通", "@生活点点通", (3, 9)),
                               ("转发@小明同学,哈哈哈", "@小明同学", (2, 7)), ("一觉醒来雨姐塌了@奇迹小猫", "@奇迹小猫", (8, 13))]:
        n = normalize(raw)
        assert n.text == raw
        assert _view(n) == [("mention", mention, *span)]
    n = normalize("卧槽@蓝沢夜")  # 卧槽 is normalised, the mention stays
    assert n.text == "我操@蓝沢夜" and _view(n) == [("mention", "@蓝沢夜", 2, 6)]
    assert normalize("邮箱abc@qq.com").text == "邮箱abc@qq.com"  # an e-mail address is untouched
    assert normalize("你是傻@sb").text == "你是傻@傻逼"  # 傻@傻 is no pair of an insult: a mention, normalised inside


_ATTY = st.lists(st.sampled_from(
    ["@", "＠", " ", "*", "傻", "逼", "沙", "比", "你", "妈", "死", "了", "脑", "残", "#", "【", "】", "@小明", "@张三:", "回复",
     "sb", "nmsl", "哈哈哈哈", "🐶", "扌", "喿", "女", "马", "體", "\u200b", "，"]), max_size=12).map("".join)
_SPLIT_INSULT = {"傻@逼": "傻逼", "沙@比": "沙比", "你@妈": "你妈", "脑@残": "脑残", "傻*@逼": "傻*逼", "傻@@逼": "傻逼",
                 "你是傻＠逼": "你是傻逼"}  # spelling with "@" -> the same without


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.tuples(_ATTY, st.sampled_from(sorted(_SPLIT_INSULT)), _ATTY))
def test_property_at_signs_idempotent_and_aligned(case: tuple[str, str, str]) -> None:
    before, insult, after = case
    t = before + insult + after
    once = normalize(t)
    twice = normalize(once.text)
    assert twice.text == once.text
    assert [(p.kind, p.value) for p in twice.parts if p.kind != "emoji"] == \
        [(p.kind, p.value) for p in once.parts if p.kind != "emoji"]
    spans = once.alignments
    assert all(0 <= s <= e <= len(t) for s, e in spans)
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(spans))  # alignment starts never go back
    # the "@" inside the insult is noise, whatever is around it: the same text as without it
    assert once.text == normalize(before + _SPLIT_INSULT[insult] + after).text
    batch = normalize_batch(["好", t, t + "@小明"])
    assert batch[1].text == once.text and batch[1].alignments == spans


def test_long_text_with_an_at_inside_an_insult() -> None:
    # long enough for the columnar structure parts of the first pass (the redo reads them from the text without
    # the "@"); the mention "@马@死" of the second case is "@马死" once its inner "@" is gone, on every pass
    raw = "我们都是好朋友，@小明 你好。" * 40 + "你是傻@逼 #话题@马@死#"
    n = normalize(raw)
    assert n.text.endswith("你是傻逼 #话题@马死#")
    assert normalize(n.text).text == n.text
    assert [p.value for p in n.parts][-2:] == ["@小明", "#话题@马死#"]
    assert normalize_batch([raw])[0].text == n.text
    assert [p.value for p in normalize("@马@死").parts] == [p.value for p in normalize("@马死").parts] == ["@马死"]


# ---- homophones: the pinyin targets are matched on the output of the explicit table ----------------------------
# Found by a random search of spellings, runs, emoji and noise (17 of 30,000 strings not idempotent after the two
# fixes above): the explicit table turned 尼玛 into 你妈 while the pinyin match 草尼玛 -> 操你妈 was judged (by its
# neighbours in the character LM) on 草尼玛 and refused; a second pass judged it on 草你妈 and took it.

@pytest.mark.parametrize(("raw", "want"), [
    ("草尼玛鬼ee", "操你妈鬼ee"),
    ("草你马bbbb", "操你妈bbb"),
    ("我草草nima", "我操操你妈"),
    ("握草艹你妈", "我操操你妈"),
    ("🌿尼玛\n\n狗日的", "🌿操你妈\n\n狗日的"),  # the emoji's word 草 and 尼玛 make 草尼玛
    ("草尼玛草泥马狗xx", "操你妈操你妈狗xx"),
])
def test_pinyin_targets_are_matched_after_the_explicit_spellings(raw: str, want: str) -> None:
    from qinglang_nlp.restore import LM_PATH

    if not LM_PATH.is_file():
        pytest.skip(f"shipped character LM missing: {LM_PATH}")
    once = normalize(raw).text
    assert once == want
    assert normalize(once).text == once


# ---- restore (on in the shipped model's config): the word a word emoji stands for is left alone ----------------
# Found by the same search with the model's config (53 of 30,000 strings not idempotent before these fixes, 7
# after the ones above, 0 now): the restorer rewrote the word the emoji step had added (🐸蛙对不起 -> 🐸绝对不起),
# and a second pass added 蛙 again.

@pytest.mark.parametrize(("raw", "want"), [
    ("🐸dbq", "🐸蛙对不起"),
    ("去去🐖蛙", "去去🐖猪蛙"),
    ("💩么么么么么", "💩屎么么么"),
])
def test_restore_leaves_the_word_of_a_word_emoji_alone(raw: str, want: str) -> None:
    from qinglang_nlp.normalize import NormalizeConfig
    from qinglang_nlp.restore import LM_PATH

    if not LM_PATH.is_file():
        pytest.skip(f"shipped character LM missing: {LM_PATH}")
    on = NormalizeConfig(restore=True)
    once = normalize(raw, on).text
    assert once == want
    assert normalize(once, on).text == once
    assert normalize_batch(["你好", raw], on)[1].text == want


@pytest.mark.parametrize("text,topic", [("你@妈####@#", "#@#"), ("你妈####@#", "#@#"), ("#话题####", "#话题#")])
def test_repeat_run_holding_a_topic_delimiter_is_kept(text: str, topic: str) -> None:
    # collapsing #### merged the topic's opening # into the run: the next pass found another topic (property test)
    once = normalize(text)
    twice = normalize(once.text)
    assert twice.text == once.text
    assert [(p.kind, p.value) for p in once.parts] == [(p.kind, p.value) for p in twice.parts] == [("topic", topic)]
    assert normalize("#哈哈哈哈哈#").text == "#哈哈哈#"  # a run inside a topic is still collapsed
