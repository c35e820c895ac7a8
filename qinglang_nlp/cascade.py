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

The baseline member was trained on gold labels, not to predict the transformer, and at 99% recall it can rule out
only about half of the article windows. :func:`distill_window_gate` fits a scorer of the same kind (the baseline
member's character n-gram TF-IDF, ridge regression) to the transformer member's own window logits on unlabelled
posts (a sample of the user's crawl: no gold labels), and saves it as a small folder
(``python -m qinglang_nlp.cascade distill SECOND POSTS -o GATE_DIR``); ``calibrate ... --gate GATE_DIR`` then
calibrates the window gate on it instead of the baseline member, and the cascade file carries its path. Calibrate
a distilled gate on a few thousand dev posts: on 600 its cut-offs met 99 % on dev but kept only 98.2 % of the flags
on test posts; on 2,000 they kept 99.7 % (``benchmarks/batch_s5.md``).

Cascade file (JSON)::

    {"kind": "cascade", "first": "models/baseline", "lexicon_gate": true, "target_recall": 0.99,
     "cutoffs": {"fanquan": 0.12, "vulgar": 0.08, "rumor": 0.2}, "second": "name@version it was tuned for",
     "window_gate": {"member": "baseline", "cutoffs": {...}, "dev": {...}},      # optional
     # or, with a distilled gate: {"gate": "GATE_DIR", "cutoffs": {...}, "dev": {...}}
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

__all__ = ["GATE_KIND", "Cascade", "calibrate", "calibrate_window_gate", "distill_window_gate", "load_cascade",
           "load_window_gate", "measure", "read_cascade_file", "save_window_gate"]

#: ``kind`` in a distilled window gate's ``config.json``
GATE_KIND = "window_gate"


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
            scorer = load_window_gate(window_gate["gate"], second.classifier.categories) \
                if window_gate.get("gate") else None
            # the cascade configures its second model: a model shared elsewhere is gated too (see set_window_gate)
            set_gate(window_gate["cutoffs"], window_gate.get("member", "baseline"), scorer)
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
            out["window_gate"] = {k: self.window_gate[k] for k in ("member", "gate", "cutoffs")
                                  if k in self.window_gate}
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


def _windowed(second: Any) -> tuple[Any, tuple[int, Any]]:
    """``(stacked classifier, (index, windowed member))`` of a stacked second model, or a clear error."""
    clf = getattr(second, "classifier", None)
    win = clf.windowed_member() if hasattr(clf, "windowed_member") else None
    if win is None:
        raise ValueError(f"a window gate needs a stacked second model with a transformer member; {second.name} "
                         "is not one")
    return clf, win


def _gate_texts(norms: Sequence[str], ntitles: Sequence[str | None] | None, ws: Any) -> tuple[list[str], Any]:
    """The window bodies of ``ws`` and their titles, as the gate reads them in the gated model."""
    return ([norms[i][a:b] for i, a, b in zip(ws.item, ws.start, ws.end)],
            None if ntitles is None else [ntitles[i] for i in ws.item])


def calibrate_window_gate(second: Any, texts: Sequence[str], target_recall: float = 0.99,
                          member: str = "baseline", titles: Sequence[str | None] | None = None,
                          gate: str | os.PathLike | None = None) -> dict[str, Any]:
    """Per-category window-gate cut-offs for a stacked ``second`` model, chosen on ``texts`` (dev).

    Every window of every text is scored once by the windowed member and by ``member``; the gate is then
    simulated exactly (the stacked score is monotone in the windowed member's max, so more windows never remove a
    flag). For each category the highest cut-off on ``member``'s window scores is taken at which the gated model
    still flags ``target_recall`` of the texts the ungated model flags in that category; the gate runs the union
    over categories. Returns ``{"member", "cutoffs", "dev": {...}}`` (the cascade file's ``window_gate``).
    ``titles`` (one ``str | None`` per text, the body): scored as the second model scores titled texts (the
    windowed member keeps the title in front of every window, the gate member reads title + window, the other
    members the joined text). ``gate``: a distilled gate folder (:func:`distill_window_gate`) scores the windows
    instead of ``member``; the result then names it (as an absolute path) under ``gate``.
    """
    from .stacked import _scores, gate_keep

    clf, win = _windowed(second)
    if not 0.0 < target_recall <= 1.0:
        raise ValueError(f"target_recall must be in (0, 1], got {target_recall!r}")
    if not texts:
        raise ValueError("calibrate_window_gate needs dev texts, got none")
    if gate is not None:
        gate_model = load_window_gate(gate, clf.categories)
    else:
        gate_model = dict(clf.members).get(member)
        if gate_model is None or gate_model is win[1]:
            raise ValueError(f"window gate member {member!r} is not a non-windowed member of {second.name}")
    norms, ntitles = second.classifier_inputs(texts, titles)  # what the gated model reads: the same cut
    n, n_cat = len(norms), len(clf.categories)
    ws = win[1].score_windows(norms, ntitles)  # the windowed member's max over these is its ungated score
    probs = [np.zeros((n, n_cat)) if i == win[0] else np.asarray(_scores(m, norms, ntitles), dtype=np.float64)
             for i, (_, m) in enumerate(clf.members)]
    g = np.asarray(_scores(gate_model, *_gate_texts(norms, ntitles, ws)))
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
    # an absolute path: the cascade file does not record the working directory a relative one was given in
    head = {"member": member} if gate is None else {"gate": str(Path(gate).resolve())}
    return {**head, "cutoffs": cutoffs, "dev": stats}


def distill_window_gate(second: Any, texts: Sequence[str], titles: Sequence[str | None] | None = None,
                        alpha: float = 0.3, floor: float = -8.0, member: str = "baseline",
                        ) -> tuple[Any, dict[str, Any]]:
    """Fit a cheap window scorer to the transformer member's own window scores on unlabelled ``texts``.

    Every window of the texts cut into several windows is scored once by the stacked ``second`` model's
    windowed member; a ridge regression on the character n-gram TF-IDF of the window as the gate reads it
    (title + window), over the vocabulary and idf of ``member`` (the baseline member), predicts the member's
    logit per category (clipped below at ``floor``: how unlikely a window is matters less than which windows are
    likely). Returns ``(scorer, info)``: a :class:`~qinglang_nlp.baseline.BaselineClassifier` whose scores are
    the predicted window probabilities, and the fit statistics. Needs scikit-learn (``pip install .[train]``).
    No gold labels: distil on a sample of the posts to be scored, as the cascade is calibrated.
    """
    from scipy import sparse

    from .baseline import BaselineClassifier
    from .classifier import join_titles
    from .stacked import _logit

    try:
        from sklearn.linear_model import Ridge
    except ImportError:
        raise ImportError("distilling a window gate needs scikit-learn (pip install .[train])") from None
    clf, win = _windowed(second)
    base = dict(clf.members).get(member)
    if not hasattr(base, "transform_one") or getattr(base, "vocabulary", None) is None:
        raise ValueError(f"distilling a window gate needs a baseline member {member!r} in {second.name} (its "
                         "vocabulary is the gate's)")
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    norms, ntitles = second.classifier_inputs(texts, titles)
    ws = win[1].score_windows(norms, ntitles)
    multi = np.bincount(ws.item, minlength=len(norms))[ws.item] > 1 if len(ws.item) else np.zeros(0, bool)
    if multi.sum() < 2:
        raise ValueError(f"distilling a window gate needs texts cut into several windows; got {int(multi.sum())} "
                         f"such windows in {len(norms)} texts (pass more or longer posts)")
    bodies, wtitles = _gate_texts(norms, ntitles, ws)
    gate_texts = [t for t, k in zip(join_titles(bodies, wtitles), multi) if k]
    rows = [base.transform_one(t) for t in gate_texts]
    x = sparse.csr_matrix((np.concatenate([v for _, v in rows]),
                           np.concatenate([i for i, _ in rows]).astype(np.int64),
                           np.cumsum([0] + [len(i) for i, _ in rows])), shape=(len(rows), len(base.idf)))
    y = np.maximum(_logit(ws.probs[multi]), floor)
    t0 = time.process_time()
    ridge = Ridge(alpha=alpha).fit(x, y)
    pred = ridge.predict(x)
    coef = np.atleast_2d(ridge.coef_).astype(np.float64)
    intercept = np.atleast_1d(ridge.intercept_).astype(np.float64)
    scorer = BaselineClassifier(base.vocabulary, base.idf, coef, intercept, clf.categories, base.ngram_range,
                                base.sublinear_tf)
    corr = [round(float(np.corrcoef(pred[:, j], y[:, j])[0, 1]), 4) if y[:, j].std() > 0 else None
            for j in range(y.shape[1])]
    info = {"texts": len(norms), "multi_window_texts": len(np.unique(ws.item[multi])),
            "windows": int(multi.sum()), "tokens": int(ws.n_tokens[multi].sum()), "alpha": alpha, "floor": floor,
            "vocabulary": f"member {member!r} of {second.name}", "fit_cpu_s": round(time.process_time() - t0, 1),
            "train_corr": dict(zip(clf.categories, corr))}
    return scorer, info


def save_window_gate(scorer: Any, out_dir: str | os.PathLike, second: Any, info: dict[str, Any] | None = None,
                     ) -> Path:
    """Write a distilled gate folder: the arrays, ``config.json`` (kind ``window_gate``) and ``manifest.json``."""
    from .train.baseline import export_baseline

    cfg = {"kind": GATE_KIND, "name": "window-gate", "categories": list(scorer.categories),
           "distilled_from": second.name,
           "scores": "predicted window probability of the second model's transformer member (ridge on its logits)",
           "baseline": {"ngram_range": list(scorer.ngram_range), "sublinear_tf": scorer.sublinear_tf},
           "distill": info or {}}
    return export_baseline(scorer, out_dir, cfg)


def load_window_gate(path: str | os.PathLike, categories: Sequence[str] | None = None) -> Any:
    """Load a distilled gate folder (checked against its manifest); ``categories``: those it must score."""
    from .baseline import BaselineClassifier
    from .errors import ModelLoadError
    from .modelio import read_config, verify_manifest

    d = Path(path)
    if not d.is_dir():
        raise ValueError(f"window gate folder {d} does not exist (make one with `python -m qinglang_nlp.cascade "
                         "distill SECOND POSTS -o GATE_DIR`)")
    try:
        verify_manifest(d)
        cfg = read_config(d)
        if cfg.get("kind") != GATE_KIND:
            raise ValueError(f"{d}: not a window gate folder (config kind {cfg.get('kind')!r}, expected "
                             f"{GATE_KIND!r})")
        scorer = BaselineClassifier.from_dir(d, cfg)
    except ModelLoadError as e:
        raise ValueError(f"window gate {d}: {e}") from None
    if categories is not None and tuple(scorer.categories) != tuple(categories):
        raise ValueError(f"window gate {d} scores {list(scorer.categories)}, the model {list(categories)}")
    return scorer


def calibrate(first: Any, second: Any, texts: Sequence[str], target_recall: float = 0.99,
              lexicon_gate: bool = True, batch_size: int = 64, window_gate: bool = False,
              row_gate: bool = True, titles: Sequence[str | None] | None = None,
              gate: str | os.PathLike | None = None) -> dict[str, Any]:
    """Choose per-category cut-offs on ``texts`` (dev) for ``target_recall`` of the second model's flags.

    Returns the cascade file content, with the dev statistics under ``dev``. A category the second model
    never flags on dev gets the first stage's review threshold (recall cannot be estimated; says so).
    ``window_gate``: first calibrate the second model's window gate (:func:`calibrate_window_gate`, same
    target); the row cut-offs are then chosen against the gated model, which is left ungated on return. ``row_gate=False``
    (with ``window_gate``): every row goes on to the second model (row cut-offs 0, no lexicon gate).
    ``titles``: one ``str | None`` per dev text (the body), scored as the batch job scores titled posts.
    ``gate``: with ``window_gate``, a distilled gate folder scores the windows instead of the baseline member.
    """
    if not 0.0 < target_recall <= 1.0:
        raise ValueError(f"target_recall must be in (0, 1], got {target_recall!r}")
    if not texts:
        raise ValueError("calibrate needs dev texts, got none")
    if gate is not None and not window_gate:
        raise ValueError("a distilled gate (gate=...) needs window_gate=True")
    wg = None
    if window_gate:
        wg = calibrate_window_gate(second, texts, target_recall, titles=titles, gate=gate)
        # the row cut-offs are chosen against the gated model; the caller's model is left ungated afterwards
        second.classifier.set_window_gate(wg["cutoffs"], wg.get("member", "baseline"),
                                          load_window_gate(gate) if gate is not None else None)
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
    """A cascade file's content, with ``first`` (and a distilled window gate's ``gate``) made absolute when it
    names a folder (beside the file or relative to the working directory)."""
    p = Path(path)
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{p}: cannot read cascade file ({e})") from None
    if not isinstance(cfg, dict) or cfg.get("kind") != "cascade" or "cutoffs" not in cfg or not cfg.get("first"):
        raise ValueError(f"{p}: not a cascade file (needs kind='cascade', first, cutoffs)")
    cfg["first"] = _resolve(cfg["first"], p)
    wg = cfg.get("window_gate")
    if isinstance(wg, dict) and wg.get("gate"):
        cfg["window_gate"] = {**wg, "gate": _resolve(wg["gate"], p)}
    return cfg


def _resolve(folder: str, cascade_file: Path) -> str:
    """``folder`` made absolute when it names a folder relative to the working directory or beside the file."""
    f = Path(folder)
    for cand in (f, cascade_file.parent / f) if not f.is_absolute() else (f,):
        if cand.is_dir():
            return str(cand.resolve())
    return folder


def load_cascade(path_or_config: str | os.PathLike | dict[str, Any], second: Any, lexicon: bool = True) -> Cascade:
    """Build a :class:`Cascade` from a cascade file (or its content) and a loaded second-stage model."""
    from .moderator import load

    cfg = path_or_config if isinstance(path_or_config, dict) else read_cascade_file(path_or_config)
    first = load(cfg["first"], lexicon=lexicon)
    return Cascade(first, second, cfg["cutoffs"], cfg.get("lexicon_gate", True), cfg.get("window_gate"))


def _read_posts(path: str, limit: int | None) -> tuple[list[str], list[str | None]]:
    """``(bodies, titles)`` of the readable rows of a posts file, as the batch job scores them."""
    from .batch import FieldMap, row_parts
    from .io import iter_rows

    texts: list[str] = []
    titles: list[str | None] = []
    for row in iter_rows(path):
        if row.data is None:
            continue
        try:
            title, body = row_parts(row.data, FieldMap())  # as the batch job scores the posts
        except ValueError:
            continue
        texts.append(body)
        titles.append(title)
        if limit and len(texts) >= limit:
            break
    return texts, titles


def distill_main(argv: list[str]) -> int:
    """``python -m qinglang_nlp.cascade distill SECOND POSTS.jsonl -o GATE_DIR``: distil a window gate."""
    import argparse

    from .moderator import load

    ap = argparse.ArgumentParser(prog="python -m qinglang_nlp.cascade distill", description=distill_main.__doc__)
    ap.add_argument("second", help="the stacked second-stage model (folder or name)")
    ap.add_argument("posts", help="unlabelled posts (JSONL/CSV/Parquet with text or title/content), e.g. a sample "
                    "of the crawl to score; not the dev posts the gate is calibrated on")
    ap.add_argument("-o", "--output", required=True, help="gate folder to write")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--alpha", type=float, default=0.3, help="ridge regularisation")
    ap.add_argument("--overwrite", action="store_true")
    a = ap.parse_args(argv)
    out = Path(a.output)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder; a window gate is written as a folder")
    if out.exists() and any(out.iterdir()) and not a.overwrite:
        raise ValueError(f"{out} exists and is not empty; pass --overwrite to replace it")
    texts, titles = _read_posts(a.posts, a.limit)
    second = load(a.second, lexicon=False)
    t0 = time.process_time()
    scorer, info = distill_window_gate(second, texts, titles, alpha=a.alpha)
    info["cpu_s"] = round(time.process_time() - t0, 1)
    save_window_gate(scorer, out, second, info)
    print(json.dumps(info, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m qinglang_nlp.cascade FIRST SECOND DEV.jsonl -o cascade.json [--recall 0.99]``; ``distill ...``
    (see :func:`distill_main`) writes a window gate folder for ``--gate``. Bad input: one line on stderr, exit 2."""
    import sys

    from .errors import QinglangError

    argv = sys.argv[1:] if argv is None else argv
    try:
        return distill_main(argv[1:]) if argv[:1] == ["distill"] else _calibrate_main(argv)
    except (QinglangError, ValueError, OSError) as e:  # one line, not a traceback: the message names the problem
        print(f"error: {e}", file=sys.stderr)
        return 2


def _calibrate_main(argv: list[str]) -> int:
    import argparse

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
    ap.add_argument("--gate", default=None, help="distilled window gate folder (`distill`) to score the windows "
                    "instead of the baseline member; implies --window-gate")
    a = ap.parse_args(argv)
    texts, titles = _read_posts(a.dev, a.limit)
    if a.gate is not None:
        load_window_gate(a.gate)  # a bad folder fails before the second model is loaded and run
    cfg = calibrate(load(a.first), load(a.second), texts, a.recall, not a.no_lexicon_gate,
                    window_gate=a.window_gate or a.windows_only or a.gate is not None, row_gate=not a.windows_only,
                    titles=titles, gate=a.gate)
    Path(a.output).write_text(json.dumps(cfg, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps({**cfg["dev"], **({"window_gate": cfg["window_gate"]["dev"]} if "window_gate" in cfg else {})},
                     ensure_ascii=False))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
