"""Tests of qinglang_nlp.normalize: every step with real Chinese cases, alignment, pinyin view, properties."""
from __future__ import annotations

import importlib
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qinglang_nlp.html import clean_html, looks_like_html
from qinglang_nlp.normalize import (
    STEP_ORDER,
    NormalizeConfig,
    Normalized,
    explain,
    normalize,
    normalize_batch,
    pinyin_view,
    to_pinyin,
)

N = importlib.import_module("qinglang_nlp.normalize")  # the package attribute `normalize` is the function


def only(**on: object) -> NormalizeConfig:
    """A config with every step off except the named ones."""
    return NormalizeConfig(**{**NormalizeConfig.none().to_dict(), **on})


def back(n: Normalized, sub: str) -> str:
    """The original text behind the first occurrence of ``sub`` in the normalised text."""
    i = n.text.index(sub)
    s, e = n.to_original(i, i + len(sub))
    return n.original[s:e]


# ---- the issue's evasion list, end to end --------------------------------------------------------------------

@pytest.mark.parametrize(
    "raw, expected",
    [
        ("煞笔", "傻逼"), ("sb", "傻逼"), ("nmsl", "你妈死了"), ("傻 逼", "傻逼"), ("傻*逼", "傻逼"),
        ("儍逼", "傻逼"), ("扌喿", "操"), ("草🌿", "草🌿草"), ("ＳＢ", "傻逼"), ("𝐬𝐛", "傻逼"), ("ⓢⓑ", "傻逼"),
        ("繁體字", "繁体字"), ("傻\u200b逼", "傻逼"), ("傻\ufeff\u2060逼", "傻逼"), ("哈哈哈哈哈哈", "哈哈哈"),
        ("傻🐶逼", "傻逼"), ("沙比", "傻逼"), ("辣鸡", "垃圾"), ("cnm", "操你妈"), ("tmd", "他妈的"),
        ("shabi", "傻逼"), ("n m s l", "你妈死了"), ("s.b", "傻逼"), ("草泥马", "操你妈"), ("女马的", "妈的"),
    ],
)
def test_evasions_from_the_issue(raw: str, expected: str) -> None:
    assert normalize(raw).text == expected


@pytest.mark.parametrize("raw", ["3 4", "hello world", "nmslx password", "是你吗", "你好。世界", "2023年10月1日",
                                 "我们去吃饭吧", "收拾房间", "大陆", "队伍"])
def test_ordinary_text_is_left_alone(raw: str) -> None:
    assert normalize(raw).text == raw


# ---- steps one by one ------------------------------------------------------------------------------------------

def test_unicode_width_stylised_case() -> None:
    assert normalize("ＮＭＳＬ！", only(fullwidth=True, casefold=True)).text == "nmsl!"
    assert normalize("𝐒𝐁 ⓢⓑ 🅢🅑", only(stylised=True, casefold=True)).text == "sb sb sb"
    assert normalize("①②⑩ ⒈", only(nfkc=True)).text == "1210 1."
    assert normalize("壹贰叁 二〇二三 2〇23", only(stylised=True)).text == "123 二〇二三 2023"
    n = normalize("⑩块", only(nfkc=True))
    assert n.text == "10块" and n.to_original(0, 2) == (0, 1)
    assert normalize("ß", only(casefold=True)).text == "ss"


def test_invisible_characters_removed_and_offsets_skip_them() -> None:
    raw = "你\u200b是\u200d傻\ufe0f逼\u0007"
    n = normalize(raw, only(invisible=True))
    assert n.text == "你是傻逼"
    assert n.to_original(2, 4) == (4, 7)
    assert normalize("a\nb\tc", only(invisible=True)).text == "a\nb\tc"  # line breaks and tabs are kept


def test_noise_only_between_cjk() -> None:
    cfg = only(noise=True)
    assert normalize("傻 * 逼", cfg).text == "傻逼"
    assert normalize("傻😂逼", cfg).text == "傻逼"
    assert normalize("傻~~逼", cfg).text == "傻逼"
    assert normalize("3 4", cfg).text == "3 4"
    assert normalize("i love you", cfg).text == "i love you"
    assert normalize("你好，世界。", cfg).text == "你好，世界。"  # punctuation is not noise
    assert normalize("价格 100 元", cfg).text == "价格 100 元"


