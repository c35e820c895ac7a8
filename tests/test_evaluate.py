"""Evaluation: numbers match a direct computation, reports render and escape, degenerate models don't crash."""
from __future__ import annotations

import numpy as np
import pytest

from qinglang_nlp.datasets import Record
from qinglang_nlp.eval_report import published_baselines, write_reports
from qinglang_nlp.evaluate import best_f1_threshold, bootstrap_ci, evaluate_records


def _recs(pairs, cat="vulgar", fine=None):
    out = []
    for i, (t, y) in enumerate(pairs):
        lab = {"fanquan": None, "vulgar": None, "rumor": None}
        lab[cat] = y
        out.append(Record(t, "fixture", f"f{i}", lab, dict(fine or {"topic": "a" if i % 2 else "b"})))
    return out


PAIRS = [("傻逼滚", 1), ("你好呀", 0), ("脑残垃圾", 1), ("谢谢你", 0), ("去你妈的", 1), ("晚饭吃面条", 0),
         ("<script>alert(1)</script>滚", 1), ("今天天气不错", 0)]


def test_evaluate_records_matches_direct(tiny_model):
    recs = _recs(PAIRS)
    curves = {}
    rep = evaluate_records(tiny_model, recs, dev_records=recs, n_boot=200, curves=curves)
    e = rep["categories"]["vulgar"]
    assert set(rep["categories"]) == {"vulgar"}  # only judged categories
    y = np.array([y for _, y in PAIRS])
    s = np.array([tiny_model.predict(t).scores["vulgar"] for t, _ in PAIRS])
    pred = s >= tiny_model.policy.thresholds["vulgar"]
    assert e["at_model_threshold"]["accuracy"] == pytest.approx((pred == y).mean())
    assert np.allclose(curves["vulgar"]["s"], s)
    lo, hi = e["ci95"]["f1"]
    assert 0.0 <= lo <= e["at_model_threshold"]["f1"] <= hi <= 1.0
    assert e["dev_threshold"] is not None and e["at_dev_threshold"]["f1"] >= e["at_model_threshold"]["f1"] - 1e-9
    assert set(e["by_fine"]["topic"]) == {"a", "b"}
    assert sum(v["n"] for v in e["by_length"].values()) == len(PAIRS)


def test_perturbation_drop_reported(tiny_model):
    fams = {"identity": lambda t, rng: t, "strip": lambda t, rng: "无关的文字"}
    rep = evaluate_records(tiny_model, _recs(PAIRS), n_boot=10, perturb=fams)
    p = rep["categories"]["vulgar"]["perturbed"]
    assert p["identity"]["f1_drop"] == pytest.approx(0.0)
    assert p["strip"]["f1"] == 0.0 or p["strip"]["f1_drop"] > 0


class _Const:
    categories = ("fanquan", "vulgar", "rumor")

    def predict_scores(self, texts):
        return np.full((len(texts), 3), 0.3)


def test_constant_model_is_degenerate_not_crash():
    from qinglang_nlp.moderator import Moderator

    cfg = {"kind": "const", "categories": list(_Const.categories),
           "thresholds": {c: 0.5 for c in _Const.categories},
           "decision": {"review": {c: 0.5 for c in _Const.categories}, "block": {c: 0.9 for c in _Const.categories}}}
    m = Moderator(_Const(), cfg)
    e = evaluate_records(m, _recs(PAIRS), n_boot=50)["categories"]["vulgar"]
    assert e["at_model_threshold"]["f1"] == 0.0 and e["at_model_threshold"]["roc_auc"] == 0.5
    assert e["errors"]["false_positives"] == [] and len(e["errors"]["false_negatives"]) == 4


def test_best_threshold_and_bootstrap():
    y = np.array([0, 0, 1, 1, 1])
    s = np.array([0.1, 0.6, 0.5, 0.7, 0.9])
    assert best_f1_threshold(y, s) == pytest.approx(0.5)
    ci = bootstrap_ci(y, s, 0.5, 100)
    assert 0 <= ci["accuracy"][0] <= ci["accuracy"][1] <= 1


def test_reports_render_and_escape(tiny_model, tmp_path):
    curves = {}
    rep = evaluate_records(tiny_model, _recs(PAIRS), n_boot=20, curves=curves)
    paths = write_reports(tmp_path, {"fixture|tiny": rep}, {f"fixture|tiny|{c}": v for c, v in curves.items()},
                          command="qinglang evaluate fixture")
    page = paths["html"].read_text(encoding="utf-8")
    assert "<table class='metrics'>" in page and "fixture" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    try:
        import matplotlib  # noqa: F401

        assert "data:image/png;base64," in page
    except ImportError:
        assert "matplotlib is not installed" in page
    assert "| dataset |" in paths["md"].read_text(encoding="utf-8")


def test_published_baselines_are_well_formed():
    pub = published_baselines()
    assert pub and all({"dataset", "metric", "value", "source", "comparable"} <= set(p) for p in pub)
    assert all(p["comparable"] is False for p in pub)  # none of them is on our carved split
