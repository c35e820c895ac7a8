"""Export a trained checkpoint to a shipped ONNX model folder, with int8 quantisation and a parity gate.

Steps (``qinglang export``):

1. load the checkpoint (:class:`~qinglang_nlp.train.model.MultiTaskClassifier`, torch fp32) — the reference;
2. prune the vocabulary to the tokens a corpus uses plus every single-character and every all-CJK token (the
   embedding matrix of a multilingual encoder is most of its size); tokenisation of the corpus is unchanged,
   which is checked on the parity texts;
3. ``torch.onnx.export`` (opset 17, dynamic batch and sequence axes);
4. graph optimisation with onnxruntime's transformer optimiser (attention / layer-norm / GELU fusion);
5. compact variants — dynamic int8 per-tensor and per-channel, static QDQ int8, and ``fp16`` (weights stored
   as float16 and folded back to float32 at load, int8 word embeddings) — each measured for speed and parity;
6. the parity gate: on the parity texts (default 2,000 from the carved test splits) a variant must agree with
   the fp32 PyTorch labels on at least 99.5 % of texts per category and lose at most 0.005 ROC-AUC; the
   fastest variant that passes is shipped, and the export fails loudly if none does;
7. the folder: ``model.onnx``, ``tokenizer.json``, ``config.json``, ``manifest.json`` (sha256 of every file,
   versions, training-data hashes, metrics), loaded back once through :class:`OnnxClassifier` as a check.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import QinglangError
from ..metrics import roc_auc
from ..modelio import read_config, sha256_file, write_manifest
from ..normalize import NormalizeConfig, normalize
from ..onnx_classifier import default_threads, pad_batch

__all__ = ["VARIANTS", "VARIANT_BASE", "ExportError", "ParityReport", "export", "parity_report", "prune_tokenizer"]

#: compact variants tried by default, in the order they are measured (``emb8`` is left out: it is fp16's
#: speed at twice its size)
VARIANTS = ("dynamic", "dynamic_per_channel", "qdq", "fp16")
#: every variant ``_quantize`` builds, and the optimised graph it starts from: ``full`` (attention, embeddings,
#: layer norm and GELU fused), ``no_attention`` (attention left as MatMuls, for static QDQ), ``fused_gather``
#: (attention fused, the word-embedding Gather left visible so its table can be stored in int8).
#: ``fp16``: weights stored as float16 and folded back to float32 at load (fp32 kernels), word embeddings int8
#: per row; ``emb8``: only the word embeddings int8, matrices float32.
VARIANT_BASE = {"dynamic": "full", "dynamic_per_channel": "full", "qdq": "no_attention",
                "fp16": "fused_gather", "emb8": "fused_gather"}
MIN_AGREEMENT = 0.995
MAX_AUC_DROP = 0.005
MAX_BATCH_DRIFT = 1e-4
#: dynamic int8 computes activation scales per run, so those models score one window per run (no padding
#: either); fp32 and static QDQ have fixed scales and batch freely
RUN_BATCH_SIZE = {"dynamic": 1, "dynamic_per_channel": 1}


class ExportError(QinglangError):
    """The export cannot produce a model folder that matches its checkpoint (parity, size or format)."""


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ExportError("qinglang export needs torch and transformers: pip install .[train]") from None
    return torch


# ---------------------------------------------------------------------------------------------- parity
@dataclass
class ParityReport:
    """Agreement of one candidate's probabilities with the fp32 PyTorch reference, per category."""

    n: int
    agreement: dict[str, float]
    auc_ref: dict[str, float | None]
    auc: dict[str, float | None]
    max_abs_diff: float
    failures: list[str] = field(default_factory=list)
    batch_drift: float | None = None

    @property
    def passed(self) -> bool:
        """True when every category meets the gate."""
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary for the manifest."""
        r = lambda v: None if v is None else round(float(v), 6)
        return {"n": self.n, "agreement": {c: r(v) for c, v in self.agreement.items()},
                "auc_fp32_torch": {c: r(v) for c, v in self.auc_ref.items()},
                "auc": {c: r(v) for c, v in self.auc.items()},
                "max_abs_prob_diff": r(self.max_abs_diff), "batch_drift": r(self.batch_drift),
                "passed": self.passed, "failures": self.failures}


def parity_report(ref: np.ndarray, cand: np.ndarray, categories: Sequence[str], thresholds: dict[str, float],
                  gold: np.ndarray | None = None, min_agreement: float = MIN_AGREEMENT,
                  max_auc_drop: float = MAX_AUC_DROP) -> ParityReport:
    """Compare candidate probabilities with the reference: label agreement at each category's threshold and,
    where ``gold`` labels (1/0, -1 = unknown) have both classes, the ROC-AUC drop."""
    if ref.shape != cand.shape or ref.shape[1] != len(categories):
        raise ValueError(f"shapes differ: reference {ref.shape}, candidate {cand.shape}, {len(categories)} categories")
    agreement, auc_ref, auc = {}, {}, {}
    failures = []
    for c, cat in enumerate(categories):
        t = thresholds[cat]
        agreement[cat] = float(np.mean((ref[:, c] >= t) == (cand[:, c] >= t))) if len(ref) else 1.0
        if agreement[cat] < min_agreement:
            failures.append(f"{cat}: label agreement {agreement[cat]:.4f} < {min_agreement}")
        auc_ref[cat] = auc[cat] = None
        if gold is not None:
            known = gold[:, c] >= 0
            auc_ref[cat] = roc_auc(gold[known, c], ref[known, c])
            auc[cat] = roc_auc(gold[known, c], cand[known, c])
            if auc_ref[cat] is not None and auc[cat] is not None and auc_ref[cat] - auc[cat] > max_auc_drop:
                failures.append(f"{cat}: ROC-AUC {auc[cat]:.4f} vs fp32 {auc_ref[cat]:.4f} "
                                f"(drop {auc_ref[cat] - auc[cat]:.4f} > {max_auc_drop})")
    diff = float(np.abs(ref - cand).max()) if len(ref) else 0.0
    return ParityReport(len(ref), agreement, auc_ref, auc, diff, failures)


def default_parity_records(n: int = 2000, data_dir: str | os.PathLike | None = None) -> list[Any]:
    """``n`` records from the carved test splits of the trainable datasets, chosen by a fixed text hash and
    spread evenly over the datasets that are present."""
    from ..datasets import TRAINABLE, load_dataset

    per: list[list[Any]] = []
    for name in TRAINABLE:
        try:
            recs = load_dataset(name, "test", data_dir)
        except (QinglangError, FileNotFoundError, OSError):
            continue
        recs.sort(key=lambda r: hashlib.sha256(r.text.encode("utf-8")).hexdigest())
        if recs:
            per.append(recs)
    if not per:
        raise ExportError("no parity texts: the shared data folder is missing (set QINGLANG_DATA) and no "
                          "parity_texts were given")
    out: list[Any] = []
    k = 0
    while len(out) < n and any(k < len(p) for p in per):  # round robin over datasets
        out.extend(p[k] for p in per if k < len(p))
        k += 1
    return out[:n]


# ---------------------------------------------------------------------------------------------- vocabulary
def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return 0x3400 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x2FA1F


def _always_kept_ids(tok: Any) -> set[int]:
    """Ids kept whatever the corpus: one-character tokens (optionally after a word-start or continuation
    marker), so unseen text never turns into unknowns, and every all-CJK piece, so Chinese text the corpus
    missed is still cut as in training."""
    keep = set()
    for piece, i in tok.get_vocab(with_added_tokens=False).items():
        core = piece.removeprefix("▁").removeprefix("##")
        if len(core) <= 1 or all(_is_cjk(c) for c in core):
            keep.add(i)
    return keep


def prune_tokenizer(tok: Any, keep: Iterable[int]) -> tuple[Any, np.ndarray]:
    """A tokenizer holding only the ``keep`` ids (plus special tokens), renumbered in the old order.

    Returns ``(tokenizer, old_ids)`` where ``old_ids[new_id] = old_id``. Supports WordPiece and Unigram
    models (BERT and XLM-R / e5 tokenizers); pruning a BPE model would also need its merges rewritten.
    """
    from tokenizers import Tokenizer

    spec = json.loads(tok.to_str())
    mtype = spec["model"]["type"]
    keep = {int(i) for i in keep} | {a["id"] for a in spec.get("added_tokens", [])}
    if mtype == "Unigram":
        unk = spec["model"].get("unk_id")
        if unk is not None:
            keep.add(int(unk))
    elif mtype == "WordPiece":
        unk_tok = spec["model"].get("unk_token")
        if unk_tok in spec["model"]["vocab"]:
            keep.add(int(spec["model"]["vocab"][unk_tok]))
    else:
        raise ExportError(f"vocabulary pruning supports WordPiece and Unigram tokenizers, not {mtype}")
    old_ids = np.array(sorted(keep), dtype=np.int64)
    new_of = {int(o): n for n, o in enumerate(old_ids)}
    if mtype == "Unigram":
        vocab = spec["model"]["vocab"]
        spec["model"]["vocab"] = [vocab[o] for o in old_ids]
        if spec["model"].get("unk_id") is not None:
            spec["model"]["unk_id"] = new_of[int(spec["model"]["unk_id"])]
    else:
        spec["model"]["vocab"] = {p: new_of[i] for p, i in spec["model"]["vocab"].items() if i in new_of}
    for a in spec.get("added_tokens", []):
        a["id"] = new_of[a["id"]]
    pp = spec.get("post_processor")
    for proc in (pp.get("processors", [pp]) if pp else []):
        for key in ("cls", "sep"):
            if key in proc:
                proc[key] = [proc[key][0], new_of[proc[key][1]]]
        for st in proc.get("special_tokens", {}).values():
            st["ids"] = [new_of[i] for i in st["ids"]]
    if spec.get("padding"):
        spec["padding"]["pad_id"] = new_of[spec["padding"]["pad_id"]]
    return Tokenizer.from_str(json.dumps(spec, ensure_ascii=False)), old_ids


def _prune_embeddings(model: Any, old_ids: np.ndarray) -> None:
    """Keep only the rows ``old_ids`` of the encoder's input embedding; renumber the pad id."""
    torch = _torch()
    enc = model.encoder
    emb = enc.get_input_embeddings()
    new_of = {int(o): n for n, o in enumerate(old_ids)}
    pad_old = int(model.meta.pad_token_id)
    pad_new = new_of[pad_old]
    new = torch.nn.Embedding(len(old_ids), emb.embedding_dim, padding_idx=pad_new)
    new.weight.data.copy_(emb.weight.data[torch.as_tensor(old_ids)])
    enc.set_input_embeddings(new)
    enc.config.vocab_size = len(old_ids)
    enc.config.pad_token_id = pad_new
    if hasattr(enc, "embeddings") and hasattr(enc.embeddings, "padding_idx"):  # RoBERTa/XLM-R positions
        enc.embeddings.padding_idx = pad_new
    model.meta.pad_token_id = pad_new