def test_word_emoji_between_cjk_is_a_word_unless_it_splits_a_term() -> None:
    assert normalize("我🌿你妈").text == "我🌿操你妈"  # 🌿 read as 草, 草你妈 -> 操你妈
    assert normalize("傻🐶逼").text == "傻逼"
    assert normalize("你是🐶").text == "你是🐶狗"


def test_mentions_topics_urls_are_parts_and_protected() -> None:
    raw = "转发@张三 说 #饭圈打投# 【公告】看 https://t.cn/A6sb [doge][笑哭R]"
    n = normalize(raw)
    kinds = {p.kind: p for p in n.parts}
    assert set(kinds) >= {"mention", "topic", "title", "url", "emoticon"}
    assert kinds["mention"].value == "@张三"
    assert "https://t.cn/a6sb" in n.text  # "sb" inside the URL is not expanded
    for p in n.parts:
        assert n.original[p.orig_start:p.orig_end].casefold() == p.value or p.kind == "emoji"
    assert [p.value for p in n.parts if p.kind == "emoticon"] == ["[doge]", "[笑哭r]"]


def test_traditional_to_simplified_phrase_aware() -> None:
    cfg = only(traditional=True)
    assert normalize("這個軟體很好用", cfg).text == "这个软体很好用"
    assert normalize("頭髮", cfg).text == "头发"
    n = normalize("妳們這些人", cfg)
    assert n.to_original(2, 4) == (2, 4)


def test_opencc_converter_is_cached_and_thread_safe() -> None:
    got = []
    threads = [threading.Thread(target=lambda: got.append(N._opencc())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in got}) == 1


def test_variants_and_lookalikes() -> None:
    assert normalize("儍屄", only(variants=True)).text == "傻逼"
    assert normalize("⻢上", only(variants=True)).text == "马上"
    assert normalize("⼈", only(nfkc=True)).text == "人"  # Kangxi radicals via NFKC


def test_radical_split_recombination_aligns_to_both_parts() -> None:
    n = normalize("我扌喿，女马的，口丁一声", only(radicals=True))
    assert n.text == "我操，妈的，叮一声"
    assert back(n, "操") == "扌喿"
    assert normalize("女子", only(radicals=True)).text == "女子"  # an ordinary word is not merged


def test_repeats_collapse_and_keep_count() -> None:
    n = normalize("哈哈哈哈哈哈哈笑死", only(repeats=True))
    assert n.text == "哈哈哈笑死"
    assert [(r.char, r.count, r.orig_start, r.orig_end) for r in n.repeats] == [("哈", 7, 0, 7)]
    assert back(n, "哈哈哈") == "哈哈哈哈哈哈哈"
    assert normalize("100000000元", only(repeats=True)).text == "100000000元"  # digits never collapse
    assert normalize("啊啊啊啊", NormalizeConfig(max_repeat=1)).text == "啊"


def test_emoji_names_and_bracket_emoticons() -> None:
    n = normalize("你个🐷，💩一样", only(emoji=True))
    assert n.text == "你个🐷猪，💩屎一样"
    assert back(n, "猪") == "🐷"
    assert [p.value for p in n.parts if p.kind == "emoji"] == ["🐷", "💩"]
    assert normalize(n.text, only(emoji=True)).text == n.text  # the word is not added twice


def test_abbreviations_at_latin_word_boundaries_only() -> None:
    cfg = only(abbreviations=True)
    n = normalize("哥哥yyds，xswl，nmsl", cfg)
    assert n.text == "哥哥永远的神，笑死我了，你妈死了"
    assert back(n, "你妈死了") == "nmsl"
    assert all(n.to_original(i, i + 1) == (12, 16) for i in range(n.text.index("你"), len(n.text)))
    for word in ["nmslx", "password", "xsbx", "absb", "sbc"]:
        assert normalize(word, cfg).text == word
    assert normalize("u1s1 蒸煮", cfg).text == "有一说一 正主"


