"""``Moderator``: the whole pipeline, normalise → lexicon → classifier → decide, one ``Result`` per text.

A ``Moderator`` is safe to share across threads: it holds no per-call state, the classifier is thread-safe
and lexicon edits swap automata atomically.
"""
from __future__ import annotations

import os
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .classifier import Classifier, load_classifier
from .decide import DecisionPolicy
from .errors import ModelLoadError
from .inputs import DEFAULT_MAX_CHARS, check_text
from .modelio import find_model_dir, read_config, verify_manifest
from .normalize import NormalizeConfig, Normalized, normalize_batch
from .result import Result, Span
from .taxonomy import CATEGORIES

__all__ = ["Moderator", "load"]


class Moderator:
    """Scores texts for ``fanquan``, ``vulgar`` and ``rumor``; see ``qinglang_nlp.load``."""

    def __init__(self, classifier: Classifier, config: dict[str, Any], lexicon: Any = None,
                 max_chars: int = DEFAULT_MAX_CHARS, on_long: str = "error", path: Path | None = None):
        if on_long not in ("error", "truncate"):
            raise ValueError(f"on_long must be 'error' or 'truncate', got {on_long!r}")
        if tuple(classifier.categories) != CATEGORIES:
            raise ModelLoadError(f"model categories {classifier.categories} != {CATEGORIES}")
        self.classifier = classifier
        self.config = config
        self.policy = DecisionPolicy.from_config(config)
        self.normalize_config = NormalizeConfig.from_dict(config.get("normalize"))
        self.lexicon = lexicon
        self.max_chars = int(max_chars)
        self.on_long = on_long
        self.path = path
        self.name = f"{config.get('name', config['kind'])}@{config.get('version', '0')}"

    def __repr__(self) -> str:
        return f"Moderator({self.name!r}, path={str(self.path)!r})"

    # -- stages ----------------------------------------------------------------------------------
    def prepare(self, text: Any, index: Any = None) -> tuple[str, bool]:
        """Validate one text as ``predict`` would; return ``(text, truncated)`` (truncated only with
        ``on_long="truncate"``). Raises ``TypeError``/``ValueError`` naming ``index`` and the problem."""
        check_text(text, index=index, max_chars=None)
        if len(text) > self.max_chars:
            if self.on_long == "error":
                check_text(text, index=index, max_chars=self.max_chars)  # raises the standard message
            return text[: self.max_chars], True
        return text, False

    def _lexicon_hits(self, norms: list[Normalized]) -> list[list[Span]]:
        if self.lexicon is None:
            return [[] for _ in norms]
        live = [i for i, n in enumerate(norms) if n.text.strip()]
        hits: list[list[Span]] = [[] for _ in norms]
        for i, h in zip(live, self.lexicon.match_many([norms[i] for i in live])):
            hits[i] = list(h)
        return hits

    def _model_spans(self, n: Normalized, spans) -> list[Span]:
        out = []
        for start, end, cat, score in spans:
            s, e = n.to_original(start, end)
            if e > s:
                out.append(Span(s, e, n.original[s:e], cat, "model", score=round(float(score), 6)))
        return out

    def _score(self, norms: list[Normalized]) -> tuple[np.ndarray, list[list]]:
        live = [i for i, n in enumerate(norms) if n.text.strip()]
        scores = np.zeros((len(norms), len(CATEGORIES)))
        spans: list[list] = [[] for _ in norms]
        if live:
            texts = [norms[i].text for i in live]
            if hasattr(self.classifier, "predict_scores_and_spans"):
                s, sp = self.classifier.predict_scores_and_spans(texts)
                for k, i in enumerate(live):
                    spans[i] = sp[k]
            else:
                s = self.classifier.predict_scores(texts)
            scores[live] = np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0)
        return scores, spans

    def _results(self, texts: list[str], truncated: list[bool]) -> list[Result]:
        norms = normalize_batch(texts, self.normalize_config)
        scores, spans = self._score(norms)
        all_hits = self._lexicon_hits(norms)
        out = []
        for i, n in enumerate(norms):
            sc = {c: float(scores[i, j]) for j, c in enumerate(CATEGORIES)}
            hits = all_hits[i]
            labels, decision = self.policy.decide(sc, hits)
            evidence = sorted(hits + self._model_spans(n, spans[i]), key=lambda s: (s.start, s.end))
            out.append(Result(sc, labels, decision, evidence, truncated[i], self.name))
        return out

    # -- public API ------------------------------------------------------------------------------
    def predict(self, text: str) -> Result:
        """Score one text. Raises ``TypeError``/``ValueError`` for non-text or invalid text."""
        t, trunc = self.prepare(text, None)
        return self._results([t], [trunc])[0]

    def pipe(self, texts: Iterable[str], batch_size: int = 64) -> Iterator[Result]:
        """Stream results in input order, holding at most one batch in memory."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if isinstance(texts, (str, bytes)):
            raise TypeError("texts must be an iterable of str, not a single str/bytes (use predict)")
        it = iter(texts)
        base = 0
        while True:
            chunk = list(islice(it, batch_size))
            if not chunk:
                return
            prepared = [self.prepare(t, base + k) for k, t in enumerate(chunk)]
            yield from self._results([p[0] for p in prepared], [p[1] for p in prepared])
            base += len(chunk)

    def predict_batch(self, texts: Sequence[str], batch_size: int = 64) -> list[Result]:
        """Score many texts; same order and length as ``texts``. A bad item raises naming its index."""
        return list(self.pipe(texts, batch_size))


def load(path: str | os.PathLike | None = None, *, lexicon: bool | Any = True, verify: bool = True,
         max_chars: int = DEFAULT_MAX_CHARS, on_long: str = "error") -> Moderator:
    """Load a model offline: ``None``/``"default"`` (bundled), ``"baseline"``, or a model folder path.

    ``lexicon=True`` uses the bundled lexicons, ``False`` none, or pass a ``LexiconMatcher``.
    ``verify`` checks every model file against ``manifest.json`` (sha256) before loading.
    """
    model_dir = find_model_dir(path)
    if verify:
        verify_manifest(model_dir)  # before reading config.json, so a corrupt config is reported as such
    config = read_config(model_dir)
    clf = load_classifier(model_dir, config, verify=False)
    if lexicon is True:
        lex_cfg = config.get("lexicon", {"bundled": True})
        lexicon = None
        if lex_cfg.get("bundled", True):
            from .lexicon import LexiconMatcher

            lexicon = LexiconMatcher.default(config=NormalizeConfig.from_dict(config.get("normalize")))
    elif lexicon is False:
        lexicon = None
    return Moderator(clf, config, lexicon, max_chars=max_chars, on_long=on_long, path=model_dir)
