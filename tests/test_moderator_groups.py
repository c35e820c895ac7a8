"""``predict_batch`` scores length-grouped batches and returns results in input order; ``pipe`` keeps input order."""
from __future__ import annotations

import pytest

import qinglang_nlp as ql

TEXTS = ["你这个傻逼，滚远点", "今天天气很好。" * 30, "集资", "黑粉都给我爬，刷榜打投冲冲冲", "", "网传地震，转发扩散！" * 5,
         "好", "哥哥的生日应援不能输给对家！" * 3]


def test_predict_batch_is_in_input_order_and_equals_one_at_a_time(tiny_model_dir):
    m = ql.load(tiny_model_dir)
    one = [m.predict(t) for t in TEXTS]
    for bs in (1, 2, 3, 64):
        got = m.predict_batch(TEXTS, batch_size=bs)
        assert [r.scores for r in got] == [r.scores for r in one]
        assert [r.evidence for r in got] == [r.evidence for r in one]
    assert [r.scores for r in m.pipe(TEXTS, batch_size=3)] == [r.scores for r in one]


def test_predict_batch_groups_by_length_with_titles(tiny_model_dir):
    m = ql.load(tiny_model_dir)
    titles = [None, "【独家】某顶流塌房", "", "对家又在控评", None, "辟谣", "x", None]
    one = [m.predict(t, title=ti) for t, ti in zip(TEXTS, titles)]
    got = m.predict_batch(TEXTS, batch_size=2, titles=titles)
    assert [r.scores for r in got] == [r.scores for r in one]
    assert [r.evidence for r in got] == [r.evidence for r in one]


def test_errors_name_the_input_index_not_the_sorted_one(tiny_model_dir):
    m = ql.load(tiny_model_dir)
    with pytest.raises(TypeError, match="item 5"):
        m.predict_batch([*TEXTS[:5], None, *TEXTS[5:]], batch_size=2)
    with pytest.raises(ValueError, match="item 1"):
        m.predict_batch(["短", "很长很长的一段话" * 20 + "\x00"], batch_size=1)
    with pytest.raises(ValueError, match="batch_size"):
        m.predict_batch(TEXTS, batch_size=0)
    assert m.predict_batch([]) == []
