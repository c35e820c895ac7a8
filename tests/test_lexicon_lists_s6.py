"""Bundled-list follow-ups of session 6 (issue 4's known limits): 月炮 and 草泥马 after a verb of seeing."""
from __future__ import annotations

import pytest

from qinglang_nlp.decide import severe_hit
from qinglang_nlp.lexicon import LexiconMatcher


@pytest.fixture(scope="module")
def matcher() -> LexiconMatcher:
    return LexiconMatcher.default().build()


@pytest.mark.parametrize("text", ["月炮吗", "今晚月炮不", "有没有人月炮"])
def test_yuepao_homophone_forces_review(matcher: LexiconMatcher, text: str) -> None:
    spans = [s for s in matcher.match(text) if s.category == "vulgar"]
    assert any(severe_hit(s) for s in spans), spans
    hit = next(s for s in spans if severe_hit(s))
    assert text[hit.start:hit.end] == "月炮" and hit.view == "text"


@pytest.mark.parametrize("text", ["十月炮火连天", "一月炮声隆隆"])
def test_yuepao_allowed_in_artillery(matcher: LexiconMatcher, text: str) -> None:
    assert not any(s.term == "月炮" for s in matcher.match(text))


def test_pinyin_only_collision_still_evidence_only(matcher: LexiconMatcher) -> None:
    spans = matcher.match("他越跑越快")
    assert spans and not any(severe_hit(s) for s in spans)


@pytest.mark.parametrize("text", ["我在草原看到草泥马", "家里养了草泥马", "我看见草泥马了"])
def test_alpaca_after_seeing_or_keeping_is_allowed(matcher: LexiconMatcher, text: str) -> None:
    assert not [s for s in matcher.match(text) if s.category == "vulgar"]


@pytest.mark.parametrize("text", ["你个草泥马", "草泥马的，滚"])
def test_alpaca_curse_still_hits(matcher: LexiconMatcher, text: str) -> None:
    spans = [s for s in matcher.match(text) if s.category == "vulgar" and severe_hit(s)]
    assert spans and text[spans[0].start:spans[0].end] == "草泥马"
