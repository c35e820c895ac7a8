"""Multi-task fine-tuning: one encoder, one sigmoid head per category (+ sub-label heads), resumable.

Two steps, so that training can run on a machine without the data or the normaliser's dependencies::

    python -m qinglang_nlp.train.finetune prepare --config training/configs/e5small.json --out runs/carry/prepared
    python -m qinglang_nlp.train.finetune train   --config training/configs/e5small.json \
        --prepared runs/carry/prepared --run runs/e5small [--max-minutes 7]

``prepare`` loads train and dev of every configured dataset (never the carved test split; ToxiCN only as an
evaluation-only set), samples (e.g. CHNCI), applies weak negatives, normalises with the configured
``NormalizeConfig``, prefixes, tokenises with the backbone's tokenizer (max ``max_length`` tokens) and writes
``data.npz`` (token ids, labels with -1 = not judged, sub-labels, source, split) + ``prepared.json``
(row counts, sha256 of every dataset split's texts and labels, tokenizer sha256, normalise config).

``train`` fine-tunes with a masked BCE loss (a category a row's dataset does not judge is left out of the loss,
never treated as negative), length-grouped batches with dynamic padding, AdamW with linear warm-up and decay,
bf16 autocast on CUDA, and a checkpoint of model + optimizer + scheduler + RNG + data position every
``checkpoint_every_s`` seconds and at every stop (a cut-off run resumes from it). At the end it calibrates on dev
(temperature per category, thresholds for the precision targets), writes the checkpoint folder
(``model.py``'s format) to ``<run>/model`` and appends config, data hashes and metrics to the run log (JSONL).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..taxonomy import CATEGORIES, TAXONOMY, category_of

__all__ = [
    "DEFAULTS",
    "PreparedData",
    "collect_records",
    "length_grouped_batches",
    "load_config",
    "masked_bce",
    "prepare",
    "prepare_records",
    "stale_reasons",
    "train",
]

SPLIT_CODES = {"train": 0, "dev": 1, "eval": 2}
EVAL_ONLY = ("toxicn",)  # licence forbids training (CC BY-NC-ND): evaluation only, never tuned on

DEFAULTS: dict[str, Any] = {
    "name": "run",
    "backbone": "runs/backbone/hf",          # HF folder (config.json, model.safetensors, tokenizer.json) or pack .npz
    "categories": list(CATEGORIES),
    "sublabels": [s.code for s in TAXONOMY[0].sublabels],   # fanquan sub-types (fq_*)
    "pooling": "mean",
    "max_length": 256,
    "num_layers": None,                       # keep only the first N encoder layers (CPU budgets); None = all
    "text_prefix": "query: ",
    "normalize": {},                          # NormalizeConfig dict; {} = library defaults (resolved and saved)
    "datasets": {"cold": {}, "swsr": {}, "chnci": {"max_rows": 30000}, "weibo21": {}, "weibo16": {}, "ced": {},
                 "fanquan": {}},
    "eval_only": ["toxicn"],
    "max_dev_rows_per_dataset": 3000,
    # weak negatives: rows of sets about other topics, labelled 0 for a category they do not judge (rumor: ordinary
    # comments, so that short comments stop looking like the rumor sets' news posts)
    "weak_negatives": {"fanquan": {"cold": 3000, "swsr": 1000, "weibo21": 1500},
                       "rumor": {"cold": 3000, "swsr": 1000, "chnci": 3000}},
    "seed": 13,
    "epochs": 2,
    "max_steps": None,
    "batch_size": 32,
    "eval_batch_size": 128,
    "lr": 5e-5,
    "head_lr": 1e-3,
    "weight_decay": 0.01,
    "warmup_ratio": 0.06,
    "grad_clip": 1.0,
    "pos_weight": "auto",                     # "auto" = sqrt(neg/pos) clipped to [1, 10]; or {cat: w}; or null
    "sub_loss_weight": 0.5,
    "freeze_word_embeddings": False,          # True: the model differs from the backbone only outside the
                                              # word embeddings, so a small delta can travel back (see ``delta``)
    "bf16": True,
    "checkpoint_every_s": 90,
    "eval_every_steps": 0,                    # 0 = only at the end
    "precision_targets": {"review": 0.7, "label": 0.85, "block": 0.95},
    "run_log": "runs/runlog.jsonl",
}


def load_config(path: str | os.PathLike | None = None, **overrides: Any) -> dict[str, Any]:
    """DEFAULTS updated by the JSON file at ``path`` and by ``overrides``; unknown keys are refused."""
    cfg = json.loads(json.dumps(DEFAULTS))
    if path is not None:
        p = Path(path)
        try:
            user = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ValueError(f"config {p}: {e}") from None
        unknown = set(user) - set(DEFAULTS) - {"comment"}
        if unknown:
            raise ValueError(f"config {p}: unknown keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        cfg.update({k: v for k, v in user.items() if k != "comment"})
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    bad = [d for d in cfg["datasets"] if d in EVAL_ONLY]
    if bad:
        raise ValueError(f"{bad}: licence forbids training on these (CC BY-NC-ND); list them under eval_only")
    if cfg["pooling"] not in ("cls", "mean"):
        raise ValueError(f"pooling must be 'cls' or 'mean', got {cfg['pooling']!r}")
    return cfg


def _sha_obj(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


def _sha_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# prepare

def collect_records(cfg: dict[str, Any], data_dir: str | None = None) -> dict[str, dict[str, list[Any]]]:
    """{split: {dataset: records}} for train/dev of the training sets and dev of the eval-only sets."""
    from ..datasets import TRAINABLE, load_dataset

    out: dict[str, dict[str, list[Any]]] = {"train": {}, "dev": {}, "eval": {}}
    for name in cfg["datasets"]:
        if name not in TRAINABLE:
            raise ValueError(f"dataset {name!r} may not be used for training (trainable: {TRAINABLE})")
        for split in ("train", "dev"):
            out[split][name] = load_dataset(name, split, data_dir)
    for name in cfg.get("eval_only") or []:
        out["eval"][name] = load_dataset(name, "dev", data_dir)
    return out


#: the config keys that decide what ``prepare`` writes (the others, e.g. lr, epochs, run_log, only affect training)
PREPARE_KEYS = ("categories", "sublabels", "normalize", "datasets", "eval_only", "max_dev_rows_per_dataset",
                "weak_negatives", "seed", "text_prefix", "max_length")


def _record_hashes(records: dict[str, dict[str, list[Any]]]) -> dict[str, str]:
    """``{"<dataset>/<split>": sha256}`` of every record list, as saved in ``prepared.json``."""
    return {f"{name}/{'dev' if split == 'eval' else split}": _sha_obj([[r.id, r.text, r.labels, r.fine] for r in recs])
            for split, by_name in records.items() for name, recs in by_name.items()}


def stale_reasons(cfg: dict[str, Any], prepared: str | os.PathLike, data_dir: str | None = None,
                  backbone: str | None = None) -> list[str]:
    """Why the prepared folder no longer matches ``cfg``, the backbone's tokenizer and the data (empty list: current).

    Compares the config hash and every dataset's record hash with ``prepared.json``: a folder prepared before
    the 饭圈 corpus or a dataset changed would otherwise train a GPU run on old data without a word."""
    info_path = Path(prepared) / "prepared.json"
    if not info_path.is_file():
        return [f"{info_path} does not exist"]
    info = json.loads(info_path.read_text(encoding="utf-8"))
    out = []
    if "prepare_config" in info:  # only the keys that shape the prepared data count
        diff = [k for k in PREPARE_KEYS if json.loads(json.dumps(cfg.get(k))) != info["prepare_config"].get(k)]
        if diff:
            out.append(f"config differs from the one the folder was prepared with in {', '.join(diff)}")
    elif info.get("config_sha256") != _sha_obj(cfg):  # a folder from before prepare_config was recorded
        out.append("config differs from the one the folder was prepared with")
    bb = backbone or cfg.get("backbone")
    if bb and "tokenizer_sha256" in info:  # the token ids come from the backbone's tokenizer
        try:
            sha = _tokenizer_sha(_backbone_tokenizer(bb))
        except Exception:  # noqa: BLE001 - unreadable: training names the problem
            sha = info["tokenizer_sha256"]
        if sha != info["tokenizer_sha256"]:
            out.append(f"backbone {bb}: its tokenizer differs from the one the folder was prepared with")
    old, new = info.get("data_hashes", {}), _record_hashes(collect_records(cfg, data_dir))
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            out.append(f"{key}: " + ("not in the prepared folder" if key not in old else
                                      "no longer in the data" if key not in new else "records changed"))
    return out


def _sample(recs: list[Any], n: int | None, rng: random.Random) -> list[Any]:
    if n is None or len(recs) <= n:
        return list(recs)
    idx = sorted(rng.sample(range(len(recs)), n))
    return [recs[i] for i in idx]


def _row_labels(rec: Any, cats: list[str], subs: list[str]) -> tuple[list[int], list[int]]:
    y = [-1 if rec.labels.get(c) is None else int(rec.labels[c]) for c in cats]
    s = [-1] * len(subs)
    if subs:
        parent = rec.labels.get(category_of(subs[0]))
        sub = (rec.fine or {}).get("subtype")
        if parent == 0:
            s = [0] * len(subs)
        elif parent == 1 and sub in subs:
            s = [int(x == sub) for x in subs]
    return y, s


def prepare_records(records: dict[str, dict[str, list[Any]]], cfg: dict[str, Any], tokenizer: Any,
                    out: str | os.PathLike) -> Path:
    """Sample, label, normalise, tokenise and write ``data.npz`` + ``prepared.json`` to ``out``."""
    from ..normalize import NormalizeConfig, normalize

    cats, subs = list(cfg["categories"]), list(cfg["sublabels"])
    ncfg = NormalizeConfig.from_dict(cfg["normalize"] or None)
    rng = random.Random(cfg["seed"])
    rows: list[tuple[str, list[int], list[int], int, int]] = []
    sources: list[str] = []
    hashes = _record_hashes(records)
    counts: dict[str, dict[str, int]] = {}
    weak = cfg.get("weak_negatives") or {}
    for split, by_name in records.items():
        for name, recs in by_name.items():
            if split == "train":
                kept = _sample(recs, (cfg["datasets"].get(name) or {}).get("max_rows"), rng)
            else:
                kept = _sample(recs, cfg.get("max_dev_rows_per_dataset"), rng)
            if name not in sources:
                sources.append(name)
            src = sources.index(name)
            weak_idx: dict[int, set[int]] = {}  # category column -> the rows sampled as its weak negatives
            for cat, per_ds in weak.items():
                if name in per_ds and split != "eval":
                    n = per_ds[name] if split == "train" else max(1, per_ds[name] // 10)
                    weak_idx[cats.index(cat)] = set(rng.sample(range(len(kept)), min(n, len(kept))))
            n_weak = 0
            for i, r in enumerate(kept):
                y, s = _row_labels(r, cats, subs)
                for j, idx in weak_idx.items():
                    if i in idx and y[j] == -1:
                        y[j] = 0
                        n_weak += 1
                rows.append((r.text, y, s, src, SPLIT_CODES[split]))
            counts.setdefault(split, {})[name] = len(kept)
            if n_weak:
                counts.setdefault("weak_negatives", {})[f"{name}/{split}"] = n_weak
    texts = [cfg["text_prefix"] + normalize(t, ncfg).text for t, *_ in rows]
    tok = tokenizer
    from .model import _configured_tokenizer

    t = _configured_tokenizer(tok, cfg["max_length"], 0)
    t.no_padding()
    lengths = np.zeros(len(texts), np.int32)
    ids_parts = []
    for i in range(0, len(texts), 4096):
        for k, enc in enumerate(t.encode_batch(texts[i:i + 4096])):
            ids_parts.append(np.asarray(enc.ids, np.int64))
            lengths[i + k] = len(enc.ids)
    vocab = tok.get_vocab_size()
    dtype = np.uint16 if vocab <= 65535 else np.uint32
    flat = np.concatenate(ids_parts).astype(dtype) if ids_parts else np.zeros(0, dtype)
    offsets = np.zeros(len(texts) + 1, np.int64)
    offsets[1:] = np.cumsum(lengths)
    o = Path(out)
    o.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        o / "data.npz", ids=flat, offsets=offsets,
        labels=np.array([y for _, y, *_ in rows], np.int8).reshape(len(rows), len(cats)),
        sub=np.array([s for _, _, s, *_ in rows], np.int8).reshape(len(rows), len(subs)),
        source=np.array([r[3] for r in rows], np.int16), split=np.array([r[4] for r in rows], np.int8))
    info = {
        "categories": cats, "sublabels": subs, "sources": sources, "counts": counts, "data_hashes": hashes,
        "normalize": ncfg.to_dict(), "text_prefix": cfg["text_prefix"], "max_length": cfg["max_length"],
        "tokenizer_sha256": _tokenizer_sha(tok), "vocab_size": vocab, "seed": cfg["seed"],
        "config_sha256": _sha_obj(cfg), "prepare_config": {k: cfg.get(k) for k in PREPARE_KEYS}, "tokens": int(flat.size),
        "median_tokens": float(np.median(lengths)) if len(lengths) else 0.0,
        "truncated_rows": int((lengths >= cfg["max_length"]).sum()),
    }
    info["data_npz_sha256"] = _sha_file(o / "data.npz")
    (o / "prepared.json").write_text(json.dumps(info, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return o


def prepare(cfg: dict[str, Any], out: str | os.PathLike, data_dir: str | None = None,
            backbone: str | None = None) -> Path:
    """``collect_records`` + ``prepare_records`` with the backbone's tokenizer."""
    return prepare_records(collect_records(cfg, data_dir), cfg, _backbone_tokenizer(backbone or cfg["backbone"]), out)


