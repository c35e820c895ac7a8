"""Two-stage scoring: a cheap first stage (baseline + lexicon) sends only candidate rows to the expensive model.

A row is a *candidate* when the first stage scores any category at or above that category's cut-off, or (with
``lexicon_gate``) when any lexicon term hits. Candidates get the second model's full result (``stage`` 2);
the others are passed with the first stage's scores, no labels and no evidence (``stage`` 1).

Cut-offs are chosen on dev data by :func:`calibrate` so that, per category, at least ``target_recall`` of the
rows the second model flags on dev are candidates. The recall actually kept on other data is measured by
:func:`measure` (and ``benchmarks/batch_speed.py``); it is not guaranteed.

A second, finer gate works inside a long text: when the second model is a stacked model (transformer +
baseline), its window gate (:meth:`qinglang_nlp.stacked.StackedClassifier.set_window_gate`) lets the baseline
choose which windows of a multi-window text the transformer scores. :func:`calibrate_window_gate` chooses its
per-category cut-offs on dev for ``target_recall`` of the ungated model's flags; the row cut-offs are then
calibrated against the gated model. Long WeChat articles carry most of the transformer's tokens, so this is where
the time goes.

Cascade file (JSON)::

    {"kind": "cascade", "first": "models/baseline", "lexicon_gate": true, "target_recall": 0.99,
     "cutoffs": {"fanquan": 0.12, "vulgar": 0.08, "rumor": 0.2}, "second": "name@version it was tuned for",
     "window_gate": {"member": "baseline", "cutoffs": {...}, "dev": {...}},      # optional
     "dev": {...calibration statistics...}}
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .classifier import check_titles
from .result import Result
from .taxonomy import CATEGORIES

__all__ = ["Cascade", "calibrate", "calibrate_window_gate", "load_cascade", "measure", "read_cascade_file"]


class Cascade:
    """A first-stage ``Moderator`` gating a second-stage ``Moderator``; same ``predict_batch`` surface."""

    def __init__(self, first: Any, second: Any, cutoffs: dict[str, float], lexicon_gate: bool = True,
                 window_gate: dict[str, Any] | None = None):
        missing = [c for c in CATEGORIES if c not in cutoffs]
        if missing:
            raise ValueError(f"cascade cut-offs lack categories {missing} (need {list(CATEGORIES)})")
        self.first, self.second = first, second
        self.cutoffs = {c: float(cutoffs[c]) for c in CATEGORIES}
        self.lexicon_gate = bool(lexicon_gate)
        self.window_gate = window_gate
        set_gate = getattr(getattr(second, "classifier", None), "set_window_gate", None)
        if window_gate:
            if set_gate is None:
                raise ValueError(f"a window gate needs a stacked second model; {second.name} is not one")
            if not isinstance(window_gate, dict) or not isinstance(window_gate.get("cutoffs"), dict):
                raise ValueError(f"cascade window_gate must be an object with 'cutoffs', got {window_gate!r}")
            # the cascade configures its second model: a model shared elsewhere is gated too (see set_window_gate)
            set_gate(window_gate["cutoffs"], window_gate.get("member", "baseline"))
        elif set_gate is not None:
            set_gate(None)
        self.name = f"cascade({first.name}>{second.name})"
        self.max_chars = second.max_chars

    def __repr__(self) -> str:
        return f"Cascade({self.name!r}, cutoffs={self.cutoffs})"

    def prepare(self, text: Any, index: Any = None) -> tuple[str, bool]:
        """Input checks of the second stage (whose limits apply)."""
        return self.second.prepare(text, index)

    def is_candidate(self, r: Result) -> bool:
        """Whether a first-stage result goes on to the second stage."""
        if any(r.scores[c] >= self.cutoffs[c] for c in CATEGORIES):
            return True
        return self.lexicon_gate and any(s.source == "lexicon" for s in r.evidence)

    def predict_staged(self, texts: Sequence[str], batch_size: int = 64,
                       titles: Sequence[str | None] | None = None) -> list[tuple[Result, int]]:
        """One ``(result, stage)`` per text, in order; stage 2 results come from the second model.

        ``titles``: one ``str | None`` per text (the body), as in ``Moderator.predict_batch``: both stages get them
        (evidence offsets of a titled text index ``title + "\\n" + text``)."""
        texts = list(texts)  # any iterable, as Moderator.predict_batch takes
        titles = check_titles(titles, len(texts))
        if titles is not None and not any(titles):
            titles = None  # no title anywhere: exactly the calls made without titles
        cut = [False] * len(texts)
        if titles is None:
            prepared = [self.prepare(t, i) for i, t in enumerate(texts)]
            texts, cut = [p[0] for p in prepared], [p[1] for p in prepared]  # the stages see the cut texts
            first = self.first.predict_batch(texts, batch_size=batch_size)
        else:  # the Moderators check and truncate title + body themselves
            first = self.first.predict_batch(texts, batch_size=batch_size, titles=titles)
        cand = [i for i, r in enumerate(first) if self.is_candidate(r)]
        kw = {} if titles is None else {"titles": [titles[i] for i in cand]}
        second = self.second.predict_batch([texts[i] for i in cand], batch_size=batch_size, **kw) if cand else []
        out: list[tuple[Result, int]] = [
            (Result(dict(r.scores), [], "pass", [], r.truncated or cut[i], self.first.name), 1)
            for i, r in enumerate(first)]
        for i, r in zip(cand, second):
            r.truncated = r.truncated or cut[i]
            out[i] = (r, 2)
        return out

    def predict_batch(self, texts: Sequence[str], batch_size: int = 64,
                      titles: Sequence[str | None] | None = None) -> list[Result]:
        """Results only (see :meth:`predict_staged`)."""
        return [r for r, _ in self.predict_staged(texts, batch_size, titles)]

    def to_dict(self) -> dict[str, Any]:
        """The cascade file content (without calibration statistics)."""
        out = {"kind": "cascade", "first": str(getattr(self.first, "path", "") or ""),
               "second": self.second.name, "lexicon_gate": self.lexicon_gate, "cutoffs": self.cutoffs}
        if self.window_gate:
            out["window_gate"] = {k: self.window_gate[k] for k in ("member", "cutoffs") if k in self.window_gate}
        return out


def _cutoff_for_recall(first_scores: np.ndarray, gated: np.ndarray, target: float) -> float:
    """Largest cut-off t such that (#gated or score>=t) / n >= target, over the positives given."""
    n = len(first_scores)
    need = int(np.ceil(target * n - 1e-9))
    have = int(gated.sum())
    if have >= need:
        return 1.0 + 1e-9  # the lexicon alone reaches the target: the score gate never opens
    s = np.sort(first_scores[~gated])[::-1]
    return float(s[need - have - 1])


def calibrate_window_gate(second: Any, texts: Sequence[str], target_recall: float = 0.99,
                          member: str = "baseline", titles: Sequence[str | None] | None = None) -> dict[str, Any]:
    """Per-category window-gate cut-offs for a stacked ``second`` model, chosen on ``texts`` (dev).

    Every window of every text is scored once by the windowed member and by ``member``; the gate is then
    simulated exactly (the stacked score is monotone in the windowed member's max, so more windows never remove a
    flag). For each category the highest cut-off on ``member``'s window scores is taken at which the gated model
    still flags ``target_recall`` of the texts the ungated model flags in that category; the gate runs the union
    over categories. Returns ``{"member", "cutoffs", "dev": {...}}`` (the cascade file's ``window_gate``).
    ``titles`` (one ``str | None`` per text, the body): scored as the second model scores titled texts (the
    windowed member keeps the title in front of every window, the gate member reads title + window, the other
    members the joined text).
    """
    from .stacked import _scores, gate_keep

    clf = getattr(second, "classifier", None)
    win = clf.windowed_member() if hasattr(clf, "windowed_member") else None
    if win is None:
        raise ValueError(f"a window gate needs a stacked second model with a transformer member; {second.name} "
                         "is not one")
    if not 0.0 < target_recall <= 1.0:
        raise ValueError(f"target_recall must be in (0, 1], got {target_recall!r}")
    if not texts:
        raise ValueError("calibrate_window_gate needs dev texts, got none")
    gate_model = dict(clf.members).get(member)
    if gate_model is None or gate_model is win[1]:
        raise ValueError(f"window gate member {member!r} is not a non-windowed member of {second.name}")
    norms, ntitles = second.classifier_inputs(texts, titles)  # what the gated model reads: the same cut
    n, n_cat = len(norms), len(clf.categories)
    ws = win[1].score_windows(norms, ntitles)  # the windowed member's max over these is its ungated score
    probs = [np.zeros((n, n_cat)) if i == win[0] else np.asarray(_scores(m, norms, ntitles), dtype=np.float64)
             for i, (_, m) in enumerate(clf.members)]
    g = np.asarray(_scores(gate_model, [norms[i][a:b] for i, a, b in zip(ws.item, ws.start, ws.end)],
                           None if ntitles is None else [ntitles[i] for i in ws.item]))
    thr = np.array([clf.thresholds[c] for c in clf.categories])

    def flags(keep: np.ndarray) -> np.ndarray:
        tmax = np.zeros((n, n_cat))
        np.maximum.at(tmax, ws.item[keep], ws.probs[keep])
        member_probs = list(probs)
        member_probs[win[0]] = tmax
        return clf.combine(member_probs) >= thr

    full = flags(np.ones(len(ws.item), dtype=bool))
    base = gate_keep(ws.item, g, np.full(n_cat, np.inf))  # single windows and each text's best windows
    cut = np.full(n_cat, np.inf)
    stats: dict[str, Any] = {"n": n, "windows": len(ws.item), "tokens": int(ws.n_tokens.sum()),
                             "target_recall": target_recall, "categories": {}}
    for j, c in enumerate(clf.categories):
        pos = full[:, j]
        if not pos.any():
            stats["categories"][c] = {"flagged": 0, "note": "never flagged on dev: no cut-off, only each text's "
                                      "best windows run for this category"}
            continue
        cut[j] = 0.0  # every window: recall 1 by construction, the fallback if no higher cut-off reaches the target
        for t in [np.inf, *np.unique(g[:, j])[::-1]]:
            # = gate_keep with only this category's cut-off set, without redoing the per-text sorts
            if (flags(base | (g[:, j] >= t))[pos, j]).mean() >= target_recall:
                cut[j] = t
                break
    keep = gate_keep(ws.item, g, cut)
    got = flags(keep)
    for j, c in enumerate(clf.categories):
        if full[:, j].any():
            stats["categories"][c] = {"flagged": int(full[:, j].sum()),
                                      "dev_recall": round(float(got[full[:, j], j].mean()), 4),
                                      "new_flags": int((got[:, j] & ~full[:, j]).sum())}
    stats["windows_run"] = round(float(keep.mean()), 4) if len(keep) else 1.0
    stats["tokens_run"] = round(float(ws.n_tokens[keep].sum() / max(1, ws.n_tokens.sum())), 4)
    cutoffs = {c: (float(cut[j]) if np.isfinite(cut[j]) else 2.0) for j, c in enumerate(clf.categories)}
    return {"member": member, "cutoffs": cutoffs, "dev": stats}


def calibrate(first: Any, second: Any, texts: Sequence[str], target_recall: float = 0.99,
              lexicon_gate: bool = True, batch_size: int = 64, window_gate: bool = False,
              row_gate: bool = True, titles: Sequence[str | None] | None = None) -> dict[str, Any]:
    """Choose per-category cut-offs on ``texts`` (dev) for ``target_recall`` of the second model's flags.

    Returns the cascade file content, with the dev statistics under ``dev``. A category the second model
    never flags on dev gets the first stage's review threshold (recall cannot be estimated; says so).
    ``window_gate``: first calibrate the second model's window gate (:func:`calibrate_window_gate`, same
    target); the row cut-offs are then chosen against the gated model, which is left ungated on return. ``row_gate=False``
    (with ``window_gate``): every row goes on to the second model (row cut-offs 0, no lexicon gate).
    ``titles``: one ``str | None`` per dev text (the body), scored as the batch job scores titled posts.
    """
    if not 0.0 < target_recall <= 1.0:
        raise ValueError(f"target_recall must be in (0, 1], got {target_recall!r}")
    if not texts:
        raise ValueError("calibrate needs dev texts, got none")
    wg = None
    if window_gate:
        wg = calibrate_window_gate(second, texts, target_recall, titles=titles)
        # the row cut-offs are chosen against the gated model; the caller's model is left ungated afterwards
        second.classifier.set_window_gate(wg["cutoffs"], wg["member"])
        try:
            return _calibrate_rows(first, second, texts, target_recall, lexicon_gate, batch_size, row_gate, wg,
                                   titles)
        finally:
            second.classifier.set_window_gate(None)
    return _calibrate_rows(first, second, texts, target_recall, lexicon_gate, batch_size, row_gate, wg, titles)


def _calibrate_rows(first: Any, second: Any, texts: Sequence[str], target_recall: float, lexicon_gate: bool,
                    batch_size: int, row_gate: bool, wg: dict[str, Any] | None,
                    titles: Sequence[str | None] | None = None) -> dict[str, Any]:
    if not row_gate:
        if wg is None:
            raise ValueError("row_gate=False needs window_gate=True (otherwise nothing is gated)")
        return {"kind": "cascade", "first": str(getattr(first, "path", "") or ""), "second": second.name,
                "lexicon_gate": False, "target_recall": target_recall, "cutoffs": {c: 0.0 for c in CATEGORIES},
                "dev": {"n": len(texts), "target_recall": target_recall, "candidate_rate": 1.0,
                        "note": "row gate off: every row is a candidate"}, "window_gate": wg}
    kw = {} if titles is None or not any(titles) else {"titles": list(titles)}
    r1 = first.predict_batch(list(texts), batch_size=batch_size, **kw)
    r2 = second.predict_batch(list(texts), batch_size=batch_size, **kw)
    s1 = np.array([[r.scores[c] for c in CATEGORIES] for r in r1])
    lex = np.array([any(s.source == "lexicon" for s in r.evidence) for r in r1]) if lexicon_gate \
        else np.zeros(len(r1), dtype=bool)
    cutoffs, stats = {}, {"n": len(texts), "target_recall": target_recall, "categories": {}}
    for j, c in enumerate(CATEGORIES):
        pos = np.array([c in r.labels for r in r2])
        if not pos.any():
            thr = first.policy.review.get(c, 0.5) if hasattr(first, "policy") else 0.5
            cutoffs[c] = float(thr)
            stats["categories"][c] = {"second_flagged": 0, "note": "second model flags none on dev: "
                                      "cut-off = first stage review threshold, recall not estimated"}
            continue
        cutoffs[c] = _cutoff_for_recall(s1[pos, j], lex[pos], target_recall)
        kept = (s1[pos, j] >= cutoffs[c]) | lex[pos]
        stats["categories"][c] = {"second_flagged": int(pos.sum()), "dev_recall": round(float(kept.mean()), 4)}
    cand = (s1 >= np.array([cutoffs[c] for c in CATEGORIES])).any(axis=1) | lex
    stats["candidate_rate"] = round(float(cand.mean()), 4)
    out = {"kind": "cascade", "first": str(getattr(first, "path", "") or ""), "second": second.name,
           "lexicon_gate": lexicon_gate, "target_recall": target_recall, "cutoffs": cutoffs, "dev": stats}
    if wg is not None:
        out["window_gate"] = wg
    return out


def measure(cascade: Cascade, texts: Sequence[str], batch_size: int = 64) -> dict[str, Any]:
    """Recall kept and speed-up of ``cascade`` against its second model alone, on ``texts`` (not dev).

    Recall per category = share of rows the second model alone labels ``c`` that the cascade also labels
    ``c``. Times are wall-clock seconds of one pass each, on this machine.
    """
    texts = list(texts)
    t0 = time.perf_counter()
    full = cascade.second.predict_batch(texts, batch_size=batch_size)
    t_full = time.perf_counter() - t0
    t0 = time.perf_counter()
    staged = cascade.predict_staged(texts, batch_size=batch_size)
    t_cas = time.perf_counter() - t0
    out: dict[str, Any] = {"n": len(texts), "seconds_second_only": round(t_full, 3),
                           "seconds_cascade": round(t_cas, 3),
                           "speedup": round(t_full / t_cas, 3) if t_cas > 0 else None,
                           "candidate_rate": round(sum(s == 2 for _, s in staged) / max(1, len(texts)), 4),
                           "categories": {}}
    flagged_all = kept_all = 0
    for c in CATEGORIES:
        pos = [i for i, r in enumerate(full) if c in r.labels]
        kept = [i for i in pos if c in staged[i][0].labels]
        flagged_all += len(pos)
        kept_all += len(kept)
        out["categories"][c] = {"second_flagged": len(pos),
                                "recall": round(len(kept) / len(pos), 4) if pos else None}
    out["recall_all"] = round(kept_all / flagged_all, 4) if flagged_all else None
    return out


def read_cascade_file(path: str | os.PathLike) -> dict[str, Any]:
    """A cascade file's content, with ``first`` made absolute when it names a folder (beside the file or
    relative to the working directory)."""
    p = Path(path)
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{p}: cannot read cascade file ({e})") from None
    if not isinstance(cfg, dict) or cfg.get("kind") != "cascade" or "cutoffs" not in cfg or not cfg.get("first"):
        raise ValueError(f"{p}: not a cascade file (needs kind='cascade', first, cutoffs)")
    first = Path(cfg["first"])
    for cand in (first, p.parent / first) if not first.is_absolute() else (first,):
        if cand.is_dir():
            cfg["first"] = str(cand.resolve())
            break
    return cfg


def load_cascade(path_or_config: str | os.PathLike | dict[str, Any], second: Any, lexicon: bool = True) -> Cascade:
    """Build a :class:`Cascade` from a cascade file (or its content) and a loaded second-stage model."""
    from .moderator import load

    cfg = path_or_config if isinstance(path_or_config, dict) else read_cascade_file(path_or_config)
    first = load(cfg["first"], lexicon=lexicon)
    return Cascade(first, second, cfg["cutoffs"], cfg.get("lexicon_gate", True), cfg.get("window_gate"))


def main(argv: list[str] | None = None) -> int:
    """``python -m qinglang_nlp.cascade FIRST SECOND DEV.jsonl -o cascade.json [--recall 0.99]``."""
    import argparse

    from .batch import FieldMap, row_parts
    from .io import iter_rows
    from .moderator import load

    ap = argparse.ArgumentParser(prog="python -m qinglang_nlp.cascade", description=main.__doc__)
    ap.add_argument("first", help="first-stage model (baseline folder or name)")
    ap.add_argument("second", help="second-stage model (folder or name)")
    ap.add_argument("dev", help="dev posts (JSONL/CSV/Parquet with text or title/content)")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--recall", type=float, default=0.99)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--no-lexicon-gate", action="store_true")
    ap.add_argument("--window-gate", action="store_true",
                    help="also gate the windows of long texts (stacked second model only)")
    ap.add_argument("--windows-only", action="store_true", help="gate windows only: every row is a candidate")
    a = ap.parse_args(argv)
    texts: list[str] = []
    titles: list[str | None] = []
    for row in iter_rows(a.dev):
        if row.data is None:
            continue
        try:
            title, body = row_parts(row.data, FieldMap())  # as the batch job scores the posts
        except ValueError:
            continue
        texts.append(body)
        titles.append(title)
        if a.limit and len(texts) >= a.limit:
            break
    cfg = calibrate(load(a.first), load(a.second), texts, a.recall, not a.no_lexicon_gate,
                    window_gate=a.window_gate or a.windows_only, row_gate=not a.windows_only, titles=titles)
    Path(a.output).write_text(json.dumps(cfg, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps({**cfg["dev"], **({"window_gate": cfg["window_gate"]["dev"]} if "window_gate" in cfg else {})},
                     ensure_ascii=False))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
