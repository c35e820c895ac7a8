"""The committed 饭圈 corpus splits and their loader (training/data/fanquan, qinglang_nlp.fanquan_corpus)."""
from __future__ import annotations

import csv
import json
import sys
import warnings
from collections import Counter
from pathlib import Path

import pytest

from qinglang_nlp.datasets import data_dir, is_carved_test
from qinglang_nlp.errors import DataError
from qinglang_nlp.fanquan_corpus import (
    ADJUDICABLE,
    SPLITS,
    SUBTYPES,
    UnresolvedTextWarning,
    apply_adjudication,
    corpus_dir,
    dedup_key,
    load_fanquan,
    near_duplicate_groups,
    near_duplicate_pairs,
    read_adjudication,
    read_jsonl,
    resolve_texts,
    text_sha256,
    validate,
    validate_record,
)

CORPUS = corpus_dir()
sys.path.insert(0, str(CORPUS.parent.parent.parent / "training"))  # training/ is not a package
import build_fanquan
import fanquan_agreement

SHARED = data_dir()
needs_data = pytest.mark.skipif(not (SHARED / "chnci" / "train.csv").is_file(),
                                reason=f"shared data not found at {SHARED} (set QINGLANG_DATA): "
                                       "text_ref rows cannot be resolved")

# Issue 5 asks for >= 4,000 items, >= 1,500 positives and >= 120 positives per sub-label. Adjudication under
# GUIDELINE v2 left 1,481 positives; raw/written_short_v2.jsonl brought them back above the target, so the
# floors are the issue targets again (plus real-data floors), and a rebuild that loses items or positives fails.
ISSUE_TARGETS = {"items": 4000, "positives": 1500, "per_sublabel": 120}
FLOORS = {**ISSUE_TARGETS, "real_items": 2400, "real_positives": 190}


@pytest.fixture(scope="module")
def splits() -> dict[str, list[dict]]:
    return {s: read_jsonl(CORPUS / f"{s}.jsonl") for s in SPLITS}


def _all(splits: dict[str, list[dict]]) -> list[tuple[str, dict]]:
    return [(s, r) for s in SPLITS for r in splits[s]]


# --- committed split files ---------------------------------------------------------------------------

def test_split_files_follow_the_schema(splits):
    for s in SPLITS:
        validate(splits[s], source=f"{s}.jsonl")
        assert splits[s], f"{s}.jsonl is empty"


def test_ids_are_unique_across_splits(splits):
    ids = Counter(r["id"] for _, r in _all(splits))
    assert not [i for i, n in ids.items() if n > 1]


def test_labels_take_only_allowed_values(splits):
    for _, r in _all(splits):
        assert r["fanquan"] in (0, 1) and r["vulgar"] in (0, 1, None) and r["rumor"] in (0, 1, None)
        assert r["subtype"] in ("none", *SUBTYPES)
        assert (r["subtype"] == "none") == (r["fanquan"] == 0), r["id"]


def test_only_licensed_text_is_committed(splits):
    for _, r in _all(splits):
        if r["origin"].startswith("real:"):
            ds = r["origin"].split(":")[1]
            assert (r["text"] is not None) == (ds in ("cold", "swsr")), r["id"]
            if r["text"] is None:
                assert r["text_ref"]["dataset"] == ds and len(r["text_ref"]["sha256"]) == 64


def test_no_text_sits_in_two_splits(splits):
    where: dict[str, set[str]] = {}
    for s, r in _all(splits):
        sha = text_sha256(r["text"]) if r["text"] is not None else r["text_ref"]["sha256"]
        where.setdefault(sha, set()).add(s)
        if r["text"] is not None:
            where.setdefault("key:" + dedup_key(r["text"]), set()).add(s)
    assert not {k: v for k, v in where.items() if len(v) > 1}