# ---------------------------------------------------------------------------------------------- onnx steps
def _export_onnx(model: Any, path: Path, opset: int) -> None:
    torch = _torch()
    model.eval()
    if hasattr(model.encoder, "set_attn_implementation"):
        # eager attention traces to the MatMul/Softmax pattern the optimiser fuses into one Attention op;
        # the SDPA graph of transformers 5 is left unfused
        model.encoder.set_attn_implementation("eager")
    ids = torch.full((2, 16), 5, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            "logits": {0: "batch"}}
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about python booleans in transformers' mask code
        torch.onnx.export(model, (ids, mask), str(path), input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], dynamic_axes=axes, opset_version=opset, dynamo=False)


def _optimize(src: Path, dst: Path, config: Any, attention: bool = True,
              embed_layer_norm: bool | None = None) -> dict[str, int]:
    """Fuse attention, layer norm and GELU with onnxruntime's transformer optimiser; returns fusion counts.

    ``attention=False`` leaves the attention MatMuls unfused, which static QDQ quantisation needs.
    ``embed_layer_norm`` (default: as ``attention``) fuses the embeddings into one EmbedLayerNormalization;
    off, the word-embedding Gather stays visible so its table can be stored in int8.
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    opts = FusionOptions("bert")
    opts.enable_attention = attention
    opts.enable_embed_layer_norm = attention if embed_layer_norm is None else embed_layer_norm
    opt = optimize_model(str(src), model_type="bert", num_heads=int(config.num_attention_heads),
                         hidden_size=int(config.hidden_size), opt_level=1, optimization_options=opts)
    opt.save_model_to_file(str(dst))
    return {k: int(v) for k, v in opt.get_fused_operator_statistics().items() if v}


def _unique(graph: Any, stem: str) -> str:
    names = {i.name for i in graph.initializer} | {o for n in graph.node for o in n.output}
    k, name = 0, stem
    while name in names:
        k += 1
        name = f"{stem}_{k}"
    return name


def _int8_word_embeddings(model: Any) -> str | None:
    """Store the word-embedding table of ``model`` (ONNX ModelProto, edited in place) in int8, one symmetric
    scale per row; returns the table's name, or None when no Gather reads a float table.

    The word embeddings are the largest 2-D float table read by a ``Gather`` on axis 0 (and nothing else).
    ``Gather(table, ids)`` becomes ``Mul(Cast(Gather(table_int8, ids)), Gather(scales, ids))``: only the
    gathered rows are dequantised, so the runtime cost is one multiply per embedding value of the batch, and
    the error is at most half a step of each row's own scale (no activation is quantised).
    """
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    users: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            users[i] = users.get(i, 0) + 1
    tables = [n for n in g.node if n.op_type == "Gather" and n.input and n.input[0] in inits
              and next((a.i for a in n.attribute if a.name == "axis"), 0) == 0
              and len(inits[n.input[0]].dims) == 2 and inits[n.input[0]].data_type == TensorProto.FLOAT
              and users[n.input[0]] == 1]
    if not tables:
        return None
    n = max(tables, key=lambda x: inits[x.input[0]].dims[0])
    t = inits[n.input[0]]
    w = numpy_helper.to_array(t).astype(np.float32)
    scale = np.maximum(np.abs(w).max(axis=1, keepdims=True), 1e-12) / 127.0
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    qn, sn = _unique(g, t.name + "_int8"), _unique(g, t.name + "_row_scale")
    g.initializer.remove(t)
    g.initializer.extend([numpy_helper.from_array(q, qn), numpy_helper.from_array(scale.astype(np.float32), sn)])
    out = n.output[0]
    gq, gs, cast = (_unique(g, f"{out}_{x}") for x in ("q", "scale", "float"))
    new = [helper.make_node("Gather", [qn, n.input[1]], [gq], name=n.name + "_int8"),
           helper.make_node("Gather", [sn, n.input[1]], [gs], name=n.name + "_row_scale"),
           helper.make_node("Cast", [gq], [cast], to=TensorProto.FLOAT, name=n.name + "_cast"),
           helper.make_node("Mul", [cast, gs], [out], name=n.name + "_dequant")]
    k = list(g.node).index(n)
    g.node.remove(n)
    for j, node in enumerate(new):
        g.node.insert(k + j, node)
    return t.name


def _fp16_storage(model: Any, min_size: int = 4096) -> int:
    """Store the float initializers of ``model`` with at least ``min_size`` elements as float16, each behind a
    ``Cast`` back to float32 (edited in place); returns how many were converted.

    onnxruntime folds a Cast of a constant when it loads the model, so the weights are float32 again in
    memory and every kernel (fused attention, GEMM) runs exactly as in the fp32 graph: the file is half the
    size and the only error is float16 rounding of the weights (relative 2^-11).
    """
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    casts, done = [], 0
    for t in list(g.initializer):
        if t.data_type != TensorProto.FLOAT or int(np.prod(t.dims)) < min_size:
            continue
        w = numpy_helper.to_array(t)
        if np.abs(w).max() >= 65504:  # would overflow float16: keep this one in float32
            continue
        hn = _unique(g, t.name + "_fp16")
        g.initializer.remove(t)
        g.initializer.append(numpy_helper.from_array(w.astype(np.float16), hn))
        casts.append(helper.make_node("Cast", [hn], [t.name], to=TensorProto.FLOAT, name=hn + "_cast"))
        done += 1
    old = list(g.node)
    del g.node[:]
    g.node.extend(casts + old)  # casts first: the graph stays topologically sorted
    return done


def batch_drift(clf: Any, seqs: list[list[int]], n: int = 16) -> float:
    """Largest change of a probability when a text is scored in a batch instead of alone.

    Dynamic int8 takes one activation scale per tensor, i.e. per batch, so a text's score depends on its
    neighbours; the library's contract (``predict`` == ``predict_batch`` to 1e-4) needs this to be ~0.
    Batches are formed as ``clf`` forms them (``clf.batch_size``).
    """
    sample = seqs[:: max(1, len(seqs) // n)][:n]
    together = _onnx_logits(clf, sample)[0]
    alone = np.concatenate([clf.run_ids([s]) for s in sample])
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))
    return float(np.abs(sig(together) - sig(alone)).max())


class _Calibration:
    """Calibration batches for static QDQ quantisation (onnxruntime ``CalibrationDataReader``)."""

    def __init__(self, batches: list[dict[str, np.ndarray]]):
        self._it = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def _quantize(src: Path, dst: Path, variant: str, calib: list[dict[str, np.ndarray]]) -> None:
    import logging

    from onnx import TensorProto
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    # fused contrib ops (Attention, SkipLayerNormalization) have no ONNX shape inference: tell the quantiser
    # their outputs are float; its advice to "pre-process" does not apply to an optimised transformer graph
    extra = {"MatMulConstBOnly": True, "DefaultTensorType": TensorProto.FLOAT}
    logging.getLogger().setLevel(logging.ERROR)

    if variant in ("fp16", "emb8"):
        import onnx

        model = onnx.load(str(src))
        if _int8_word_embeddings(model) is None:
            # not an ExportError: this variant is skipped like any the runtime cannot build; the others still race
            raise ValueError(f"{variant}: the graph has no word-embedding Gather to store in int8 ({src.name})")
        if variant == "fp16":
            _fp16_storage(model)
        onnx.save(model, str(dst))
    elif variant in ("dynamic", "dynamic_per_channel"):
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8,
                         per_channel=variant == "dynamic_per_channel", extra_options=extra)
    elif variant == "qdq":
        quantize_static(str(src), str(dst), _Calibration(calib), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        op_types_to_quantize=["MatMul", "Gather"], calibrate_method=CalibrationMethod.MinMax,
                        extra_options={**extra, "ActivationSymmetric": False})
    else:
        raise ExportError(f"unknown quantisation variant {variant!r}; known: {list(VARIANT_BASE)}")


# ---------------------------------------------------------------------------------------------- export
def _untruncated(tok: Any) -> Any:
    """A copy of ``tok`` without truncation or padding."""
    from tokenizers import Tokenizer

    t = Tokenizer.from_str(tok.to_str())
    t.no_padding()
    t.no_truncation()
    return t


def _encode(tok: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids with special tokens, truncated to ``max_length`` — exactly what training fed the encoder."""
    t = _untruncated(tok)
    t.enable_truncation(max_length=max_length)
    return [e.ids for e in t.encode_batch(list(texts))]