def test_homophones_by_table_and_by_pinyin() -> None:
    cfg = only(homophones=True)
    assert normalize("你个煞笔", cfg).text == "你个傻逼"
    assert normalize("尼玛", cfg).text == "你妈"
    assert normalize("杀逼", cfg).text == "傻逼"  # generic whole-syllable pinyin match (sha bi)
    n = normalize("真是个沙比啊", cfg)
    assert back(n, "傻逼") == "沙比"
    for safe in ["是你吗", "纸张", "坚韧", "出生"]:
        assert normalize(safe, cfg).text == safe


def test_html_wechat_article() -> None:
    raw = (
        "<html><head><title>震惊！某明星&amp;粉丝</title><style>p{color:red}</style>"
        "<script>var msg_title='x';</script></head><body><div id=\"js_content\">"
        "<p>第一段<b>粗体</b>文字</p>\n   <p>第二段&nbsp;内容</p><!-- 注释 --><br/></div></body></html>"
    )
    assert looks_like_html(raw)
    n = clean_html(raw)
    assert n.text.split("\n")[0] == "震惊！某明星&粉丝"
    assert "第一段粗体文字" in n.text and "第二段 内容" in n.text
    assert "color" not in n.text and "msg_title" not in n.text and "注释" not in n.text
    i = n.text.index("粗体")
    s, e = n.to_original(i, i + 2)
    assert raw[s:e] == "粗体"
    assert normalize("我 <3 你，a<b").text == "我 <3 你,a<b"  # not HTML: left alone


def test_explain_records_every_step_with_original_offsets() -> None:
    recs = explain("傻*逼ＳＢ哈哈哈哈")
    assert [r["step"] for r in recs] == [s for s in STEP_ORDER if s != "restore"]  # restore: off by default
    by = {r["step"]: r for r in recs}
    assert by["noise"]["changes"] == [{"start": 1, "end": 2, "original": "*", "before": "*", "after": ""}]
    assert by["unicode"]["changes"][0]["original"] == "ＳＢ"
    assert by["abbreviations"]["changes"][0]["after"] == "傻逼"
    assert recs[-1]["text"] == normalize("傻*逼ＳＢ哈哈哈哈").text


# ---- contracts -------------------------------------------------------------------------------------------------

def test_contract_to_original() -> None:
    n = normalize("你是傻 *逼吗")
    assert back(n, "傻逼") == "傻 *逼"
    assert n.to_original(0, 0) == (0, 0)
    with pytest.raises(ValueError, match="outside"):
        n.to_original(0, 99)


def test_pinyin_view_contract() -> None:
    assert to_pinyin("傻逼") == pinyin_view(normalize("煞笔")).text == "shabi"
    v = pinyin_view(normalize("你好nmsl"))
    assert v.text == "nihaonimasile"
    assert [p for p in range(len(v.text) + 1) if v.is_boundary(p)] == [0, 2, 5, 7, 9, 11, 13]
    i = v.text.index("masi")
    assert v.to_original(i, i + 4) == (2, 6)  # 妈死 come from "nmsl"
    v2 = pinyin_view(normalize("绿色ok"))
    assert v2.text == "lvseok" and v2.is_boundary(2) and not v2.is_boundary(1)


def test_config_round_trip_and_validation() -> None:
    cfg = NormalizeConfig(max_repeat=2, homophones=False)
    assert NormalizeConfig.from_dict(cfg.to_dict()) == cfg
    assert NormalizeConfig.from_dict(None) == NormalizeConfig()
    with pytest.raises(ValueError, match="unknown normalisation steps"):
        NormalizeConfig.from_dict({"pinyin": True})
    with pytest.raises(ValueError, match="max_repeat"):
        NormalizeConfig(max_repeat=0)
    with pytest.raises(TypeError, match="noise"):
        NormalizeConfig(noise="yes")  # type: ignore[arg-type]
    assert normalize("ＳＢ 哈哈哈哈", NormalizeConfig.none()).text == "ＳＢ 哈哈哈哈"


@pytest.mark.parametrize("bad", [b"abc", None, 3, ["傻逼"]])
def test_non_str_raises_type_error_naming_type(bad: object) -> None:
    with pytest.raises(TypeError, match=type(bad).__name__):
        normalize(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=type(bad).__name__):
        normalize_batch(["ok", bad])  # type: ignore[list-item]


