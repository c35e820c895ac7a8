"""Titles scored with the body (issue #6): a long article's title reaches every window, end to end through
``Moderator.predict(text, title=...)`` / ``predict_batch(texts, titles=...)``, for a plain ONNX model, a stacked model
(window gate included) and the baseline; evidence indexes ``title + "\\n" + body``; no title changes nothing."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("torch", reason="the tiny ONNX model is exported with torch (pip install .[train])")
pytest.importorskip("transformers", reason="export needs transformers (pip install .[train])")

from test_onnx import TEXTS, stacked_folder, tiny  # noqa: F401  (``tiny`` is the module-scoped ONNX fixture)

import qinglang_nlp as ql
from qinglang_nlp.moderator import split_title
from qinglang_nlp.normalize import normalize
from qinglang_nlp.onnx_classifier import OnnxClassifier
from qinglang_nlp.stacked import StackedClassifier, gate_keep

TITLE = "【独家】某顶流塌房"
# about 2,000 characters; full-width letters and a collapsed "！！！！" before the insult shift normalised offsets
BODY = ("今天天气很好，我们去公园散步。" * 60 + "ＡＢＣ超话签到不能断！！！！哈哈哈哈哈哈。" + "你这个傻逼，滚远点！"
        + "晚饭吃了面条，很满足。" * 90)
SHORT = ["黑粉都给我爬，刷榜打投冲冲冲", "", "   ", "谢谢你的帮助，祝你生活愉快"]


def _same(a: list, b: list) -> None:
    """Results equal: scores to 1e-9, labels, decision, evidence, truncated."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.scores.keys() == y.scores.keys()
        assert all(abs(x.scores[c] - y.scores[c]) <= 1e-9 for c in x.scores)
        assert (x.labels, x.decision, x.evidence, x.truncated) == (y.labels, y.decision, y.evidence, y.truncated)


@pytest.fixture(scope="module")
def onnx_mod(tiny):  # noqa: F811
    m = ql.load(tiny[1])  # bundled lexicon on: its hits index the joined string too
    assert isinstance(m.classifier, OnnxClassifier)
    return m


@pytest.fixture()
def stacked_mod(tiny, tiny_model_dir, tmp_path):  # noqa: F811
    m = ql.load(stacked_folder(tiny[1], tiny_model_dir, tmp_path / "stacked", (2.0, 1.0)), lexicon=False)
    assert isinstance(m.classifier, StackedClassifier)
    return m


def _title_ids(clf: OnnxClassifier, title: str) -> list[int]:
    return clf._tok.encode(clf.text_prefix + title, add_special_tokens=False).ids[: clf.window.title_tokens]


def test_the_title_goes_in_front_of_every_window_of_the_body(onnx_mod):
    clf = onnx_mod.classifier
    sent: list[list[int]] = []
    run = clf.run_ids

    def spy(batch):
        sent.extend(list(b) for b in batch)
        return run(batch)

    clf.run_ids = spy
    try:
        onnx_mod.predict(BODY, title=TITLE)
        with_title, sent[:] = list(sent), []
        onnx_mod.predict(TITLE + "\n" + BODY)  # what the batch job scored before: one joined text
        joined = list(sent)
    finally:
        del clf.run_ids
    head = clf._prefix_ids + _title_ids(clf, normalize(TITLE).text)
    assert len(head) > len(clf._prefix_ids) + 3
    assert len(with_title) > 10, "the body must be cut into many windows"
    assert all(ids[: len(head)] == head for ids in with_title)
    assert all(len(ids) <= clf.max_length for ids in with_title)
    # the joined text had the title in its first window only
    assert sum(ids[: len(head)] == head for ids in joined) == 1


def test_titled_scores_are_the_classifiers_on_the_body_with_the_title(onnx_mod):
    clf = onnx_mod.classifier
    got = onnx_mod.predict_batch([BODY, SHORT[0]], titles=[TITLE, "网传某超市食品含有塑料"])
    want = clf.predict_scores([normalize(BODY).text, normalize(SHORT[0]).text],
                              titles=[normalize(TITLE).text, normalize("网传某超市食品含有塑料").text])
    assert np.allclose([[r.scores[c] for c in clf.categories] for r in got], want, atol=1e-6)
    # the title changes the scores of windows beyond the first: each window with the title vs the same span alone
    nb, nt = normalize(BODY).text, normalize(TITLE).text
    ws = clf.score_windows([nb], [nt])
    later = ws.start > 0
    alone = clf.predict_scores([nb[a:b] for a, b in zip(ws.start[later], ws.end[later])])
    assert later.sum() > 5
    assert (np.abs(ws.probs[later] - alone).max(axis=1) > 1e-4).all()


