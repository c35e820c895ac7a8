"""The stacked model kind: members combined by a logistic stacker fit on dev rows."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from conftest import TINY, tiny_arrays

import qinglang_nlp as ql
from qinglang_nlp.classifier import load_classifier
from qinglang_nlp.errors import ModelLoadError
from qinglang_nlp.modelio import read_config
from qinglang_nlp.normalize import NormalizeConfig, normalize
from qinglang_nlp.stacked import StackedClassifier
from qinglang_nlp.taxonomy import CATEGORIES
from qinglang_nlp.train.baseline import TrainConfig, export_baseline, fit_baseline, to_classifier
from qinglang_nlp.train.stack import build_stacked, fit_stacker


def _rows() -> list[tuple[str, dict, str]]:
    # the TINY rows twice over (5 folds need both classes in every training fold)
    return [(t, {c: (None if v < 0 else v) for c, v in zip(CATEGORIES, vals)}, "tiny")
            for _ in range(2) for t, *vals in TINY]


@pytest.fixture(scope="module")
def second_member(tmp_path_factory) -> Path:
    """A second baseline, on character unigrams and bigrams only."""
    texts, y = tiny_arrays()
    cfg = TrainConfig(min_df=1, C=1.0, ngram_range=[1, 2])
    vec, models = fit_baseline([normalize(t).text for t in texts], y, cfg)
    config = {"kind": "baseline", "name": "tiny2", "version": "0", "categories": list(CATEGORIES),
              "thresholds": {c: 0.5 for c in CATEGORIES},
              "decision": {"review": {c: 0.5 for c in CATEGORIES}, "block": {c: 0.9 for c in CATEGORIES}},
              "normalize": NormalizeConfig().to_dict(), "baseline": {"ngram_range": [1, 2], "sublinear_tf": True}}
    out = tmp_path_factory.mktemp("tiny2")
    export_baseline(to_classifier(vec, models, CATEGORIES, cfg), out, config)
    return out


@pytest.fixture(scope="module")
def stacked_dir(tiny_model_dir, second_member, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stacked") / "model"
    build_stacked({"a": tiny_model_dir, "b": second_member}, out, dev_rows=_rows(), log=lambda _: None)
    return out


def test_stacker_weights_follow_the_informative_member():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    good = (2 * y - 1) * 2.0 + rng.normal(0, 1, 2000)     # informative logit
    noise = rng.normal(0, 1, 2000)                         # uninformative logit
    w, _, oof = fit_stacker(np.c_[good, noise], y)
    assert w[0] > 1.0 and abs(w[1]) < 0.2
    assert ((oof >= 0.5) == y).mean() > 0.9


def test_stacked_folder_scores_as_the_weighted_members(stacked_dir, tiny_model_dir, second_member):
    cfg = read_config(stacked_dir)
    assert cfg["kind"] == "stacked" and cfg["members"] == ["a", "b"]
    assert set(cfg["thresholds"]) == set(CATEGORIES) and set(cfg["decision"]) >= {"review", "block"}
    man = json.loads((stacked_dir / "manifest.json").read_text(encoding="utf-8"))
    assert "a/coef.npy" in man["files"] and "b/config.json" in man["files"]
    texts = [normalize(t).text for t, *_ in TINY[:8]] + [normalize("今天天气不错").text]
    clf = load_classifier(stacked_dir, cfg)
    assert isinstance(clf, StackedClassifier)
    got = clf.predict_scores(texts)
    pa = load_classifier(tiny_model_dir, read_config(tiny_model_dir)).predict_scores(texts)
    pb = load_classifier(second_member, read_config(second_member)).predict_scores(texts)
    z = np.zeros_like(got)
    for j, c in enumerate(CATEGORIES):
        w, b = cfg["stacker"][c]["weights"], cfg["stacker"][c]["bias"]
        la = np.log(np.clip(pa[:, j], 1e-6, 1 - 1e-6)) - np.log1p(-np.clip(pa[:, j], 1e-6, 1 - 1e-6))
        lb = np.log(np.clip(pb[:, j], 1e-6, 1 - 1e-6)) - np.log1p(-np.clip(pb[:, j], 1e-6, 1 - 1e-6))
        z[:, j] = b + w[0] * la + w[1] * lb
    assert np.allclose(got, 1 / (1 + np.exp(-z)), atol=1e-9)


def test_stacked_model_serves_the_public_contract(stacked_dir):
    m = ql.load(stacked_dir, lexicon=False)
    rs = m.predict_batch(["集资还差三万，哥哥的生日应援不能输给对家", "晚饭吃了面条，很满足", ""], batch_size=2)
    assert len(rs) == 3
    for r in rs:
        assert set(r.scores) == set(CATEGORIES) and all(0.0 <= v <= 1.0 for v in r.scores.values())
        assert r.decision in ("pass", "review", "block")
    assert rs[0].scores["fanquan"] > rs[1].scores["fanquan"]


def test_a_corrupt_member_file_is_refused(stacked_dir, tmp_path):
    bad = tmp_path / "m"
    shutil.copytree(stacked_dir, bad)
    with open(bad / "b" / "coef.npy", "r+b") as f:
        f.seek(200)
        f.write(b"\x00\x01\x02")
    with pytest.raises(ModelLoadError, match="coef.npy"):
        ql.load(bad, lexicon=False)


def test_members_that_normalise_differently_are_refused(tiny_model_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    cfg = read_config(other)
    cfg["normalize"]["traditional"] = False
    (other / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="normalises differently"):
        build_stacked({"a": tiny_model_dir, "b": other}, tmp_path / "out", dev_rows=_rows(), log=lambda _: None)


def test_restore_switch_is_saved_in_the_stacked_config(tiny_model_dir, second_member, tmp_path):
    build_stacked({"a": tiny_model_dir, "b": second_member}, tmp_path / "r", dev_rows=_rows(), restore=True,
                  log=lambda _: None)
    assert read_config(tmp_path / "r")["normalize"]["restore"] is True
    assert read_config(tmp_path / "r" / "a")["normalize"].get("restore", False) is False


def test_balanced_threshold_weighs_a_small_group_as_much_as_a_large_one():
    from qinglang_nlp.train.stack import balanced_threshold

    # "written": 40 positives scored high, 60 negatives low; "real": 5 positives in the middle, 45 negatives low
    rng = np.random.default_rng(1)
    s = np.r_[rng.uniform(0.7, 1.0, 40), rng.uniform(0.0, 0.4, 60), rng.uniform(0.45, 0.6, 5), rng.uniform(0, 0.3, 45)]
    y = np.r_[np.ones(40), np.zeros(60), np.ones(5), np.zeros(45)].astype(int)
    g = np.array(["written"] * 100 + ["real"] * 50)
    t, f1 = balanced_threshold(s, y, g)
    assert t <= s[100:105].min() and f1 == {"real": 1.0, "written": 1.0}
    # a group without positives is left out of the mean; no positives at all is an error
    t2, f2 = balanced_threshold(s[:100], y[:100], np.array(["written"] * 100))
    assert set(f2) == {"written"} and 0.4 < t2 <= s[:40].min()
    with pytest.raises(ValueError, match="positives"):
        balanced_threshold(s[40:100], y[40:100], g[40:100])


def test_version_is_written_and_the_cli_passes_it(tiny_model_dir, second_member, tmp_path, monkeypatch):
    from click.testing import CliRunner

    import qinglang_nlp.train.baseline as tb
    import qinglang_nlp.train.stack as ts
    from qinglang_nlp.cli import main

    cfg = build_stacked({"a": tiny_model_dir, "b": second_member}, tmp_path / "v", dev_rows=_rows(),
                        version="2026.11.29.2", log=lambda _: None)
    assert cfg["version"] == read_config(tmp_path / "v")["version"] == "2026.11.29.2"
    seen = {}
    monkeypatch.setattr(ts, "build_stacked", lambda *a, **k: seen.update(stack=k.get("version")))
    monkeypatch.setattr(tb, "train_baseline", lambda *a, **k: seen.update(train=k.get("version")))
    r = CliRunner().invoke(main, ["stack", "--member", f"a={tiny_model_dir}", "-o", str(tmp_path / "o"),
                                  "--version", "7.7"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["train", "--model", "baseline", "-o", str(tmp_path / "b"), "--version", "0.2.0"])
    assert r.exit_code == 0, r.output
    assert seen == {"stack": "7.7", "train": "0.2.0"}
