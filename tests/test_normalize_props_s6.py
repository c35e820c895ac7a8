"""Session-6 regressions found by running the hypothesis property tests in explore mode
(QINGLANG_HYPOTHESIS=explore, fresh seeds, more examples). Each case failed on the code before its fix."""
from __future__ import annotations

import pytest

from qinglang_nlp.normalize import normalize, normalize_batch


def _view(n) -> list[tuple]:
    return [(p.kind, p.value, p.orig_start, p.orig_end) for p in n.parts if p.kind != "emoji"]


# ---- an abbreviation that starts in a mention's name must not join the name to the text after it -------------
# "@n m s l傻": the mention is "@n" (the space ends its name); the abbreviations step read "n m s l" across that
# end and wrote "@你妈死了傻", which the next pass read as the mention "@你妈死了傻" (the parts were not idempotent).

@pytest.mark.parametrize(("raw", "want", "mention"), [
    ("@n m s l傻", "@n m s l傻", ("mention", "@n", 0, 2)),  # the fix: the spelling across the name's end is kept
    ("@n*m*s*l傻", "@n*m*s*l傻", ("mention", "@n", 0, 2)),
    ("@sha bi傻", "@sha bi傻", ("mention", "@sha", 0, 4)),
    ("@n m s l-1", "@n m s l-1", ("mention", "@n", 0, 2)),  # "-" continues a name too
    # unchanged: nothing after the expansion continues the name
    ("@n m s l", "@你妈死了", ("mention", "@你妈死了", 0, 2)),
    ("@sha bi 你好", "@傻逼 你好", ("mention", "@傻逼", 0, 4)),
    ("@sha bi*你好", "@傻逼*你好", ("mention", "@傻逼", 0, 4)),
    # unchanged: the expansion is inside the name, or after it
    ("@nmsl傻", "@你妈死了傻", ("mention", "@你妈死了傻", 0, 6)),
    ("@小明 n m s l傻", "@小明 你妈死了傻", ("mention", "@小明", 0, 3)),
])
def test_abbreviation_does_not_join_a_mention_to_the_text_after_it(raw: str, want: str, mention: tuple) -> None:
    once = normalize(raw)
    assert once.text == want
    assert _view(once) == [mention]
    twice = normalize(once.text)
    assert twice.text == once.text
    assert [v[:2] for v in _view(twice)] == [v[:2] for v in _view(once)]
    assert normalize_batch(["你好", raw, "@小明 你好"])[1].text == want


# ---- financial numerals right after a URL are not turned into digits the URL would then take ---------------------
# "www.a.com壹贰" became "www.a.com12" with the URL "www.a.com"; the next pass read the URL "www.a.com12". The URL
# body is ASCII, so before the fix any digits the numerals step wrote right after a URL (or after URL characters
# such as "@" or "," that follow it) joined the URL on the next pass.

@pytest.mark.parametrize(("raw", "want", "parts"), [
    ("www.a.com壹贰", "www.a.com壹贰", [("url", "www.a.com")]),  # the fix: the numerals stay
    ("http://t.cn/x壹①", "http://t.cn/x壹1", [("url", "http://t.cn/x")]),
    ("http://t.cn/A6sb@壹①", "http://t.cn/a6sb@壹1", [("url", "http://t.cn/a6sb"), ("mention", "@壹1")]),
    ("http://t.cn/x，壹贰", "http://t.cn/x,壹贰", [("url", "http://t.cn/x")]),  # "，" becomes "," (a URL character)
    # unchanged: something that is no URL character lies between, or no URL before
    ("http://t.cn/x 壹1", "http://t.cn/x 11", [("url", "http://t.cn/x")]),
    ("http://t.cn/x看壹贰", "http://t.cn/x看12", [("url", "http://t.cn/x")]),
    ("@小明壹贰", "@小明12", [("mention", "@小明12")]),
    ("#话题#壹贰", "#话题#12", [("topic", "#话题#")]),
    ("集资壹贰叁万", "集资123万", []),
])
def test_numerals_after_a_url_do_not_extend_it(raw: str, want: str, parts: list) -> None:
    once = normalize(raw)
    assert once.text == want
    assert [(p.kind, p.value) for p in once.parts] == parts
    twice = normalize(once.text)
    assert twice.text == want
    assert [(p.kind, p.value) for p in twice.parts] == parts
    assert normalize_batch(["你好" * 40, raw, "@小明 你好"])[1].text == want  # a long chunk: the columnar parts
