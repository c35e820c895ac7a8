"""The public contract: load, predict, predict_batch, Result, Span, bad input."""
from __future__ import annotations

import pytest

import qinglang_nlp as ql
from qinglang_nlp.result import DECISIONS

CATS = {"fanquan", "vulgar", "rumor"}
TEXTS = ["黑粉都给我爬，刷榜打投冲冲冲", "今天天气不错，适合出去走走。", "你这个傻逼", "【紧急扩散】某地自来水有毒，千万别喝！",
         "🙂", "x" * 5000]


def test_result_shape(tiny_model):
    r = tiny_model.predict(TEXTS[0])
    assert set(r.scores) == CATS
    assert all(0.0 <= v <= 1.0 for v in r.scores.values())
    assert set(r.labels) <= CATS
    assert r.decision in DECISIONS
    assert r.labels == [c for c in ("fanquan", "vulgar", "rumor") if r.scores[c] >= 0.5]


def test_model_learns_tiny_data(tiny_model):
    assert "fanquan" in tiny_model.predict("打投集资控评冲冲冲").labels
    assert "vulgar" in tiny_model.predict("傻逼滚").labels
    assert tiny_model.predict("今天天气不错").labels == []


def test_batch_matches_single_in_order(tiny_model):
    rs = tiny_model.predict_batch(TEXTS, batch_size=2)
    assert len(rs) == len(TEXTS)
    for t, r in zip(TEXTS, rs):
        single = tiny_model.predict(t)
        for c in CATS:
            assert abs(single.scores[c] - r.scores[c]) < 1e-9


def test_pipe_streams_generators(tiny_model):
    gen = (t for t in TEXTS * 3)
    out = list(tiny_model.pipe(gen, batch_size=4))
    assert len(out) == len(TEXTS) * 3


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_scores_zero(tiny_model, text):
    r = tiny_model.predict(text)
    assert r.scores == {c: 0.0 for c in ("fanquan", "vulgar", "rumor")}
    assert r.decision == "pass" and r.labels == [] and r.evidence == []


@pytest.mark.parametrize("bad,exc,msg", [
    (None, TypeError, "expected str, got NoneType"),
    (123, TypeError, "got int"),
    (b"bytes", TypeError, "got bytes"),
    ("a\x00b", ValueError, "NUL"),
    ("a\ud800b", ValueError, r"lone surrogate U\+D800"),
    ("长" * 1_000_001, ValueError, "exceeds max_chars"),
])
def test_bad_input_raises_clearly(tiny_model, bad, exc, msg):
    with pytest.raises(exc, match=msg):
        tiny_model.predict(bad)


def test_bad_item_in_batch_names_index(tiny_model):
    with pytest.raises(TypeError, match="item 2"):
        tiny_model.predict_batch(["好", "坏", None])
    with pytest.raises(TypeError, match="single str"):
        tiny_model.predict_batch("一段文本")
    with pytest.raises(ValueError, match="batch_size"):
        tiny_model.predict_batch(["好"], batch_size=0)


def test_long_text_truncation_is_recorded(tiny_model_dir):
    m = ql.load(tiny_model_dir, lexicon=False, max_chars=100, on_long="truncate")
    r = m.predict("打投" * 200)
    assert r.truncated is True
    assert m.predict("打投").truncated is False


def test_result_to_dict_is_json(tiny_model):
    import json

    d = tiny_model.predict(TEXTS[0]).to_dict()
    assert set(d) >= {"scores", "labels", "decision", "evidence"}
    json.dumps(d, ensure_ascii=False)


def test_thread_safety_same_results(tiny_model):
    from concurrent.futures import ThreadPoolExecutor

    texts = TEXTS[:5] * 20
    ref = [r.scores for r in tiny_model.predict_batch(texts)]
    with ThreadPoolExecutor(8) as ex:
        outs = list(ex.map(lambda _: [r.scores for r in tiny_model.predict_batch(texts, batch_size=7)], range(8)))
    assert all(o == ref for o in outs)


def test_thresholds_come_from_config(tiny_model_dir, tmp_path):
    import json
    import shutil

    from qinglang_nlp.modelio import write_manifest

    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["thresholds"] = {c: 0.0 for c in CATS}
    cfg["decision"]["block"] = {c: 1.0 for c in CATS}
    cfg["decision"]["review"] = {c: 1.0 for c in CATS}
    (d / "config.json").write_text(json.dumps(cfg))
    write_manifest(d)
    r = ql.load(d, lexicon=False).predict("今天天气不错")
    assert sorted(r.labels) == sorted(CATS) and r.decision == "pass"
