"""``Moderator``: the whole pipeline, normalise → lexicon → classifier → decide, one ``Result`` per text.

A title (a WeChat article's) may come apart from its body: ``predict(body, title=...)``. The pipeline then reads
``title + "\\n" + body`` as one text (the lexicon scans it, evidence offsets index it, as when the two were joined by
the caller), except the classifier: the normalised joined text is cut at the line break (:func:`split_title`) and a
windowed model scores the body's windows each with the title in front; its body offsets are shifted back.

A ``Moderator`` is safe to share across threads: it holds no per-call state, the classifier is thread-safe
and lexicon edits swap automata atomically.
"""
from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from .classifier import Classifier, check_titles, load_classifier, takes_titles
from .decide import DecisionPolicy
from .errors import ModelLoadError
from .inputs import DEFAULT_MAX_CHARS, check_text
from .modelio import find_model_dir, read_config, verify_manifest
from .normalize import NormalizeConfig, Normalized, normalize_batch
from .result import Result, Span
from .taxonomy import CATEGORIES

__all__ = ["Moderator", "load", "split_title"]


class Moderator:
    """Scores texts for ``fanquan``, ``vulgar`` and ``rumor``; see ``qinglang_nlp.load``."""

    def __init__(self, classifier: Classifier, config: dict[str, Any], lexicon: Any = None,
                 max_chars: int = DEFAULT_MAX_CHARS, on_long: str = "error", path: Path | None = None):
        if on_long not in ("error", "truncate"):
            raise ValueError(f"on_long must be 'error' or 'truncate', got {on_long!r}")
        if tuple(classifier.categories) != CATEGORIES:
            raise ModelLoadError(f"model categories {classifier.categories} != {CATEGORIES}")
        self.classifier = classifier
        self._takes_titles = takes_titles(classifier)
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

    def _model_spans(self, n: Normalized, spans, shift: int = 0) -> list[Span]:
        out = []
        for start, end, cat, score in spans:
            s, e = n.to_original(start + shift, end + shift)
            if e > s:
                out.append(Span(s, e, n.original[s:e], cat, "model", score=round(float(score), 6)))
        return out

    def _score(self, norms: list[Normalized], title_lens: Sequence[int | None] | None = None,
               ) -> tuple[np.ndarray, list[list], list[int]]:
        """Scores, model spans and, per text, the shift from span offsets to offsets in the normalised text.

        A text with a title (``title_lens[i]``: the title's length in the original, which is
        ``title + "\\n" + body``) is split at the seam in the normalised text when the classifier takes titles:
        it scores the body with the title in front of every window and its spans index the body."""
        live = [i for i, n in enumerate(norms) if n.text.strip()]
        scores = np.zeros((len(norms), len(CATEGORIES)))
        spans: list[list] = [[] for _ in norms]
        shifts = [0] * len(norms)
        if live:
            texts, titles, sh = self._split_titles(norms, title_lens, live)
            for i, d in zip(live, sh):
                shifts[i] = d
            kw = {} if titles is None else {"titles": titles}
            if hasattr(self.classifier, "predict_scores_and_spans"):
                s, sp = self.classifier.predict_scores_and_spans(texts, **kw)
                for k, i in enumerate(live):
                    spans[i] = sp[k]
            else:
                s = self.classifier.predict_scores(texts, **kw)
            scores[live] = np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0)
        return scores, spans, shifts

    def _split_titles(self, norms: list[Normalized], title_lens: Sequence[int | None] | None,
                      idx: Sequence[int]) -> tuple[list[str], list[str | None] | None, list[int]]:
        """For the texts ``idx``: what the classifier reads (the body where a titled text is cut at the seam), the
        titles (``None`` when none is left) and the shift from body offsets to offsets in the normalised text."""
        texts = [norms[i].text for i in idx]
        shifts = [0] * len(texts)
        if title_lens is None or not self._takes_titles:
            return texts, None, shifts
        titles: list[str | None] = [None] * len(texts)
        for k, i in enumerate(idx):
            if title_lens[i] is not None:
                title, body, shift = split_title(norms[i], title_lens[i])
                if body.strip():  # a title alone is scored as the text it is, as before
                    texts[k], titles[k], shifts[k] = body, title, shift
        return texts, (titles if any(titles) else None), shifts

    def classifier_inputs(self, texts: Sequence[str], titles: Sequence[str | None] | None = None,
                          ) -> tuple[list[str], list[str | None] | None]:
        """``(texts, titles)`` exactly as this model's classifier reads the inputs in :meth:`predict_batch`:
        checked, normalised and cut at the title seam (blank texts included). For calibration code that scores
        the classifier's members or windows directly (``qinglang_nlp.cascade.calibrate_window_gate``)."""
        texts = list(texts)
        titles = check_titles(titles, len(texts))
        prepared = self._prepare_all(texts, titles, range(len(texts)))
        norms = normalize_batch([p[0] for p in prepared], self.normalize_config)
        lens = [p[1] for p in prepared] if titles is not None else None
        out, out_titles, _ = self._split_titles(norms, lens, range(len(norms)))
        return out, out_titles

    def _results(self, texts: list[str], truncated: list[bool],
                 title_lens: Sequence[int | None] | None = None) -> list[Result]:
        norms = normalize_batch(texts, self.normalize_config)
        scores, spans, shifts = self._score(norms, title_lens)
        all_hits = self._lexicon_hits(norms)
        out = []
        for i, n in enumerate(norms):
            sc = {c: float(scores[i, j]) for j, c in enumerate(CATEGORIES)}
            hits = all_hits[i]
            labels, decision = self.policy.decide(sc, hits)
            evidence = sorted(hits + self._model_spans(n, spans[i], shifts[i]), key=lambda s: (s.start, s.end))
            out.append(Result(sc, labels, decision, evidence, truncated[i], self.name))
        return out

    def _prepare_titled(self, text: Any, title: str | None, index: Any) -> tuple[str, int | None, bool]:
        """``(text to normalise, title length or None, truncated)``: with a non-empty title the text is
        ``title + "\\n" + text`` (checked and truncated as a whole, as the batch job did with the joined string)."""
        if not title:
            t, trunc = self.prepare(text, index)
            return t, None, trunc
        check_text(text, index=index, max_chars=None)
        try:
            check_text(title, max_chars=None)
        except ValueError as e:  # "text: contains ..." -> "title of item 3: contains ..."
            where = "title" if index is None else f"title of item {index!r}"
            raise ValueError(where + str(e).removeprefix("text")) from None
        joined, trunc = self.prepare(title + "\n" + text, index)
        return joined, len(title), trunc

    # -- public API ------------------------------------------------------------------------------
    def predict(self, text: str, title: str | None = None) -> Result:
        """Score one text. Raises ``TypeError``/``ValueError`` for non-text or invalid text.

        ``title`` (e.g. a WeChat article's): a windowed model reads it in front of every window of ``text``.
        With a non-empty title the Result's evidence offsets index ``title + "\\n" + text``; a title of
        ``None`` or ``""`` gives exactly the result of ``predict(text)``."""
        if title is not None and not isinstance(title, str):
            raise TypeError(f"title: expected str or None, got {type(title).__name__}")
        t, tl, trunc = self._prepare_titled(text, title, None)
        return self._results([t], [trunc], None if tl is None else [tl])[0]

    def pipe(self, texts: Iterable[str], batch_size: int = 64,
             titles: Sequence[str | None] | None = None) -> Iterator[Result]:
        """Stream results in input order, holding at most one batch in memory.

        Each batch is scored as one group in input order; the transformer pads the windows of a group to its
        longest, so on short texts of mixed lengths a larger ``batch_size`` is much faster (default model on
        COLD/CHNCI comments: 68 texts/s at 64, 137 at 512, 148 at 1024; ``benchmarks/batch_size.py``).

        ``titles``: one ``str | None`` per text (see :meth:`predict`); evidence offsets of a titled text index
        ``title + "\\n" + text``. Unequal lengths raise ``ValueError`` (at once when ``texts`` has a length, else
        when the texts outrun the titles or run out first)."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if isinstance(texts, (str, bytes)):
            raise TypeError("texts must be an iterable of str, not a single str/bytes (use predict)")
        titles = check_titles(titles, len(texts) if hasattr(texts, "__len__") else None)  # type: ignore[arg-type]
        it = iter(texts)
        base = 0
        while True:
            chunk = list(islice(it, batch_size))
            if titles is not None and base + len(chunk) > len(titles):
                raise ValueError(f"got {len(titles)} titles for more texts (at least {base + len(chunk)})")
            if titles is not None and not chunk and base < len(titles):
                raise ValueError(f"got {len(titles)} titles for {base} texts")
            if not chunk:
                return
            idx = range(base, base + len(chunk))
            yield from self._group(chunk, None if titles is None else titles[base:base + len(chunk)], idx)
            base += len(chunk)

    def _group(self, chunk: list[Any], titles: Sequence[str | None] | None, indices: Sequence[int]) -> list[Result]:
        """Results for one group of texts (``indices``: their positions in the caller's input, for errors)."""
        return self._score_prepared(self._prepare_all(chunk, titles, indices), titles is not None)

    def _prepare_all(self, chunk: list[Any], titles: Sequence[str | None] | None,
                     indices: Sequence[int]) -> list[tuple[str, int | None, bool]]:
        """``(text to normalise, title length or None, truncated)`` per text; raises naming the first bad item."""
        if titles is None:
            return [(t, None, trunc) for t, trunc in (self.prepare(x, i) for x, i in zip(chunk, indices))]
        return [self._prepare_titled(t, ti, i) for t, ti, i in zip(chunk, titles, indices)]

    def _score_prepared(self, prepared: list[tuple[str, int | None, bool]], titled: bool) -> list[Result]:
        return self._results([p[0] for p in prepared], [p[2] for p in prepared],
                             [p[1] for p in prepared] if titled else None)

    def predict_batch(self, texts: Sequence[str], batch_size: int = 64,
                      titles: Sequence[str | None] | None = None) -> list[Result]:
        """Score many texts; same order and length as ``texts``. A bad item raises naming its index.

        The texts are scored in groups of ``batch_size`` texts of similar length (less padding in the
        transformer's batches); :meth:`pipe` keeps input order in its groups instead, to stream.

        ``titles``: one ``str | None`` per text, the body in ``texts`` (see :meth:`pipe`): the batch job passes a
        WeChat article's title and cleaned content here, and evidence offsets index ``title + "\\n" + content``."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if isinstance(texts, (str, bytes)):
            raise TypeError("texts must be a sequence of str, not a single str/bytes (use predict)")
        texts = list(texts)
        titles = check_titles(titles, len(texts))
        # The texts are all here, so each group holds texts of similar length (results go back in input order):
        # the transformer pads a batch to its longest text, and on short comments of mixed lengths, groups of
        # 64 in input order cost about twice the time of length-sorted ones (benchmarks/batch_size.py).
        # Every item is checked first, in input order: a bad one raises before anything is scored, naming the first.
        prepared = self._prepare_all(texts, titles, range(len(texts)))
        order = sorted(range(len(texts)), key=lambda i: len(prepared[i][0]))
        out: list[Result | None] = [None] * len(texts)
        for lo in range(0, len(order), batch_size):
            idx = order[lo:lo + batch_size]
            group = self._score_prepared([prepared[i] for i in idx], titles is not None)
            for i, r in zip(idx, group):
                out[i] = r
        return out  # type: ignore[return-value]


def split_title(n: Normalized, title_len: int) -> tuple[str, str, int]:
    """Cut the normalised ``title + "\\n" + body`` at the seam: ``(title, body, body_start)`` in the normalised text.

    The joined string is normalised once (the lexicon scans it, evidence indexes it) and cut here, so the
    classifier's body-offset spans map back through the same alignment after adding ``body_start``. Title
    characters come from inside the original title, body characters from inside the original body; a
    normalised character spanning the seam (a rewrite across the line break, which the steps do not make in
    practice) belongs to neither."""
    al = n.alignments
    starts = [a for a, _ in al]  # increasing: normalisation keeps the order of the original
    k_body = bisect_left(starts, title_len + 1)
    k_title = bisect_left(starts, title_len)
    while k_title > 0 and al[k_title - 1][1] > title_len:
        k_title -= 1
    return n.text[:k_title], n.text[k_body:], k_body


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
