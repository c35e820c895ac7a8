"""Moderation fails closed on HTML openers that are never closed (session 7).

A Weibo comment is plain text, but the html step read ``<!--``, ``<script>``, ``<style>``, ``<noscript>``, ``<svg>``
(or an unclosed ``<head>`` with no title) as the start of a block running to the end of the text: a user who wrote
``<!--你这个傻逼`` or ``＜script＞你这个傻逼`` (full width, folded to ASCII by the unicode step) got the empty string,
and the comment passed. Such an opener now removes only itself. Each case here failed before the fix; blocks that
are closed are still dropped whole (checked against the old regexes in test_batch_review_s7.py).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import qinglang_nlp as ql
from qinglang_nlp.batch import read_scored, score_file
from qinglang_nlp.html import clean_html
from qinglang_nlp.normalize import normalize, normalize_batch

# (raw comment, what normalize makes of it): before the fix each one became "" (or, for the heads, the title alone)
CASES = [
    ("<!--你这个傻逼，滚远点", "你这个傻逼,滚远点"),
    ("<script>你这个傻逼，滚远点", "你这个傻逼,滚远点"),
    ("＜script＞你这个傻逼，滚远点", "你这个傻逼,滚远点"),
    ("＜！－－你这个傻逼，滚远点", "你这个傻逼,滚远点"),
    ("<style>你这个傻逼，滚远点", "你这个傻逼,滚远点"),
    ("<noscript>你这个傻逼，滚远点", "你这个傻逼,滚远点"),
    ("<svg width=\"10\">你这个傻逼，滚远点", "你这个傻逼,滚远点"),
    ("<head>你这个傻逼，滚远点", "你这个傻逼,滚远点"),
    # what follows the opener is read as usual: tags, entities (傻逼 written as &#20667;&#36924;)
    ("<!--你这个&#20667;&#36924;，<b>滚远点</b>", "你这个傻逼,滚远点"),
    ("<script type=\"text/javascript\">你这个<i>傻逼</i>&nbsp;滚远点", "你这个傻逼滚远点"),
    # a closed block before the unclosed opener is still dropped whole
    ("<script>var a = 1;</script>哥哥最棒<!--你这个傻逼，滚远点", "哥哥最棒你这个傻逼,滚远点"),
    ("<!-- 注释 -->哥哥最棒<style>你这个傻逼，滚远点", "哥哥最棒你这个傻逼,滚远点"),
    # a head cut short: its title and the text after it stay (before: the title alone)
    ("<head><title>本周榜单</title>你这个傻逼，滚远点", "本周榜单\n你这个傻逼,滚远点"),
]


@pytest.mark.parametrize("raw,want", CASES)
def test_an_unclosed_opener_removes_only_itself(raw, want):
    n = normalize(raw)
    assert n.text == want
    assert normalize(n.text).text == n.text  # idempotent
    assert [x.text for x in normalize_batch([raw, "晚饭吃了面条", raw])] == [want, "晚饭吃了面条", want]
    # the insult maps back to where it is in the original
    i = n.text.index("傻逼")
    s, e = n.to_original(i, i + 2)
    assert raw[s:e] in ("傻逼", "&#20667;&#36924;")


@pytest.mark.parametrize("raw", [c[0] for c in CASES])
def test_an_unclosed_opener_does_not_let_an_insult_pass(tiny_model_dir, raw):
    m = ql.load(tiny_model_dir)  # with the bundled lexicon: evidence spans
    r = m.predict(raw)
    assert r.decision != "pass"
    assert [ev.text for ev in r.evidence] == ["傻逼"] or [ev.text for ev in r.evidence] == ["&#20667;&#36924;"]
    for ev in r.evidence:
        assert raw[ev.start:ev.end] == ev.text


def test_clean_html_keeps_the_text_after_an_unclosed_opener():
    """clean_html (the batch job's content cleaning) follows the same rule, with offsets into the raw HTML."""
    page = "<div><p>姐妹们今天打投</p><!--哥哥的黑粉都是傻逼</div>"
    out = clean_html(page)
    assert out.text == "姐妹们今天打投\n哥哥的黑粉都是傻逼"
    i = out.text.index("傻逼")
    assert page[slice(*out.to_original(i, i + 2))] == "傻逼"


def test_batch_content_with_an_unclosed_opener_is_scored(tiny_model_dir, tmp_path):
    m = ql.load(tiny_model_dir)
    rows = [{"id": "wb-1", "content": "<script>你这个傻逼，滚远点"}, {"id": "wb-2", "content": "<!--你这个傻逼，滚远点"},
            {"id": "wb-3", "content": "<p>晚饭吃了面条</p><svg>你这个傻逼，滚远点"}]
    inp = Path(tmp_path / "posts.jsonl")
    inp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    score_file(m, inp, tmp_path / "scored.jsonl", keep_text=True)
    got = list(read_scored(tmp_path / "scored.jsonl"))
    assert [r["text"] for r in got] == ["你这个傻逼，滚远点", "你这个傻逼，滚远点", "晚饭吃了面条\n你这个傻逼，滚远点"]
    assert all(r["decision"] != "pass" and [e["text"] for e in r["evidence"]] == ["傻逼"] for r in got)
