"""Second review of LexiconMatcher.scan (streaming, forked workers): regression tests for behaviour checked correct.

Each test pins something a review run confirmed: order and completeness with uneven chunks, that helper processes
end however the stream ends, that worker-made spans are ordinary frozen ``Span``s, and that edits made between two
scans reach the helpers. The comments are real CHNCI train comments when the data is present.
"""
from __future__ import annotations

import copy
import dataclasses
import gc
import itertools
import json
import multiprocessing
import pickle
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from qinglang_nlp.lexicon import LexiconMatcher, Term
from qinglang_nlp.result import Span

needs_fork = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="workers need fork")

SHORT = ["你是個傻逼吧", "前面路口交通管制，绕行吧", "他媽的煩死了", "", "有没有人约泡", "ＳＢ东西，煞笔吧你",
         "理性追星，拒绝集资，从我做起", "姐妹们快去打投！控评组集合", "今天天气不错，适合出去走走。"]


@pytest.fixture(scope="module")
def default() -> LexiconMatcher:
    return LexiconMatcher.default().build()


def uneven_texts(n: int, seed: int) -> list[str]:
    """Short comments with a few long ones among them, so that chunks cost very different times."""
    rng = random.Random(seed)
    return [rng.choice(SHORT) * (rng.randint(40, 200) if rng.random() < 0.02 else 1) + str(i) for i in range(n)]


def helpers_alive() -> list[multiprocessing.Process]:
    return multiprocessing.active_children()  # also reaps the helpers that have ended


@needs_fork
@pytest.mark.parametrize(("workers", "chunk_size"), [(2, 1), (2, 37), (3, 5), (3, 600)])
def test_uneven_chunks_keep_input_order_and_every_text(default, workers, chunk_size):
    texts = uneven_texts(1500 if chunk_size > 1 else 200, seed=chunk_size)
    expected = default.match_many(texts)
    assert sum(map(len, expected)) > len(texts) // 2
    got = list(default.scan(iter(texts), chunk_size=chunk_size, workers=workers))
    assert got == expected
    assert not helpers_alive()


@needs_fork
def test_empty_strings_only(default):
    assert list(default.scan([""] * 7, chunk_size=1, workers=3)) == [[]] * 7
    assert list(default.scan(iter([]), workers=2)) == []


@needs_fork
def test_helpers_end_however_the_stream_ends(default):
    texts = uneven_texts(400, seed=1)
    # the consumer breaks out of the loop: the generator is closed when its last reference goes
    for i, _spans in enumerate(default.scan(texts, chunk_size=5, workers=3)):
        if i == 3:
            assert len(helpers_alive()) == 2
            break
    gc.collect()
    assert not helpers_alive()

    # the input raises mid-way (here a KeyboardInterrupt, which no layer may swallow)
    def interrupted():
        yield from texts[:123]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        list(default.scan(interrupted(), chunk_size=10, workers=2))
    assert not helpers_alive()

    # the consumer's own loop body raises
    def consume() -> None:
        for i, _spans in enumerate(default.scan(texts, chunk_size=5, workers=2)):
            if i == 10:
                raise RuntimeError("消费者出错")

    with pytest.raises(RuntimeError):
        consume()
    assert not helpers_alive()
    assert gc.isenabled()


@needs_fork
@pytest.mark.parametrize("workers", [2, 3])
def test_bad_item_in_a_later_chunk_comes_after_exactly_the_earlier_spans(default, workers):
    texts = uneven_texts(700, seed=2)
    texts[613] = None  # type: ignore[call-overload]
    got: list[list[Span]] = []
    with pytest.raises(TypeError, match=r"got NoneType \(item 613\)"):
        got.extend(default.scan(texts, chunk_size=30, workers=workers))
    assert got == default.match_many(texts[:600])  # 20 whole chunks; none of the bad item's chunk
    assert not helpers_alive()


