"""Dataset adapters on small fixtures written here, plus the carved split rule."""
from __future__ import annotations

import json

import pytest

from qinglang_nlp.datasets import (DATASETS, carve_bucket, is_carved_test, iter_dataset, load_dataset,
                                   load_generic)
from qinglang_nlp.errors import DataError

TEXTS = [f"第{i}条评论，内容各不相同{i * 7}" for i in range(60)]


def _write_fixture(root):
    (root / "cold").mkdir()
    rows = "\ufeff,split,topic,label,TEXT\n" + "".join(f"{i},train,race,{i % 2},{t}\n" for i, t in enumerate(TEXTS))
    (root / "cold" / "train.csv").write_text(rows, encoding="utf-8")
    (root / "cold" / "dev.csv").write_text("\ufeff,split,topic,label,TEXT\n1,dev,region,1,开发集的一句话\n",
                                           encoding="utf-8")
    (root / "toxicn").mkdir()
    (root / "toxicn" / "train.json").write_text(json.dumps(
        [{"content": t, "toxic": i % 2, "toxic_type": i % 3, "expression": 0, "target": [0, 0, 0, 0, 0],
          "topic": "race", "platform": "zhihu"} for i, t in enumerate(TEXTS)], ensure_ascii=False), encoding="utf-8")
    (root / "swsr").mkdir()
    hdr = "index,weibo_id,comment_text,gender,location,like,date,label,category,target\n"
    for fs in ("train", "dev"):
        (root / "swsr" / f"SexComment_{fs}.csv").write_text(
            hdr + "".join(f"{i},w{i},{t}{fs},女,北京,1,01/01/2020 00:00,{i % 2},{'MA' if i % 2 else ''},I\n"
                          for i, t in enumerate(TEXTS[:10])), encoding="utf-8")
    (root / "chnci").mkdir()
    hdr = "incident,incident_is_cyberbullying,genre,timestamp,platform,label1,label2,label3,diff,label,content\n"
    for fs in ("train", "dev"):
        (root / "chnci" / f"{fs}.csv").write_text(
            hdr + "".join(f"某事件,1,entainment,2024/9/26 6:12,wb,1,1,1.0,0,{i % 2},{t}{fs}\n"
                          for i, t in enumerate(TEXTS[:10])), encoding="utf-8")
    for name, key, files in (("weibo21", "content", ("train.jsonl", "val.jsonl")),
                             ("weibo16", "text", ("train.jsonl", "dev.jsonl")),
                             ("ced", "text", ("train.jsonl", "dev.jsonl"))):
        (root / name).mkdir()
        for f in files:
            (root / name / f).write_text("".join(
                json.dumps({key: t + f, "label": i % 2, "eid": str(i), "id": f"c{i}", "category": "文体娱乐"},
                           ensure_ascii=False) + "\n" for i, t in enumerate(TEXTS[:10])), encoding="utf-8")


def test_every_adapter_reads_its_fixture(tmp_path):
    _write_fixture(tmp_path)
    for name in DATASETS:
        all_recs = [r for s in ("train", "dev", "test") for r in iter_dataset(name, s, tmp_path)]
        assert all_recs, name
        cat = "rumor" if name in ("weibo21", "weibo16", "ced") else "vulgar"
        for r in all_recs:
            assert r.source == name and r.text
            assert r.labels[cat] in (0, 1)
            assert r.labels["fanquan"] is None  # not judged ≠ negative
            other = "vulgar" if cat == "rumor" else "rumor"
            assert r.labels[other] is None


def test_splits_are_disjoint_and_follow_the_hash(tmp_path):
    _write_fixture(tmp_path)
    for name in ("cold", "toxicn"):
        parts = {s: [r.text for r in load_dataset(name, s, tmp_path)] for s in ("train", "dev", "test")}
        assert not set(parts["train"]) & set(parts["test"])
        assert not set(parts["dev"]) & set(parts["test"])
        assert all(is_carved_test(t) for t in parts["test"])
        assert not any(is_carved_test(t) for t in parts["train"] + parts["dev"])
    # ToxiCN has no dev file: dev is carved from train by bucket 1
    dev = load_dataset("toxicn", "dev", tmp_path)
    assert dev and all(carve_bucket(r.text) == 1 for r in dev)


def test_carve_bucket_is_stable():
    assert carve_bucket("你好") == carve_bucket("你好")
    counts = [0] * 10
    for t in TEXTS * 5 + [str(i) for i in range(2000)]:
        counts[carve_bucket(t)] += 1
    assert min(counts) > 100  # roughly uniform


def test_fine_labels_kept(tmp_path):
    _write_fixture(tmp_path)
    r = next(iter_dataset("toxicn", "train", tmp_path))
    assert {"toxic_type", "expression", "target"} <= set(r.fine)
    r = next(iter_dataset("chnci", "train", tmp_path))
    assert r.fine["genre"] == "entainment"


def test_missing_data_and_bad_names(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_dataset("cold", "train", tmp_path / "nope")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imdb", "train", tmp_path)
    with pytest.raises(ValueError, match="split"):
        load_dataset("cold", "validation", tmp_path)


def test_generic_adapter(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"t": "你好", "y": 0}\n{"t": "滚", "y": 1}\n', encoding="utf-8")
    recs = load_generic(p, "t", "y", "vulgar")
    assert [r.labels["vulgar"] for r in recs] == [0, 1]
    c = tmp_path / "x.csv"
    c.write_text("text,label\n谣言来了,1\n", encoding="utf-8")
    assert load_generic(c, category="rumor")[0].labels["rumor"] == 1
    c.write_text("text,label\n坏标签,7\n", encoding="utf-8")
    with pytest.raises(DataError, match="row 1: label 7"):
        load_generic(c)
    with pytest.raises(DataError, match="no field 'body'"):
        load_generic(p, "body", "y")


@pytest.mark.data
def test_real_shared_data_counts(shared_data):
    n = sum(1 for _ in iter_dataset("weibo16", "test", shared_data))
    assert 200 < n < 600
