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
        scorer = StudentWindowGate.from_dir(d, cfg) if cfg.get("scorer") == STUDENT_SCORER \
            else BaselineClassifier.from_dir(d, cfg)
    except ModelLoadError as e:
        raise ValueError(f"window gate {d}: {e}") from None
    if categories is not None and tuple(scorer.categories) != tuple(categories):
        raise ValueError(f"window gate {d} scores {list(scorer.categories)}, the model {list(categories)}")
    return scorer


#: ``scorer`` in a window gate's ``config.json`` for :class:`StudentWindowGate` (absent: the ridge gate)
STUDENT_SCORER = "conv_student"
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
        from .modelio import write_manifest

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        np.savez(out / "student.npz", **{n: getattr(self, n) for n in _STUDENT_ARRAYS})
        (out / "tokenizer.json").write_text(self._tok.to_str(), encoding="utf-8")
        k, d, h = self.conv_w.shape
        cfg = {"kind": GATE_KIND, "scorer": STUDENT_SCORER, "name": "window-gate", "categories": list(self.categories),
               "distilled_from": distilled_from,
               "scores": "predicted window probability of the second model's transformer member (conv student)",
               "student": {"width": k, "dim": d, "hidden": h, "vocab": self.vocab_size,
                           "max_tokens": self.max_tokens},
               "distill": info or {}}
        (out / "config.json").write_text(json.dumps(cfg, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        write_manifest(out)
        return out

    @classmethod
    def from_dir(cls, path: str | os.PathLike, config: dict[str, Any]) -> StudentWindowGate:
        """Load a student gate folder written by :meth:`save` (the manifest is checked by the caller)."""
        from tokenizers import Tokenizer

        from .errors import ModelLoadError

        d = Path(path)
        try:
            with np.load(d / "student.npz", allow_pickle=False) as z:
                arrays = {n: z[n] for n in _STUDENT_ARRAYS}
            tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        except KeyError as e:
            raise ModelLoadError(f"{d}/student.npz: missing array {e}") from None
        except Exception as e:  # noqa: BLE001  (OSError, BadZipFile, ValueError, the tokenizer's own exception)
            raise ModelLoadError(f"{d}: cannot read the student gate ({type(e).__name__}: {e})") from None
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
                       max_tokens: int = 192, seed: int = 0, train_embeddings: bool = False, log: Any = None,
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
    from .stacked import _logit

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
            return head(feat)

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
                if listwise > 0:
                    lw, start = 0.0, 0
                    for g in gs:
                        zs, ys = z[start:start + len(g)] / tau, yt[start:start + len(g)] / tau
                        start += len(g)
                        lw = lw - (torch.softmax(ys, 0) * torch.log_softmax(zs, 0)).sum(0).mean()
                    loss = loss + listwise * lw / len(gs)
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
            "epochs": epochs, "train_embeddings": train_embeddings, "floor": floor, "listwise": listwise, "tau": tau, "lr": lr, "seed": seed,
            "loss_per_epoch": losses, "fit_cpu_s": round(time.process_time() - t0, 1)}
    return gate, info


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
