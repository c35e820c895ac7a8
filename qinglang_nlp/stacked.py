"""A stacked classifier: several member models combined per category by a logistic stacker fit on dev.

The folder holds one sub-folder per member (each a complete model folder of another kind, e.g. ``onnx`` and
``baseline``) and a top-level ``config.json``::

    {"kind": "stacked", "categories": [...],
     "members": ["transformer", "baseline"],          # sub-folder names, in stacker-weight order
     "stacker": {"fanquan": {"weights": [w_t, w_b], "bias": b}, ...},
     "thresholds": {...}, "decision": {...}, "normalize": {...}}

Score per category: ``sigmoid(bias + sum_i w_i * logit(p_i))`` where ``p_i`` is member ``i``'s probability.
Members receive the same normalised text (every member must have been trained with the stacked model's
normalisation config; the builder checks this). Evidence spans come from the first member that yields spans
(the transformer's best window), kept when the stacked score reaches the stacked label threshold.

Window gate (opt-in, :meth:`StackedClassifier.set_window_gate`): for texts cut into several windows, a cheap member
(the baseline) scores every window first and the windowed member (the transformer) runs only on the windows that
are the text's best by the cheap member in some category, or that the cheap member scores at or over a per-category
cut-off. Skipped windows count as score 0 in the transformer's max. The cut-offs are calibrated on dev for a stated
recall by :func:`qinglang_nlp.cascade.calibrate_window_gate`; with the gate off (the default) nothing changes.
The gate scorer may also be a separate model distilled from the transformer's window scores
(:func:`qinglang_nlp.cascade.distill_window_gate`).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .classifier import check_titles, join_titles, takes_titles
from .errors import ModelLoadError

__all__ = ["EPS", "StackedClassifier", "gate_keep", "stack_logits"]

EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(p) - np.log1p(-p)


def stack_logits(member_probs: Sequence[np.ndarray]) -> np.ndarray:
    """Member probabilities ``[(n, n_cat), ...]`` -> stacker inputs ``(n, n_cat, n_members)`` (clipped logits)."""
    return np.stack([_logit(p) for p in member_probs], axis=-1)


def gate_keep(items: np.ndarray, scores: np.ndarray, cutoffs: np.ndarray) -> np.ndarray:
    """Windows to run: ``items`` (text index per window), ``scores`` ``(n_windows, n_cat)`` of the gate scorer,
    ``cutoffs`` ``(n_cat,)``. Keeps every window of a one-window text, each text's best window per category, and
    every window scored at or over its category's cut-off."""
    items = np.asarray(items)
    scores = np.asarray(scores, dtype=np.float64)
    if len(items) == 0:
        return np.zeros(0, dtype=bool)
    keep = (scores >= np.asarray(cutoffs)[None]).any(axis=1)
    keep |= np.bincount(items)[items] == 1
    for j in range(scores.shape[1]):
        order = np.lexsort((-scores[:, j], items))          # by text, then best first
        first = np.ones(len(order), dtype=bool)
        first[1:] = items[order][1:] != items[order][:-1]
        keep[order[first]] = True
    return keep


def _scores(m: Any, texts: list[str], titles: list[str | None] | None) -> np.ndarray:
    """``m``'s probabilities for ``texts`` with their ``titles``: passed apart when ``m`` takes them, else joined."""
    if titles is None:
        return m.predict_scores(texts)
    if takes_titles(m):
        return m.predict_scores(texts, titles=titles)
    return m.predict_scores(join_titles(texts, titles))