def test_batch_equals_one_by_one() -> None:
    texts = ["傻*逼", "", "哈哈哈哈哈", "@张三 nmsl", "<p>段落</p>", "繁體", "\U0010fffd", "🐶", "x" * 10]
    one = [normalize(t) for t in texts]
    many = normalize_batch(texts)
    assert [n.text for n in many] == [n.text for n in one]
    assert [n.alignments for n in many] == [n.alignments for n in one]
    assert [n.parts for n in many] == [n.parts for n in one]
    assert [n.repeats for n in many] == [n.repeats for n in one]


# ---- properties on arbitrary Unicode --------------------------------------------------------------------------

_EVASIVE = st.text(
    alphabet=st.sampled_from(list("傻逼煞笔沙比哈我你妈草操扌喿女马口丁體們 *#@【】[]doge🐶🌿💩\u200bＳＢsbnmsl1234 .,，。！\n"
                                  "Ａ①⒈壹贰〇ßé\u0301<p>")),
    max_size=30,
)
_TEXT = st.one_of(st.text(max_size=40), _EVASIVE)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(_TEXT)
def test_property_never_raises_idempotent_and_aligned(t: str) -> None:
    n = normalize(t)
    al = n.alignments
    assert len(al) == len(n.text)
    last = 0
    for s, e in al:
        assert 0 <= s <= e <= len(t)
        assert s >= last  # monotonic
        last = s
    assert normalize(n.text).text == n.text


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_TEXT)
def test_property_whole_span_maps_back_to_a_slice_that_normalises_the_same(t: str) -> None:
    n = normalize(t)
    if n.text:
        s, e = n.to_original(0, len(n.text))
        assert normalize(t[s:e]).text == n.text


# Steps that look at neighbouring characters (noise between CJK, runs, word boundaries, pinyin of several
# characters, radical pairs, numeral runs) cannot give the same text for an arbitrary sub-slice; the
# character-level steps can, and must.
_LOCAL = NormalizeConfig(noise=False, stylised=False, radicals=False, repeats=False, abbreviations=False,
                         homophones=False)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_EVASIVE, st.data())
def test_property_any_span_maps_back_with_character_level_steps(t: str, data: st.DataObject) -> None:
    n = normalize(t, _LOCAL)
    if not n.text:
        return
    i = data.draw(st.integers(0, len(n.text) - 1))
    j = data.draw(st.integers(i + 1, len(n.text)))
    a, b = n.to_original(i, j)
    assert 0 <= a < b <= len(t)
    # 1:n steps (⑩ -> 10, 🐶 -> 🐶狗) map part of an expansion to the whole source, hence "contains"
    assert n.text[i:j] in normalize(t[a:b], _LOCAL).text


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_TEXT, max_size=6))
def test_property_batch_matches_single(texts: list[str]) -> None:
    assert [n.text for n in normalize_batch(texts)] == [normalize(t).text for t in texts]


def test_extra_targets_file(tmp_path) -> None:
    p = tmp_path / "terms.txt"
    p.write_text("黑鬼\n娘炮\n死肥宅\n# comment\nabc\n", encoding="utf-8")
    cfg = NormalizeConfig(targets=str(p))
    assert normalize("niangpao", cfg).text == "娘炮"  # full pinyin (>= 5 letters)
    assert normalize("sifeizhai", cfg).text == "死肥宅"
    assert normalize("niangpao").text == "niangpao"  # not without the file
    assert normalize("你个嘿鬼", cfg).text == "你个嘿鬼"  # extra terms are not matched by homophone
    assert NormalizeConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="cannot read"):
        normalize("x", NormalizeConfig(targets=str(tmp_path / "missing.txt")))


def test_batch_restores_the_garbage_collector() -> None:
    import gc

    assert gc.isenabled()
    normalize_batch(["傻*逼"] * 3)
    assert gc.isenabled()
    with pytest.raises(TypeError):
        normalize_batch(["ok", 1])  # type: ignore[list-item]
    assert gc.isenabled()


def test_common_measure_word_is_not_rewritten_to_a_slur():
    # 几把 is an ordinary phrase (几把雨伞 "a few umbrellas"); a homophone table entry once turned it into 鸡巴
    assert normalize("买了几把雨伞").text == "买了几把雨伞"