def test_no_title_gives_exactly_todays_results(onnx_mod, stacked_mod, tiny_model_dir):
    texts = [*TEXTS, BODY, *SHORT]
    base = ql.load(tiny_model_dir)
    for m in (onnx_mod, stacked_mod, base):
        today = m.predict_batch(texts, batch_size=5)
        _same(m.predict_batch(texts, batch_size=5, titles=[None] * len(texts)), today)
        _same(m.predict_batch(texts, batch_size=5, titles=[""] * len(texts)), today)
        _same(list(m.pipe(iter(texts), batch_size=5, titles=[None] * len(texts))), today)
        _same([m.predict(BODY, title=None), m.predict(BODY, title="")], [today[len(TEXTS)]] * 2)
    stacked_mod.classifier.set_window_gate(dict.fromkeys(stacked_mod.classifier.categories, 2.0))
    _same(stacked_mod.predict_batch(texts, titles=[None] * len(texts)), stacked_mod.predict_batch(texts))


def test_evidence_indexes_the_joined_original(onnx_mod):
    clf = onnx_mod.classifier
    joined = TITLE + "\n" + BODY
    old = clf.thresholds, clf._thr
    clf.thresholds, clf._thr = dict.fromkeys(clf.categories, 0.0), np.zeros(3, np.float32)  # every best window
    try:
        r = onnx_mod.predict(BODY, title=TITLE)
        nb = normalize(BODY)
        _, spans = clf.predict_scores_and_spans([nb.text], [normalize(TITLE).text])
    finally:
        clf.thresholds, clf._thr = old
    model = [s for s in r.evidence if s.source == "model"]
    assert len(model) == 3
    shift = len(TITLE) + 1
    want = sorted((nb.to_original(a, b)[0] + shift, nb.to_original(a, b)[1] + shift, c) for a, b, c, _ in spans[0])
    assert sorted((s.start, s.end, s.category) for s in model) == want
    for s in r.evidence:
        assert joined[s.start:s.end] == s.text
    for s in model:
        assert s.start >= shift
    insult = joined.index("傻逼")
    assert insult > 900  # dozens of windows in
    lex = [s for s in r.evidence if s.source == "lexicon" and s.text == "傻逼"]
    assert [s.start for s in lex] == [insult]
    # the lexicon scans the joined string, as before: same hits as the joined text scored whole
    assert [s for s in r.evidence if s.source == "lexicon"] == \
        [s for s in onnx_mod.predict(joined).evidence if s.source == "lexicon"]


def test_split_title_cuts_the_normalised_join_at_the_seam():
    n = normalize("ＡＢＣ超话！！！！" + "\n" + "ｙｙｄｓ，哈哈哈哈哈哈")
    title, body, k = split_title(n, len("ＡＢＣ超话！！！！"))
    assert (title, body) == (normalize("ＡＢＣ超话！！！！").text, normalize("ｙｙｄｓ，哈哈哈哈哈哈").text)
    assert n.text[k:] == body and n.text == title + "\n" + body


def test_baseline_reads_title_and_body_joined_as_before(tiny_model_dir):
    m = ql.load(tiny_model_dir)
    _same([m.predict(BODY, title=TITLE)], [m.predict(TITLE + "\n" + BODY)])
    _same(m.predict_batch([BODY, SHORT[0]], titles=[TITLE, "集资还差三万"]),
          m.predict_batch([TITLE + "\n" + BODY, "集资还差三万\n" + SHORT[0]]))


def test_stacked_members_and_window_gate_see_the_title(stacked_mod):
    clf = stacked_mod.classifier
    _, tr = clf.windowed_member()
    bl = dict(clf.members)["baseline"]
    bodies = [normalize(BODY).text, normalize(SHORT[0]).text]
    titles = [normalize(TITLE).text, None]
    probs, _ = clf.member_scores(bodies, titles)
    assert np.allclose(probs[0], tr.predict_scores(bodies, titles), atol=1e-9)
    assert np.allclose(probs[1], bl.predict_scores([TITLE + "\n" + bodies[0], bodies[1]]), atol=1e-9)
    full = clf.predict_scores(bodies, titles)
    clf.set_window_gate(dict.fromkeys(clf.categories, 0.0))  # keeps every window: the ungated scores
    assert np.allclose(clf.predict_scores(bodies, titles), full, atol=1e-9)
    # the gate member scores each window as the transformer reads it: the title in front of the window text
    ws = tr.score_windows(bodies, titles)
    assert np.bincount(ws.item)[0] > 10
    gate_in = [(titles[i] + "\n" if titles[i] else "") + bodies[i][a:b] for i, a, b in zip(ws.item, ws.start, ws.end)]
    seen: list[str] = []
    score = bl.predict_scores

    def spy(texts, *args, **kw):
        seen.extend(texts)
        return score(texts, *args, **kw)

    clf.set_window_gate(dict.fromkeys(clf.categories, 2.0))  # only each text's best windows by the baseline
    bl.predict_scores = spy
    try:
        gated = clf.predict_scores(bodies, titles)
    finally:
        del bl.predict_scores
    assert gate_in[0].startswith(TITLE + "\n") and sorted(gate_in) == sorted(seen[: len(gate_in)])
    keep = gate_keep(ws.item, bl.predict_scores(gate_in), np.full(3, 2.0))
    assert not keep.all()
    tmax = np.zeros((2, 3))
    np.maximum.at(tmax, ws.item[keep], ws.probs[keep])
    assert np.allclose(gated, clf.combine([tmax, probs[1]]), atol=1e-5)
    # through the Moderator, the same numbers
    r = stacked_mod.predict(BODY, title=TITLE)
    assert np.allclose([r.scores[c] for c in clf.categories], gated[0], atol=1e-6)


