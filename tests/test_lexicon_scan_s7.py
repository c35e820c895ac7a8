"""scan() with helpers, session 7: a list is sent to the helpers as bounds in an inherited copy (other iterables
as pickled chunks), a list changed during the scan is read as it was when the scan started, and the garbage
collector is paused only while scan itself works, never while the caller holds a chunk's spans."""
from __future__ import annotations

import gc
import multiprocessing
import random

import pytest

from qinglang_nlp.lexicon import LexiconMatcher

needs_fork = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="workers need fork")

CASES = ["姐妹们快去打投！控评组集合", "前面路口交通管制，绕行吧", "他喜欢口交", "有没有人约泡", "他媽的煩死了",
         "今天天气不错，适合出去走走。", "", "你就是个垃圾，沙比 nmsl", "理性追星，拒绝集资"]


@pytest.fixture(scope="module")
def m() -> LexiconMatcher:
    return LexiconMatcher.default().build()


@pytest.fixture(scope="module")
def texts() -> list[str]:
    rng = random.Random(7)
    return [rng.choice(CASES) + rng.choice(["", "，哈哈", " 第二条"]) for _ in range(200)]


@needs_fork
@pytest.mark.parametrize("workers", [2, 3])
def test_every_kind_of_input_gives_the_spans_of_match_many(m, texts, workers):
    expected = m.match_many(texts)
    assert sum(map(len, expected)) > 50
    assert list(m.scan(texts, workers=workers, chunk_size=9)) == expected  # list: bounds sent
    assert list(m.scan(tuple(texts), workers=workers, chunk_size=9)) == expected  # tuple: bounds sent
    assert list(m.scan(iter(texts), workers=workers, chunk_size=9)) == expected  # iterator: chunks pickled
    assert list(m.scan((t for t in texts), workers=workers, chunk_size=200)) == expected


@pytest.mark.parametrize("workers", [1, 2])
def test_a_list_changed_during_the_scan_is_read_as_it_was(m, texts, workers):
    if workers > 1 and "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("workers need fork")
    data = list(texts)
    expected = m.match_many(data)
    it = m.scan(data, workers=workers, chunk_size=5)
    got = [next(it)]
    data[100:] = ["傻逼"] * 150  # later texts replaced and more appended while the scan runs
    data[1] = "傻逼"
    got.extend(it)
    assert got == expected


@needs_fork
@pytest.mark.parametrize("caller_gc", [True, False])
def test_the_caller_holds_spans_with_its_own_collector_state(m, texts, caller_gc):
    was = gc.isenabled()
    try:
        if not caller_gc:
            gc.disable()
        else:
            gc.enable()
        seen = set()
        for _ in m.scan(texts, workers=2, chunk_size=7):
            seen.add(gc.isenabled())
        assert seen == {caller_gc}
        assert gc.isenabled() is caller_gc
        it = m.scan(texts, workers=2, chunk_size=7)  # closed early
        next(it)
        assert gc.isenabled() is caller_gc
        it.close()
        assert gc.isenabled() is caller_gc
    finally:
        gc.enable() if was else gc.disable()


@needs_fork
def test_the_collector_state_the_caller_sets_between_chunks_is_kept(m, texts):
    assert gc.isenabled()
    try:
        seen = []
        for i, _ in enumerate(m.scan(texts, workers=2, chunk_size=7)):
            seen.append(gc.isenabled())
            if i == 50:
                gc.disable()  # the caller turns it off part way: scan leaves it off from then on
        assert seen[:51] == [True] * 51 and set(seen[51:]) == {False}
        assert not gc.isenabled()
    finally:
        gc.enable()


@needs_fork
def test_an_error_mid_scan_restores_the_collector(m):
    assert gc.isenabled()
    with pytest.raises(TypeError, match=r"got int \(item 30\)"):
        list(m.scan(["傻逼"] * 30 + [3], workers=2, chunk_size=4))
    assert gc.isenabled()


@pytest.mark.parametrize("workers", [1, 2])
def test_closing_at_a_yield_leaves_the_collector_as_the_caller_has_it(m, texts, workers):
    # the caller turns the collector off while it holds spans, then stops early: closing must not turn it on
    # (found by the session-7 review, helper-52)
    if workers > 1 and "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("workers need fork")
    assert gc.isenabled()
    try:
        it = m.scan(texts, workers=workers, chunk_size=7)
        next(it)
        gc.disable()
        it.close()
        assert not gc.isenabled()
        gc.enable()
        it = m.scan(texts, workers=workers, chunk_size=7)  # and the other way round
        gc.disable()
        next(it)
        gc.enable()
        it.close()
        assert gc.isenabled()
    finally:
        gc.enable()