def test_tag_stripping_reaches_a_fixed_point():
    # found by the atheris run (tests/fuzz): removing one tag joined the pieces of another
    for t in ["<<b\x01\n&S\n>b\x01\n&S\n>", "<<b>b>打投", "<scr<script>ipt>x</script>打投"]:
        once = normalize(t).text
        assert normalize(once).text == once


def test_topic_that_shrinks_below_the_length_limit_is_idempotent():
    # found by the atheris run (tests/fuzz): the @mention inside a #topic# lost its protection on a second pass
    t = "#@uuuu" + "\ufffd" * 46 + "#"
    once = normalize(t).text
    assert normalize(once).text == once


def test_adjacent_topics_are_idempotent():
    # third atheris finding: a mention recorded inside a topic made the topic's closing '#' look like noise
    once = normalize("#@傻#逼#傻#").text
    assert normalize(once).text == once


def test_text_that_later_steps_make_tag_like_is_not_stripped_on_a_second_pass():
    # fourth atheris finding: 參 becomes 3 after the html step, "<b33>" then looked like a tag on a second pass;
    # only known tag names are stripped now
    once = normalize("<B參<參><B").text
    assert normalize(once).text == once
    assert normalize("<p>打投</p><font color=red>集资</font>").text == "打投\n集资"


def test_mention_inside_a_topic_is_normalised_as_outside_one():
    # fifth atheris finding: "@mmp" inside a #topic# was expanded (mmp -> 妈卖批) only once the topic matched. A
    # mention's name is normalised now (the audit's "@ in front of an insult" hole), inside a topic or not, so the
    # two agree again
    t = "#i!!!!!!!!!!!!!!@MMP]<mMP\ufffdM!!!!!!!!!!!@\tiii<@iii\ufffd\ufffd\ufffd\ufffd#"
    once = normalize(t).text
    assert normalize(once).text == once
    assert normalize("#话题@mmp#").text == "#话题@妈卖批#"
    assert normalize("话题@mmp").text == "话题@妈卖批"


def test_tag_names_end_where_html_says():
    # sixth atheris finding: "<i`翙翙>" (made by the noise and traditional steps) was taken for an <i> tag
    once = normalize("<i`翽<翽>").text
    assert normalize(once).text == once
    assert normalize("<i>重点</i>").text == "重点"


def test_topic_recognition_does_not_depend_on_length():
    # seventh atheris finding: a #topic# over the old 50-character limit became one after repeats shortened it
    once = normalize("#" + "\ufffd" * 49 + "諾.#諾#殺").text
    assert normalize(once).text == once


def test_angle_brackets_are_not_noise():
    # eighth atheris finding: removing "<" between CJK characters made "<a\n鹉鹉>" a tag on a second pass
    once = normalize("<A\n鵡<鵡>").text
    assert normalize(once).text == once


def test_generic_homophones_do_not_cross_ordinary_words() -> None:
    """发表自己 holds 表自 (biao zi = 婊子); the boundary bigrams keep it, while real cloaks are still rewritten."""
    from qinglang_nlp.restore import LM_PATH

    if not LM_PATH.is_file():
        pytest.skip(f"shipped character LM missing: {LM_PATH}")
    assert normalize("我想发表自己的看法").text == "我想发表自己的看法"
    assert normalize("你是煞笔吧").text == "你是傻逼吧"
    assert normalize("你就是个沙比").text == "你就是个傻逼"


# ---- @mentions, #topics#, [emoticons]: the name after "@" is content and is normalised (audit finding) --------
# On Weibo a mention runs from "@" to the next space or punctuation, so "@你是沙比" may be a user's nickname; but
# the reader sees the characters, and protecting the whole mention let "@" in front of an insult defeat every
# later step. Only the "@" (and the character that ends the mention, from the noise step) is protected now.

def _part_view(n) -> list[tuple]:
    # the structure parts (a word emoji's part covers the word added after it on the first pass only: not about
    # mentions)
    return [(p.kind, p.start, p.end, p.value) for p in n.parts if p.kind != "emoji"]


