"""Checkpoint format, multi-task fine-tuning and calibration on tiny generated models (no real data needed)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("safetensors")

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from qinglang_nlp.train.model import (
    CHECKPOINT_FILES,
    MultiTaskClassifier,
    encode_batch,
    load_tokenizer,
    make_tiny_checkpoint,
)

TEXTS = ["黑粉都给我爬，刷榜打投冲冲冲", "今天天气真好", "网传某地发生地震，转发扩散！"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ck") / "tiny", seed=0, sublabels=("fq_war", "vu_abuse"))


def test_tiny_checkpoint_has_contract_files(tiny):
    for f in CHECKPOINT_FILES:
        assert (tiny / f).is_file(), f
    meta = json.loads((tiny / "qinglang.json").read_text(encoding="utf-8"))
    assert meta["categories"] == ["fanquan", "vulgar", "rumor"]
    assert meta["pooling"] in ("cls", "mean")
    assert set(meta["temperature"]) == set(meta["categories"])
    from safetensors.torch import load_file
    heads = load_file(str(tiny / "heads.safetensors"))
    cfg = json.loads((tiny / "config.json").read_text())
    assert tuple(heads["head.weight"].shape) == (3, cfg["hidden_size"])
    assert tuple(heads["head.bias"].shape) == (3,)
    assert tuple(heads["sub.weight"].shape) == (2, cfg["hidden_size"])


def test_tiny_tokenizer_splits_cjk_and_is_consistent(tiny):
    tok = load_tokenizer(tiny)
    cfg = json.loads((tiny / "config.json").read_text())
    assert tok.get_vocab_size() == cfg["vocab_size"] > 300
    enc = tok.encode("黑粉刷榜")
    assert enc.tokens[0] == "[CLS]" and enc.tokens[-1] == "[SEP]"
    assert enc.tokens[1:-1] == ["黑", "粉", "刷", "榜"]


def test_checkpoint_roundtrip_gives_same_logits(tiny, tmp_path):
    m = MultiTaskClassifier.from_checkpoint(tiny)
    ids, mask = encode_batch(m.tokenizer, TEXTS, 64, m.meta.pad_token_id)
    with torch.no_grad():
        a = m(ids, mask)
    assert a.shape == (3, 3)
    m.save_checkpoint(tmp_path / "again")
    m2 = MultiTaskClassifier.from_checkpoint(tmp_path / "again")
    with torch.no_grad():
        b = m2(ids, mask)
    assert torch.allclose(a, b, atol=1e-6)


def test_padding_does_not_change_logits(tiny):
    """Mean pooling must ignore pad positions: a text alone and padded in a batch score the same."""
    m = MultiTaskClassifier.from_checkpoint(tiny)
    with torch.no_grad():
        alone = m(*encode_batch(m.tokenizer, TEXTS[1:2], 64, 0))
        batched = m(*encode_batch(m.tokenizer, TEXTS, 64, 0))
    assert torch.allclose(alone[0], batched[1], atol=1e-5)


def test_encoder_loads_with_plain_transformers(tiny):
    from transformers import AutoModel
    enc = AutoModel.from_pretrained(str(tiny), add_pooling_layer=False)
    assert enc.config.num_hidden_layers == 2 and enc.config.hidden_size == 32


def test_missing_file_is_named(tiny, tmp_path):
    import shutil
    d = tmp_path / "broken"
    shutil.copytree(tiny, d)
    (d / "heads.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="heads.safetensors"):
        MultiTaskClassifier.from_checkpoint(d)


# --- fine-tuning on generated records ------------------------------------------------------------------------

def _records():
    from qinglang_nlp.datasets import Record

    def rec(text, src, i, **lab):
        labels = {"fanquan": None, "vulgar": None, "rumor": None}
        labels.update(lab)
        fine = {"subtype": lab.pop("subtype", None)} if "subtype" in labels else {}
        labels.pop("subtype", None)
        return Record(text, src, f"{src}:{i}", labels, fine)

    vul = ["你这个傻逼滚", "垃圾东西恶心死了", "脑残别说话", "贱狗滚出去"]
    ok = ["今天天气真好", "我们一起去学习", "这个电影不错", "明天见"]
    rum = ["网传地震转发扩散", "病毒谣言疫情假消息", "转发这条地震消息"]
    fq = ["黑粉控评打投冲", "集资应援刷榜", "撕逼引战拉踩"]
    train = {
        "cold": [rec(t, "cold", i, vulgar=1) for i, t in enumerate(vul * 6)]
                + [rec(t, "cold", 100 + i, vulgar=0) for i, t in enumerate(ok * 6)],
        "weibo21": [rec(t, "weibo21", i, rumor=1) for i, t in enumerate(rum * 6)]
                   + [rec(t, "weibo21", 100 + i, rumor=0) for i, t in enumerate(ok * 5)],
        "fanquan": [rec(t, "fanquan", i, fanquan=1, subtype="fq_war" if "撕" in t else "fq_datafraud")
                    for i, t in enumerate(fq * 6)]
                   + [rec(t, "fanquan", 100 + i, fanquan=0) for i, t in enumerate(ok * 4)],
    }
    dev = {k: v[::3] for k, v in train.items()}
    return {"train": train, "dev": dev, "eval": {}}


@pytest.fixture(scope="module")
def prepared(tiny, tmp_path_factory):
    from qinglang_nlp.train.finetune import load_config, prepare_records
    cfg = load_config(None, backbone=str(tiny), datasets={"cold": {}, "weibo21": {}, "fanquan": {}},
                      sublabels=["fq_war", "fq_datafraud"], max_length=32, weak_negatives={"fanquan": {"cold": 5}},
                      batch_size=8, epochs=2, checkpoint_every_s=0, run_log=None, text_prefix="query: ")
    out = prepare_records(_records(), cfg, load_tokenizer(tiny), tmp_path_factory.mktemp("prep") / "p")
    return cfg, out


def test_prepare_masks_unjudged_categories(prepared):
    from qinglang_nlp.train.finetune import PreparedData
    _, out = prepared
    d = PreparedData(out)
    src = [d.info["sources"][s] for s in d.source]
    cold_rows = [i for i, s in enumerate(src) if s == "cold"]
    # COLD judges only vulgar: rumor is always masked (-1); fanquan is -1 except the weak negatives (0)
    assert set(d.labels[cold_rows, 2].tolist()) == {-1}
    assert set(d.labels[cold_rows, 0].tolist()) == {-1, 0}
    cold_train = [i for i in cold_rows if d.split[i] == 0]
    assert (d.labels[cold_train, 0] == 0).sum() == 5
    fq_rows = [i for i, s in enumerate(src) if s == "fanquan" and d.split[i] == 0]
    assert set(d.labels[fq_rows, 0].tolist()) == {0, 1}
    # a fanquan positive has a one-hot sub-label, a negative all zeros
    pos = [i for i in fq_rows if d.labels[i, 0] == 1]
    assert all(d.sub[i].sum() == 1 for i in pos)
    assert all((d.sub[i] == 0).all() for i in fq_rows if d.labels[i, 0] == 0)
    assert d.info["normalize"] and d.info["text_prefix"] == "query: "
    assert set(d.info["data_hashes"]) >= {"cold/train", "cold/dev", "fanquan/train"}
    assert d.lengths.max() <= 32


def test_weak_negatives_are_sampled_per_category(tiny, tmp_path):
    # fanquan and rumor weak negatives from the same set: each category gets exactly its own count of zeros
    # (the rows sampled for one category are not made negatives of the other)
    from qinglang_nlp.train.finetune import PreparedData, load_config, prepare_records
    cfg = load_config(None, backbone=str(tiny), datasets={"cold": {}, "weibo21": {}, "fanquan": {}},
                      sublabels=["fq_war", "fq_datafraud"], max_length=32,
                      weak_negatives={"fanquan": {"cold": 5}, "rumor": {"cold": 9}},
                      batch_size=8, epochs=2, checkpoint_every_s=0, run_log=None, text_prefix="query: ")
    d = PreparedData(prepare_records(_records(), cfg, load_tokenizer(tiny), tmp_path / "p"))
    src = [d.info["sources"][s] for s in d.source]
    cold_train = [i for i, s in enumerate(src) if s == "cold" and d.split[i] == 0]
    assert (d.labels[cold_train, 0] == 0).sum() == 5
    assert (d.labels[cold_train, 2] == 0).sum() == 9
    assert set(d.labels[cold_train, 1].tolist()) == {0, 1}  # its own labels untouched
    weibo = [i for i, s in enumerate(src) if s == "weibo21" and d.split[i] == 0]
    assert set(d.labels[weibo, 2].tolist()) == {0, 1}  # a set that judges rumor keeps its labels


def test_stale_reasons_name_changed_data_and_config(prepared, monkeypatch):
    import qinglang_nlp.train.finetune as ft
    from qinglang_nlp.datasets import Record

    cfg, out = prepared
    recs = _records()
    monkeypatch.setattr(ft, "collect_records", lambda c, d=None: recs)
    assert ft.stale_reasons(cfg, out) == []
    assert ft.stale_reasons(dict(cfg, epochs=5, lr=1e-3), out) == []  # training-only keys do not matter
    assert ft.stale_reasons(dict(cfg, max_length=64), out) == [
        "config differs from the one the folder was prepared with in max_length"]
    # one more 饭圈 item (a new annotation round) makes the folder stale, naming the set
    recs["train"]["fanquan"] = recs["train"]["fanquan"] + [
        Record("你家哥哥塌房了还洗", "fanquan", "fanquan:999", {"fanquan": 1, "vulgar": None, "rumor": None}, {})]
    assert ft.stale_reasons(cfg, out) == ["fanquan/train: records changed"]
    assert ft.stale_reasons(cfg, out.parent / "nowhere") == [f"{out.parent / 'nowhere' / 'prepared.json'} does not exist"]


def test_masked_bce_ignores_unknown():
    from qinglang_nlp.train.finetune import masked_bce
    z = torch.tensor([[2.0, -1.0], [0.5, 3.0]])
    y_known = torch.tensor([[1, -1], [0, -1]])
    y_other = torch.tensor([[1, 0], [0, 1]])
    a = masked_bce(z, y_known)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor([2.0, 0.5]), torch.tensor([1.0, 0.0]))
    assert torch.allclose(a, ref)
    assert not torch.allclose(masked_bce(z, y_other), a)


def test_length_grouped_batches_cover_rows_once_and_are_deterministic():
    from qinglang_nlp.train.finetune import length_grouped_batches
    rows = np.arange(103)
    lengths = np.random.default_rng(0).integers(3, 200, 103)
    b1 = length_grouped_batches(rows, lengths, 8, seed=1, epoch=0, group=4)
    b2 = length_grouped_batches(rows, lengths, 8, seed=1, epoch=0, group=4)
    assert sorted(np.concatenate(b1).tolist()) == rows.tolist()
    assert all((x == y).all() for x, y in zip(b1, b2))
    # inside a group, lengths in a batch are close: padding waste is below random batching's
    waste = np.mean([lengths[b].max() - lengths[b].mean() for b in b1])
    rand = [rows[i:i + 8] for i in range(0, 103, 8)]
    assert waste < np.mean([lengths[b].max() - lengths[b].mean() for b in rand])


def test_train_resume_equals_uninterrupted_and_writes_checkpoint(prepared, tmp_path):
    """A run cut after 3 steps and resumed ends with exactly the weights of an uninterrupted run."""
    from qinglang_nlp.train.finetune import train
    cfg, out = prepared
    cfg = dict(cfg, run_log=str(tmp_path / "runlog.jsonl"), max_steps=6, epochs=3)
    full = train(cfg, out, tmp_path / "full", device="cpu", log=lambda s: None)
    cut = train(cfg, out, tmp_path / "cut", device="cpu", log=lambda s: None, stop_at_step=3)
    assert cut["metrics"]["training"]["steps"] == 3 and cut["metrics"]["training"]["stopped"]
    train(cfg, out, tmp_path / "cut", device="cpu", log=lambda s: None)
    a = MultiTaskClassifier.from_checkpoint(tmp_path / "full" / "model")
    b = MultiTaskClassifier.from_checkpoint(tmp_path / "cut" / "model")
    for (n, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.allclose(p, q, atol=1e-6), n
    assert full["metrics"]["training"]["steps"] == 6
    lines = (tmp_path / "runlog.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    rec = json.loads(lines[0])
    assert rec["prepared"]["data_hashes"] and rec["config"]["max_steps"] == 6
    meta = json.loads((tmp_path / "full" / "model" / "qinglang.json").read_text(encoding="utf-8"))
    assert meta["normalize"] and set(meta["temperature"]) == {"fanquan", "vulgar", "rumor"}
    assert set(meta["thresholds"]["vulgar"]) == {"review", "label", "block"}
    assert "calibration" in meta["metrics"]


def test_num_layers_keeps_the_first_layers_and_refuses_too_many(prepared, tmp_path):
    """``num_layers`` trains the first N encoder layers of the backbone (a CPU budget lever)."""
    from qinglang_nlp.train.finetune import train
    cfg, out = prepared
    cfg = dict(cfg, run_log=str(tmp_path / "runlog.jsonl"), max_steps=1, num_layers=1)
    train(cfg, out, tmp_path / "one", device="cpu", log=lambda s: None)
    m = MultiTaskClassifier.from_checkpoint(tmp_path / "one" / "model")
    assert m.encoder.config.num_hidden_layers == 1 and len(m.encoder.encoder.layer) == 1
    with pytest.raises(ValueError, match="num_layers must be in 1..2"):
        train(dict(cfg, num_layers=5), out, tmp_path / "five", device="cpu", log=lambda s: None)


def test_delta_travels_and_reassembles_to_the_same_model(prepared, tmp_path):
    """With frozen word embeddings, delta + backbone rebuild the checkpoint (fp16-rounded differences)."""
    from qinglang_nlp.train.finetune import assemble, train, write_delta
    cfg, out = prepared
    cfg = dict(cfg, run_log=str(tmp_path / "runlog.jsonl"), max_steps=2, freeze_word_embeddings=True)
    train(cfg, out, tmp_path / "run", device="cpu", log=lambda s: None)
    files = write_delta(tmp_path / "run" / "model", cfg["backbone"], tmp_path / "delta")
    assert len(files) <= 6 and all(f.stat().st_size < 16 * 2**20 for f in files)
    back = assemble(tmp_path / "delta", cfg["backbone"], tmp_path / "back")
    a = MultiTaskClassifier.from_checkpoint(tmp_path / "run" / "model")
    b = MultiTaskClassifier.from_checkpoint(back)
    ids, mask = encode_batch(a.tokenizer, TEXTS, 32, a.meta.pad_token_id)
    with torch.no_grad():
        assert torch.allclose(a(ids, mask), b(ids, mask), atol=1e-4)
    assert a.meta.thresholds == b.meta.thresholds
    # a delta cannot be put on another backbone
    other = make_tiny_checkpoint(tmp_path / "other", seed=1)
    with pytest.raises(ValueError, match="differs from the backbone"):
        assemble(tmp_path / "delta", other, tmp_path / "bad")


# --- calibration ---------------------------------------------------------------------------------------------

def test_temperature_scaling_recovers_a_known_temperature_and_lowers_ece():
    from qinglang_nlp.train.calibrate import ece, fit_temperature, sigmoid
    rng = np.random.default_rng(0)
    true = rng.normal(0, 2, 20000)
    y = (rng.random(20000) < sigmoid(true)).astype(float)
    over = true * 3.0  # an over-confident model: logits three times too large
    t = fit_temperature(over, y)
    assert t == pytest.approx(3.0, rel=0.1)
    assert ece(sigmoid(over / t), y) < ece(sigmoid(over), y) / 3


def test_thresholds_meet_precision_targets_or_never_fire():
    from qinglang_nlp.train.calibrate import calibrate_categories, threshold_for_precision
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 2000)
    p = np.clip(y * 0.4 + rng.random(2000) * 0.6, 0, 1)  # positives score higher on average
    r = threshold_for_precision(p, y, 0.9)
    sel = p >= r["threshold"]
    assert r["met"] and y[sel].mean() >= 0.9 and r["recall"] == pytest.approx(y[sel].sum() / y.sum())
    noise = rng.random(2000)
    r2 = threshold_for_precision(noise, y, 0.99)
    assert not r2["met"] and r2["threshold"] == 1.0  # unreachable precision: the label never fires
    z = np.log(p / (1 - p + 1e-9) + 1e-9)[:, None]
    cal = calibrate_categories(z, y[:, None], ["vulgar"], {"review": 0.7, "label": 0.85, "block": 0.95})
    th = cal["thresholds"]["vulgar"]
    assert th["review"] <= th["label"] <= th["block"]
    rep = cal["report"]["vulgar"]
    assert rep["ece_after"] <= rep["ece_before"] + 1e-9


def test_cli_train_transformer_prepares_trains_and_reuses_the_prepared_data(tiny, tmp_path, monkeypatch):
    from click.testing import CliRunner

    import qinglang_nlp.train.finetune as ft
    from qinglang_nlp.cli import main

    monkeypatch.setattr(ft, "collect_records", lambda c, d=None: _records())
    cfg = {"backbone": str(tiny), "datasets": {"cold": {}, "weibo21": {}, "fanquan": {}},
           "sublabels": ["fq_war", "fq_datafraud"], "max_length": 32, "weak_negatives": {"fanquan": {"cold": 5}},
           "batch_size": 8, "epochs": 1, "max_steps": 3, "checkpoint_every_s": 0,
           "run_log": str(tmp_path / "runlog.jsonl")}
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(cfg), encoding="utf-8")
    run = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", "--model", "transformer", "-o", str(run), "--config", str(cfg_path)])
    assert r.exit_code == 0, r.output
    assert "preparing" in r.output and "model written to" in r.output
    assert MultiTaskClassifier.from_checkpoint(run / "model") is not None
    # a second call finds the prepared data current and the run finished: nothing is prepared again
    r = CliRunner().invoke(main, ["train", "--model", "transformer", "-o", str(run), "--config", str(cfg_path)])
    assert r.exit_code == 0, r.output
    assert "preparing" not in r.output


def test_cli_train_transformer_needs_a_config(tmp_path):
    from click.testing import CliRunner

    from qinglang_nlp.cli import main

    r = CliRunner().invoke(main, ["train", "--model", "transformer", "-o", str(tmp_path / "run")])
    assert r.exit_code == 2 and "--config" in r.output
