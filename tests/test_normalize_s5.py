"""Session-5 normalisation fixes: runs of one character made after the repeats step (sb逼逼逼), and "@" inside an
insult (你是傻@逼). Each case failed on the code before the fix (commit 2bfce54)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qinglang_nlp.normalize import normalize, normalize_batch

# ---- runs made by the steps after ``repeats`` are collapsed too (normalising twice changes nothing) ----------
# The repeats step runs before the emoji, abbreviations and homophones steps; each of those can lengthen a run
# (sb逼逼逼 -> 傻逼逼逼逼), which a second pass then collapsed: normalize(normalize(x).text).text != normalize(x).text.
# Before the fix, 502 of 1,264 generated "spelling next to a run of its own character" strings were not idempotent.

_LATER_RUNS = [
    ("sb逼逼逼", "傻逼逼逼"),  # abbreviation expanded after the collapse
    ("sb*逼逼逼", "傻逼逼逼"),  # ... and the noise around the expansion removed
    ("哈哈sb逼逼逼逼逼", "哈哈傻逼逼逼"),
    ("傻傻傻 sb", "傻傻傻逼"),  # the run is on the left of the expansion
    ("你你你nmsl", "你你你妈死了"),
    ("cnm妈妈妈", "操你妈妈妈"),
    ("tmd的的的", "他妈的的的"),
    ("沙比逼逼逼", "傻逼逼逼"),  # homophone replaced after the collapse
    ("煞笔逼逼逼", "傻逼逼逼"),
    ("🤡丑丑丑", "🤡小丑丑丑"),  # the emoji's word added after the collapse
    ("🍋檬檬檬", "🍋柠檬檬檬"),
]


@pytest.mark.parametrize(("raw", "want"), _LATER_RUNS)
def test_runs_made_after_the_repeats_step_are_collapsed(raw: str, want: str) -> None:
    once = normalize(raw)
    assert once.text == want
    assert normalize(want).text == want
    assert normalize_batch([raw, "你好", raw])[2].text == want  # the batch path agrees


def test_collapsed_run_records_the_whole_original_run() -> None:
    # one record for the run, counting the characters both collapses dropped, its span covering the spelling
    n = normalize("sb逼逼逼逼逼")
    assert n.text == "傻逼逼逼"
    assert [(r.char, r.count, r.orig_start, r.orig_end) for r in n.repeats] == [("逼", 6, 0, 7)]
    assert n.to_original(1, 4) == (0, 7)
    n = normalize("沙比逼逼逼")
    assert [(r.char, r.count, r.orig_start, r.orig_end) for r in n.repeats] == [("逼", 4, 1, 5)]
    assert n.to_original(0, 2) == (0, 2)


def test_ordinary_runs_are_left_as_before() -> None:
    assert normalize("🍺酒酒酒酒").text == "🍺啤酒酒酒"  # the run the word makes is collapsed with the one after it
    assert normalize("sb比比比").text == "傻逼比比比"  # 比 is not 逼: no run
    assert normalize("nmsl死死死").text == "你妈死了死死死"  # 了 breaks the run
    assert normalize("哈哈哈哈哈sb").text == "哈哈哈傻逼"
    assert normalize("🐶狗狗狗").text == "🐶狗狗狗"  # already followed by its word: nothing added


# spellings that later steps rewrite, next to runs of one character (the shape of the bug), with some noise
_RUNNY = st.lists(st.one_of(
    st.sampled_from(["sb", "SB", "nmsl", "cnm", "tmd", "nmb", "沙比", "煞笔", "🤡", "🐶", " ", "*", "哈"]),
    st.tuples(st.sampled_from("逼妈的傻你操死了丑狗哈"), st.integers(1, 5)).map(lambda ck: ck[0] * ck[1])),
    max_size=8).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_RUNNY)
def test_property_runs_and_expansions_are_idempotent(t: str) -> None:
    once = normalize(t).text
    assert normalize(once).text == once
