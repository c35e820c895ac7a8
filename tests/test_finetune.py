"""Checkpoint format, multi-task fine-tuning and calibration on tiny generated models (no real data needed)."""
from __future__ import annotations

import json
import os

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