class StackedClassifier:
    """Combines member classifiers' probabilities with per-category logistic weights."""

    def __init__(self, members: Sequence[tuple[str, Any]], categories: Sequence[str],
                 stacker: dict[str, dict[str, Any]], thresholds: dict[str, float] | None = None):
        if not members:
            raise ValueError("a stacked classifier needs at least one member")
        self.members = list(members)
        self.categories = tuple(categories)
        w, b = [], []
        for c in self.categories:
            spec = stacker.get(c)
            if spec is None or len(spec.get("weights", ())) != len(self.members):
                raise ValueError(f"stacker for {c!r}: need {len(self.members)} weights, got {spec!r}")
            w.append([float(x) for x in spec["weights"]])
            b.append(float(spec.get("bias", 0.0)))
        self.weights = np.array(w)          # (n_cat, n_members)
        self.bias = np.array(b)             # (n_cat,)
        self._thr = np.array([float((thresholds or {}).get(c, 0.5)) for c in self.categories])
        for name, m in self.members:
            if tuple(m.categories) != self.categories:
                raise ValueError(f"member {name!r} has categories {tuple(m.categories)}, expected {self.categories}")
        self._gate: tuple[Any, np.ndarray] | None = None

    @property
    def thresholds(self) -> dict[str, float]:
        """The stacked label thresholds per category."""
        return {c: float(t) for c, t in zip(self.categories, self._thr)}

    def windowed_member(self) -> tuple[int, Any] | None:
        """``(index, member)`` of the member that scores windows (has ``score_windows``), if any."""
        return next(((i, m) for i, (_, m) in enumerate(self.members) if hasattr(m, "score_windows")), None)

    def set_window_gate(self, cutoffs: dict[str, float] | None, member: str = "baseline", scorer: Any = None,
                        ) -> None:
        """Turn the window gate on with per-category ``cutoffs`` on member ``member``'s scores, or off (``None``).

        ``scorer``: a separate window scorer (``predict_scores(texts)``, same categories, e.g. a distilled gate from
        :func:`qinglang_nlp.cascade.load_window_gate`) used instead of the member.
        The gate is state of this classifier: every caller sharing it is gated from then on (a call already
        running keeps the gate it started with)."""
        if cutoffs is None:
            self._gate = None
            return
        win = self.windowed_member()
        if scorer is not None:
            if tuple(getattr(scorer, "categories", ())) != self.categories:
                raise ValueError(f"window gate scorer has categories {tuple(getattr(scorer, 'categories', ()))}, "
                                 f"expected {self.categories}")
            if win is None:
                raise ValueError("a window gate needs a windowed member (an ONNX transformer)")
        else:
            names = [n for n, _ in self.members]
            if member not in names:
                raise ValueError(f"window gate member {member!r} is not a member of this model (members: {names})")
            if win is None or self.members[win[0]][0] == member:
                raise ValueError("a window gate needs a windowed member (an ONNX transformer) other than the gate "
                                 "member")
        missing = [c for c in self.categories if c not in cutoffs]
        if missing:
            raise ValueError(f"window gate cut-offs lack categories {missing}")
        if (self.weights[:, win[0]] <= 0).any():
            raise ValueError("a window gate needs a positive stacker weight on the windowed member in every category "
                             f"(got {self.weights[:, win[0]].tolist()}): otherwise skipping windows can raise scores")
        self._gate = (scorer if scorer is not None else dict(self.members)[member],
                      np.array([float(cutoffs[c]) for c in self.categories]))

    @classmethod
    def from_dir(cls, path: str | Path, config: dict[str, Any], *, verify: bool = True) -> StackedClassifier:
        """Load the members named in ``config['members']`` from sub-folders of ``path``."""
        from .classifier import load_classifier
        from .modelio import read_config, verify_manifest

        d = Path(path)
        if verify:
            verify_manifest(d)
        names = config.get("members")
        if not names or not isinstance(names, list):
            raise ModelLoadError(f"{d}: stacked config needs a non-empty 'members' list of sub-folder names")
        members = []
        for name in names:
            sub = d / name
            if not (sub / "config.json").is_file():
                raise ModelLoadError(f"{d}: member folder {name!r} is missing")
            mcfg = read_config(sub)
            if mcfg.get("kind") == "stacked":
                raise ModelLoadError(f"{sub}: a stacked member cannot itself be stacked")
            # members give their best window for every category; the stacked score decides which to keep
            mcfg = dict(mcfg, thresholds={c: 0.0 for c in mcfg.get("categories", ())})
            # the top-level manifest already covers the members' files
            members.append((name, load_classifier(sub, mcfg, verify=False)))
        return cls(members, config["categories"], config["stacker"], config.get("thresholds"))

    def member_scores(self, texts: Sequence[str], titles: Sequence[str | None] | None = None,
                      ) -> tuple[list[np.ndarray], list[list[Any]] | None]:
        """Each member's probabilities, and the spans of the first member that gives spans (body offsets).

        ``titles`` (one ``str | None`` per text) go to members that take them (the ONNX member keeps the title in
        front of every window); a member that does not reads ``title + "\\n" + text`` (:func:`join_titles`). With a
        window gate, the gate member scores each window the same way: its title in front of the window text."""
        texts = list(texts)
        titles = check_titles(titles, len(texts))
        if titles is not None and not any(titles):
            titles = None  # no title anywhere: exactly the calls made without titles
        probs, spans = [], None
        gate = self._gate  # read once: another thread may switch the gate while this call runs
        win = self.windowed_member() if gate is not None else None
        for i, (_, m) in enumerate(self.members):
            kw = {"titles": titles} if titles is not None and takes_titles(m) else {}
            if win is not None and i == win[0]:  # the windowed member takes titles
                gm, cut = gate  # type: ignore[misc]

                def keep(items: np.ndarray, wt: list[str], gm: Any = gm, cut: np.ndarray = cut) -> np.ndarray:
                    return gate_keep(items, _scores(gm, wt, None if titles is None else [titles[k] for k in items]),
                                     cut)

                p, sp = m.predict_scores_and_spans(texts, window_gate=keep, **kw)
                spans = sp if spans is None else spans
            elif spans is None and hasattr(m, "predict_scores_and_spans") and (kw or titles is None):
                p, spans = m.predict_scores_and_spans(texts, **kw)
            else:  # spans of a member reading joined texts would not index the bodies: scores only
                p = _scores(m, texts, titles)
            probs.append(np.asarray(p, dtype=np.float64))
        return probs, spans

    def combine(self, member_probs: Sequence[np.ndarray]) -> np.ndarray:
        """Stacked probabilities ``(n, n_cat)`` from member probabilities."""
        z = (stack_logits(member_probs) * self.weights[None]).sum(-1) + self.bias[None]
        return 1.0 / (1.0 + np.exp(-z))

    def predict_scores_and_spans(self, texts: Sequence[str], titles: Sequence[str | None] | None = None,
                                 ) -> tuple[np.ndarray, list[list[Any]]]:
        """Stacked probabilities plus the model spans of categories over their stacked threshold; ``titles`` as
        in :meth:`member_scores`, span offsets index the texts (the bodies)."""
        texts = list(texts)
        if not texts:
            check_titles(titles, 0)
            return np.zeros((0, len(self.categories))), []
        probs, spans = self.member_scores(texts, titles)
        s = self.combine(probs)
        out: list[list[Any]] = [[] for _ in texts]
        if spans is not None:
            col = {c: j for j, c in enumerate(self.categories)}
            for i, sp in enumerate(spans):
                for start, end, cat, _ in sp:
                    j = col[cat]
                    if s[i, j] >= self._thr[j]:
                        out[i].append((start, end, cat, float(s[i, j])))
        return s, out

    def predict_scores(self, texts: Sequence[str], titles: Sequence[str | None] | None = None) -> np.ndarray:
        """Stacked probabilities ``(len(texts), n_cat)``; ``titles`` as in :meth:`member_scores`."""
        texts = list(texts)
        probs, _ = self.member_scores(texts, titles) if texts else ([], check_titles(titles, 0))
        if not probs:
            return np.zeros((0, len(self.categories)))
        return self.combine(probs)