def test_a_title_alone_or_a_cut_body_is_scored_as_the_joined_text(tiny):  # noqa: F811
    m = ql.load(tiny[1], lexicon=False, max_chars=len(TITLE) + 40, on_long="truncate")
    _same([m.predict("", title=TITLE)], [m.predict(TITLE + "\n")])
    r = m.predict(BODY, title=TITLE)
    assert r.truncated
    assert all(s.end <= len(TITLE) + 40 for s in r.evidence)
    assert np.allclose([r.scores[c] for c in m.classifier.categories],
                       m.classifier.predict_scores([normalize(BODY[:39]).text], [normalize(TITLE).text])[0], atol=1e-6)


def test_bad_titles_are_refused_naming_the_problem(tiny_model_dir):
    m = ql.load(tiny_model_dir, lexicon=False)
    with pytest.raises(ValueError, match="got 1 titles for 2 texts"):
        m.predict_batch(SHORT[:2], titles=[TITLE])
    with pytest.raises(TypeError, match=r"titles\[1\]: expected str or None, got int"):
        m.predict_batch(SHORT[:2], titles=[TITLE, 7])
    with pytest.raises(TypeError, match="not a single str"):
        m.predict_batch(SHORT[:2], titles=TITLE)
    with pytest.raises(TypeError, match="title: expected str or None, got bytes"):
        m.predict(SHORT[0], title=TITLE.encode())
    with pytest.raises(ValueError, match="title of item 1: contains a NUL"):
        m.predict_batch(SHORT[:2], titles=[None, "标题\x00"])
    with pytest.raises(ValueError, match="got 2 titles for more texts"):
        list(m.pipe(iter(SHORT), batch_size=3, titles=[TITLE, None]))
    with pytest.raises(ValueError, match="got 5 titles for 4 texts"):
        list(m.pipe(iter(SHORT), batch_size=3, titles=[TITLE] * 5))
    with pytest.raises(TypeError, match="text: expected str, got NoneType"):
        m.predict(None, title=TITLE)  # type: ignore[arg-type]


def test_the_batch_job_sends_title_and_body_apart(onnx_mod):
    from qinglang_nlp import batch

    rows = [batch.Row(1, {"id": "a", "title": TITLE, "content": BODY}),
            batch.Row(2, {"id": "b", "title": "", "content": BODY}),
            batch.Row(3, {"id": "c", "text": TITLE + "\n" + BODY})]
    recs = list(batch.score_rows(onnx_mod, rows, keep_text=True, batch_size=2))
    joined = TITLE + "\n" + BODY

    def close(rec: dict, r) -> bool:  # batches pad differently: equal to float noise
        return all(abs(rec["scores"][c] - v) < 1e-5 for c, v in r.scores.items())

    assert recs[0]["text"] == joined and close(recs[0], onnx_mod.predict(BODY, title=TITLE))
    assert all(joined[e["start"]:e["end"]] == e["text"] for e in recs[0]["evidence"])
    # an empty title and a ready-made text are scored as before: one joined string
    assert close(recs[1], onnx_mod.predict("\n" + BODY)) and close(recs[2], onnx_mod.predict(joined))
    assert not close(recs[2], onnx_mod.predict(BODY, title=TITLE))


def test_the_batch_job_passes_titles_to_a_cascade():
    """A staged model (cascade) that takes titles gets bodies and titles apart; one without gets joined text."""
    from qinglang_nlp import batch
    from qinglang_nlp.result import Result

    calls = []

    class Staged:
        name = "staged@1"

        def prepare(self, text, index=None):
            return text, False

        def predict_staged(self, texts, batch_size=64, titles=None):
            calls.append((list(texts), titles))
            return [(Result({"fanquan": 0.0, "vulgar": 0.0, "rumor": 0.0}, [], "pass", [], False, "m"), 1)
                    for _ in texts]

    class OldStaged(Staged):
        def predict_staged(self, texts, batch_size=64):  # no titles=: an older wrapper
            return super().predict_staged(texts, batch_size)

    rows = [batch.Row(1, {"id": "a", "title": TITLE, "content": BODY}), batch.Row(2, {"id": "b", "text": "短评"})]
    list(batch.score_rows(Staged(), rows, batch_size=8))
    assert calls[-1] == ([BODY, "短评"], [TITLE, None])
    list(batch.score_rows(OldStaged(), rows, batch_size=8))
    assert calls[-1] == ([TITLE + "\n" + BODY, "短评"], None)
