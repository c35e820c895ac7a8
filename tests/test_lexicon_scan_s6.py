"""Tests of the lexicon's bulk paths (session 6): hits mapped to the original text for a whole batch at once
(``normalize._to_original_many``), nesting dropped for many texts at once (``lexicon._not_nested``), and the
spans of ``match_many``/``scan`` equal to matching each text on its own."""
from __future__ import annotations

import multiprocessing
import random

import numpy as np
import pytest

from qinglang_nlp import lexicon
from qinglang_nlp.lexicon import LexiconMatcher, Term, _drop_nested, _not_nested
from qinglang_nlp.normalize import Normalized, _to_original_many, normalize, normalize_batch

# Real comments whose normalised text differs from the original in length and place: traditional script,
# full-width letters, collapsed repeats, emoji, invisible characters, spaced-out words, an "@" inside a word
# (normalised again on its own), HTML and the batch separator's private-use character (both normalised alone).
TEXTS = [
    "他媽的煩死了！！！！！！",
    "ＳＢ东西，煞笔吧你😅😅😅😅",
    "你\u200b是\u200b傻\u200b逼",
    "傻 逼 玩 意 儿",
    "哈哈哈哈哈哈哈哈哈哈哈哈，笑死我了",
    "@小明 你是沙@比吗",
    "<p>他妈的</p>不看了",
    "分隔\U0010fffd符号里的草泥马",
    "今天天气不错，适合出去走走。",
    "",
    "姐妹们快去打投！控评组集合，别让对家粉丝带节奏",
    "nmsl，NMSL，ｎｍｓｌ",
    "#超话# [允悲] 真的服了这个ｃａｏ",
]


def all_spans(n: Normalized) -> list[tuple[int, int]]:
    return [(s, e) for s in range(len(n.text)) for e in range(s + 1, len(n.text) + 1)]


