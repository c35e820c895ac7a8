"""Our numpy metrics agree with scikit-learn; degenerate inputs do not crash."""
from __future__ import annotations

import numpy as np
import pytest

from qinglang_nlp.metrics import average_precision, binary_metrics, ece, roc_auc

skm = pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    s = np.round(np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1), 2)  # rounding makes ties
    m = binary_metrics(y, s, 0.5)
    pred = (s >= 0.5).astype(int)
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, s))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, s))


def test_constant_predictor_is_degenerate_not_crash():
    y = np.array([0, 1, 0, 1])
    m = binary_metrics(y, np.full(4, 0.3), 0.5)
    assert m["f1"] == 0.0 and m["precision"] == 0.0 and m["roc_auc"] == 0.5
    one_class = binary_metrics(np.zeros(4, int), np.full(4, 0.3), 0.5)
    assert one_class["roc_auc"] is None and one_class["pr_auc"] is None and one_class["accuracy"] == 1.0


def test_ece_perfect_and_bad():
    assert ece(np.array([0, 1]), np.array([0.0, 1.0])) == 0.0
    assert ece(np.array([0, 0]), np.array([0.95, 0.95])) == pytest.approx(0.95)
    assert roc_auc(np.array([1, 0]), np.array([0.9, 0.1])) == 1.0
    assert average_precision(np.array([1, 0]), np.array([0.1, 0.9])) == 0.5
