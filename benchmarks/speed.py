"""Classifier-stage throughput: PyTorch fp32 vs ONNX fp32 vs ONNX int8, same model, same texts, one process.

    .venv/bin/python benchmarks/speed.py --quick --json           # 512 short texts, 3 engines, one JSON line
    .venv/bin/python benchmarks/speed.py --long --gemm --cold-start --memory 20000 --md out.md
    .venv/bin/python benchmarks/speed.py --cuda                   # CUDA execution provider, batch 64..512
    .venv/bin/python benchmarks/speed.py --quick --int8 fp16,qdq  # 'onnx_int8' is fp16; qdq races as 'onnx_qdq'

Model: ``--checkpoint`` (a trained checkpoint folder); without one, the rebuilt multilingual-e5-small
backbone (``--backbone``, default ``runs/backbone/hf``) with a fresh random head, exported the same way —
speed does not depend on the weights; without that either, an equally sized random BERT (12 layers, hidden
384, 12 heads, FFN 1536) over a character vocabulary. The export's parity gate is switched off for a fresh
head (its scores sit on the thresholds) and on for a trained checkpoint. Exports are cached in ``--work``.
Without torch (an install without the train extra) nothing can be exported: the PyTorch engine is skipped with
a message (``torch_fp32_texts_per_s`` is null) and the two ONNX engines are timed on exported folders given by
``--onnx-fp32 DIR --onnx-int8 DIR``.

Timing covers the classifier stage on normalised texts: tokenisation (Rust), windows, batching, inference and
pooling. The three engines run interleaved, ``--repeats`` times each after one warm-up, and the medians are
reported with the load average of the machine. The PyTorch engine scores exactly the windows the ONNX
classifier cuts (same tokens, ids mapped back to the unpruned vocabulary), in length-sorted batches of 64.
Short texts: real comments (COLD and CHNCI carved test splits). Long: 1,500-character articles made by
joining real Weibo21 test posts (no real WeChat articles are in the shared data).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qinglang_nlp.modelio import read_config
from qinglang_nlp.normalize import normalize
from qinglang_nlp.onnx_classifier import OnnxClassifier
from qinglang_nlp.train.export import VARIANT_BASE

E5_SHAPE = {"layers": 12, "hidden": 384, "heads": 12, "ffn": 1536}


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ texts
def short_texts(n: int) -> list[str]:
    """``n`` real comments from carved test splits, normalised."""
    from qinglang_nlp.datasets import load_dataset

    out: list[str] = []
    for name in ("cold", "chnci"):
        try:
            out += [r.text for r in load_dataset(name, "test", limit=n)]
        except Exception as e:  # noqa: BLE001 - report and fall back below
            say(f"texts: {name} unavailable ({e})")
    if not out:
        raise SystemExit("no shared data (set QINGLANG_DATA): the benchmark uses real comments")
    out = [out[i] for i in np.random.default_rng(0).permutation(len(out))][:n]
    return [normalize(t).text for t in (out * (n // len(out) + 1))[:n]]


def long_texts(n: int, chars: int = 1500) -> list[str]:
    """``n`` articles of ``chars`` characters joined from real Weibo21 test posts, normalised."""
    from qinglang_nlp.datasets import load_dataset

    posts = [r.text for r in load_dataset("weibo21", "test")]
    out, buf, k = [], "", 0
    while len(out) < n:
        buf += posts[k % len(posts)].strip() + "\n"
        k += 1
        if len(buf) >= chars:
            out.append(normalize(buf[:chars]).text)
            buf = ""
    return out


# ------------------------------------------------------------------------------------------------ models
def _fresh_checkpoint(work: Path, backbone: Path | None) -> tuple[Path, str]:
    import torch
    from transformers import AutoModel, BertConfig

    from qinglang_nlp.taxonomy import CATEGORIES
    from qinglang_nlp.train.model import (
        MultiTaskClassifier,
        QinglangMeta,
        load_tokenizer,
        make_tiny_checkpoint,
    )

    torch.manual_seed(0)
    if backbone is not None and (backbone / "config.json").is_file():
        ck = work / "ckpt-backbone"
        what = f"rebuilt multilingual-e5-small ({backbone}) + fresh random head"
        if not (ck / "qinglang.json").is_file():
            tok = load_tokenizer(backbone)
            enc = AutoModel.from_pretrained(str(backbone), add_pooling_layer=False)
            meta = QinglangMeta(categories=list(CATEGORIES), pooling="mean", max_length=256, text_prefix="query: ",
                                pad_token_id=int(tok.token_to_id("<pad>") or 0), backbone={"fresh_head": True})
            MultiTaskClassifier(enc, meta, tok).save_checkpoint(ck)
        return ck, what
    ck = work / "ckpt-random"
    what = "random BERT of e5-small size (12x384, 12 heads, FFN 1536), character vocabulary — NOT the real backbone"
    if not (ck / "qinglang.json").is_file():
        tiny = make_tiny_checkpoint(work / "tiny-tokenizer")
        tok = load_tokenizer(tiny)
        cfg = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=384, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=1536, max_position_embeddings=512, pad_token_id=0)
        meta = QinglangMeta(categories=list(CATEGORIES), pooling="mean", max_length=256, pad_token_id=0)
        MultiTaskClassifier(AutoModel.from_config(cfg, add_pooling_layer=False), meta, tok).save_checkpoint(ck)
    return ck, what


def prepare(args: argparse.Namespace, texts: list[str]) -> dict[str, Any]:
    """Checkpoint plus its fp32 and int8 ONNX folders (exported once, cached)."""
    from qinglang_nlp.train.export import export

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if not args.have_torch:  # nothing can be exported: time the folders given
        missing = [f"--{e.replace('_', '-')}" for e in ("onnx_fp32", "onnx_int8") if not getattr(args, e)]
        if missing:
            raise SystemExit(f"torch is not installed, so nothing can be exported: pass {' and '.join(missing)} "
                             "FOLDER (exported model folders), or install the train extra (pip install .[train])")
        if "," in args.int8:
            raise SystemExit("--int8 with several variants needs torch (they are exported here)")
        return {"checkpoint": None, "model": f"exported folders {args.onnx_fp32}, {args.onnx_int8}",
                "folders": {"onnx_fp32": Path(args.onnx_fp32), "onnx_int8": Path(args.onnx_int8)}}
    trained = args.checkpoint is not None
    ck, what = (Path(args.checkpoint), "trained checkpoint " + args.checkpoint) if trained else \
        _fresh_checkpoint(work, Path(args.backbone) if args.backbone else None)
    gate = {} if trained else {"min_agreement": 0.0, "max_auc_drop": 1.0, "max_batch_drift": 1.0}
    folders = {}
    variants = args.int8.split(",")
    given = {"onnx_fp32": args.onnx_fp32, "onnx_int8": args.onnx_int8}
    jobs = [("onnx_fp32", "fp32", {"quantize": "none"}), ("onnx_int8", variants[0], {"variants": variants[:1]})]
    jobs += [(f"onnx_{v}", v, {"variants": (v,)}) for v in variants[1:]]  # more variants race as extra engines
    for engine, tag, kw in jobs:
        d = work / f"{ck.name}-{'onnx_fp32' if tag == 'fp32' else 'onnx_int8'}-{tag}"
        if given.get(engine):
            d = Path(given[engine])
        if not (d / "manifest.json").is_file():
            say(f"exporting {engine} to {d} …")
            export(ck, d, parity_texts=texts[:64], vocab_texts=texts, overwrite=True, log=say, **gate, **kw)
        folders[engine] = d
    return {"checkpoint": ck, "model": what, "folders": folders}


# ------------------------------------------------------------------------------------------------ engines
def onnx_engine(folder: Path, threads: int, providers: list[str] | None = None,
                batch_size: int | None = None) -> tuple[Callable[[list[str]], np.ndarray], OnnxClassifier]:
    cfg = read_config(folder)
    if batch_size:
        cfg = cfg | {"runtime": {**cfg.get("runtime", {}), "batch_size": batch_size}}
    clf = OnnxClassifier.from_dir(folder, cfg, threads=threads, providers=providers)
    return clf.predict_scores, clf


def torch_engine(ckpt: Path, windows_from: OnnxClassifier, threads: int,
                 batch_size: int = 64) -> Callable[[list[str]], np.ndarray]:
    """PyTorch fp32 on the same windows as ``windows_from`` cuts, ids mapped back to the checkpoint's vocab."""
    import torch

    from qinglang_nlp.onnx_classifier import pad_batch
    from qinglang_nlp.train.model import MultiTaskClassifier

    torch.set_num_threads(threads)
    model = MultiTaskClassifier.from_checkpoint(ckpt).eval()
    full = model.tokenizer
    small = windows_from._tok
    to_full = np.array([full.token_to_id(small.id_to_token(i)) for i in range(small.get_vocab_size())], np.int64)
    temps = torch.tensor([float(model.meta.temperature.get(c, 1.0)) for c in model.meta.categories])
    pad = int(model.meta.pad_token_id)

    def run(texts: list[str]) -> np.ndarray:
        pieces = windows_from._pieces(texts, None)
        out = np.zeros((len(texts), len(model.meta.categories)), np.float32)
        order = sorted(range(len(pieces)), key=lambda k: len(pieces[k].ids))
        with torch.inference_mode():
            for lo in range(0, len(order), batch_size):
                idx = order[lo:lo + batch_size]
                ids, mask = pad_batch([to_full[pieces[k].ids] for k in idx], pad)
                p = torch.sigmoid(model(torch.from_numpy(ids), torch.from_numpy(mask)) / temps).numpy()
                for r, k in enumerate(idx):
                    np.maximum(out[pieces[k].item], p[r], out=out[pieces[k].item])
        return out

    return run


