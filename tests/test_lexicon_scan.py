"""Tests of LexiconMatcher.scan (the streaming path, with and without worker processes) and of the fast Span
constructor it uses: the spans must be exactly those of match_many."""
from __future__ import annotations

import dataclasses
import multiprocessing
import pickle
import random

import pytest

from qinglang_nlp.lexicon import LexiconMatcher, Term
from qinglang_nlp.result import Span, _new_span

# Real comments in the style of the project's data: hits in the text view, the pinyin view and as variants
# (traditional script, full-width letters, homophones), rules that remove hits (whole word, allow list,
# needs-context), several hits in one text, and texts without any.
CASES = [
    "姐妹们快去打投！控评组集合，别让对家粉丝带节奏",
    "前面路口交通管制，绕行吧",  # 口交 is a whole-word term: no hit
    "他喜欢口交",
    "有没有人约泡",  # pinyin view: 约炮
    "他媽的煩死了",  # variant: 他妈的
    "ＳＢ东西，煞笔吧你",  # two variants of 傻逼
    "理性追星，拒绝集资，从我做起",  # allow list
    "打击非法集资",  # allow list
    "对家出牌太快了",  # 对家 needs fandom context
    "她被开盒了，家里电话都被扒出来",  # 被开盒 covers 开盒
    "他妈妈今天来学校开家长会",
    "今天天气不错，适合出去走走。",
    "",
    "看AV，I have a dream",  # Latin boundary: AV fires, have does not
    "你就是个垃圾，沙比 nmsl 😅😅😅",
]


@pytest.fixture(scope="module")
def default() -> LexiconMatcher:
    return LexiconMatcher.default().build()


@pytest.fixture(scope="module")
def custom() -> LexiconMatcher:
    """Whole-word, allow and context rules on a user list (pinyin view on)."""
    m = LexiconMatcher({"u": [Term("口交", "vulgar", "vu_sexual", whole_word=True),
                              Term("约炮", "vulgar", "vu_sexual"),
                              Term("集资", "fanquan", "fq_fundraise"),
                              Term("女装", "vulgar", "vu_sexual", context_window=5)]})
    m.add_allow("非法集资", category="fanquan")
    return m.build()


def views(results: list[list[Span]]) -> set[str]:
    return {s.view for r in results for s in r}


def test_scan_gives_the_spans_of_match_many(default):
    expected = default.match_many(CASES)
    # the cases cover what they claim: text, pinyin and variant hits, and rules that leave texts without hits
    assert {"text", "pinyin", "variant"} <= views(expected)
    by_text = dict(zip(CASES, expected))
    assert by_text["前面路口交通管制，绕行吧"] == [] and by_text["打击非法集资"] == []
    assert [(s.text, s.view) for s in by_text["有没有人约泡"]] == [("约泡", "pinyin")]
    assert [(s.text, s.term) for s in by_text["他媽的煩死了"]] == [("他媽的", "他妈的")]
    for size in (1, 2, 3, 512):
        got = list(default.scan(CASES, chunk_size=size))
        assert got == expected, size
    for text, spans in zip(CASES, expected):
        assert all(text[s.start:s.end] == s.text for s in spans)


def test_scan_applies_user_rules_like_match_many(custom):
    texts = ["前面路口交通管制", "他喜欢口交", "打击非法集资", "粉丝集资应援", "有没有人约泡", "女装店周末打折",
             "穿女装约炮"]
    got = list(custom.scan(iter(texts), chunk_size=3))
    assert got == custom.match_many(texts)
    assert [[s.term for s in r] for r in got] == [[], ["口交"], [], ["集资"], ["约炮"], [], ["女装", "约炮"]]