def _backbone_tokenizer(backbone: str | os.PathLike) -> Any:
    """The tokenizer of a backbone HF folder or pack (``.npz``)."""
    from .model import load_tokenizer

    bb = Path(backbone)
    if bb.suffix == ".npz":
        from tokenizers import Tokenizer

        from .backbone import read_pack
        return Tokenizer.from_str(read_pack(bb)[2])
    return load_tokenizer(bb)


def _tokenizer_sha(tok: Any) -> str:
    return _sha_obj(json.loads(tok.to_str())["model"])


class PreparedData:
    """``data.npz`` + ``prepared.json`` in memory."""

    def __init__(self, path: str | os.PathLike):
        d = Path(path)
        for f in ("data.npz", "prepared.json"):
            if not (d / f).is_file():
                raise FileNotFoundError(f"{d}: no {f} (run: python -m qinglang_nlp.train.finetune prepare ...)")
        self.info = json.loads((d / "prepared.json").read_text(encoding="utf-8"))
        got = _sha_file(d / "data.npz")
        if got != self.info["data_npz_sha256"]:
            raise ValueError(f"{d}/data.npz: sha256 {got[:12]}… differs from prepared.json (altered or truncated)")
        with np.load(d / "data.npz") as z:
            self.ids = z["ids"].astype(np.int64)
            self.offsets, self.labels, self.sub = z["offsets"], z["labels"], z["sub"]
            self.source, self.split = z["source"], z["split"]
        self.lengths = np.diff(self.offsets)

    def rows(self, split: str) -> np.ndarray:
        """Row indices of one split (``train``, ``dev`` or ``eval``)."""
        return np.flatnonzero(self.split == SPLIT_CODES[split])

    def batch(self, idx: np.ndarray, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, mask) padded to the longest row of ``idx``."""
        L = int(self.lengths[idx].max())
        ids = np.full((len(idx), L), pad_id, np.int64)
        mask = np.zeros((len(idx), L), np.int64)
        for k, i in enumerate(idx):
            a, b = self.offsets[i], self.offsets[i + 1]
            ids[k, :b - a] = self.ids[a:b]
            mask[k, :b - a] = 1
        return ids, mask


def length_grouped_batches(rows: np.ndarray, lengths: np.ndarray, batch_size: int, seed: int, epoch: int,
                           group: int = 50) -> list[np.ndarray]:
    """Shuffle ``rows``, sort each window of ``batch_size * group`` rows by length, cut into batches and shuffle
    the batches. Deterministic in (seed, epoch), so a resumed run sees the same order."""
    rng = np.random.default_rng([seed, epoch])
    perm = rows[rng.permutation(len(rows))]
    batches = []
    w = batch_size * group
    for s in range(0, len(perm), w):
        chunk = perm[s:s + w]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


# ---------------------------------------------------------------------------------------------------------------
# train

def masked_bce(logits: Any, labels: Any, pos_weight: Any = None) -> Any:
    """Mean BCE over the known (label >= 0) entries only; unknown entries contribute nothing."""
    import torch
    import torch.nn.functional as F

    known = labels >= 0
    loss = F.binary_cross_entropy_with_logits(logits.float(), labels.clamp(min=0).float(), reduction="none",
                                              pos_weight=pos_weight)
    n = known.sum()
    return (loss * known).sum() / n.clamp(min=1) if n > 0 else logits.sum() * 0.0 + torch.zeros((), device=logits.device)


def _pos_weight(spec: Any, labels: np.ndarray, cats: list[str]) -> list[float] | None:
    if spec is None:
        return None
    if isinstance(spec, dict):
        return [float(spec.get(c, 1.0)) for c in cats]
    if spec != "auto":
        raise ValueError(f"pos_weight must be 'auto', a dict or null, got {spec!r}")
    out = []
    for j in range(len(cats)):
        y = labels[:, j]
        pos, neg = int((y == 1).sum()), int((y == 0).sum())
        out.append(float(min(10.0, max(1.0, math.sqrt(neg / pos)))) if pos else 1.0)
    return out


def _load_backbone(path: str | os.PathLike, work: Path) -> Path:
    p = Path(path)
    if p.suffix == ".npz":
        from .backbone import pack_to_hf
        hf = work / "backbone_hf"
        if not (hf / "model.safetensors").is_file():
            pack_to_hf(p, hf)
        return hf
    if not (p / "config.json").is_file():
        raise FileNotFoundError(f"backbone {p}: not a HF folder (config.json) nor a pack (.npz); build it with "
                                "python -m qinglang_nlp.train.backbone build")
    return p


def _build_model(cfg: dict[str, Any], prep: PreparedData, backbone_dir: Path) -> Any:
    from transformers import AutoModel

    from .model import MultiTaskClassifier, QinglangMeta, load_tokenizer

    tok = load_tokenizer(backbone_dir)
    tok_sha = _tokenizer_sha(tok)
    if tok_sha != prep.info["tokenizer_sha256"]:
        raise ValueError(f"backbone {backbone_dir} tokenizer differs from the one the data was prepared with "
                         "(re-run prepare with this backbone)")
    kw: dict[str, Any] = {}
    if cfg.get("num_layers"):
        n_layers = int(cfg["num_layers"])
        full = json.loads((backbone_dir / "config.json").read_text(encoding="utf-8")).get("num_hidden_layers")
        if full is not None and not 1 <= n_layers <= int(full):
            raise ValueError(f"num_layers must be in 1..{full} for backbone {backbone_dir}, got {n_layers}")
        kw["num_hidden_layers"] = n_layers          # the first N layers; the rest of the checkpoint is unused
    enc = AutoModel.from_pretrained(str(backbone_dir), add_pooling_layer=False, **kw)
    pad = tok.token_to_id("<pad>")
    pad = pad if pad is not None else (tok.token_to_id("[PAD]") or 0)
    bbinfo = {}
    if (backbone_dir / "backbone.json").is_file():
        bbinfo = json.loads((backbone_dir / "backbone.json").read_text(encoding="utf-8"))
    meta = QinglangMeta(categories=list(prep.info["categories"]), sublabels=list(prep.info["sublabels"]),
                        pooling=cfg["pooling"], max_length=int(prep.info["max_length"]),
                        text_prefix=prep.info["text_prefix"], normalize=prep.info["normalize"], pad_token_id=int(pad),
                        data_hashes=prep.info["data_hashes"], backbone=bbinfo)
    return MultiTaskClassifier(enc, meta, tok)


def _rng_state() -> dict[str, Any]:
    import torch
    name, keys, pos, has_gauss, cached = np.random.get_state()
    # tensors and plain Python values only, so the state loads with torch.load(weights_only=True)
    st = {"python": random.getstate(), "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos),
                                                 int(has_gauss), float(cached)),
          "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    import torch
    random.setstate(st["python"])
    name, keys, pos, has_gauss, cached = st["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _save_state(path: Path, payload: dict[str, Any]) -> None:
    import torch
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


@np.errstate(all="ignore")
def _metrics(logits: np.ndarray, labels: np.ndarray, cats: list[str], source: np.ndarray | None = None,
             sources: list[str] | None = None, thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    out: dict[str, Any] = {}
    for j, c in enumerate(cats):
        m = labels[:, j] >= 0
        y, z = labels[m, j], logits[m, j]
        if m.sum() == 0:
            continue
        pt = 0.5 if thresholds is None else min(max(float(thresholds[c]), 1e-7), 1 - 1e-7)
        th = float(np.log(pt) - np.log1p(-pt))
        pred = z >= th
        tp, fp, fn = int((pred & (y == 1)).sum()), int((pred & (y == 0)).sum()), int((~pred & (y == 1)).sum())
        r: dict[str, Any] = {"n": int(m.sum()), "positives": int(y.sum()),
                             "precision": tp / (tp + fp) if tp + fp else float("nan"),
                             "recall": tp / (tp + fn) if tp + fn else float("nan")}
        r["f1"] = (2 * r["precision"] * r["recall"] / (r["precision"] + r["recall"])
                   if tp else 0.0)
        if 0 < y.sum() < len(y):
            r["auc"] = float(roc_auc_score(y, z))
            r["ap"] = float(average_precision_score(y, z))
        if source is not None and sources is not None:
            per = {}
            for s in np.unique(source[m]):
                ms = source[m] == s
                ys, zs = y[ms], z[ms]
                if 0 < ys.sum() < len(ys):
                    per[sources[int(s)]] = {"n": int(ms.sum()), "auc": float(roc_auc_score(ys, zs))}
            r["by_source"] = per
        out[c] = r
    return out


def _predict(model: Any, prep: PreparedData, rows: np.ndarray, bs: int, device: Any, amp: bool) -> np.ndarray:
    import torch
    model.eval()
    order = rows[np.argsort(-prep.lengths[rows], kind="stable")]
    out = np.zeros((len(rows), len(model.meta.categories)), np.float32)
    pos = {r: k for k, r in enumerate(rows)}
    with torch.no_grad():
        for s in range(0, len(order), bs):
            idx = order[s:s + bs]
            ids, mask = prep.batch(idx, model.meta.pad_token_id)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                z = model(torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device))
            z = z.float().cpu().numpy()
            for k, i in enumerate(idx):
                out[pos[int(i)]] = z[k]
    model.train()
    return out


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False,
                              cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def train(cfg: dict[str, Any], prepared: str | os.PathLike, run_dir: str | os.PathLike, resume: bool = True,
          max_minutes: float | None = None, device: str | None = None, backbone: str | None = None,
          log: Any = print, stop_at_step: int | None = None) -> dict[str, Any]:
    """Fine-tune (or resume), calibrate on dev, write ``<run>/model`` and append to the run log; returns the
    run-log record. ``max_minutes`` stops training (checkpointed) after that wall time and still finishes;
    ``stop_at_step`` does the same at a step (to simulate a cut-off run: the schedule is unchanged)."""
    import torch

    t0 = time.time()
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    prep = PreparedData(prepared)
    if prep.info["categories"] != list(cfg["categories"]):
        raise ValueError(f"prepared data has categories {prep.info['categories']}, config {cfg['categories']}")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    amp = bool(cfg["bf16"]) and dev.type == "cuda"
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    seed = int(cfg["seed"])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    bb = _load_backbone(backbone or cfg["backbone"], run)
    model = _build_model(cfg, prep, bb).to(dev)
    if cfg["freeze_word_embeddings"]:
        model.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    model.train()
    cats = model.meta.categories
    tr_rows = prep.rows("train")
    if len(tr_rows) == 0:
        raise ValueError(f"{prepared}: no training rows")
    pw = _pos_weight(cfg["pos_weight"], prep.labels[tr_rows], cats)
    pw_t = torch.tensor(pw, device=dev) if pw else None
    bs = int(cfg["batch_size"])
    n_batches = math.ceil(len(tr_rows) / bs)
    total = int(cfg["max_steps"] or n_batches * int(cfg["epochs"]))
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    head_params = [p for n, p in trainable if not n.startswith("encoder.")]
    no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
    enc_named = [(n, p) for n, p in trainable if n.startswith("encoder.")]
    groups = [
        {"params": [p for n, p in enc_named if not n.endswith(no_decay)], "lr": cfg["lr"],
         "weight_decay": cfg["weight_decay"]},
        {"params": [p for n, p in enc_named if n.endswith(no_decay)], "lr": cfg["lr"], "weight_decay": 0.0},
        {"params": head_params, "lr": cfg["head_lr"], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8)
    warm = max(1, int(total * float(cfg["warmup_ratio"])))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    state_path = run / "state.pt"
    step, epoch, pos, history = 0, 0, 0, []
    cfg_sha = _sha_obj(cfg)
    if resume and state_path.is_file():
        st = torch.load(state_path, map_location="cpu", weights_only=True)  # never unpickle arbitrary objects
        if st["prepared_sha256"] != prep.info["data_npz_sha256"]:
            raise ValueError(f"{state_path}: saved for other prepared data; use a new --run folder or --no-resume")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        _set_rng_state(st["rng"])
        step, epoch, pos, history = st["step"], st["epoch"], st["pos"], st["history"]
        log(f"resumed from {state_path}: step {step}, epoch {epoch}, batch {pos}")

    def save() -> None:
        _save_state(state_path, {
            "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "rng": _rng_state(), "step": step, "epoch": epoch, "pos": pos, "history": history,
            "prepared_sha256": prep.info["data_npz_sha256"], "config_sha256": cfg_sha})

    last_ck = time.time()
    stopped = None
    tok_seen = 0
    t_train = time.time()
    losses: list[float] = []
    while epoch < int(cfg["epochs"]) and step < total and stopped is None:
        batches = length_grouped_batches(tr_rows, prep.lengths, bs, seed, epoch)
        while pos < len(batches):
            idx = batches[pos]
            ids, mask = prep.batch(idx, model.meta.pad_token_id)
            ids_t, mask_t = torch.from_numpy(ids).to(dev), torch.from_numpy(mask).to(dev)
            y = torch.from_numpy(prep.labels[idx].astype(np.int64)).to(dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                z, zs = model.forward_all(ids_t, mask_t)
            loss = masked_bce(z, y, pw_t)
            if zs is not None and cfg["sub_loss_weight"]:
                ys = torch.from_numpy(prep.sub[idx].astype(np.int64)).to(dev)
                loss = loss + float(cfg["sub_loss_weight"]) * masked_bce(zs, ys)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg["grad_clip"]:
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(cfg["grad_clip"]))
            opt.step()
            sched.step()
            step += 1
            pos += 1
            tok_seen += int(mask.sum())
            losses.append(float(loss.detach()))
            if step % 20 == 0 or step == 1:
                el = time.time() - t_train
                log(f"step {step}/{total} epoch {epoch} loss {np.mean(losses[-20:]):.4f} "
                    f"lr {sched.get_last_lr()[0]:.2e} {step / el:.2f} it/s {tok_seen / el:.0f} tok/s")
                history.append({"step": step, "loss": float(np.mean(losses[-20:])), "elapsed_s": round(el, 1)})
            if cfg["eval_every_steps"] and step % int(cfg["eval_every_steps"]) == 0:
                dz = _predict(model, prep, prep.rows("dev"), int(cfg["eval_batch_size"]), dev, amp)
                m = _metrics(dz, prep.labels[prep.rows("dev")], cats)
                history.append({"step": step, "dev_auc": {c: m[c].get("auc") for c in m}})
                log(f"dev @ {step}: " + json.dumps(history[-1]["dev_auc"]))
            if max_minutes is not None and time.time() - t0 > 60 * max_minutes:
                stopped = f"time budget {max_minutes} min reached at step {step}"
                break
            if stop_at_step is not None and step >= stop_at_step:
                stopped = f"stop_at_step {stop_at_step}"
                break
            if step >= total:
                break
            if time.time() - last_ck > float(cfg["checkpoint_every_s"]):
                save()
                last_ck = time.time()
        if stopped is None and pos >= len(batches):
            epoch, pos = epoch + 1, 0
    save()
    train_s = time.time() - t_train
    log(f"training {'stopped: ' + stopped if stopped else 'finished'}; step {step}, {train_s:.0f} s; calibrating")

    # --- calibration and metrics on dev (never on the carved test split) ---
    from .calibrate import calibrate_categories, sigmoid

    dev_rows = prep.rows("dev")
    dz = _predict(model, prep, dev_rows, int(cfg["eval_batch_size"]), dev, amp)
    dy = prep.labels[dev_rows]
    cal = calibrate_categories(dz, dy, cats, dict(cfg["precision_targets"]))
    model.meta.temperature = {c: float(cal["temperature"][c]) for c in cats}
    model.meta.thresholds = {c: {k: float(v) for k, v in cal["thresholds"][c].items()} for c in cats}
    metrics: dict[str, Any] = {
        "dev_at_0.5": _metrics(dz, dy, cats, prep.source[dev_rows], prep.info["sources"]),
        "dev_at_label_threshold": _metrics(
            dz / np.array([model.meta.temperature[c] for c in cats]), dy, cats,
            thresholds={c: model.meta.thresholds[c]["label"] for c in cats}),
        "calibration": cal["report"],
    }
    ev_rows = prep.rows("eval")
    if len(ev_rows):
        ez = _predict(model, prep, ev_rows, int(cfg["eval_batch_size"]), dev, amp)
        ez_cal = ez / np.array([model.meta.temperature[c] for c in cats])
        metrics["eval_only"] = {
            "note": "evaluation-only sets (licence forbids training); thresholds were NOT tuned on them",
            "sets": [prep.info["sources"][int(s)] for s in np.unique(prep.source[ev_rows])],
            "at_label_threshold": _metrics(ez_cal, prep.labels[ev_rows], cats, prep.source[ev_rows],
                                           prep.info["sources"],
                                           thresholds={c: model.meta.thresholds[c]["label"] for c in cats}),
            "ece_calibrated": {c: _ece_known(sigmoid(ez_cal[:, j]), prep.labels[ev_rows, j])
                               for j, c in enumerate(cats)},
        }
    model.meta.metrics = metrics
    model.meta.metrics["training"] = {
        "steps": step, "epochs_completed": epoch, "stopped": stopped, "train_seconds": round(train_s, 1),
        "train_rows": len(tr_rows), "tokens_seen": tok_seen, "device": str(dev),
        "device_name": torch.cuda.get_device_name(0) if dev.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "final_loss": float(np.mean(losses[-20:])) if losses else None,
    }
    model.to("cpu").save_checkpoint(run / "model")
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "run_dir": str(run), "git_commit": _git_commit(),
        "config": cfg, "config_sha256": cfg_sha, "prepared": {k: prep.info[k] for k in (
            "data_hashes", "counts", "tokenizer_sha256", "data_npz_sha256", "normalize", "tokens")},
        "backbone": model.meta.backbone, "metrics": metrics, "history": history[-50:],
        "wall_seconds": round(time.time() - t0, 1),
    }
    log_path = Path(cfg.get("run_log") or run / "runlog.jsonl")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False, default=_json_default) + "\n")
    log(f"model written to {run / 'model'}; run log appended to {log_path}")
    return record


WORD_EMB = "embeddings.word_embeddings.weight"
SHARD_BYTES = 15 * 1024 * 1024


def write_delta(model_dir: str | os.PathLike, backbone: str | os.PathLike, out: str | os.PathLike) -> list[Path]:
    """Write what a checkpoint adds to its backbone, small enough to travel back from a lent machine.

    For every tensor but the (frozen) word embeddings, ``fine-tuned - backbone`` in fp16 shards under 15 MiB
    (``delta-NN.safetensors``; storing the difference keeps the fp16 rounding error tiny), plus
    ``heads.safetensors`` and ``delta.json`` (the checkpoint's ``config.json`` and ``qinglang.json``, the sha256
    of the backbone weights and tokenizer, checked by ``assemble``): 6 files for e5-small.
    """
    from safetensors.torch import load_file, save_file

    d, b, o = Path(model_dir), Path(backbone), Path(out)
    o.mkdir(parents=True, exist_ok=True)
    sd = load_file(str(d / "model.safetensors"))
    bsd = load_file(str(b / "model.safetensors"))
    if not torch_equal(sd.pop(WORD_EMB), bsd[WORD_EMB]):
        raise ValueError(f"{d}: word embeddings differ from backbone {b} (train with freeze_word_embeddings)")
    written: list[Path] = []
    shard: dict[str, Any] = {}
    size = 0
    for k in sorted(sd):
        if k not in bsd or bsd[k].shape != sd[k].shape:
            raise ValueError(f"{d}: tensor {k} has no counterpart of the same shape in backbone {b}")
        t = (sd[k].float() - bsd[k].float()).half().contiguous()
        if shard and size + t.numel() * 2 > SHARD_BYTES:
            written.append(o / f"delta-{len(written):02d}.safetensors")
            save_file(shard, str(written[-1]))
            shard, size = {}, 0
        shard[k] = t
        size += t.numel() * 2
    if shard:
        written.append(o / f"delta-{len(written):02d}.safetensors")
        save_file(shard, str(written[-1]))
    (o / "heads.safetensors").write_bytes((d / "heads.safetensors").read_bytes())
    info = {"backbone_sha256": _sha_file(b / "model.safetensors"),
            "tokenizer_sha256": _sha_file(d / "tokenizer.json"), "shards": [p.name for p in written],
            "config.json": json.loads((d / "config.json").read_text(encoding="utf-8")),
            "qinglang.json": json.loads((d / "qinglang.json").read_text(encoding="utf-8"))}
    (o / "delta.json").write_text(json.dumps(info, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return [*written, o / "heads.safetensors", o / "delta.json"]


def torch_equal(a: Any, b: Any) -> bool:
    """Same shape and identical values."""
    return tuple(a.shape) == tuple(b.shape) and bool((a == b).all())


def assemble(delta_dir: str | os.PathLike, backbone: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Rebuild a full checkpoint folder from a delta (``write_delta``) and the backbone it was trained from."""
    from safetensors.torch import load_file, save_file

    dd, bb, o = Path(delta_dir), Path(backbone), Path(out)
    info = json.loads((dd / "delta.json").read_text(encoding="utf-8"))
    if _sha_file(bb / "model.safetensors") != info["backbone_sha256"]:
        raise ValueError(f"backbone {bb}: model.safetensors differs from the backbone the delta was made against "
                         "(rebuild it from the same pack: python -m qinglang_nlp.train.backbone hf <pack> <dir>)")
    bsd = load_file(str(bb / "model.safetensors"))
    sd = {WORD_EMB: bsd[WORD_EMB]}
    for name in info["shards"]:
        sd.update({k: bsd[k].float() + v.float() for k, v in load_file(str(dd / name)).items()})
    o.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(o / "model.safetensors"), metadata={"format": "pt"})
    (o / "heads.safetensors").write_bytes((dd / "heads.safetensors").read_bytes())
    for f in ("config.json", "qinglang.json"):
        (o / f).write_text(json.dumps(info[f], ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (o / "tokenizer.json").write_bytes((bb / "tokenizer.json").read_bytes())
    from .model import MultiTaskClassifier, _configured_tokenizer, load_tokenizer
    meta = json.loads((o / "qinglang.json").read_text(encoding="utf-8"))
    _configured_tokenizer(load_tokenizer(o), meta["max_length"], meta["pad_token_id"]).save(str(o / "tokenizer.json"))
    if _sha_file(o / "tokenizer.json") != info["tokenizer_sha256"]:
        raise ValueError(f"backbone {bb}: tokenizer.json differs from the one the delta was trained with")
    MultiTaskClassifier.from_checkpoint(o)  # refuse a folder that does not load
    return o


def _ece_known(p: np.ndarray, y: np.ndarray) -> float | None:
    from .calibrate import ece
    m = y >= 0
    return ece(p[m], y[m]) if m.any() else None


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def main(argv: list[str] | None = None) -> int:
    """CLI: ``prepare`` and ``train`` (see module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m qinglang_nlp.train.finetune")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="normalise + tokenise the data into a compact, carryable folder")
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--data", default=None)
    p.add_argument("--backbone", default=None)
    p.add_argument("--max-train-rows", type=int, default=None,
                   help="cap every training set at this many rows (smoke runs)")
    p.add_argument("--max-dev-rows", type=int, default=None, help="cap every dev set at this many rows")
    ck = sub.add_parser("check", help="exit 1 (saying why) if a prepared folder is stale for this config and data")
    ck.add_argument("--config", required=True)
    ck.add_argument("--prepared", required=True)
    ck.add_argument("--data", default=None)
    ck.add_argument("--backbone", default=None, help="the backbone train will use (default: the config's)")
    t = sub.add_parser("train", help="fine-tune (resumes from <run>/state.pt unless --no-resume)")
    t.add_argument("--config", required=True)
    t.add_argument("--prepared", required=True)
    t.add_argument("--run", required=True)
    t.add_argument("--backbone", default=None)
    t.add_argument("--max-minutes", type=float, default=None)
    t.add_argument("--max-steps", type=int, default=None)
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--device", default=None)
    t.add_argument("--no-resume", action="store_true")
    t.add_argument("--stop-at-step", type=int, default=None, help="stop (checkpointed) at this step, as a cut-off")
    t.add_argument("--run-log", default=None)
    dl = sub.add_parser("delta", help="write a checkpoint's delta from its backbone (to bring back from a GPU)")
    dl.add_argument("model")
    dl.add_argument("out")
    dl.add_argument("--backbone", required=True, help="the HF backbone folder the model was trained from")
    asm = sub.add_parser("assemble", help="rebuild a checkpoint folder from a delta and its backbone")
    asm.add_argument("delta")
    asm.add_argument("--backbone", required=True)
    asm.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if a.cmd == "delta":
        print("\n".join(str(p) for p in write_delta(a.model, a.backbone, a.out)))
        return 0
    if a.cmd == "assemble":
        print(assemble(a.delta, a.backbone, a.out))
        return 0
    if a.cmd == "check":
        reasons = stale_reasons(load_config(a.config), a.prepared, a.data, a.backbone)
        for r in reasons:
            print(f"stale: {r}", file=sys.stderr)
        if not reasons:
            print(f"{a.prepared}: current")
        return 1 if reasons else 0
    if a.cmd == "prepare":
        cfg = load_config(a.config)
        if a.max_train_rows:
            for name in cfg["datasets"]:
                cur = (cfg["datasets"][name] or {}).get("max_rows")
                cfg["datasets"][name] = dict(cfg["datasets"][name] or {},
                                             max_rows=min(cur, a.max_train_rows) if cur else a.max_train_rows)
        if a.max_dev_rows:
            cfg["max_dev_rows_per_dataset"] = a.max_dev_rows
        o = prepare(cfg, a.out, a.data, a.backbone)
        info = json.loads((o / "prepared.json").read_text(encoding="utf-8"))
        print(json.dumps({k: info[k] for k in ("counts", "tokens", "median_tokens", "truncated_rows")},
                         ensure_ascii=False))
        return 0
    cfg = load_config(a.config, max_steps=a.max_steps, epochs=a.epochs, run_log=a.run_log)
    rec = train(cfg, a.prepared, a.run, resume=not a.no_resume, max_minutes=a.max_minutes, device=a.device,
                backbone=a.backbone, log=lambda s: print(s, flush=True), stop_at_step=a.stop_at_step)
    print(json.dumps({c: {k: v for k, v in r.items() if k != "by_source"}
                      for c, r in rec["metrics"]["dev_at_0.5"].items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
