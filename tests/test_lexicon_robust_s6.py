"""Session-6 review follow-ups: lone surrogates reach the automaton safely; texts picked from many batches map
their hits like texts matched one by one."""
from __future__ import annotations

import pytest

from qinglang_nlp.lexicon import LexiconMatcher, Term
from qinglang_nlp.normalize import normalize_batch

LISTS = {"mine": [Term("傻逼", "vulgar", severity=3), Term("打投", "fanquan", severity=1)]}


@pytest.mark.parametrize("backend", ["rs", "py"])
@pytest.mark.parametrize("pinyin", [False, True])
def test_lone_surrogate_does_not_stop_matching(backend: str, pinyin: bool) -> None:
    m = LexiconMatcher(LISTS, pinyin=pinyin, backend=backend).build()
    text = "傻逼\ud83d你个傻逼"  # half an emoji, as a crawler may cut it
    spans = m.match(text)
    assert [(s.start, s.end, text[s.start:s.end]) for s in spans] == [(0, 2, "傻逼"), (5, 7, "傻逼")]
    assert [len(x) for x in m.match_many(["打投", text, "\udc00"])] == [1, 2, 0]
    assert [len(x) for x in m.scan(["打投", text, "\udc00"])] == [1, 2, 0]


def test_texts_from_many_batches_map_like_single_texts() -> None:
    m = LexiconMatcher(LISTS, pinyin=False).build()
    base = ["今天天气不错", "你个傻逼😡😡", "姐妹们打投冲鸭", "<b>傻逼</b>", "繁體的傻逼", "正常评论"]
    batches = [normalize_batch([f"{t}{k}" * (1 + k % 3) for t in base] * 40) for k in range(12)]
    picked = [b[j] for b in batches for j in range(0, len(b), 17)]  # few texts from each of many large chunks
    got = m.match_many(picked)
    want = [m.match(n.original) for n in picked]
    assert got == want
    assert sum(map(len, got)) > 0
    for n, spans in zip(picked, got):
        for s in spans:
            assert n.original[s.start:s.end] == s.text