def test_scan_spans_are_ordinary_spans(default):
    (spans,) = list(default.scan(["你是個傻逼吧"]))
    (plain,) = default.match_many(["你是個傻逼吧"])
    s = spans[0]
    assert type(s) is Span and s == plain[0] and hash(s) == hash(plain[0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.start = 0  # type: ignore[misc]


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="workers need fork")
def test_two_workers_give_the_same_spans_in_input_order(default):
    rng = random.Random(4)
    texts = [rng.choice(CASES) + rng.choice(["", "，哈哈", " 第二条"]) for _ in range(300)]
    expected = default.match_many(texts)
    assert sum(map(len, expected)) > 100
    assert list(default.scan(texts, workers=2, chunk_size=7)) == expected
    assert list(default.scan(texts, workers=3, chunk_size=11)) == expected
    # chunks larger than one normalize_batch call, one of them matched by this process in pieces
    many = texts * 6
    assert list(default.scan(many, workers=2, chunk_size=600)) == default.match_many(many)
    assert list(default.scan(texts, workers=2)) == list(default.scan(texts, workers=1)) == expected
    assert list(default.scan([], workers=2)) == []
    it = default.scan(texts, workers=2, chunk_size=5)  # a consumer that stops early: closing ends the workers
    assert next(it) == expected[0]
    it.close()


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_non_str_item_is_named_after_the_earlier_chunks(default, workers):
    if workers > 1 and "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("workers need fork")
    texts = ["傻逼", "好", "他妈的", "打投", "集资", b"\xe5\x82\xbb", "垃圾"]
    got = []
    with pytest.raises(TypeError, match=r"got bytes \(item 5\)"):
        got.extend(default.scan(texts, chunk_size=2, workers=workers))
    assert got == default.match_many(texts[:4])  # the chunks before the bad one's, none of its own


def test_empty_input_and_bad_arguments(default):
    assert list(default.scan([])) == []
    assert list(default.scan(iter(()))) == []
    assert list(default.scan([""])) == [[]]
    with pytest.raises(TypeError, match="iterable of str"):
        list(default.scan("傻逼"))
    with pytest.raises(ValueError, match="chunk_size"):
        list(default.scan(["傻逼"], chunk_size=0))
    with pytest.raises(ValueError, match="workers"):
        list(default.scan(["傻逼"], workers=0))


def test_chunk_boundaries_keep_every_text_whole(default):
    # the same hit at the first and last position of every chunk, and a text that is only a hit
    texts = ["傻逼", "前面路口交通管制", "他妈的", "", "有没有人约泡", "傻逼"] * 5
    expected = default.match_many(texts)
    for size in (1, 4, 5, 6, 29, 30, 31):
        assert list(default.scan(texts, chunk_size=size)) == expected, size
    # a chunk larger than one normalize_batch call (scan normalises 512 texts at a time)
    many = texts * 40
    assert list(default.scan(many, chunk_size=1100)) == default.match_many(many)


def test_fast_span_constructor_makes_the_same_object():
    args = (3, 5, "傻逼", "vulgar", "lexicon", "傻逼", "vu_abuse", "vulgar", "variant", 3)
    a, b = Span(*args), _new_span(*args)
    assert a == b and hash(a) == hash(b) and repr(a) == repr(b) and a.to_dict() == b.to_dict()
    assert list(vars(b)) == [f.name for f in dataclasses.fields(Span)]  # every field, in declaration order
    assert vars(a) == vars(b)
    assert pickle.loads(pickle.dumps(b)) == a
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.text = "x"  # type: ignore[misc]
    assert _new_span(0, 1, "x", "rumor", "model", score=0.5) == Span(0, 1, "x", "rumor", "model", score=0.5)



def test_text_view_wins_over_a_pinyin_hit_at_the_same_place():
    # 约泡 and 约炮 sound alike: where one is written, its text-view hit makes the pinyin-view hit of the other
    # (same category) redundant; of a homophone of both (约跑), one pinyin hit per category is kept
    same = LexiconMatcher({"v": [Term("约炮", "vulgar", "vu_sexual"), Term("约泡", "vulgar", "vu_sexual"),
                                 Term("智障", "fanquan", "fq_war")]})
    texts = ["有没有人约泡", "有没有人约炮", "有人约跑吗，你是智樟吗"]
    got = list(same.scan(texts))
    assert got == same.match_many(texts)
    assert [[(s.text, s.term, s.view) for s in r] for r in got] == [
        [("约泡", "约泡", "text")], [("约炮", "约炮", "text")], [("约跑", "约炮", "pinyin"), ("智樟", "智障", "pinyin")]]
    # in another category the pinyin hit stays
    other = LexiconMatcher({"v": [Term("约炮", "vulgar", "vu_sexual")], "w": [Term("约泡", "fanquan", "fq_war")]})
    got = list(other.scan(texts[:2]))
    assert got == other.match_many(texts[:2])
    assert [[(s.term, s.view) for s in r] for r in got] == [[("约泡", "text"), ("约炮", "pinyin")],
                                                           [("约泡", "pinyin"), ("约炮", "text")]]