def bulk(normed: list[Normalized]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Every non-empty span of every text, mapped one by one and in bulk."""
    which, starts, ends, expected = [], [], [], []
    for i, n in enumerate(normed):
        for s, e in all_spans(n):
            which.append(i)
            starts.append(s)
            ends.append(e)
            expected.append(n.to_original(s, e))
    a = np.array
    o_s, o_e = _to_original_many(normed, a(which, dtype=np.int64), a(starts, dtype=np.int64), a(ends, dtype=np.int64))
    return expected, list(zip(o_s.tolist(), o_e.tolist()))


def test_bulk_mapping_of_one_batch_chunk():
    normed = normalize_batch((TEXTS[:5] + TEXTS[8:]) * 3)  # one chunk, in order: the usual case
    assert len({id(n._chunk) for n in normed}) == 1
    assert any(len(n.text) != len(n.original) for n in normed)  # the mapping is not the identity here
    expected, got = bulk(normed)
    assert got == expected


def test_bulk_mapping_of_texts_normalised_alone_and_by_hand():
    normed = normalize_batch(TEXTS)
    # the HTML text, the one with the separator character and the "@" one were normalised on their own
    assert len({id(n._chunk) for n in normed}) > 2
    assert normed[0].text.startswith("他妈的") and normed[0].original.startswith("他媽的")
    hand = Normalized("ＡＢ傻逼", "ab傻逼", [(0, 1), (1, 2), (2, 3), (3, 4)])
    same = Normalized("没有变化", "没有变化")  # identity alignment
    mixed = [normed[5], hand, normed[0], same, normalize("傻   逼😅😅😅😅"), normed[6], normed[7], normed[0]]
    for batch in (normed, mixed, normed[::-1]):
        expected, got = bulk(batch)
        assert got == expected


def test_bulk_mapping_of_a_subclass_asks_the_subclass():
    class Shifted(Normalized):
        __slots__ = ()

        def to_original(self, start: int, end: int) -> tuple[int, int]:
            return start + 1, end + 1

    n = Shifted("x他妈的", "他妈的", [(1, 2), (2, 3), (3, 4)])
    o_s, o_e = _to_original_many([n], np.zeros(1, dtype=np.int64), np.array([0]), np.array([2]))
    assert (o_s.tolist(), o_e.tolist()) == ([1], [3])


@pytest.mark.parametrize("limit", [1 << 62, 0])  # 0: the Python walk kept for hits whose codes would overflow
def test_bulk_nesting_equals_drop_nested(monkeypatch, limit):
    monkeypatch.setattr(lexicon, "_NEST_LIMIT", limit)
    rng = random.Random(6)
    for _ in range(300):
        hits, texts, cats = [], [], []
        for _ in range(rng.randint(1, 30)):
            s = rng.randint(0, 12)
            e = s + rng.randint(1, 6)
            t, c = rng.randint(0, 3), rng.randint(0, 1)
            hits.append((s, e, c, t))
        texts = [h[3] for h in hits]
        cats = [h[2] for h in hits]

        class Entry:  # what _drop_nested reads: entry.term.category
            def __init__(self, c: int):
                self.term = type("T", (), {"category": "vulgar" if c else "fanquan"})()

        entries = [Entry(c) for c in cats]
        expected = []
        for t in sorted(set(texts)):
            mine = [(h[0], h[1], entries[j], j) for j, h in enumerate(hits) if h[3] == t]
            expected += [h[3] for h in _drop_nested(mine)]
        a = np.array
        got = _not_nested(a(texts, dtype=np.int64), a(cats, dtype=np.int64), a([h[0] for h in hits], dtype=np.int64),
                          a([h[1] for h in hits], dtype=np.int64))
        assert got.tolist() == expected, hits


@pytest.fixture(scope="module")
def nested() -> LexiconMatcher:
    """Plain terms that nest and overlap, in two categories and two lists (the bulk path), and one rule term."""
    return LexiconMatcher({
        "a": [Term("开盒", "vulgar"), Term("被开盒", "vulgar"), Term("他妈的", "vulgar"), Term("他妈", "vulgar"),
              Term("傻逼", "vulgar"), Term("打投", "fanquan"), Term("控评", "fanquan"), Term("集资", "fanquan")],
        "b": [Term("傻逼", "vulgar"), Term("妈的", "fanquan"), Term("女装", "vulgar", context_window=3)],
    }, pinyin=False).build()


def test_batch_spans_equal_one_text_at_a_time(nested):
    texts = TEXTS + ["她被开盒了，他妈的", "打投控评集资一条龙", "女装大佬傻逼"]
    one_by_one = [nested.match(t) for t in texts]
    assert nested.match_many(texts) == one_by_one
    assert list(nested.scan(texts, chunk_size=4)) == one_by_one
    spans = nested.match("她被开盒了，他妈的")
    assert [(s.start, s.end, s.text, s.category, s.list_name) for s in spans] == [
        (1, 4, "被开盒", "vulgar", "a"), (6, 9, "他妈的", "vulgar", "a"), (7, 9, "妈的", "fanquan", "b")]
    # on the original, through traditional script and collapsed repeats
    spans = nested.match("他媽的煩死了！！！！！！")
    assert [(s.start, s.end, s.text, s.view) for s in spans] == [(0, 3, "他媽的", "variant"), (1, 3, "媽的", "variant")]
    sb = nested.match("你\u200b是\u200b傻\u200b逼")
    assert [(s.start, s.end, s.text, s.list_name) for s in sb] == [(4, 7, "傻\u200b逼", "a"), (4, 7, "傻\u200b逼", "b")]


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="workers need fork")
def test_helpers_send_numbers_that_name_the_same_entries():
    """A helper sends each span as numbers (text, start, end, the entry's id, view); the spans rebuilt here from
    them are those of matching here, for entries of the base lists and of later edits (the delta index), in the
    text, variant and pinyin views."""
    m = LexiconMatcher({"a": [Term("傻逼", "vulgar"), Term("约炮", "vulgar"), Term("开盒", "vulgar")]}).build()
    m.add_term("打投", category="fanquan", list_name="edits")  # after build: in the delta index
    m.add_term("他妈的", category="vulgar", list_name="edits")
    texts = (TEXTS + ["有没有人约泡", "她被开盒了，他妈的", "姐妹们快去打投"]) * 5
    expected = m.match_many(texts)
    assert {"text", "variant", "pinyin"} <= {s.view for r in expected for s in r}
    assert {"a", "edits"} <= {s.list_name for r in expected for s in r}
    assert list(m.scan(texts, workers=2, chunk_size=3)) == expected
