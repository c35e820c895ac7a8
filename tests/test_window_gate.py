"""The window gate of a stacked model: the baseline member chooses which windows of a long text the
transformer scores; calibration on dev for a recall target; the cascade file carries it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the tiny ONNX member is exported with torch (pip install .[train])")
pytest.importorskip("transformers", reason="export needs transformers (pip install .[train])")

from test_onnx import LONG, TEXTS, stacked_folder, tiny  # noqa: F401  (``tiny`` is the module-scoped ONNX fixture)

import qinglang_nlp as ql
from qinglang_nlp.cascade import Cascade, calibrate, calibrate_window_gate
from qinglang_nlp.classifier import load_classifier
from qinglang_nlp.modelio import read_config
from qinglang_nlp.normalize import normalize
from qinglang_nlp.stacked import StackedClassifier, gate_keep

ARTICLE = ("市气象台发布大风蓝色预警，请注意出行安全。" * 10 + "集资还差三万，哥哥的生日应援不能输给对家！"
           + "今天天气很好，我们去公园散步。" * 10 + "你这个傻逼，滚远点！" + "晚饭吃了面条，很满足。" * 10)


def test_gate_keeps_single_windows_each_texts_best_window_and_windows_over_the_cutoff():
    items = np.array([0, 0, 0, 1, 2, 2])
    scores = np.array([[0.1, 0.2, 0.0],   # text 0: best vulgar window is #1, best fanquan #2, best rumor #0
                       [0.0, 0.9, 0.0],
                       [0.3, 0.1, 0.0],
                       [0.0, 0.0, 0.0],   # text 1 has one window: always run
                       [0.05, 0.05, 0.6],
                       [0.04, 0.04, 0.7]])
    off = np.full(3, 2.0)
    # text 2: window #4 is best in fanquan and vulgar, #5 in rumor, so both run
    assert gate_keep(items, scores, off).tolist() == [True, True, True, True, True, True]
    few = np.array([[0.1, 0.2, 0.1], [0.0, 0.9, 0.0], [0.3, 0.1, 0.0], [0.0, 0.0, 0.0], [0.05, 0.05, 0.6],
                    [0.01, 0.01, 0.5]])
    assert gate_keep(items, few, off).tolist() == [True, True, True, True, True, False]
    # a window under every best but over a cut-off runs
    assert gate_keep(items, few, np.array([2.0, 2.0, 0.5])).tolist() == [True] * 6
    assert gate_keep(np.zeros(0, int), np.zeros((0, 3)), off).tolist() == []


@pytest.fixture()
def stacked(tiny, tiny_model_dir, tmp_path) -> Path:  # noqa: F811
    """A stack of the tiny ONNX model and the tiny baseline, both weighted."""
    return stacked_folder(tiny[1], tiny_model_dir, tmp_path / "stacked", (2.0, 1.0))


def test_gated_scores_are_the_stack_of_the_kept_windows(stacked, tiny):  # noqa: F811
    clf = load_classifier(stacked, read_config(stacked))
    assert isinstance(clf, StackedClassifier)
    texts = [normalize(t).text for t in [*TEXTS, LONG, ARTICLE]]
    full, full_spans = clf.predict_scores_and_spans(texts)
    # cut-offs at 0 keep every window: identical to the ungated model
    clf.set_window_gate(dict.fromkeys(clf.categories, 0.0))
    same, same_spans = clf.predict_scores_and_spans(texts)
    assert np.allclose(same, full, atol=1e-9) and same_spans == full_spans
    # cut-offs over 1: only each text's best windows (by the baseline) run; recompute that by hand
    clf.set_window_gate(dict.fromkeys(clf.categories, 2.0))
    gated = clf.predict_scores(texts)
    _, tr = clf.windowed_member()
    bl = dict(clf.members)["baseline"]
    ws = tr.score_windows(texts)
    assert np.bincount(ws.item)[-1] > 3, "the article must be cut into several windows"
    keep = gate_keep(ws.item, bl.predict_scores([texts[i][a:b] for i, a, b in zip(ws.item, ws.start, ws.end)]),
                     np.full(3, 2.0))
    assert not keep.all()
    tmax = np.zeros((len(texts), 3))
    np.maximum.at(tmax, ws.item[keep], ws.probs[keep])
    assert np.allclose(gated, clf.combine([tmax, bl.predict_scores(texts)]), atol=1e-5)
    # one-window texts are untouched; the gate can only lower a long text's transformer max
    short = [i for i in range(len(texts)) if np.bincount(ws.item, minlength=len(texts))[i] == 1]
    assert np.allclose(gated[short], full[short], atol=1e-9)
    assert (gated <= full + 1e-9).all()
    clf.set_window_gate(None)
    assert np.allclose(clf.predict_scores(texts), full, atol=1e-9)


def test_bad_gates_are_refused(stacked, tiny_model_dir):
    clf = load_classifier(stacked, read_config(stacked))
    with pytest.raises(ValueError, match="not a member"):
        clf.set_window_gate(dict.fromkeys(clf.categories, 0.5), member="lexicon")
    with pytest.raises(ValueError, match="windowed member"):
        clf.set_window_gate(dict.fromkeys(clf.categories, 0.5), member="transformer")
    with pytest.raises(ValueError, match="lack categories"):
        clf.set_window_gate({"fanquan": 0.5})
    with pytest.raises(ValueError, match="stacked second model"):
        calibrate_window_gate(ql.load(tiny_model_dir, lexicon=False), [ARTICLE])


def test_calibrated_gate_keeps_the_target_recall_on_dev_and_rides_in_the_cascade_file(stacked, tiny_model_dir,
                                                                                       tmp_path):
    second = ql.load(stacked, lexicon=False)
    dev = [*TEXTS, LONG, ARTICLE, ARTICLE.replace("傻逼", "笨蛋"), "今天天气很好。" * 80 + "刷榜打投冲冲冲"]
    full = second.predict_batch(dev)
    wg = calibrate_window_gate(second, dev, target_recall=1.0)
    assert wg["member"] == "baseline" and set(wg["cutoffs"]) == {"fanquan", "vulgar", "rumor"}
    for c, st in wg["dev"]["categories"].items():
        if st.get("flagged"):
            assert st["dev_recall"] == 1.0
    second.classifier.set_window_gate(wg["cutoffs"], wg["member"])
    gated = second.predict_batch(dev)
    for c in ("fanquan", "vulgar", "rumor"):
        assert {i for i, r in enumerate(full) if c in r.labels} <= {i for i, r in enumerate(gated) if c in r.labels}
    assert 0 < wg["dev"]["tokens_run"] <= 1
    # the cascade: windows only (every row a candidate), then loaded back from its file
    second.classifier.set_window_gate(None)
    cfg = calibrate(ql.load(tiny_model_dir, lexicon=False), second, dev, target_recall=1.0, window_gate=True,
                    row_gate=False)
    assert cfg["cutoffs"] == dict.fromkeys(("fanquan", "vulgar", "rumor"), 0.0) and "window_gate" in cfg
    second.classifier.set_window_gate(None)
    cas = Cascade(ql.load(tiny_model_dir, lexicon=False), second, cfg["cutoffs"], False, cfg["window_gate"])
    assert cas.to_dict()["window_gate"]["cutoffs"] == cfg["window_gate"]["cutoffs"]
    staged = cas.predict_staged(dev)
    assert all(stage == 2 for _, stage in staged)
    assert [r.scores for r, _ in staged] == [r.scores for r in second.predict_batch(dev)]
    with pytest.raises(ValueError, match="stacked second model"):
        Cascade(second, ql.load(tiny_model_dir, lexicon=False), cfg["cutoffs"], False, cfg["window_gate"])


class _FakeWindowed:
    """Windows = the '|'-separated parts of a text; each part's probabilities come from a table."""

    categories = ("fanquan", "vulgar", "rumor")

    def __init__(self, table: dict[str, list[float]]):
        self.table = table

    def _parts(self, texts):
        for i, t in enumerate(texts):
            start = 0
            for part in t.split("|"):
                yield i, start, start + len(part), part
                start += len(part) + 1

    def score_windows(self, texts, titles=None):
        from qinglang_nlp.onnx_classifier import WindowScores

        rows = list(self._parts(texts))
        return WindowScores(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                            np.array([r[2] for r in rows]), np.array([10] * len(rows)),
                            np.array([self.table[r[3]] for r in rows]))

    def predict_scores_and_spans(self, texts, titles=None, window_gate=None):
        rows = list(self._parts(texts))
        keep = np.ones(len(rows), bool) if window_gate is None else \
            window_gate(np.array([r[0] for r in rows]), [r[3] for r in rows])
        out = np.zeros((len(texts), 3))
        for (i, _, _, part), k in zip(rows, keep):
            if k:
                out[i] = np.maximum(out[i], self.table[part])
        return out, [[] for _ in texts]