def _batches(seqs: list[list[int]], batch_size: int) -> Iterable[list[int]]:
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    for lo in range(0, len(order), batch_size):
        yield order[lo:lo + batch_size]


def _torch_logits(model: Any, seqs: list[list[int]], pad_id: int, batch_size: int = 64) -> np.ndarray:
    torch = _torch()
    out = np.zeros((len(seqs), len(model.meta.categories)), np.float32)
    with torch.inference_mode():
        for idx in _batches(seqs, batch_size):
            ids, mask = pad_batch([seqs[i] for i in idx], pad_id)
            out[idx] = model(torch.from_numpy(ids), torch.from_numpy(mask)).float().numpy()
    return out


def _onnx_logits(clf: Any, seqs: list[list[int]]) -> tuple[np.ndarray, float, float]:
    """Logits from an OnnxClassifier session (batched as it batches), the wall seconds and the CPU seconds of
    this process it took (CPU time ranks variants fairly on shared cores, where wall time depends on others)."""
    out = np.zeros((len(seqs), len(clf.categories)), np.float32)
    t0, c0 = time.perf_counter(), time.process_time()
    for idx in _batches(seqs, clf.batch_size):
        out[idx] = clf.run_ids([seqs[i] for i in idx])
    return out, time.perf_counter() - t0, time.process_time() - c0