def _assert_no_cross_split_near_duplicates(items: list[tuple[str, dict]]) -> None:
    keys = [dedup_key(r["text"]) for _, r in items]
    cross = [(items[i][1]["id"], items[j][1]["id"]) for i, j in near_duplicate_pairs(keys)
             if items[i][0] != items[j][0]]
    assert not cross, f"near-duplicates in different splits: {cross[:5]}"


def test_no_near_duplicates_across_splits_among_committed_texts(splits):
    _assert_no_cross_split_near_duplicates([(s, r) for s, r in _all(splits) if r["text"] is not None])


def test_splits_are_70_15_15_and_every_large_stratum_reaches_dev_and_test(splits):
    n = sum(len(v) for v in splits.values())
    for s, share in (("train", .70), ("dev", .15), ("test", .15)):
        assert abs(len(splits[s]) / n - share) < 0.02, (s, len(splits[s]), n)
    strata = Counter()
    for s, r in _all(splits):
        strata[(r["subtype"], r["origin"] == "written", s)] += 1
    for sub in ("none", *SUBTYPES):
        for written in (False, True):
            total = sum(strata[(sub, written, s)] for s in SPLITS)
            if total >= 20:
                assert all(strata[(sub, written, s)] >= 0.08 * total for s in ("dev", "test")), (sub, written)


def test_coverage_meets_the_floors(splits):
    items = [r for _, r in _all(splits)]
    pos = Counter(r["subtype"] for r in items if r["fanquan"])
    real = [r for r in items if r["origin"] != "written"]
    assert len(items) >= FLOORS["items"]
    assert sum(pos.values()) >= FLOORS["positives"]
    assert min(pos[s] for s in SUBTYPES) >= FLOORS["per_sublabel"], pos
    assert len(real) >= FLOORS["real_items"]
    assert sum(r["fanquan"] for r in real) >= FLOORS["real_positives"]


def test_every_style_of_the_issue_is_present(splits):
    styles = Counter(r["style"] for _, r in _all(splits))
    for st in ("weibo_comment", "chaohua_post", "fan_group_msg", "wechat_article"):
        assert styles[st] > 0, st
    for _, r in _all(splits):
        if r["style"] == "wechat_article":
            assert 150 <= len(r["text"]) <= 800, (r["id"], len(r["text"]))


def test_committed_real_texts_are_not_in_a_carved_test_split(splits):
    for _, r in _all(splits):
        if r["origin"] != "written" and r["text"] is not None:
            assert not is_carved_test(r["text"]), r["id"]


# --- loader on a small fixture (no shared data needed) ------------------------------------------------

def _item(i: int, **kw) -> dict:
    base = {"id": f"real-chnci-train-{i:06d}", "text": None, "fanquan": 0, "subtype": "none", "vulgar": 0,
            "rumor": 0, "origin": f"real:chnci:train.csv:{i}", "style": "douyin_comment"}
    base.update(kw)
    return base