def test_mention_name_is_normalised_like_any_text() -> None:
    n = normalize("@你是沙比")
    assert n.text == "@你是傻逼"
    assert _part_view(n) == [("mention", 0, 5, "@你是傻逼")]
    assert (n.parts[0].orig_start, n.parts[0].orig_end) == (0, 5)
    assert back(n, "傻逼") == "沙比"
    n = normalize("@nmsl")
    assert n.text == "@" + normalize("nmsl").text == "@你妈死了"
    assert n.to_original(1, 5) == (1, 5) and back(n, "你妈死了") == "nmsl"
    assert _part_view(n) == [("mention", 0, 5, "@你妈死了")]
    assert normalize("回复@sb：你说得对").text == "回复@傻逼:你说得对"  # ：-> : is NFKC
    assert normalize("@傻 逼").text == "@傻 逼"  # a space ends the mention ("@傻" is the mention; see below)


def test_legitimate_mentions_stay_mentions_with_their_offsets() -> None:
    for raw, mention, span in [("@人民日报 发布了最新消息", "@人民日报", (0, 5)),
                               ("转发@小明同学,哈哈哈", "@小明同学", (2, 7)),
                               ("@央视新闻 @新华社 关注", "@央视新闻", (0, 5))]:
        n = normalize(raw)
        assert n.text == raw  # nothing to normalise, and the spaces that end the mentions are kept
        got = [p for p in n.parts if p.kind == "mention"]
        assert got[0].value == mention and (got[0].start, got[0].end) == span
        assert (got[0].orig_start, got[0].orig_end) == span
    assert [p.value for p in normalize("@央视新闻 @新华社 关注").parts] == ["@央视新闻", "@新华社"]


def test_urls_are_left_untouched_also_with_an_at_sign() -> None:
    n = normalize("看 https://t.cn/A6sb 和 http://weibo.com/@nmsl 吧 @sb")
    assert "https://t.cn/a6sb" in n.text and "http://weibo.com/@nmsl" in n.text  # sb/nmsl in URLs stay
    assert n.text.endswith("@傻逼")
    assert [p.kind for p in n.parts] == ["url", "url", "mention"]


def test_noise_step_keeps_what_ends_a_mention() -> None:
    # the space after "@小明" was deleted as noise between two CJK characters: "@小明你是傻逼", which a second pass
    # read as one mention "@小明你是傻逼"
    n = normalize("@小明 你是煞笔")
    assert n.text == "@小明 你是傻逼"
    assert _part_view(n) == [("mention", 0, 3, "@小明")]
    assert normalize("@小明 你是傻 逼").text == "@小明 你是傻逼"  # other noise between CJK still goes
    assert normalize("@小明*你是傻*逼").text == "@小明*你是傻逼"
    assert normalize("@小明~~ 你好").text == "@小明~~ 你好"  # the whole run that ends it is kept
    assert normalize("@小-明 你好").text == "@小明 你好"  # noise inside the name is noise


_MENTION_CASES = [
    "@你是沙比", "@nmsl", "@小明 你是煞笔", "@人民日报 你好", "@小明*你是傻*逼", "@小明~~ 你好", "回复@张三:nmsl",
    "@nmsl 滚", "@小明🐶你好", "@小明❤你好", "@小明 @小红 你们是煞笔", "@小-明 你好", "#话题@小明 你是煞笔#",
    "【公告@小明 煞笔】", "#你是沙比#", "[你是沙比]", "@sha bi 你好", "@小明\u200b 你好", "＠小明　你是煞笔",
    "@哈哈哈哈哈哈 你好", "@小明-🐶你好", "@nmsl-🐶", "@你是沙比[doge] http://t.cn/A6sb", "@张三 你这个傻 逼🐶，nmsl！！！",
]


@pytest.mark.parametrize("raw", _MENTION_CASES)
def test_mentions_are_idempotent_in_text_and_parts(raw: str) -> None:
    once = normalize(raw)
    twice = normalize(once.text)
    assert twice.text == once.text
    assert _part_view(twice) == _part_view(once)
    for p in once.parts:  # every part's original span still slices the user's spelling
        assert 0 <= p.orig_start <= p.orig_end <= len(raw)


