"""Weak negatives of the baseline/stacker row collection: comments from sets about other topics, judging only the
category they are weak negatives for (fanquan, and since session 7 rumor), on the dataset fixtures of
test_datasets."""
from __future__ import annotations

import pytest
from test_datasets import _write_fixture

from qinglang_nlp.datasets import load_dataset
from qinglang_nlp.train.baseline import TrainConfig, collect_rows

pytestmark = pytest.mark.filterwarnings("ignore:.*text_ref could not be resolved")

UNJUDGED = {"fanquan": None, "vulgar": None, "rumor": None}


def rows_of(tmp_path, split="train", **cfg):
    return collect_rows(split, TrainConfig(**cfg), tmp_path, lambda msg: None)


def test_rumor_weak_negatives_are_comments_judging_only_rumor(tmp_path):
    _write_fixture(tmp_path)
    rows = rows_of(tmp_path, rumor_weak_negatives={"cold": 6, "swsr": 3}, fanquan_weak_negatives={"cold": 4})
    weak = [r for r in rows if r[2].endswith(":weakneg-rumor")]
    assert sorted(r[2] for r in weak) == ["cold:weakneg-rumor"] * 6 + ["swsr:weakneg-rumor"] * 3
    assert all(r[1] == {**UNJUDGED, "rumor": 0} for r in weak)
    cold = {r.text for r in load_dataset("cold", "train", tmp_path)}
    swsr = {r.text for r in load_dataset("swsr", "train", tmp_path)}
    assert all(r[0] in (cold if r[2].startswith("cold") else swsr) for r in weak)
    assert len({r[0] for r in weak}) == 9  # sampled without replacement
    # the fanquan weak negatives are the rows they were before rumor ones existed
    before = rows_of(tmp_path, rumor_weak_negatives={}, fanquan_weak_negatives={"cold": 4})
    fq = [r for r in rows if r[2].endswith(":weakneg")]
    assert len(fq) == 4 and all(r[1] == {**UNJUDGED, "fanquan": 0} for r in fq)
    assert fq == [r for r in before if r[2].endswith(":weakneg")]
    assert not any(r[2].endswith(":weakneg-rumor") for r in before)


def test_dev_takes_a_sixth_and_sets_that_judge_rumor_get_no_weak_label(tmp_path):
    _write_fixture(tmp_path)
    dev = rows_of(tmp_path, "dev", rumor_weak_negatives={"chnci": 30}, fanquan_weak_negatives={})
    assert sum(r[2] == "chnci:weakneg-rumor" for r in dev) == 5
    # weibo21 is a rumor set: its rows judge rumor already, none becomes a weak negative
    rows = rows_of(tmp_path, rumor_weak_negatives={"weibo21": 5}, fanquan_weak_negatives={})
    assert not any(r[2].startswith("weibo21:weakneg") for r in rows)
    assert any(r[2] == "weibo21" and r[1]["rumor"] is not None for r in rows)


def test_the_default_config_has_rumor_weak_negatives_from_comment_sets():
    assert set(TrainConfig()["rumor_weak_negatives"]) == {"cold", "swsr", "chnci"}