def n_tokens(clf: OnnxClassifier, texts: list[str]) -> int:
    return sum(len(p.ids) for p in clf._pieces(texts, None))


def race(engines: dict[str, Callable[[list[str]], np.ndarray]], texts: list[str],
         repeats: int) -> dict[str, list[float]]:
    """Seconds of every repeat per engine; engines interleaved, rotating who goes first, one warm-up each."""
    for fn in engines.values():
        fn(texts[:64])
    times: dict[str, list[float]] = {k: [] for k in engines}
    names = list(engines)
    for r in range(repeats):
        for k in names[r % len(names):] + names[: r % len(names)]:
            t0 = time.perf_counter()
            engines[k](texts)
            times[k].append(time.perf_counter() - t0)
    return times


# ------------------------------------------------------------------------------------------------ extras
def flops_per_token(seq_len: float, shape: dict[str, int] = E5_SHAPE) -> float:
    """Multiply-adds x2 per token of the encoder: projections, FFN and attention over ``seq_len`` tokens."""
    h, f = shape["hidden"], shape["ffn"]
    per_layer = 2 * (4 * h * h + 2 * h * f) + 2 * 2 * seq_len * h
    return shape["layers"] * per_layer


def model_shape(checkpoint: Path | None) -> dict[str, int]:
    """Layers, hidden and FFN size of the timed encoder (from the checkpoint's config.json; else e5-small's)."""
    cfg = Path(checkpoint) / "config.json" if checkpoint else None
    if cfg is None or not cfg.is_file():
        return dict(E5_SHAPE)
    c = json.loads(cfg.read_text(encoding="utf-8"))
    return {"layers": int(c.get("num_hidden_layers", E5_SHAPE["layers"])),
            "hidden": int(c.get("hidden_size", E5_SHAPE["hidden"])),
            "heads": int(c.get("num_attention_heads", E5_SHAPE["heads"])),
            "ffn": int(c.get("intermediate_size", E5_SHAPE["ffn"]))}


