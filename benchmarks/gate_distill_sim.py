"""Simulation: a window gate distilled from the transformer vs the baseline member as gate (issue 7).

    # 1. per-window caches (the transformer scores every window once; CPU-heavy, minutes)
    .venv/bin/python benchmarks/make_corpus.py -o work_tmp/s5/train4k.jsonl --rows 4000 --split train \\
        --seed 2 --positive-rate 0.1
    .venv/bin/python benchmarks/make_corpus.py -o work_tmp/s5/dev600.jsonl --rows 600 --split dev \\
        --seed 1 --positive-rate 0.1
    .venv/bin/python benchmarks/gate_distill_sim.py cache work_tmp/s5/train4k.jsonl work_tmp/s5/train4k --multi-only
    .venv/bin/python benchmarks/gate_distill_sim.py cache work_tmp/s5/dev600.jsonl work_tmp/s5/dev600
    # 2. fit gates on the train windows, simulate them exactly on the dev windows (seconds)
    .venv/bin/python benchmarks/gate_distill_sim.py sim work_tmp/s5/train4k work_tmp/s5/dev600
    # 3. cut-offs calibrated on one cache, applied to another (needs a gate folder from `cascade distill`)
    .venv/bin/python benchmarks/gate_distill_sim.py holdout GATE_DIR work_tmp/s5/dev600 work_tmp/s5/val1500
    # 4. the same with a second cut-off for each text's forced best window (see ``twocut``)
    .venv/bin/python benchmarks/gate_distill_sim.py twocut GATE_DIR work_tmp/s5/dev2000 work_tmp/s5/val1500

A cache holds, per window of every text (``--multi-only``: of texts cut into several windows, the only windows a
gate can skip), the text index, its token count, the transformer member's probabilities, the baseline member's
probabilities for the window as the gate reads it (title + "\\n" + window body) and that string; per text, the
baseline member's probabilities of the whole text (the stacked model's other input). ``sim`` reproduces the
stacked flags from these (max over the kept windows), and for each gate scorer prints the share of tokens the
transformer runs against the share of the ungated model's flags kept, with and without each text's forced best
window per category, and the cut-offs ``calibrate_window_gate`` would choose for 99% per category.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cache(posts: str, out: str, model: str = "default", multi_only: bool = False) -> None:
    """Write ``out.npz`` + ``out.texts.json`` (see the module docstring)."""
    import qinglang_nlp as ql
    from qinglang_nlp.batch import FieldMap, row_parts
    from qinglang_nlp.classifier import join_titles
    from qinglang_nlp.stacked import _scores

    rows = [json.loads(line) for line in Path(posts).read_text(encoding="utf-8").splitlines()]
    parts = [row_parts(r, FieldMap()) for r in rows]
    m = ql.load(model, lexicon=False)
    clf = m.classifier
    wi, tr = clf.windowed_member()
    bl = dict(clf.members)["baseline"]
    norms, ntitles = m.classifier_inputs([p[1] for p in parts], [p[0] for p in parts])
    pieces = tr._pieces(norms, ntitles)
    item = np.array([p.item for p in pieces])
    if multi_only:
        multi = np.bincount(item, minlength=len(norms))[item] > 1
        pieces = [p for p, k in zip(pieces, multi) if k]
        item = item[multi]
    gate_texts = join_titles([norms[p.item][p.start:p.end] for p in pieces],
                             None if ntitles is None else [ntitles[p.item] for p in pieces])
    t = time.process_time()
    pp = tr._score_pieces(pieces)
    t_tr = time.process_time() - t
    t = time.process_time()
    bwin = bl.predict_scores(gate_texts)
    t_bw = time.process_time() - t
    bdoc = np.asarray(_scores(bl, norms, ntitles))
    np.savez(out + ".npz", item=item, ntok=np.array([len(p.ids) for p in pieces]), pp=pp, bwin=bwin, bdoc=bdoc,
             kind=np.array([r.get("kind", "") for r in rows]), w=clf.weights, b=clf.bias, thr=clf._thr,
             n=len(rows), wi=wi)
    Path(out + ".texts.json").write_text(json.dumps(gate_texts, ensure_ascii=False), encoding="utf-8")
    print(f"{posts}: {len(rows)} posts, {len(pieces)} windows, {int(sum(len(p.ids) for p in pieces))} tokens; "
          f"CPU s transformer {t_tr:.1f}, baseline on windows {t_bw:.1f}", file=sys.stderr)


class Dev:
    """Exact simulation of the gated stacked model on a dev cache."""

    def __init__(self, path: str):
        d = np.load(path + ".npz")
        self.n = int(d["n"])
        self.item, self.ntok, self.pp, self.bwin, self.bdoc = d["item"], d["ntok"], d["pp"], d["bwin"], d["bdoc"]
        self.w, self.b, self.thr, self.wi = d["w"], d["b"], d["thr"], int(d["wi"])
        self.texts = json.loads(Path(path + ".texts.json").read_text(encoding="utf-8"))
        self.full = self.flags(np.ones(len(self.item), bool))
        self.single = np.bincount(self.item, minlength=self.n)[self.item] == 1
        # window k alone (as the transformer's max) flags its text in category j
        self.alone = self._alone()

    def _alone(self) -> np.ndarray:
        from qinglang_nlp.stacked import stack_logits

        bd = self.bdoc[self.item]
        probs = [self.pp, bd] if self.wi == 0 else [bd, self.pp]
        z = (stack_logits(probs) * self.w[None]).sum(-1) + self.b[None]
        return 1.0 / (1.0 + np.exp(-z)) >= self.thr

    def flags(self, keep: np.ndarray) -> np.ndarray:
        from qinglang_nlp.stacked import stack_logits

        tmax = np.zeros((self.n, self.pp.shape[1]))
        np.maximum.at(tmax, self.item[keep], self.pp[keep])
        probs = [tmax, self.bdoc] if self.wi == 0 else [self.bdoc, tmax]
        z = (stack_logits(probs) * self.w[None]).sum(-1) + self.b[None]
        return 1.0 / (1.0 + np.exp(-z)) >= self.thr

    def recall(self, keep: np.ndarray) -> tuple[float, np.ndarray]:
        """Share of all ungated flags kept, and per category."""
        got = self.flags(keep)
        per = np.array([got[self.full[:, j], j].mean() for j in range(self.full.shape[1])])
        return float((got & self.full).sum() / self.full.sum()), per

    def tokens(self, keep: np.ndarray) -> float:
        return float(self.ntok[keep].sum() / self.ntok.sum())

    def forced(self, g: np.ndarray, mode: str) -> np.ndarray:
        """Windows run whatever the cut-offs: one-window texts, plus each multi-window text's best window per
        category (``per_category``, as ``gate_keep``), its one best window by the max over categories (``one``),
        or none (``none``)."""
        from qinglang_nlp.stacked import gate_keep

        if mode == "per_category":
            return gate_keep(self.item, g, np.full(g.shape[1], np.inf))
        keep = self.single.copy()
        if mode == "one":
            s = g.max(axis=1)
            order = np.lexsort((-s, self.item))
            first = np.ones(len(order), dtype=bool)
            first[1:] = self.item[order][1:] != self.item[order][:-1]
            keep[order[first]] = True
        return keep

    def calibrate(self, g: np.ndarray, target: float, mode: str) -> np.ndarray:
        """Per-category cut-offs as ``calibrate_window_gate`` picks them (the highest cut-off keeping ``target``
        of the category's flags), over the ``mode`` forced windows; computed in closed form: a flag is kept iff
        a kept window alone reaches it (the stacked score is monotone in the transformer's max)."""
        n_cat = g.shape[1]
        base = self.forced(g, mode)
        cut = np.full(n_cat, np.inf)
        for j in range(n_cat):
            pos = np.nonzero(self.full[:, j])[0]
            if not len(pos):
                continue
            need_t = []
            for i in pos:
                ks = np.nonzero((self.item == i) & self.alone[:, j])[0]
                need_t.append(np.inf if base[ks].any() else g[ks, j].max())
            need_t = np.sort(np.array(need_t))[::-1]
            cut[j] = need_t[int(np.ceil(target * len(pos) - 1e-9)) - 1]
        return cut

    def keep(self, g: np.ndarray, cut: np.ndarray, mode: str) -> np.ndarray:
        return self.forced(g, mode) | (g >= cut[None]).any(axis=1)


def fit_gates(train: str, dev: Dev) -> dict[str, np.ndarray]:
    """Gate scores on the dev windows from each scorer (higher = more likely to be needed)."""
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge

    d = np.load(train + ".npz")
    ttexts = json.loads(Path(train + ".texts.json").read_text(encoding="utf-8"))
    pp = np.clip(d["pp"].astype(np.float64), 1e-6, 1 - 1e-6)
    y = np.log(pp) - np.log1p(-pp)
    out: dict[str, np.ndarray] = {"baseline member": dev.bwin}
    print(f"train: {len(ttexts)} windows of {len(np.unique(d['item']))} multi-window texts", file=sys.stderr)
    import qinglang_nlp as ql

    bl = dict(ql.load("default", lexicon=False).classifier.members)["baseline"]

    def base_matrix(texts: list[str]) -> sparse.csr_matrix:
        rows, cols, vals = [], [], []
        for r, t in enumerate(texts):
            idx, v = bl.transform_one(t)
            rows.extend([r] * len(idx))
            cols.extend(idx.tolist())
            vals.extend(v.tolist())
        return sparse.csr_matrix((vals, (rows, cols)), shape=(len(texts), len(bl.idf)))

    Xtr_b, Xdv_b = base_matrix(ttexts), base_matrix(dev.texts)
    for floor in (-4.0, -8.0):
        yc = np.maximum(y, floor)
        for alpha in (0.3, 1.0, 3.0):
            t = time.process_time()
            r = Ridge(alpha=alpha).fit(Xtr_b, yc)
            out[f"ridge(baseline vocab) floor {floor:g} alpha {alpha:g}"] = r.predict(Xdv_b)
            print(f"fit floor {floor} alpha {alpha}: {time.process_time() - t:.1f} CPU s", file=sys.stderr)
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True, max_features=200_000)
    Xtr = vec.fit_transform(ttexts)
    Xdv = vec.transform(dev.texts)
    for alpha in (0.3, 1.0):
        r = Ridge(alpha=alpha).fit(Xtr, np.maximum(y, -4.0))
        out[f"ridge(own vocab {Xtr.shape[1]}) floor -4 alpha {alpha:g}"] = r.predict(Xdv)
    return out


def sim(train: str, dev_path: str, target: float = 0.99) -> dict:
    """Print and return the curves and the calibrated points."""
    dev = Dev(dev_path)
    multi = ~dev.single
    print(f"dev: {dev.n} posts, {len(dev.item)} windows, {int(dev.ntok.sum())} tokens "
          f"({dev.tokens(multi):.3f} in multi-window texts), flags per category {dev.full.sum(0).tolist()}")
    # oracle: each needed (text, category)'s best transformer window
    oracle = dev.single.copy()
    zero = dev.flags(dev.single & False)
    for j in range(dev.pp.shape[1]):
        for i in np.nonzero(dev.full[:, j] & ~zero[:, j])[0]:
            ks = np.nonzero(dev.item == i)[0]
            oracle[ks[np.argmax(dev.pp[ks, j])]] = True
    print(f"oracle (best transformer window of each flag): tokens {dev.tokens(oracle):.3f} "
          f"recall {dev.recall(oracle)[0]:.4f}")
    res: dict = {"dev_tokens": int(dev.ntok.sum()), "oracle_tokens": round(dev.tokens(oracle), 4), "gates": {}}
    for name, g in fit_gates(train, dev).items():
        g = np.asarray(g, dtype=np.float64)
        row: dict = {}
        for forced in ("per_category", "one", "none"):
            cut = dev.calibrate(g, target, forced)
            keep = dev.keep(g, cut, forced)
            rec, per = dev.recall(keep)
            curve = []
            for tg in (0.9, 0.95, 0.98, 0.99, 0.995, 1.0):  # calibrated on dev for each target, per category
                k = dev.keep(g, dev.calibrate(g, tg, forced), forced)
                curve.append((tg, round(dev.tokens(k), 3), round(dev.recall(k)[0], 4)))
            row[forced] = {
                "tokens_at_target": round(dev.tokens(keep), 4), "recall": round(rec, 4),
                "per_category": np.round(per, 4).tolist(), "cutoffs": np.round(cut, 4).tolist(),
                "curve_tokens_recall": curve}
            print(f"{name:52s} forced={forced:12s} @{target}: tokens {dev.tokens(keep):.3f} recall {rec:.4f} "
                  f"per cat {np.round(per, 3).tolist()} | curve {curve}")
        res["gates"][name] = row
    return res


def holdout(gate: str, cal_path: str, val_path: str, targets: tuple[float, ...] = (0.95, 0.98, 0.99, 0.995, 1.0),
            ) -> dict:
    """Cut-offs calibrated on one cache, applied to another: the baseline member's gate vs a distilled gate folder.

    What a calibration on few dev posts promises against what it keeps on other posts."""
    from qinglang_nlp.cascade import load_window_gate
    from qinglang_nlp.stacked import gate_keep

    cal, val = Dev(cal_path), Dev(val_path)
    scorer = load_window_gate(gate)
    out: dict = {"cal": cal_path, "val": val_path, "cal_flags": cal.full.sum(0).tolist(),
                 "val_flags": val.full.sum(0).tolist(), "rows": []}
    for name, gc, gv in (("baseline member", cal.bwin, val.bwin),
                         ("distilled", scorer.predict_scores(cal.texts), scorer.predict_scores(val.texts))):
        for t in targets:
            cut = cal.calibrate(np.asarray(gc), t, "per_category")
            kc, kv = gate_keep(cal.item, gc, cut), gate_keep(val.item, gv, cut)
            rv, pv = val.recall(kv)
            row = {"gate": name, "target": t, "cal_tokens": round(cal.tokens(kc), 4),
                   "cal_recall": round(cal.recall(kc)[0], 4), "val_tokens": round(val.tokens(kv), 4),
                   "val_recall": round(rv, 4), "val_per_category": np.round(pv, 4).tolist()}
            out["rows"].append(row)
            print(json.dumps(row))
    return out


def twocut(gate: str, cal_path: str, val_path: str, target: float = 0.99, steps: int = 40) -> dict:
    """Two cut-offs per category instead of one: every window with a gate score >= c1 runs, and a text's best window
    for a category runs only when its score is >= c2 (c2 = -inf is ``gate_keep``'s forced best window; a text with
    no window run gets transformer probability 0, as in :meth:`Dev.flags`). For each c2 on a grid of the CAL scores'
    quantiles, each category's c1 is the highest keeping ``target`` of its CAL flags; the pair with the fewest CAL
    tokens is the one chosen, and every pair is also applied to VAL. Asks whether the forced best windows (about
    24 % of the tokens) or the opened cut-offs are what costs."""
    from qinglang_nlp.cascade import load_window_gate

    cal, val = Dev(cal_path), Dev(val_path)
    scorer = load_window_gate(gate)
    gc, gv = np.asarray(scorer.predict_scores(cal.texts)), np.asarray(scorer.predict_scores(val.texts))

    def best(d: Dev, g: np.ndarray) -> np.ndarray:
        out = np.zeros(g.shape, dtype=bool)
        for j in range(g.shape[1]):
            order = np.lexsort((-g[:, j], d.item))
            first = np.ones(len(order), dtype=bool)
            first[1:] = d.item[order][1:] != d.item[order][:-1]
            out[order[first], j] = True
        return out

    bc, bv = best(cal, gc), best(val, gv)

    def keep(d: Dev, g: np.ndarray, b: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
        return (g >= c1[None]).any(axis=1) | d.single | (b & (g >= c2[None])).any(axis=1)

    def per_cat(d: Dev, k: np.ndarray) -> tuple[np.ndarray, float]:
        got = d.flags(k)
        per = np.array([got[d.full[:, j], j].mean() for j in range(d.full.shape[1])])
        return per, float((got & d.full).sum() / d.full.sum())

    grid = np.quantile(gc, np.linspace(0, 1, steps + 1)[1:-1], axis=0)
    rows = []
    for q in range(-1, len(grid)):
        c2 = np.full(gc.shape[1], -np.inf) if q < 0 else grid[q].copy()
        c1 = np.full(gc.shape[1], np.inf)
        for j in range(gc.shape[1]):
            cands = np.unique(np.concatenate([gc[:, j], [np.inf]]))[::-1]

            def rec(cj: float, j: int = j, c2: np.ndarray = c2) -> float:
                cc = np.full(gc.shape[1], np.inf)
                cc[j] = cj
                return per_cat(cal, keep(cal, gc, bc, cc, c2))[0][j]

            lo, hi = 0, len(cands) - 1  # recall rises as the cut-off falls: bisect for the highest that keeps target
            if rec(cands[0]) >= target:
                hi = 0
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if rec(cands[mid]) >= target else (mid, hi)
            c1[j] = cands[hi]
        kc, kv = keep(cal, gc, bc, c1, c2), keep(val, gv, bv, c1, c2)
        pv, av = per_cat(val, kv)
        row = {"c2_quantile": None if q < 0 else round(float((q + 1) / steps), 4), "cal_tokens": round(cal.tokens(kc), 4),
               "cal_recall": round(per_cat(cal, kc)[1], 4), "val_tokens": round(val.tokens(kv), 4),
               "val_recall": round(av, 4), "val_per_category": np.round(pv, 4).tolist()}
        rows.append(row)
        print(json.dumps(row))
    chosen = min(rows, key=lambda r: r["cal_tokens"])
    print("chosen on CAL (fewest CAL tokens):", json.dumps(chosen))
    return {"gate": gate, "cal": cal_path, "val": val_path, "target": target, "rows": rows, "chosen": chosen}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cache")
    c.add_argument("posts")
    c.add_argument("out", help="output prefix (writes OUT.npz and OUT.texts.json)")
    c.add_argument("--model", default="default")
    c.add_argument("--multi-only", action="store_true")
    s = sub.add_parser("sim")
    s.add_argument("train")
    s.add_argument("dev")
    s.add_argument("--recall", type=float, default=0.99)
    s.add_argument("--json", default=None)
    h = sub.add_parser("holdout")
    h.add_argument("gate", help="distilled gate folder")
    h.add_argument("cal", help="cache the cut-offs are calibrated on")
    h.add_argument("val", help="cache they are applied to")
    h.add_argument("--json", default=None)
    t2 = sub.add_parser("twocut")
    t2.add_argument("gate", help="distilled gate folder")
    t2.add_argument("cal", help="cache the cut-offs are calibrated on")
    t2.add_argument("val", help="cache they are applied to")
    t2.add_argument("--recall", type=float, default=0.99)
    t2.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    if a.cmd in ("holdout", "twocut"):
        res = holdout(a.gate, a.cal, a.val) if a.cmd == "holdout" else twocut(a.gate, a.cal, a.val, a.recall)
        if a.json:
            Path(a.json).write_text(json.dumps(res, indent=1), encoding="utf-8")
    elif a.cmd == "cache":
        cache(a.posts, a.out, a.model, a.multi_only)
    else:
        res = sim(a.train, a.dev, a.recall)
        if a.json:
            Path(a.json).write_text(json.dumps(res, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