class _FakeBaseline:
    categories = ("fanquan", "vulgar", "rumor")

    def __init__(self, table: dict[str, float]):
        self.table = table

    def predict_scores(self, texts):
        return np.array([[self.table.get(t, 0.01)] * 3 for t in texts])


def _fake_second(win_table, base_table):
    from qinglang_nlp.moderator import Moderator
    from qinglang_nlp.normalize import NormalizeConfig

    clf = StackedClassifier([("transformer", _FakeWindowed(win_table)), ("baseline", _FakeBaseline(base_table))],
                            ("fanquan", "vulgar", "rumor"),
                            {c: {"weights": [1.0, 0.0], "bias": 0.0} for c in ("fanquan", "vulgar", "rumor")},
                            {"fanquan": 0.5, "vulgar": 0.999, "rumor": 0.999})
    return Moderator(clf, {"kind": "stacked", "name": "fake", "categories": list(clf.categories),
                          "thresholds": clf.thresholds, "decision": {"block": clf.thresholds},
                          "normalize": NormalizeConfig.none().to_dict()})


def test_calibration_finds_the_exact_cutoff_that_keeps_the_flagged_window():
    # the baseline likes the harmless first window best; the flag sits in the second, scored 0.12346
    second = _fake_second({"aa": [0.1] * 3, "bb": [0.99, 0.1, 0.1], "cc": [0.1] * 3, "dd": [0.2] * 3},
                          {"aa": 0.9, "bb": 0.12346, "cc": 0.05, "dd": 0.3})
    wg = calibrate_window_gate(second, ["aa|bb|cc", "dd"], target_recall=1.0)
    assert wg["cutoffs"]["fanquan"] == pytest.approx(0.12346)
    assert wg["dev"]["categories"]["fanquan"] == {"flagged": 1, "dev_recall": 1.0, "new_flags": 0}
    assert wg["cutoffs"]["vulgar"] == 2.0 and "no cut-off" in wg["dev"]["categories"]["vulgar"]["note"]
    assert wg["dev"]["windows_run"] == pytest.approx(3 / 4)   # aa (best), bb (cut-off), dd (single); cc skipped
    second.classifier.set_window_gate(wg["cutoffs"])
    assert second.classifier.predict_scores(["aa|bb|cc"])[0, 0] > 0.5
    # a gate that would lower scores when skipping windows is refused
    bad = StackedClassifier(second.classifier.members, ("fanquan", "vulgar", "rumor"),
                            {c: {"weights": [-1.0, 0.0], "bias": 0.0} for c in ("fanquan", "vulgar", "rumor")})
    with pytest.raises(ValueError, match="positive stacker weight"):
        bad.set_window_gate(wg["cutoffs"])