@pytest.fixture()
def fixture_dirs(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    (data / "chnci").mkdir(parents=True)
    texts = ["对家粉丝又来控评了，姐妹们冲她超话", "哥哥新歌太好听了，循环一整天", "黑粉都给我爬"]
    with open(data / "chnci" / "train.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["incident", "platform", "content"])
        for t in texts:
            w.writerow(["x", "dy", t])
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = [
        _item(0, fanquan=1, subtype="fq_war", text_ref={"dataset": "chnci", "file": "train.csv", "row": 0,
                                                         "sha256": text_sha256(texts[0])}),
        _item(1, text_ref={"dataset": "chnci", "file": "train.csv", "row": 1, "sha256": text_sha256("别的文本")}),
        _item(7, text_ref={"dataset": "chnci", "file": "train.csv", "row": 7, "sha256": text_sha256(texts[2])}),
        {"id": "ws-00001", "text": "今晚8点轮博，每人至少30条，没打卡的踢了", "fanquan": 1, "subtype": "fq_datafraud",
         "vulgar": 0, "rumor": 0, "origin": "written", "style": "fan_group_msg"},
    ]
    for s in SPLITS:
        (corpus / f"{s}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in (rows if s == "train" else rows[3:])),
            encoding="utf-8")
    return data, corpus


def test_load_resolves_text_refs_and_drops_changed_or_missing_rows(fixture_dirs):
    data, corpus = fixture_dirs
    with pytest.warns(UnresolvedTextWarning, match=r"dropped 2 of 4"):
        items = load_fanquan("train", data_dir=data, corpus_dir=corpus)
    assert [r["id"] for r in items] == ["real-chnci-train-000000", "ws-00001"]
    assert items[0]["text"] == "对家粉丝又来控评了，姐妹们冲她超话"
    _, failed = resolve_texts(read_jsonl(corpus / "train.jsonl"), data)
    assert [why for _, why in failed] == ["chnci/train.csv row 1 changed (sha256 mismatch)",
                                         "chnci/train.csv has no row 7"]


def test_load_without_shared_data_drops_every_text_ref_row(fixture_dirs, tmp_path):
    _, corpus = fixture_dirs
    with pytest.warns(UnresolvedTextWarning, match="dropped 3 of 4"):
        items = load_fanquan("train", data_dir=tmp_path / "nowhere", corpus_dir=corpus)
    assert [r["id"] for r in items] == ["ws-00001"]


def test_load_rejects_unknown_split_and_broken_files(fixture_dirs):
    data, corpus = fixture_dirs
    with pytest.raises(ValueError, match="split must be one of"):
        load_fanquan("holdout", data_dir=data, corpus_dir=corpus)
    (corpus / "dev.jsonl").write_text('{"id": "ws-1"\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"dev.jsonl:1: invalid JSON"):
        load_fanquan("dev", data_dir=data, corpus_dir=corpus)


@pytest.mark.parametrize("change, message", [
    ({"subtype": "none", "fanquan": 1}, "does not agree with fanquan=1"),
    ({"subtype": "fq_gossip", "fanquan": 1}, "subtype 'fq_gossip' is not"),
    ({"vulgar": 2}, "vulgar must be 0, 1 or null"),
    ({"style": "tieba_post"}, "style 'tieba_post' is not one of"),
    ({"text": "这是CHNCI的原文"}, "must not be committed (licence)"),
    ({"text_ref": None}, "text is null and there is no text_ref"),
    ({"origin": "chnci:train.csv:3"}, "origin must be 'written' or"),
])
def test_validate_names_the_item_and_the_problem(change, message):
    rec = _item(3, text_ref={"dataset": "chnci", "file": "train.csv", "row": 3, "sha256": "0" * 64})
    rec.update(change)
    assert any(message in e for e in validate_record(rec)), validate_record(rec)
    with pytest.raises(DataError, match="real-chnci-train-000003"):
        validate([rec])


def test_validate_reports_duplicate_ids():
    rec = {"id": "ws-00009", "text": "我买了一张专辑，歌真的好听", "fanquan": 0, "subtype": "none", "vulgar": 0,
           "rumor": 0, "origin": "written", "style": "weibo_comment"}
    with pytest.raises(DataError, match="duplicate id"):
        validate([rec, dict(rec)])


def test_near_duplicate_pairs_finds_small_edits_and_not_different_texts():
    a = "内部人士爆料，某某已经秘密结婚生子，公司压着不让说，大家懂的都懂"
    keys = [dedup_key(t) for t in (a, a.replace("，", " ") + "！！", a + "啊", "哥哥新歌太好听了，循环一整天")]
    assert near_duplicate_pairs(keys) == [(0, 1), (0, 2), (1, 2)]


# --- with the shared data -----------------------------------------------------------------------------

@needs_data
def test_every_committed_text_ref_resolves_and_stays_disjoint(splits):
    loaded: list[tuple[str, dict]] = []
    for s in SPLITS:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UnresolvedTextWarning)
            items = load_fanquan(s)
        assert len(items) == len(splits[s])
        loaded += [(s, r) for r in items]
    keys: dict[str, set[str]] = {}
    for s, r in loaded:
        keys.setdefault(dedup_key(r["text"]), set()).add(s)
        if r["origin"] != "written":
            assert not is_carved_test(r["text"]), r["id"]
    assert not {k: v for k, v in keys.items() if len(v) > 1}
    _assert_no_cross_split_near_duplicates(loaded)


@needs_data
def test_committed_splits_match_a_rebuild_from_raw_adjudication_and_current_splits():
    files, _ = build_fanquan.build(CORPUS, None, 2021, 0.8)
    stale = [s for s in SPLITS if (CORPUS / f"{s}.jsonl").read_text(encoding="utf-8") != files[s]]
    assert not stale, (f"{stale} differ from raw/*.jsonl + adjudication.jsonl: "
                       "rerun .venv/bin/python training/build_fanquan.py")


# --- adjudication -------------------------------------------------------------------------------------

def test_committed_splits_carry_the_adjudicated_labels(splits):
    rows = read_adjudication(CORPUS / "adjudication.jsonl")
    assert rows, "adjudication.jsonl is empty"
    by_id = {r["id"]: r for _, r in _all(splits)}
    raw = {r["id"]: r for f in sorted((CORPUS / "raw").glob("*.jsonl")) for r in read_jsonl(f)}
    b_ids = {r["id"] for r in read_jsonl(CORPUS / "annotations_b.jsonl")}
    for row in rows:
        assert row["id"] in by_id and row["id"] in raw, row["id"]
        assert set(row["final"]) <= set(ADJUDICABLE) and row["fields"] == list(row["final"]), row["id"]
        assert all(by_id[row["id"]][k] == v for k, v in row["final"].items()), row["id"]
        assert row["source"] in ("pass-b", "pass-b-r3", "v2-sweep") and row.get("rule") and row["reason"], row["id"]
        if row["source"] in ("pass-b", "pass-b-r3"):  # a disagreement between the passes: both labels recorded, and they differ
            assert row["id"] in b_ids and row["b"] is not None and row["a"] != row["b"], row["id"]
        assert row["a"] == {k: raw[row["id"]][k] for k in row["final"]}, f"{row['id']}: raw changed since"


def _ws(i: int, text: str, subtype: str = "none", **kw) -> dict:
    rec = {"id": f"ws-{i:05d}", "text": text, "fanquan": int(subtype != "none"), "subtype": subtype,
           "vulgar": 0, "rumor": 0, "origin": "written", "style": "weibo_comment"}
    rec.update(kw)
    return rec


def test_adjudication_final_labels_win_and_problems_are_named(tmp_path):
    recs = [_ws(1, "你家哥哥就是个糊咖，别来碰瓷", "fq_war"), _ws(2, "兄弟姐妹们三连走一波，这条视频必须上热门",
                                                    "fq_datafraud")]
    rows = [{"id": "ws-00002", "fields": ["fanquan", "subtype"], "a": {"fanquan": 1, "subtype": "fq_datafraud"},
             "final": {"fanquan": 0, "subtype": "none"}, "reason": "no fandom frame"},
            {"id": "ws-00001", "fields": ["vulgar"], "a": {"vulgar": 1}, "final": {"vulgar": 1},
             "reason": "糊咖 used as an insult"}]
    out, changes, stale = apply_adjudication(recs, rows)
    assert [(r["fanquan"], r["subtype"], r["vulgar"]) for r in out] == [(1, "fq_war", 1), (0, "none", 0)]
    assert recs[1]["fanquan"] == 1, "the input records must not be modified"
    assert changes == Counter({"items": 2, "fanquan": 1, "subtype": 1, "vulgar": 1}) and stale == ["ws-00001"]
    with pytest.raises(DataError, match="ws-00002 gives an invalid item"):
        apply_adjudication(recs, [{**rows[0], "final": {"subtype": "none"}}])
    with pytest.raises(DataError, match="ws-00009: no such item"):
        apply_adjudication(recs, [{**rows[0], "id": "ws-00009"}])
    f = tmp_path / "adjudication.jsonl"
    f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in (rows[0], {**rows[0], "reason": "x"})),
                 encoding="utf-8")
    with pytest.raises(DataError, match="ws-00002 is adjudicated twice"):
        read_adjudication(f)
    f.write_text(json.dumps({**rows[0], "final": {"style": "douyin_comment"}}, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DataError, match=r"final sets \['style'\]"):
        read_adjudication(f)
    assert read_adjudication(tmp_path / "absent.jsonl") == []


# --- sticky split assignment ----------------------------------------------------------------------------

def test_existing_items_keep_their_split_and_new_items_fill_the_shares():
    texts = [f"第{i}号：对家粉丝又来控评了，姐妹们冲她超话，今天必须把热评{i * 7 % 13}条拿下" for i in range(200)]
    recs = [_ws(i, t, "fq_datafraud" if i % 2 else "none") for i, t in enumerate(texts)]
    groups = near_duplicate_groups([dedup_key(t) for t in texts])
    first, how = build_fanquan.assign_splits(recs[:100], groups[:100], 2021)
    assert how == Counter({"new": 100})
    previous = {r["id"]: s for r, s in zip(recs[:100], first)}
    # relabel some old items, then add 100 new ones: no old item moves
    relabelled = [dict(r, subtype="fq_war") if i % 5 == 0 and r["fanquan"] else r for i, r in enumerate(recs)]
    second, how = build_fanquan.assign_splits(relabelled, groups, 2021, previous)
    assert second[:100] == first and how["kept"] == 100 and how["new"] + how["joined"] == 100
    for sub in ("none", "fq_datafraud"):
        n = Counter(s for r, s in zip(recs, second) if r["subtype"] == sub)
        assert abs(n["train"] - 70) <= 3 and abs(n["dev"] - 15) <= 3 and abs(n["test"] - 15) <= 3, (sub, n)
    # a seed change reshuffles only what is new
    third, _ = build_fanquan.assign_splits(recs, groups, 7, previous)
    assert third[:100] == first


def test_a_new_near_duplicate_joins_the_split_of_its_group():
    a = "内部人士爆料，某某已经秘密结婚生子，公司压着不让说，大家懂的都懂"
    recs = [_ws(1, a, "fq_rumor", rumor=1), _ws(2, "哥哥新歌太好听了，循环一整天"), _ws(3, a + "！！", "fq_rumor", rumor=1)]
    groups = near_duplicate_groups([dedup_key(r["text"]) for r in recs])
    assert groups[0] == groups[2] != groups[1]
    out, how = build_fanquan.assign_splits(recs, groups, 2021, {"ws-00001": "test", "ws-00002": "train"})
    assert out == ["test", "train", "test"] and how == Counter({"kept": 2, "joined": 1})


# --- agreement (training/fanquan_agreement.py) ----------------------------------------------------------

def test_cohen_kappa_matches_sklearn_and_handles_constant_labels():
    import random

    from sklearn.metrics import cohen_kappa_score

    rng = random.Random(5)
    labels = ["none", "fq_war", "fq_abuse", "fq_rumor"]
    a = [rng.choice(labels) for _ in range(300)]
    b = [x if rng.random() < 0.8 else rng.choice(labels) for x in a]
    assert fanquan_agreement.cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert fanquan_agreement.cohen_kappa([0, 0, 0], [0, 0, 0]) == 1.0
    with pytest.raises(ValueError, match="equal length"):
        fanquan_agreement.cohen_kappa([0, 1], [0])


@needs_data
def test_datasheet_agreement_block_is_what_the_script_prints():
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    block = readme.split(fanquan_agreement.BEGIN, 1)[1].split(fanquan_agreement.END, 1)[0]
    assert block == "\n" + fanquan_agreement.report(CORPUS), \
        "README agreement block is stale: rerun .venv/bin/python training/fanquan_agreement.py"