@needs_fork
def test_worker_spans_are_ordinary_frozen_spans(default):
    texts = uneven_texts(300, seed=3)
    spans = [s for r in default.scan(texts, chunk_size=7, workers=2) for s in r]
    assert {s.view for s in spans} >= {"text", "pinyin", "variant"}
    rebuilt = [Span(**dataclasses.asdict(s)) for s in spans]
    assert spans == rebuilt and [hash(s) for s in spans] == [hash(s) for s in rebuilt]
    assert set(spans) == set(rebuilt) and [repr(s) for s in spans] == [repr(s) for s in rebuilt]
    for s in spans[:50]:
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            assert pickle.loads(pickle.dumps(s, proto)) == s
        assert copy.deepcopy(s) == s and dataclasses.astuple(s) == dataclasses.astuple(Span(*dataclasses.astuple(s)))
        assert json.loads(json.dumps(s.to_dict(), ensure_ascii=False)) == s.to_dict()
    s = spans[0]
    moved = dataclasses.replace(s, start=s.start + 1)
    assert type(moved) is Span and moved.start == s.start + 1 and moved.text == s.text and moved != s
    for name in ("start", "text", "not_a_field"):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(s, name, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        del s.start  # type: ignore[misc]


@needs_fork
def test_edits_between_two_scans_reach_the_helpers():
    m = LexiconMatcher({"u": [Term("傻逼", "vulgar", "vu_abuse")]}).build()
    texts = [f"傻逼，还在打投 {i}" for i in range(200)]

    def terms() -> set[tuple[str, ...]]:
        return {tuple(s.term for s in r) for r in m.scan(texts, chunk_size=9, workers=3)}

    assert terms() == {("傻逼",)}
    m.add_term("打投", category="fanquan", sublabel="fq_datafraud")
    assert terms() == {("傻逼", "打投")}
    m.remove_term("傻逼")
    assert terms() == {("打投",)}
    m.add_list("u", ["还在"], category="vulgar", sublabel="vu_abuse")  # replaces list u (傻逼 was in it)
    assert terms() == {("还在", "打投")}
    assert list(m.scan(texts, chunk_size=9, workers=3)) == m.match_many(texts)


@needs_fork
def test_scan_with_workers_from_threads(default):
    texts = uneven_texts(600, seed=4)
    expected = default.match_many(texts)
    with ThreadPoolExecutor(2) as ex:
        futures = [ex.submit(lambda w=w: list(default.scan(texts, chunk_size=50, workers=w))) for w in (1, 2, 3)]
        assert all(f.result() == expected for f in futures)
    # two pooled scans interleaved in one thread; zip stops at the first one's end, so the second one's
    # generator, left suspended after its last text, keeps its helper until it is dropped
    both = zip(default.scan(texts, chunk_size=40, workers=2), default.scan(texts, chunk_size=70, workers=2))
    assert all(a == b == e for (a, b), e in zip(both, expected))
    del both
    gc.collect()
    assert not helpers_alive() and gc.isenabled()


@pytest.mark.data
@needs_fork
def test_chnci_comments_give_the_spans_of_match_many(default, shared_data):
    from qinglang_nlp.datasets import iter_dataset

    texts = [r.text for r in itertools.islice(iter_dataset("chnci", "train", shared_data), 60000)]
    assert default.pinyin
    expected = default.match_many(texts)
    assert {s.view for r in expected for s in r} >= {"text", "pinyin", "variant"}
    assert list(default.scan(texts)) == expected
    assert list(default.scan(iter(texts), chunk_size=777, workers=2)) == expected


# -- bugs the review found (fixed in lexicon.py) ----------------------------------------------------------------


def test_allow_containment_rule_matches_the_pairwise_definition_on_random_hits():
    # _drop_allowed replaced a pairwise check (every deny hit against every allow hit: a 2.4 M-character text with
    # many hits did not finish in 300 s); the rule itself must not change: a deny hit goes when an allow hit of its
    # category, or of no category, contains it
    from types import SimpleNamespace

    from qinglang_nlp.lexicon import _drop_allowed

    rng = random.Random(7)
    cats = [None, "vulgar", "fanquan"]

    def hit(cat):
        s = rng.randint(0, 60)
        return (s, s + rng.randint(1, 8), SimpleNamespace(term=SimpleNamespace(category=cat)), "text")

    for _ in range(2000):
        deny = [hit(rng.choice(cats[1:])) for _ in range(rng.randint(0, 12))]
        allow = [hit(rng.choice(cats)) for _ in range(rng.randint(0, 6))]
        want = [h for h in deny if not any(a[0] <= h[0] and h[1] <= a[1] and a[2].term.category in (None, h[2].term.category)
                                           for a in allow)]
        assert _drop_allowed(deny, allow) == want


@needs_fork
@pytest.mark.parametrize("workers", [1, 2])
def test_an_error_from_the_input_comes_after_the_spans_of_every_earlier_chunk(default, workers):
    # with helpers, only a bad item (TypeError) used to wait for the earlier chunks: any other error from the
    # iterable (a file that is not UTF-8, a failing generator) escaped at once and dropped spans already found
    def texts():
        for i in range(40):
            if i == 37:
                raise ValueError("bad line 37")
            yield SHORT[i % len(SHORT)]

    got: list = []
    with pytest.raises(ValueError, match="bad line 37"):
        got.extend(default.scan(texts(), chunk_size=5, workers=workers))
    assert len(got) == 35  # the 7 whole chunks before the failing one
    assert got == default.match_many([SHORT[i % len(SHORT)] for i in range(35)])


@needs_fork
@pytest.mark.parametrize("workers", [1, 2])
def test_an_edit_during_a_scan_applies_to_the_next_scan(workers):
    # helpers hold the lists from the fork while this process matched its own chunks with the edited lists: a
    # random mix of old and new lists within one scan; now the whole scan uses one snapshot
    m = LexiconMatcher.default().build()
    texts = [f"姐妹们刷流水冲冲冲{i}" for i in range(400)]
    found = []
    for i, spans in enumerate(m.scan(texts, chunk_size=20, workers=workers)):
        if i == 30:
            m.add_term("刷流水", category="fanquan", sublabel="fq_datafraud")
        found.append(any(s.term == "刷流水" for s in spans))
    assert not any(found)
    assert all(any(s.term == "刷流水" for s in spans) for spans in m.scan(texts, chunk_size=20, workers=workers))