def test_titles_travel_through_the_cascade_and_its_window_gate_calibration(stacked, tiny_model_dir):
    """Titled posts: both stages get the titles (as the batch job passes them), and the gate is calibrated on
    what the gated model reads (title in front of every window)."""
    second = ql.load(stacked, lexicon=False)
    bodies = [ARTICLE, ARTICLE.replace("傻逼", "笨蛋"), TEXTS[0], "今天天气很好。" * 80 + "刷榜打投冲冲冲"]
    titles = ["【独家】某顶流塌房，对家连夜控评", None, "", "集资应援冲冲冲"]
    titled = second.predict_batch(bodies, titles=titles)
    assert [r.scores for r in titled] != [r.scores for r in second.predict_batch(bodies)]  # the titles matter
    wg = calibrate_window_gate(second, bodies, target_recall=1.0, titles=titles)
    second.classifier.set_window_gate(wg["cutoffs"], wg["member"])
    gated = second.predict_batch(bodies, titles=titles)
    for c in ("fanquan", "vulgar", "rumor"):  # the recall the calibration promised, on the titled texts
        assert {i for i, r in enumerate(titled) if c in r.labels} <= {i for i, r in enumerate(gated) if c in r.labels}
    second.classifier.set_window_gate(None)
    # every row a candidate: the cascade's results are the second model's on the titled posts
    cas = Cascade(ql.load(tiny_model_dir, lexicon=False), second, dict.fromkeys(("fanquan", "vulgar", "rumor"), 0.0),
                  False)
    staged = cas.predict_staged(bodies, titles=titles)
    assert [r.scores for r, _ in staged] == [r.scores for r in titled]
    assert [r.evidence for r, _ in staged] == [r.evidence for r in titled]
    # no title anywhere: exactly the untitled calls
    assert [r.scores for r in cas.predict_batch(bodies, titles=[None] * 4)] == \
        [r.scores for r in second.predict_batch(bodies)]
    with pytest.raises(ValueError, match="titles"):
        cas.predict_batch(bodies, titles=titles[:2])
