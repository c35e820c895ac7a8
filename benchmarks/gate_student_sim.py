"""Simulation: a small convolutional "student" window gate vs the distilled ridge gate (issue 7, session 6).

    .venv/bin/python benchmarks/gate_student_sim.py work_tmp/s5/train4k work_tmp/s5/gate_train4k \\
        --cal work_tmp/s5/dev2000 --cal work_tmp/s5/dev600 --val work_tmp/s5/val1500 --json OUT.json

Reads the per-window caches of ``gate_distill_sim.py cache`` (transformer window probabilities and the gate strings
title + "\\n" + window). A student (token ids from the shipped transformer's own tokenizer, its word embeddings
projected to a few dims, one 1-D convolution + ReLU, max- and mean-pooling over time, a linear head to the
categories) is trained in torch on the TRAIN cache only to predict the transformer's window logits (clipped below
at ``--floor``), optionally with a listwise term (per article and category, a softmax over its windows), and then
scored in numpy. Cut-offs per category are calibrated for 99 % of each calibration cache's flags (the forced best
window per category kept, as ``gate_keep``) and applied to the hold-out cache, exactly as
``gate_distill_sim.py holdout`` does; the ridge gate folder runs in the same table.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from gate_distill_sim import Dev

from qinglang_nlp.cascade import load_window_gate
from qinglang_nlp.stacked import gate_keep

#: ``kind`` of a saved student folder: an experiment, not a window gate folder the cascade loads
STUDENT_KIND = "conv_student_gate_experiment"
_STUDENT_ARRAYS = ("emb", "conv_w", "conv_b", "head_w", "head_b")


class StudentWindowGate:
    """A small convolutional window scorer distilled from the transformer member, run in numpy.

    Token ids come from the transformer's own tokenizer (the gate string title + "\\n" + window, no special
    tokens, the first ``max_tokens``); ``emb`` ``(vocab, d)`` holds the transformer's word embeddings projected to
    ``d`` dims; one 1-D convolution ``conv_w`` ``(width, d, hidden)`` (zero-padded, odd width) + ReLU, max- and
    mean-pooling over the tokens, and a linear head ``head_w`` ``(2 * hidden, n_cat)`` give the predicted window
    logits of the transformer; :meth:`predict_scores` returns their sigmoid (the ridge gate's interface).
    """

    def __init__(self, categories: Sequence[str], tokenizer: Any, emb: np.ndarray, conv_w: np.ndarray,
                 conv_b: np.ndarray, head_w: np.ndarray, head_b: np.ndarray, max_tokens: int = 192,
                 batch_size: int = 128):
        self.categories = tuple(categories)
        self.emb = np.ascontiguousarray(emb, dtype=np.float32)
        self.conv_w = np.ascontiguousarray(conv_w, dtype=np.float32)
        self.conv_b = np.asarray(conv_b, dtype=np.float32)
        self.head_w = np.asarray(head_w, dtype=np.float32)
        self.head_b = np.asarray(head_b, dtype=np.float32)
        k, d, h = self.conv_w.shape
        if self.emb.ndim != 2 or self.emb.shape[1] != d or k % 2 == 0 or self.conv_b.shape != (h,) \
                or self.head_w.shape != (2 * h, len(self.categories)) or self.head_b.shape != (len(self.categories),):
            raise ValueError(f"student gate arrays do not fit together: emb {self.emb.shape}, conv_w {conv_w.shape} "
                             f"(odd width, dim, hidden), conv_b {self.conv_b.shape}, head_w {self.head_w.shape}, "
                             f"head_b {self.head_b.shape}, {len(self.categories)} categories")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens!r}")
        self.max_tokens, self.batch_size = int(max_tokens), int(batch_size)
        self._tok = tokenizer
        self.vocab_size = self.emb.shape[0]

    def token_ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The student's token ids of each gate string (ids outside its table map to 0)."""
        return _token_ids(self._tok, texts, self.max_tokens, self.vocab_size)

    def logits_from_ids(self, ids: Sequence[np.ndarray]) -> np.ndarray:
        """Predicted transformer window logits ``(len(ids), n_cat)``, batching windows of similar length."""
        k, d, h = self.conv_w.shape
        p = (k - 1) // 2
        out = np.zeros((len(ids), len(self.categories)), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for lo in range(0, len(order), self.batch_size):
            idx = order[lo:lo + self.batch_size]
            lens = np.array([len(ids[i]) for i in idx])
            width = max(1, int(lens.max()))
            x = np.zeros((len(idx), width + k - 1, d), dtype=np.float32)
            for r, i in enumerate(idx):
                x[r, p:p + lens[r]] = self.emb[ids[i]]
            hid = np.broadcast_to(self.conv_b, (len(idx), width, h)).copy()
            for j in range(k):
                hid += x[:, j:j + width] @ self.conv_w[j]
            np.maximum(hid, 0.0, out=hid)
            hid[np.arange(width)[None, :] >= lens[:, None]] = 0.0  # padding: after ReLU, 0 never wins the max
            feat = np.concatenate([hid.max(axis=1), hid.sum(axis=1) / np.maximum(lens, 1)[:, None]], axis=1)
            out[idx] = feat @ self.head_w + self.head_b
        return out

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Predicted transformer window logits ``(len(texts), n_cat)``."""
        return self.logits_from_ids(self.token_ids(texts))

    def predict_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Predicted transformer window probabilities ``(len(texts), n_cat)`` (float64)."""
        return 1.0 / (1.0 + np.exp(-self.decision_function(texts).astype(np.float64)))

    def save(self, out_dir: str | os.PathLike, info: dict[str, Any] | None = None,
             distilled_from: str = "") -> Path:
        """Write the gate folder: ``student.npz``, ``tokenizer.json``, ``config.json`` and ``manifest.json``."""
        from qinglang_nlp.modelio import write_manifest

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        np.savez(out / "student.npz", **{n: getattr(self, n) for n in _STUDENT_ARRAYS})
        (out / "tokenizer.json").write_text(self._tok.to_str(), encoding="utf-8")
        k, d, h = self.conv_w.shape
        cfg = {"kind": STUDENT_KIND, "name": "window-gate-student", "categories": list(self.categories),
               "distilled_from": distilled_from,
               "scores": "predicted window probability of the second model's transformer member (conv student)",
               "student": {"width": k, "dim": d, "hidden": h, "vocab": self.vocab_size,
                           "max_tokens": self.max_tokens},
               "distill": info or {}}
        (out / "config.json").write_text(json.dumps(cfg, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        write_manifest(out)
        return out

    @classmethod
    def from_dir(cls, path: str | os.PathLike) -> StudentWindowGate:
        """Load a student folder written by :meth:`save`, checked against its manifest."""
        from tokenizers import Tokenizer

        from qinglang_nlp.errors import ModelLoadError
        from qinglang_nlp.modelio import read_config, verify_manifest

        d = Path(path)
        verify_manifest(d)
        config = read_config(d)
        try:
            with np.load(d / "student.npz", allow_pickle=False) as z:
                lacking = [n for n in _STUDENT_ARRAYS if n not in z.files]
                arrays = {n: z[n] for n in _STUDENT_ARRAYS if n in z.files}
            tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        except Exception as e:  # noqa: BLE001  (OSError, BadZipFile, ValueError, the tokenizer's own exception)
            raise ModelLoadError(f"{d}: cannot read the student gate ({type(e).__name__}: {e})") from None
        if lacking:
            raise ModelLoadError(f"{d}/student.npz: missing array(s) {lacking} (has {sorted(arrays)})")
        tok.no_truncation()
        tok.no_padding()
        try:
            return cls(config["categories"], tok, **arrays,
                       max_tokens=int(config.get("student", {}).get("max_tokens", 192)))
        except ValueError as e:
            raise ModelLoadError(f"{d}: {e}") from None


def _token_ids(tok: Any, texts: Sequence[str], max_tokens: int, vocab: int) -> list[np.ndarray]:
    """Token ids (no special tokens) of each text, the first ``max_tokens``; ids ``>= vocab`` map to 0."""
    out = []
    for e in tok.encode_batch(list(texts), add_special_tokens=False) if len(texts) else []:
        a = np.asarray(e.ids[:max_tokens], dtype=np.int64)
        a[(a < 0) | (a >= vocab)] = 0
        out.append(a)
    return out


def word_embeddings(model_path: str | os.PathLike) -> np.ndarray:
    """The word embedding matrix ``(vocab, dim)`` (float32) of an exported ONNX transformer: the fp32 initializer,
    or the int8 one times its per-row scale (the ``fp16`` variant). Needs the ``onnx`` package."""
    import onnx
    from onnx import numpy_helper

    inits = {i.name: i for i in onnx.load(str(model_path), load_external_data=True).graph.initializer}
    names = [n for n in inits if "word_embeddings" in n]
    q = next((n for n in names if n.endswith("weight_int8")), None)
    if q is not None:
        scale = next((n for n in names if "row_scale" in n), None)
        if scale is None:
            raise ValueError(f"{model_path}: int8 word embeddings {q!r} without a row scale")
        return (numpy_helper.to_array(inits[q]).astype(np.float32)
                * numpy_helper.to_array(inits[scale]).astype(np.float32))
    full = [n for n in names if numpy_helper.to_array(inits[n]).ndim == 2]
    if len(full) != 1:
        raise ValueError(f"{model_path}: cannot find one word embedding matrix (initializers {names})")
    return numpy_helper.to_array(inits[full[0]]).astype(np.float32)


def train_student_gate(member: Any, texts: Sequence[str], probs: np.ndarray, items: np.ndarray, *,
                       dim: int = 64, hidden: int = 128, width: int = 3, epochs: int = 12, floor: float = -8.0,
                       listwise: float = 0.0, tau: float = 1.0, lr: float = 2e-3, articles_per_batch: int = 16,
                       max_tokens: int = 192, seed: int = 0, train_embeddings: bool = False, dropout: float = 0.0,
                       log: Any = None,
                       ) -> tuple[StudentWindowGate, dict[str, Any]]:
    """Train a :class:`StudentWindowGate` (torch, one thread) to predict the transformer ``member``'s window logits.

    ``texts``: the gate strings of the windows of multi-window texts; ``probs`` ``(n, n_cat)``: the member's window
    probabilities; ``items``: the text each window comes from. Loss: squared error on the logits clipped below at
    ``floor``, plus ``listwise`` times a per-text, per-category cross-entropy between the softmaxes (temperature
    ``tau``) of the target and predicted logits over the text's windows (which window of a text is worst is what
    the gate needs). The embedding table starts as the member's word embeddings times a trained ``384 -> dim``
    projection (the projected table is what ships). Needs torch and onnx (``pip install .[train]``).
    """
    try:
        import torch
    except ImportError:
        raise ImportError("training a student window gate needs torch (pip install .[train])") from None
    from qinglang_nlp.stacked import _logit

    if width < 1 or width % 2 == 0:
        raise ValueError(f"width must be odd, got {width!r}")
    probs, items = np.asarray(probs), np.asarray(items)
    if not (len(texts) == len(probs) == len(items)) or len(texts) < 2:
        raise ValueError(f"need one probability row and text index per window text and at least 2 windows; got "
                         f"{len(texts)} texts, {len(probs)} rows, {len(items)} indices")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t0 = time.process_time()
        tok = member._tok
        e_full = torch.from_numpy(word_embeddings(member.model_path))
        vocab, e_dim = e_full.shape
        ids = _token_ids(tok, texts, max_tokens, vocab)
        y = torch.from_numpy(np.maximum(_logit(probs), floor).astype(np.float32))
        n_cat = y.shape[1]
        scale = float(e_full.std())
        proj = torch.nn.Parameter(torch.randn(e_dim, dim) / (scale * np.sqrt(e_dim)))
        conv = torch.nn.Conv1d(dim, hidden, width, padding=(width - 1) // 2)
        head = torch.nn.Linear(2 * hidden, n_cat)
        with torch.no_grad():
            head.bias.copy_(y.mean(0))
        # optionally a per-token correction of the projected table (zero at the start)
        delta = torch.nn.Parameter(torch.zeros(vocab, dim)) if train_embeddings else None
        params = [proj, *conv.parameters(), *head.parameters(), *([delta] if delta is not None else [])]
        opt = torch.optim.Adam(params, lr=lr)
        groups = [np.nonzero(items == t)[0] for t in np.unique(items)]
        steps = epochs * int(np.ceil(len(groups) / articles_per_batch))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)

        drop = torch.nn.Dropout(dropout)

        def forward(rows: np.ndarray) -> Any:
            lens = torch.tensor([len(ids[r]) for r in rows])
            wmax = max(1, int(lens.max()))
            pad = np.zeros((len(rows), wmax), np.int64)
            for k, r in enumerate(rows):
                pad[k, :len(ids[r])] = ids[r]
            uniq, inv = np.unique(pad, return_inverse=True)
            u = torch.from_numpy(uniq)
            table = e_full[u] @ proj + (delta[u] if delta is not None else 0.0)
            mask = (torch.arange(wmax)[None, :] < lens[:, None]).float()
            x = table[torch.from_numpy(inv.reshape(pad.shape))] * mask[..., None]
            hid = torch.relu(conv(x.transpose(1, 2))) * mask[:, None, :]
            feat = torch.cat([hid.max(-1).values, hid.sum(-1) / lens.clamp(min=1)[:, None]], dim=1)
            return head(drop(feat))

        losses = []
        for ep in range(epochs):
            perm = rng.permutation(len(groups))
            tot, nb = 0.0, 0
            for lo in range(0, len(perm), articles_per_batch):
                gs = [groups[g] for g in perm[lo:lo + articles_per_batch]]
                rows = np.concatenate(gs)
                z = forward(rows)
                yt = y[torch.from_numpy(rows)]
                loss = ((z - yt) ** 2).mean()
                if listwise > 0:  # per text and category: cross-entropy of the softmaxes over the text's windows
                    sizes = [len(g) for g in gs]
                    pos = np.zeros((len(gs), max(sizes)), np.int64)
                    for k, st in enumerate(np.cumsum([0, *sizes[:-1]])):
                        pos[k, :sizes[k]] = np.arange(st, st + sizes[k])
                    valid = torch.from_numpy(np.arange(pos.shape[1])[None, :] < np.array(sizes)[:, None])
                    pos_t = torch.from_numpy(pos)
                    zs = (z[pos_t] / tau).masked_fill(~valid[..., None], float("-inf"))
                    ys = (yt[pos_t] / tau).masked_fill(~valid[..., None], float("-inf"))
                    ce = -(torch.softmax(ys, 1) * torch.log_softmax(zs, 1).masked_fill(~valid[..., None], 0.0))
                    loss = loss + listwise * ce.sum(1).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                tot += float(loss.detach())
                nb += 1
            losses.append(round(tot / nb, 4))
            if log:
                log(f"student epoch {ep + 1}/{epochs}: loss {losses[-1]} ({time.process_time() - t0:.0f} CPU s)")
        with torch.no_grad():
            emb = (e_full @ proj + (delta if delta is not None else 0.0)).numpy()
            gate = StudentWindowGate(member.categories, tok, emb, conv.weight.numpy().transpose(2, 1, 0),
                                     conv.bias.numpy(), head.weight.numpy().T, head.bias.numpy(),
                                     max_tokens=max_tokens)
    finally:
        torch.set_num_threads(threads)
    info = {"windows": len(texts), "texts": len(groups), "dim": dim, "hidden": hidden, "width": width,
            "epochs": epochs, "train_embeddings": train_embeddings, "dropout": dropout,
            "floor": floor, "listwise": listwise, "tau": tau, "lr": lr, "seed": seed,
            "loss_per_epoch": losses, "fit_cpu_s": round(time.process_time() - t0, 1)}
    return gate, info




def logit(p: np.ndarray) -> np.ndarray:
    """Logit of probabilities (clipped to (1e-9, 1 - 1e-9))."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-9, 1 - 1e-9)
    return np.log(p) - np.log1p(-p)


def refit_ridge(second: str, texts: list[str], pp: np.ndarray) -> Any:
    """A ridge gate fitted as ``distill_window_gate`` does, on cached windows: returns a scoring function."""
    from scipy import sparse
    from sklearn.linear_model import Ridge

    import qinglang_nlp as ql

    base = dict(ql.load(second, lexicon=False).classifier.members)["baseline"]

    def x(ts: list[str]) -> sparse.csr_matrix:
        rows = [base.transform_one(t) for t in ts]
        return sparse.csr_matrix((np.concatenate([v for _, v in rows]),
                                  np.concatenate([i for i, _ in rows]).astype(np.int64),
                                  np.cumsum([0] + [len(i) for i, _ in rows])), shape=(len(rows), len(base.idf)))

    r = Ridge(alpha=0.3).fit(x(texts), np.maximum(logit(pp), -8.0))
    return lambda ts: 1.0 / (1.0 + np.exp(-r.predict(x(ts))))


def evaluate(name: str, scores: dict[str, np.ndarray], cals: dict[str, Dev], val: Dev, val_name: str,
             targets: tuple[float, ...]) -> list[dict]:
    """Rows: per calibration cache and target, tokens and flags kept on the calibration cache and the hold-out."""
    rows = []
    for cname, cal in cals.items():
        for t in targets:
            cut = cal.calibrate(scores[cname], t, "per_category")
            kc, kv = gate_keep(cal.item, scores[cname], cut), gate_keep(val.item, scores[val_name], cut)
            rv, pv = val.recall(kv)
            row = {"gate": name, "cal": cname, "target": t, "cal_tokens": round(cal.tokens(kc), 4),
                   "cal_recall": round(cal.recall(kc)[0], 4), "val_tokens": round(val.tokens(kv), 4),
                   "val_recall": round(rv, 4), "val_per_category": np.round(pv, 4).tolist()}
            f = gate_keep(val.item, scores[val_name], np.full(len(cut), np.inf))
            row["val_forced_only_tokens"], row["val_forced_only_recall"] = round(val.tokens(f), 4), \
                round(val.recall(f)[0], 4)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("train", help="train cache prefix(es) (gate_distill_sim.py cache), comma-separated")
    ap.add_argument("ridge", help="ridge gate folder (python -m qinglang_nlp.cascade distill)")
    ap.add_argument("--cal", action="append", required=True, help="calibration cache prefix (repeatable)")
    ap.add_argument("--val", required=True, help="hold-out cache prefix")
    ap.add_argument("--second", default="models/default", help="the stacked model (its transformer's tokenizer "
                    "and word embeddings seed the student)")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--width", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--floor", type=float, default=-8.0)
    ap.add_argument("--listwise", type=float, default=0.0, help="weight of the per-article listwise term")
    ap.add_argument("--tau", type=float, default=1.0, help="temperature of the listwise softmax (logit units)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--targets", default="0.98,0.99,0.995")
    ap.add_argument("--train-emb", action="store_true", help="also train a per-token correction of the table")
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--refit-ridge", action="store_true", help="also fit a ridge gate (alpha 0.3, floor -8, the "
                    "baseline member's vocabulary, as `cascade distill`) on the same train caches")
    ap.add_argument("--no-ridge", action="store_true")
    ap.add_argument("--no-student", action="store_true", help="only the ridge gates and the perfect scorer")
    ap.add_argument("--save", default=None, help="write the student gate folder here")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    targets = tuple(float(x) for x in a.targets.split(","))
    ttexts, tpp, titem = [], [], []
    for k, prefix in enumerate(a.train.split(",")):  # several caches: text indices kept apart
        d = np.load(prefix + ".npz")
        ttexts += json.loads(Path(prefix + ".texts.json").read_text(encoding="utf-8"))
        tpp.append(d["pp"])
        titem.append(d["item"] + k * 10_000_000)
    cals = {Path(c).name: Dev(c) for c in a.cal}
    val = Dev(a.val)
    vname = Path(a.val).name
    out: dict = {"args": vars(a), "rows": []}
    if not a.no_ridge:
        ridge = load_window_gate(a.ridge)
        rs = {n: np.asarray(ridge.predict_scores(c.texts)) for n, c in cals.items()}
        rs[vname] = np.asarray(ridge.predict_scores(val.texts))
        out["rows"] += evaluate("ridge", rs, cals, val, vname, targets)
    # a perfectly distilled scorer (the transformer's own window scores): what any student could reach at best
    perfect = {n: c.pp.astype(np.float64) for n, c in [*cals.items(), (vname, val)]}
    out["rows"] += evaluate("perfect distillation (the transformer's own window scores)", perfect, cals, val, vname,
                            targets)
    import qinglang_nlp as ql

    if a.refit_ridge:
        rr = refit_ridge(a.second, ttexts, np.concatenate(tpp))
        rs2 = {n: rr(c.texts) for n, c in [*cals.items(), (vname, val)]}
        out["rows"] += evaluate("ridge refit on the same train caches", rs2, cals, val, vname, targets)
    if a.no_student:
        if a.json:
            Path(a.json).write_text(json.dumps(out, indent=1), encoding="utf-8")
        return 0
    t0 = time.process_time()
    member = ql.load(a.second, lexicon=False).classifier.windowed_member()[1]
    student, info = train_student_gate(member, ttexts, np.concatenate(tpp), np.concatenate(titem), dim=a.dim, hidden=a.hidden,
                                       width=a.width, epochs=a.epochs, floor=a.floor, listwise=a.listwise,
                                       tau=a.tau, lr=a.lr, seed=a.seed,
                                       train_embeddings=a.train_emb, dropout=a.dropout, log=lambda s: print(s, file=sys.stderr))
    info["train_cpu_s"] = round(time.process_time() - t0, 1)
    out["student"] = info
    print(json.dumps(info), file=sys.stderr)
    ss = {}
    t0 = time.process_time()
    for n, c in [*cals.items(), (vname, val)]:
        ss[n] = np.asarray(student.predict_scores(c.texts))
    out["student_score_cpu_s"] = round(time.process_time() - t0, 2)
    out["student_score_tokens"] = int(sum(c.ntok.sum() for c in [*cals.values(), val]))
    print(f"student scoring: {out['student_score_cpu_s']} CPU s for {out['student_score_tokens']} window tokens",
          file=sys.stderr)
    for n, c in [*cals.items(), (vname, val)]:
        y, m = np.maximum(logit(c.pp), a.floor), ~c.single
        for g, sc in (("student", ss), ("ridge", {} if a.no_ridge else rs)):
            if n in sc:
                corr = [round(float(np.corrcoef(logit(sc[n])[m, j], y[m, j])[0, 1]), 4) for j in range(3)]
                out.setdefault("corr", {}).setdefault(g, {})[n] = corr
                print(f"{n}: corr of {g} logit with the clipped transformer logit (multi-window texts) {corr}",
                      file=sys.stderr)
    name = f"student d{a.dim} h{a.hidden} k{a.width} lw{a.listwise:g}{' emb' if a.train_emb else ''} do{a.dropout:g}"
    out["rows"] += evaluate(name, ss, cals, val, vname, targets)
    if not a.no_ridge:  # the mean of the two predicted logits
        mix = {n: (logit(ss[n]) + logit(rs[n])) / 2 for n in ss}
        out["rows"] += evaluate(f"mean logit ridge + {name}", mix, cals, val, vname, targets)
    if a.save:
        student.save(a.save, info)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