#: compact variants that store weights compactly but multiply in fp32 (their peak is the fp32 GEMM's)
FP32_KERNEL_VARIANTS = ("fp16", "emb8")


def gemm_peak(threads: int, m: int = 2048, k: int = 384, n: int = 1536, repeats: int = 7) -> dict[str, float]:
    """GFLOP/s of onnxruntime's fp32 MatMul and int8 MatMulInteger on an FFN-shaped GEMM, same threads."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    out = {}
    for kind in ("fp32", "int8"):
        if kind == "fp32":
            b = numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "B")
            node = helper.make_node("MatMul", ["A", "B"], ["Y"])
            a_type, y_type = TensorProto.FLOAT, TensorProto.FLOAT
            a = rng.standard_normal((m, k)).astype(np.float32)
        else:
            b = numpy_helper.from_array(rng.integers(-127, 127, (k, n)).astype(np.int8), "B")
            node = helper.make_node("MatMulInteger", ["A", "B"], ["Y"])
            a_type, y_type = TensorProto.UINT8, TensorProto.INT32
            a = rng.integers(0, 255, (m, k)).astype(np.uint8)
        g = helper.make_graph([node], "g", [helper.make_tensor_value_info("A", a_type, [m, k])],
                              [helper.make_tensor_value_info("Y", y_type, [m, n])], [b])
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        s = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        s.run(None, {"A": a})
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            s.run(None, {"A": a})
            ts.append(time.perf_counter() - t0)
        out[kind] = 2.0 * m * k * n / statistics.median(ts) / 1e9
    return out


def cold_start(folder: Path, threads: int, repeats: int = 3) -> float:
    """Median seconds from process start to the first result of ``qinglang_nlp.load(folder).predict``."""
    code = (f"import qinglang_nlp as ql; m = ql.load({str(folder)!r}, lexicon=False); "
            "r = m.predict('姐妹们今天打投任务每人五十票'); print(r.decision, flush=True)")
    env = dict(os.environ, QINGLANG_ONNX_THREADS=str(threads))
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=env, cwd=ROOT)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ``ru_maxrss``: Linux carries that over from the
    forked parent across exec, so a child of a big process would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stream_child(folder: str, n: int, threads: int) -> None:
    """(child process) stream ``n`` texts through ``predict_batch``; print peak RSS at 5 checkpoints."""
    texts = short_texts(2000)
    clf = OnnxClassifier.from_dir(Path(folder), read_config(folder), threads=threads)
    clf.predict_scores(texts[:8])
    before = peak_rss_mb()  # model loaded and run once; the rest is what streaming adds
    marks = {int(n * f) for f in (0.2, 0.4, 0.6, 0.8, 1.0)}
    rss = {}
    t0 = time.perf_counter()
    gen = (texts[i % len(texts)] + f" #{i}" for i in range(n))
    for i, _ in enumerate(clf.predict_batch(gen), 1):
        if i in marks:
            rss[i] = peak_rss_mb()
    print(json.dumps({"texts": n, "seconds": round(time.perf_counter() - t0, 1), "rss_mb_before": round(before, 1),
                      "peak_rss_mb_at": {str(k): round(v, 1) for k, v in sorted(rss.items())}}))


def memory(folder: Path, n: int, threads: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--_stream", str(folder), str(n), "--threads", str(threads)],
                         check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _git() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, capture_output=True, text=True,
                               cwd=ROOT).stdout.strip()
    except OSError:
        return "unknown"


# ------------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="512 short texts, 3 repeats, the three engines only")
    ap.add_argument("--json", action="store_true", help="print one JSON line (default: a readable summary too)")
    ap.add_argument("--checkpoint", help="trained checkpoint folder (default: rebuilt backbone + fresh head)")
    ap.add_argument("--backbone", default=str(ROOT / "runs" / "backbone" / "hf"))
    ap.add_argument("--work", default=str(ROOT / "runs" / "speed"), help="cache of exported folders")
    ap.add_argument("--int8", default="dynamic", metavar="VARIANT[,VARIANT...]",
                    help="compact variant to export and time as the 'onnx_int8' engine: "
                         + " | ".join(VARIANT_BASE) + " (default: dynamic); more, comma-separated, race as "
                         "extra engines 'onnx_<variant>' in the same interleaved run")
    ap.add_argument("--onnx-fp32", metavar="FOLDER", help="an exported fp32 folder to time (instead of exporting)")
    ap.add_argument("--onnx-int8", metavar="FOLDER", help="an exported compact folder to time as 'onnx_int8'")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--texts", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--long", action="store_true", help="also 1,500-character articles")
    ap.add_argument("--long-texts", type=int, default=48)
    ap.add_argument("--gemm", action="store_true", help="achieved fraction of the GEMM peak on these cores")
    ap.add_argument("--cold-start", action="store_true")
    ap.add_argument("--memory", type=int, default=0, metavar="N", help="peak RSS while streaming N texts")
    ap.add_argument("--cuda", action="store_true", help="CUDA execution provider, batch sizes 64-512")
    ap.add_argument("--md", help="append a Markdown table to this file")
    ap.add_argument("--_stream", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a._stream:
        stream_child(a._stream[0], int(a._stream[1]), a.threads)
        return 0
    bad = [v for v in a.int8.split(",") if v not in VARIANT_BASE]
    if bad:
        ap.error(f"--int8: unknown variant(s) {bad}; known: {', '.join(VARIANT_BASE)}")
    if a.quick:
        a.repeats, a.texts, a.long = 3, 512, False

    texts = short_texts(a.texts)
    try:
        import torch  # noqa: F401
        a.have_torch = True
    except ImportError:
        a.have_torch = False
        say("torch is not installed: the PyTorch engine is skipped (pip install .[train] to time it); "
            "the ONNX engines are timed on the exported folders --onnx-fp32 / --onnx-int8")
    prep = prepare(a, texts)
    fp32_fn, fp32_clf = onnx_engine(prep["folders"]["onnx_fp32"], a.threads)
    int8_fn, int8_clf = onnx_engine(prep["folders"]["onnx_int8"], a.threads)
    engines = {"onnx_fp32": fp32_fn, "onnx_int8": int8_fn}
    if a.have_torch:
        engines = {"torch_fp32": torch_engine(prep["checkpoint"], fp32_clf, a.threads), **engines}
    for k in prep["folders"]:
        if k not in engines:
            engines[k] = onnx_engine(prep["folders"][k], a.threads)[0]
    load0 = os.getloadavg()[0]
    res: dict[str, Any] = {"commit": _git(), "model": prep["model"], "threads": a.threads, "repeats": a.repeats,
                           "int8_variant": read_config(prep["folders"]["onnx_int8"])["quantization"],
                           "int8_batch_size": int8_clf.batch_size}
    sets = [("short", texts)] + ([("long", long_texts(a.long_texts))] if a.long else [])
    for label, batch in sets:
        runs = race(engines, batch, a.repeats)
        secs = {k: statistics.median(v) for k, v in runs.items()}
        res[f"seconds{'' if label == 'short' else '_long'}"] = {k: [round(x, 2) for x in v] for k, v in runs.items()}
        toks = n_tokens(fp32_clf, batch)
        suffix = "" if label == "short" else "_long"
        res[f"texts{suffix}"] = len(batch)
        res[f"tokens{suffix}"] = toks
        for k, s in secs.items():
            res[f"{k}_texts_per_s{suffix}"] = round(len(batch) / s, 2)
            res[f"{k}_tokens_per_s{suffix}"] = round(toks / s, 1)
        if "torch_fp32" not in secs:
            res[f"torch_fp32_texts_per_s{suffix}"] = None
            res["torch_fp32"] = "skipped: torch is not installed"
            res[f"int8_vs_onnx_fp32{suffix}"] = round(secs["onnx_fp32"] / secs["onnx_int8"], 2)
        else:
            res[f"int8_vs_torch{suffix}"] = round(secs["torch_fp32"] / secs["onnx_int8"], 2)
            res[f"onnx_fp32_vs_torch{suffix}"] = round(secs["torch_fp32"] / secs["onnx_fp32"], 2)
            for k, sk in secs.items():
                if k not in ("torch_fp32", "onnx_fp32", "onnx_int8"):
                    res[f"{k}_vs_torch{suffix}"] = round(secs["torch_fp32"] / sk, 2)
        if a.gemm:
            peak = res.get("gemm_gflops") or gemm_peak(a.threads)
            res["gemm_gflops"] = {k: round(v, 1) for k, v in peak.items()}
            shape = model_shape(prep["checkpoint"])
            res["model_shape"] = shape
            per_tok = flops_per_token(toks / max(1, len(fp32_clf._pieces(batch, None))), shape)
            int8_prec = "fp32" if res["int8_variant"] in FP32_KERNEL_VARIANTS else "int8"
            for k, prec in (("torch_fp32", "fp32"), ("onnx_fp32", "fp32"), ("onnx_int8", int8_prec)):
                if res.get(f"{k}_tokens_per_s{suffix}") is None:
                    continue
                achieved = res[f"{k}_tokens_per_s{suffix}"] * per_tok / 1e9
                res[f"{k}_peak_fraction{suffix}"] = round(achieved / peak[prec], 3)
    if a.cold_start:
        res["cold_start_s"] = round(cold_start(prep["folders"]["onnx_int8"], a.threads), 2)
    if a.memory:
        res["memory"] = memory(prep["folders"]["onnx_int8"], a.memory, a.threads)
    if a.cuda:
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            res["cuda"] = "not run: onnxruntime here has no CUDAExecutionProvider (install onnxruntime-gpu on a GPU host)"
        else:
            res["cuda"] = {}
            for bs in (64, 128, 256, 512):
                fn, _ = onnx_engine(prep["folders"]["onnx_fp32"], a.threads, ["CUDAExecutionProvider"], bs)
                s = statistics.median(race({"cuda": fn}, texts, a.repeats)["cuda"])
                res["cuda"][f"fp32_batch{bs}_texts_per_s"] = round(len(texts) / s, 1)
    res["load_avg_1min"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(res, ensure_ascii=False))
    if not a.json:
        for k, v in res.items():
            say(f"{k:>32}: {v}")
    if a.md:
        with open(a.md, "a", encoding="utf-8") as f:
            f.write("\n| metric | value |\n|---|---|\n")
            for k, v in res.items():
                f.write(f"| {k} | {v} |\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
