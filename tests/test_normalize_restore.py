"""The ``restore`` normalisation step: context-aware homophone / pinyin restoration wired into normalize."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qinglang_nlp.normalize import STEP_ORDER, NormalizeConfig, explain, normalize, normalize_batch
from qinglang_nlp.restore import LM_PATH

pytestmark = pytest.mark.skipif(not LM_PATH.is_file(), reason=f"shipped character LM missing: {LM_PATH}")

ON = NormalizeConfig(restore=True)
TEXTS = ["你真是个沙比，jintian别来了", "今天天气很好，适合出去走走。", "@张三 你是shabi吗 http://a.cn/shabi",
         "她长得真漂凉", "哥哥的新歌太好听了", "", "ＳＢ 傻*逼"]


def test_off_by_default_and_last_in_order():
    assert NormalizeConfig().restore is False and STEP_ORDER[-1] == "restore"
    assert normalize("她长得真漂凉").text == "她长得真漂凉"


def test_restores_in_context_and_points_at_the_users_spelling():
    n = normalize("你真是个沙比，jintian别来了", ON)
    assert n.text == "你真是个傻逼,今天别来了"
    i = n.text.index("傻逼")
    assert n.original[slice(*n.to_original(i, i + 2))] == "沙比"
    j = n.text.index("今天")
    assert n.original[slice(*n.to_original(j, j + 2))] == "jintian"
    assert normalize("她长得真漂凉", ON).text == "她长得真漂亮"


def test_clean_text_and_protected_parts_are_left_alone():
    assert normalize("今天天气很好，适合出去走走。", ON).text == normalize("今天天气很好，适合出去走走。").text
    n = normalize("@张三 你是shabi吗 http://a.cn/shabi", ON)
    assert "http://a.cn/shabi" in n.text and "傻逼" in n.text


def test_batch_equals_one_by_one_and_is_idempotent():
    batch = normalize_batch(TEXTS, ON)
    for t, b in zip(TEXTS, batch):
        one = normalize(t, ON)
        assert b.text == one.text and b.alignments == one.alignments
        assert normalize(one.text, ON).text == one.text


def test_explain_names_the_step():
    steps = {e["step"]: e for e in explain("她长得真漂凉", ON)}
    assert steps["restore"]["changed"] and steps["restore"]["changes"][0]["original"] == "凉"


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("你我他是沙比傻逼漂凉亮今天jintashbi ，。@#http:/")), max_size=30))
def test_never_raises_spans_inside_and_idempotent(text):
    n = normalize(text, ON)
    for s, e in n.alignments:
        assert 0 <= s <= e <= len(text)
    assert normalize(n.text, ON).text == n.text