# Mention-heavy generated text. Not "逼" alone: "sb逼逼逼" -> "傻逼逼逼逼" is a run made by the abbreviations step
# after the repeats step ran (not about mentions; reported)
_MENTIONY = st.lists(st.sampled_from(
    ["@", "@小明", "@nmsl", "@sb", "@你是沙比", " ", "*", "~", "，", ",", "你是", "煞笔", "沙比", "傻", "哈哈哈哈", "#", "【",
     "】", "[", "]", "🐶", "❤", "-", "nmsl", "sha", "bi", "扌", "喿", "體", "\u200b", "http://t.cn/A6sb", "\n"]),
    max_size=25).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_MENTIONY)
def test_property_mentions_idempotent_in_text_and_parts(t: str) -> None:
    once = normalize(t)
    twice = normalize(once.text)
    assert twice.text == once.text
    # mentions and topics must come out the same; a [表情] or 【标题】 can be formed by the first pass itself (the
    # noise step joins "[你是 你是]" into "[你是你是]"), and parts describe the text they were read from, so those
    # two kinds may appear on the second pass only
    assert _structure_view(twice) == _structure_view(once)


def _structure_view(n) -> list[tuple]:
    return [v for v in _part_view(n) if v[0] not in ("emoticon", "title")]


def test_mention_in_a_title_that_becomes_one_later_is_idempotent() -> None:
    # a long 【title】 that the repeats step shortens, holding a mention: "@小明" keeps its "@" and the space that ends
    # it on both passes (titles had a 60-character limit until ada88c7, when this was found on the second pass only)
    raw = "【" + "哈" * 58 + "@小明 煞笔" + "哈" * 10 + "】"
    once = normalize(raw).text
    assert once == "【哈哈哈@小明 傻逼哈哈哈】"
    assert normalize(once).text == once


def test_topics_titles_and_emoticons_are_normalised_inside() -> None:
    # decided: #话题#, 【标题】 and [表情] are recorded as parts but are text the reader sees ("[你是沙比]" is no
    # Weibo emoticon and is shown as text), so they are normalised like the text around them
    n = normalize("#你是沙比# 【你是煞笔】 [你是沙比]")
    assert n.text == "#你是傻逼# 【你是傻逼】 [你是傻逼]"
    assert _part_view(n) == [("topic", 0, 6, "#你是傻逼#"), ("title", 7, 13, "【你是傻逼】"),
                             ("emoticon", 14, 20, "[你是傻逼]")]
    assert normalize("#话题@你是沙比#").text == "#话题@你是傻逼#"
    assert normalize("#饭 圈#").text == "#饭圈#"  # noise inside a topic goes; its "#" are kept
    # real Weibo emoticons are unchanged (草泥马 is normalised everywhere, also as the [草泥马] emoticon)
    emoticons = "[doge][允悲][二哈][笑cry][吃瓜][微笑][哈哈][泪][怒骂][跪了]"
    assert normalize(emoticons).text == emoticons
    assert normalize("[草泥马]").text == "[操你妈]"


def test_lexicon_finds_a_term_in_a_mention_with_the_span_on_the_original() -> None:
    from qinglang_nlp import LexiconMatcher

    lex = LexiconMatcher.default()
    for raw, spelled in [("@你是沙比", "沙比"), ("@小明 你是煞笔", "煞笔"), ("@nmsl", "nmsl")]:
        hits = [h for h in lex.match(raw) if h.category == "vulgar"]
        assert hits, raw
        assert any(raw[h.start:h.end] == h.text == spelled for h in hits), (raw, hits)


def test_mentions_in_long_texts_batch_equals_single() -> None:
    # >= 64 characters: the numpy paths (columnar parts, noise runs from code points) must keep the same spaces
    texts = ["@小明 你是煞笔，@人民日报 发布了消息 #话题@你是沙比# [你是沙比] @nmsl 滚" * 3, "@小明 你好", "@你是沙比"]
    many = normalize_batch(texts)
    one = [normalize(t) for t in texts]
    assert [(n.text, n.alignments, n.parts) for n in many] == [(n.text, n.alignments, n.parts) for n in one]
    assert many[0].text.startswith("@小明 你是傻逼,@人民日报 发布了消息 #话题@你是傻逼# [你是傻逼] @你妈死了 滚")
    assert normalize(many[0].text).text == many[0].text