def _records(parity_texts: Sequence[Any] | None, n: int,
             categories: Sequence[str]) -> tuple[list[str], np.ndarray | None]:
    recs = default_parity_records(n) if parity_texts is None else list(parity_texts)[:n]
    texts = [r if isinstance(r, str) else r.text for r in recs]
    if not texts:
        raise ExportError("parity gate needs at least one text")
    if all(isinstance(r, str) for r in recs):
        return texts, None
    gold = np.full((len(recs), len(categories)), -1, np.int8)
    for i, r in enumerate(recs):
        labels = getattr(r, "labels", {}) or {}
        for c, cat in enumerate(categories):
            if labels.get(cat) is not None:
                gold[i, c] = int(labels[cat])
    return texts, gold


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("qinglang-nlp", "torch", "transformers", "onnx", "onnxruntime", "tokenizers", "numpy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def export(checkpoint_dir: str | os.PathLike, out_dir: str | os.PathLike, quantize: str = "int8",
           parity_texts: Sequence[Any] | None = None, *, name: str = "default", version: str | None = None,
           n_parity: int = 2000, variants: Sequence[str] = VARIANTS, optimize: bool = True,
           prune_vocab: bool = True, vocab_texts: Iterable[str] | None = None, opset: int = 17,
           min_agreement: float = MIN_AGREEMENT, max_auc_drop: float = MAX_AUC_DROP,
           max_batch_drift: float = MAX_BATCH_DRIFT,
           max_mb: float | None = None, threads: int | None = None, overwrite: bool = False,
           log: Callable[[str], None] = print) -> dict[str, Any]:
    """Export ``checkpoint_dir`` to the model folder ``out_dir``; returns the manifest written.

    ``quantize``: ``"int8"`` (try ``variants``, ship the fastest that passes the parity gate) or ``"none"``
    (ship the optimised fp32 graph, still gated). ``parity_texts``: strings or records with ``.text`` and
    ``.labels`` (default: ``n_parity`` texts of the carved test splits). ``vocab_texts``: the corpus whose
    tokens the pruned vocabulary keeps (default: the trainable datasets' train/dev/test texts when the data
    is present, plus the parity texts). ``max_mb``: refuse a folder larger than this.
    """
    if quantize not in ("int8", "none"):
        raise ValueError(f"quantize must be 'int8' or 'none', got {quantize!r}")
    unknown = [v for v in variants if v not in VARIANT_BASE]
    if quantize == "int8" and unknown:
        raise ExportError(f"unknown quantisation variant(s) {unknown}; known: {list(VARIANT_BASE)}")
    _torch()
    from ..onnx_classifier import OnnxClassifier, WindowConfig
    from .model import MultiTaskClassifier

    ckpt, out = Path(checkpoint_dir), Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"{out} exists and is not empty (pass overwrite=True / --overwrite)")
    t_start = time.perf_counter()
    model = MultiTaskClassifier.from_checkpoint(ckpt)
    meta = model.meta
    cats = list(meta.categories)
    tok = model.tokenizer
    norm_cfg = NormalizeConfig.from_dict(meta.normalize)
    thresholds = {c: float(meta.thresholds[c]["label"]) for c in cats}

    raw_texts, gold = _records(parity_texts, n_parity, cats)
    texts = [meta.text_prefix + normalize(t, norm_cfg).text for t in raw_texts]
    seqs_ref = _encode(tok, texts, meta.max_length)
    log(f"reference: fp32 PyTorch on {len(texts)} parity texts")
    ref_logits = _torch_logits(model, seqs_ref, int(meta.pad_token_id))
    temps = np.array([float(meta.temperature.get(c, 1.0)) for c in cats], np.float32)
    ref = 1.0 / (1.0 + np.exp(-ref_logits / temps))

    vocab_info: dict[str, Any] = {"size": tok.get_vocab_size(), "pruned": False}
    seqs = seqs_ref
    if prune_vocab:
        keep = _always_kept_ids(tok)
        # a character-level vocabulary (BERT-Chinese style) has nothing worth pruning: skip the corpus pass
        corpus = (() if len(keep) >= 0.9 * tok.get_vocab_size()
                  else vocab_texts if vocab_texts is not None else _default_vocab_texts(norm_cfg))
        n_corpus = 0
        whole = _untruncated(tok)  # long corpus texts reach the inference path whole, cut into windows
        for chunk in _chunks(corpus, 4096):
            n_corpus += len(chunk)
            chunk = [meta.text_prefix + t for t in chunk]
            for enc in whole.encode_batch(chunk):
                keep.update(enc.ids)
        for s in seqs_ref:
            keep.update(s)
        if len(keep) < 0.9 * tok.get_vocab_size():
            new_tok, old_ids = prune_tokenizer(tok, keep)
            new_of = np.full(tok.get_vocab_size(), -1, np.int64)
            new_of[old_ids] = np.arange(len(old_ids))
            seqs = _encode(new_tok, texts, meta.max_length)
            same = sum(list(new_of[np.array(a)]) == b for a, b in zip(seqs_ref, seqs))
            if same != len(seqs):
                raise ExportError(f"vocabulary pruning changed the tokenisation of {len(seqs) - same} of "
                                  f"{len(seqs)} parity texts (a bug: corpus tokens must all be kept)")
            _prune_embeddings(model, old_ids)
            tok = new_tok
            vocab_info = {"size": len(old_ids), "pruned": True, "original_size": len(new_of),
                          "corpus_texts": n_corpus}
            log(f"vocabulary: kept {len(old_ids)} of {len(new_of)} tokens ({n_corpus} corpus texts)")

    threads = threads or default_threads()
    work = Path(tempfile.mkdtemp(prefix="qinglang-export-"))
    try:
        fp32 = work / "fp32.onnx"
        _export_onnx(model, fp32, opset)
        # the fully fused graph serves fp32 and dynamic int8; each variant starts from its VARIANT_BASE graph
        kinds = ["full"] + sorted({VARIANT_BASE[v] for v in variants} - {"full"} if quantize == "int8" else ())
        bases: dict[str, Path] = dict.fromkeys(kinds, fp32)
        fusion: dict[str, dict[str, int]] = {}
        if optimize:
            for kind in kinds:
                try:
                    fusion[kind] = _optimize(fp32, work / f"opt_{kind}.onnx", model.encoder.config,
                                             attention=kind != "no_attention", embed_layer_norm=kind == "full")
                    bases[kind] = work / f"opt_{kind}.onnx"
                except Exception as e:  # noqa: BLE001 -- the optimiser's pattern matching is best-effort
                    log(f"graph optimisation ({kind}) skipped: {type(e).__name__}: {e}")
        log(f"exported ONNX opset {opset}; fused operators: {fusion.get('full') or 'none'}")

        def candidate(path: Path, batch_size: int) -> OnnxClassifier:
            return OnnxClassifier(path, tok, cats, max_length=meta.max_length, text_prefix=meta.text_prefix,
                                  temperature=meta.temperature, thresholds=thresholds,
                                  pad_token_id=meta.pad_token_id, threads=threads, batch_size=batch_size)

        calib = []
        if quantize == "int8" and "qdq" in variants:
            sample = seqs[:: max(1, len(seqs) // 128)][:128]
            calib = [{"input_ids": ids, "attention_mask": mask} for ids, mask in
                     (pad_batch([sample[i] for i in idx], meta.pad_token_id) for idx in _batches(sample, 16))]
        tried: list[dict[str, Any]] = []
        for variant in (["fp32"] if quantize == "none" else ["fp32", *variants]):
            path = bases["full"] if variant == "fp32" else work / f"{variant}.onnx"
            try:
                if variant != "fp32":
                    _quantize(bases[VARIANT_BASE[variant]], path, variant, calib)
                clf = candidate(path, RUN_BATCH_SIZE.get(variant, 64))
                logits, secs, cpu = _onnx_logits(clf, seqs)
                drift = batch_drift(clf, seqs)
            except ExportError:
                raise
            except Exception as e:  # noqa: BLE001 -- a variant the runtime cannot build or run is reported, not fatal
                log(f"{variant}: failed ({type(e).__name__}: {e})")
                tried.append({"variant": variant, "error": f"{type(e).__name__}: {e}"})
                continue
            rep = parity_report(ref, 1.0 / (1.0 + np.exp(-logits / temps)), cats, thresholds, gold,
                                min_agreement, max_auc_drop)
            rep.batch_drift = drift
            if drift > max_batch_drift:
                rep.failures.append(f"scores depend on the batch: max |Δp| {drift:.2g} between a text scored alone "
                                    f"and in a batch (limit {max_batch_drift:g}; predict must equal predict_batch)")
            row = {"variant": variant, "path": path, "clf": clf, "batch_size": clf.batch_size,
                   "bytes": path.stat().st_size,
                   "seconds": round(secs, 3), "texts_per_s": round(len(seqs) / secs, 1),
                   "cpu_seconds": round(cpu, 3), "texts_per_cpu_s": round(len(seqs) / max(cpu, 1e-9), 1),
                   "parity": rep.to_dict()}
            tried.append(row)
            log(f"{variant}: {row['bytes'] / 1e6:.1f} MB, {row['texts_per_s']} texts/s ({row['texts_per_cpu_s']} "
                f"per CPU-second), agreement "
                f"{min(rep.agreement.values()):.4f}, max |Δp| {rep.max_abs_diff:.4f}, batch drift {drift:.1e}"
                + ("" if rep.passed else f" — FAILS: {'; '.join(rep.failures)}"))
        shippable = [r for r in tried if "parity" in r and r["parity"]["passed"]
                     and (quantize == "none" or r["variant"] != "fp32")]
        if not shippable:
            lines = [f"  {r['variant']}: " + ("; ".join(r["parity"]["failures"]) or "passed")
                     if "parity" in r else f"  {r['variant']}: {r['error']}" for r in tried]
            raise ExportError("parity gate failed: no candidate matches the fp32 PyTorch model within "
                              f"agreement >= {min_agreement} and AUC drop <= {max_auc_drop}:\n" + "\n".join(lines))
        if max_mb is not None:  # a variant whose model file plus the tokenizer breaks the budget cannot ship
            tok_bytes = len(tok.to_str(pretty=True).encode("utf-8")) + 8_000  # + config.json and manifest.json (a few kB)
            fits = [r for r in shippable if r["bytes"] + tok_bytes <= max_mb * 1e6]
            for r in shippable:
                if r not in fits:
                    log(f"{r['variant']}: passes, but {r['bytes'] / 1e6:.1f} MB + the tokenizer exceeds the budget of "
                        f"{max_mb} MB")
            shippable = fits or shippable  # none fits: the size check below fails loudly
        # fastest in CPU time: on shared cores the wall time measures the neighbours as much as the model
        best = max(shippable, key=lambda r: r["texts_per_cpu_s"])
        log(f"shipping {best['variant']}")

        # ---- the folder
        folder = work / "folder"  # built and checked here; moved to ``out`` only when it passes
        folder.mkdir()
        shutil.copyfile(best["path"], folder / "model.onnx")
        tok.save(str(folder / "tokenizer.json"))
        config = {
            "kind": "onnx", "name": name, "version": version or time.strftime("%Y.%m.%d", time.gmtime()),
            "categories": cats, "thresholds": thresholds,
            "decision": {k: {c: float(meta.thresholds[c][k]) for c in cats} for k in ("review", "block")},
            "normalize": norm_cfg.to_dict(), "max_length": int(meta.max_length), "text_prefix": meta.text_prefix,
            "pad_token_id": int(meta.pad_token_id), "temperature": {c: float(meta.temperature[c]) for c in cats},
            "window": WindowConfig(overlap=min(64, int(meta.max_length) // 4)).to_dict(), "model_file": "model.onnx", "quantization": best["variant"],
            "pooling": meta.pooling, "runtime": {"batch_size": best["batch_size"]},
        }
        (folder / "config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        best_logits = _onnx_logits(best["clf"], seqs[:64])[0]
        for r in tried:
            r.pop("path", None)
            r.pop("clf", None)
        manifest = write_manifest(folder, {
            "name": name, "versions": _versions(), "opset": opset,
            "source_checkpoint": {"path": str(ckpt), "files": {f.name: sha256_file(f) for f in sorted(ckpt.iterdir())
                                                               if f.is_file()}},
            "backbone": meta.backbone, "training_data": meta.data_hashes,
            "metrics": {"checkpoint": meta.metrics, "parity": best["parity"]},
            "export": {"variant": best["variant"], "candidates": tried, "fusion": fusion, "vocabulary": vocab_info,
                       "parity_texts": len(texts), "gold_labels": gold is not None, "threads": threads,
                       "seconds": round(time.perf_counter() - t_start, 1)},
        })
        total = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
        if max_mb is not None and total > max_mb * 1e6:
            raise ExportError(f"{out}: {total / 1e6:.1f} MB exceeds the size budget of {max_mb} MB")
        # round trip: the folder loads through the public path (manifest verified) and scores as measured
        back = OnnxClassifier.from_dir(folder, read_config(folder), threads=threads)
        again = _onnx_logits(back, seqs[:64])[0]
        if not np.allclose(again, best_logits, atol=1e-4):
            raise ExportError(f"{out}: the written folder scores differently from the model that passed the gate")
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(folder), str(out))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"wrote {out} ({total / 1e6:.1f} MB) in {time.perf_counter() - t_start:.0f} s")
    return manifest


def _chunks(it: Iterable[str], n: int) -> Iterable[list[str]]:
    buf: list[str] = []
    for x in it:
        buf.append(x)
        if len(buf) >= n:
            yield buf
            buf = []
    if buf:
        yield buf


def _default_vocab_texts(norm_cfg: NormalizeConfig) -> Iterable[str]:
    """Normalised texts of every split of the trainable datasets that are present."""
    from ..datasets import SPLITS, TRAINABLE, iter_dataset

    for name in TRAINABLE:
        for split in SPLITS:
            try:
                for rec in iter_dataset(name, split):
                    yield normalize(rec.text, norm_cfg).text
            except (QinglangError, FileNotFoundError, OSError):
                break


