"""Overlapping sentence windows over long texts: coverage, limits, boundaries and offsets."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qinglang_nlp.normalize import normalize
from qinglang_nlp.windows import sentence_bounds, split_windows, token_cost

ARTICLE = (
    "【深度】某顶流明星演唱会门票一票难求，黄牛加价十倍。粉丝后援会要求每人至少购买五张专辑才能参加签售！"
    "有网友爆料称，后援会负责人私下集资超过百万元，账目从未公开。"
    "对此，多名粉丝表示担忧：“我们只是想支持偶像，不想被当成提款机。”\n"
    "记者联系了该明星的经纪公司，对方表示将调查此事；截至发稿时尚未回复。"
    "专家提醒，未成年人不应参与任何形式的集资应援活动，家长也要加强引导。"
) * 6


def _covered(n: int, windows: list[tuple[int, int]]) -> bool:
    seen = [False] * n
    for a, b in windows:
        for i in range(a, b):
            seen[i] = True
    return all(seen)


def test_short_text_is_one_window() -> None:
    assert split_windows("今天天气不错。", 100) == [(0, 7)]
    assert split_windows("", 100) == [(0, 0)]


def test_article_windows_cover_every_character_and_respect_the_limit() -> None:
    windows = split_windows(ARTICLE, 120, overlap=30)
    assert len(windows) > 5
    assert _covered(len(ARTICLE), windows)
    assert all(b - a <= 120 for a, b in windows)
    # windows are ordered, overlap their neighbour and make progress
    for (a1, b1), (a2, b2) in zip(windows, windows[1:]):
        assert a1 < a2 <= b1 < b2


def test_windows_cut_on_sentence_boundaries() -> None:
    bounds = set(sentence_bounds(ARTICLE)) | {0}
    for a, b in split_windows(ARTICLE, 120, overlap=30):
        assert a in bounds and b in bounds, ARTICLE[a:b]


def test_closing_quote_stays_with_its_sentence() -> None:
    text = "他说：“我们只是想支持偶像。”然后走了。"
    assert sentence_bounds(text) == [text.index("”") + 1, len(text)]


def test_sentence_longer_than_a_window_is_cut_at_commas() -> None:
    text = "这是一个没有句号的很长的句子，" * 20
    windows = split_windows(text, 40, overlap=10)
    assert _covered(len(text), windows)
    assert all(b - a <= 40 for a, b in windows)
    assert all(text[b - 1] == "，" for _, b in windows)


def test_token_cost_counts_tokens_starting_in_span() -> None:
    starts = [0, 2, 3, 7, 9]
    cost = token_cost(starts)
    assert cost(0, 10) == 5 and cost(2, 7) == 2 and cost(4, 7) == 0
    text = "一二三四五六七八九十"
    windows = split_windows(text, 2, cost=cost)
    assert _covered(len(text), windows)
    assert all(cost(a, b) <= 2 for a, b in windows)


def test_evidence_maps_back_to_original_offsets() -> None:
    original = "ＡＢＣ饭圈新闻：后援会又在集资了！！\n" + "粉丝们，冲冲冲，给哥哥打投。" * 10 + "全是谣言，别信。"
    norm = normalize(original)
    windows = split_windows(norm.text, 30, overlap=8)
    assert _covered(len(norm.text), windows)
    for a, b in windows:
        oa, ob = norm.to_original(a, b)
        # full-width letters normalise one-to-one here, so the mapped slice normalises back to the window
        assert normalize(original[oa:ob]).text == norm.text[a:b]
    last_a, last_b = windows[-1]
    oa, ob = norm.to_original(last_a, last_b)
    assert original[oa:ob].endswith("全是谣言，别信。")


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="max_cost"):
        split_windows("文本", 0)
    with pytest.raises(ValueError, match="overlap"):
        split_windows("文本", 10, overlap=10)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="饭圈谣言低俗。！？，\n ab", max_size=400), st.integers(4, 60), st.integers(0, 30))
def test_windows_always_cover_and_fit(text: str, max_cost: int, overlap: int) -> None:
    overlap = min(overlap, max_cost - 1)
    windows = split_windows(text, max_cost, overlap)
    assert _covered(len(text), windows)
    assert all(0 <= a < b <= len(text) for a, b in windows) or windows == [(0, 0)]
    assert all(b - a <= max_cost for a, b in windows)
    assert windows == sorted(windows)
