"""Fast CPU inference of an exported transformer: onnxruntime + the Rust ``tokenizers``, no torch.

One ``InferenceSession`` per model. Texts are tokenised once in Rust; a text longer than the encoder's
window is cut into overlapping windows on sentence boundaries (:mod:`qinglang_nlp.windows`), every window is
scored, and each category keeps its best window (max pooling) as the score and as evidence. Windows are
sorted by length before batching so padding stays small; results come back in input order.
:meth:`OnnxClassifier.predict_batch` streams: it holds the token ids of one sort buffer and the tensors of
one batch at a time, whatever the number of texts.

A *window gate* (``window_gate=`` of :meth:`OnnxClassifier.predict_scores_and_spans`) may skip windows before they
are scored: it receives every window's text index and text and returns which to run; a skipped window counts as
score 0 in the max. :meth:`OnnxClassifier.score_windows` gives every window's own probabilities, which is what a
gate is calibrated on (:mod:`qinglang_nlp.cascade`).
"""
from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from .classifier import ModelSpan, check_titles
from .errors import ModelLoadError
from .modelio import verify_manifest
from .windows import split_windows, token_cost

__all__ = ["OnnxClassifier", "WindowConfig", "WindowGate", "WindowScores", "default_threads", "pad_batch"]

#: ``gate(text_index_per_window, window_texts) -> bool array``: which windows to score
WindowGate = Callable[[np.ndarray, list[str]], np.ndarray]

THREADS_ENV = "QINGLANG_ONNX_THREADS"
SPIN_ENV = "QINGLANG_ONNX_SPIN"
PROVIDERS_ENV = "QINGLANG_ONNX_PROVIDERS"


def default_threads() -> int:
    """Intra-op threads: ``$QINGLANG_ONNX_THREADS``, else the CPUs this process may run on."""
    env = os.environ.get(THREADS_ENV)
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"${THREADS_ENV} must be a whole number, got {env!r}") from None
        if n < 1:
            raise ValueError(f"${THREADS_ENV} must be at least 1, got {n}")
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class WindowConfig:
    """How long texts are cut: ``overlap`` tokens shared by neighbours, at most ``max_windows`` per text
    (``None``: no limit), ``title_tokens`` tokens of title kept in front of every window."""

    overlap: int = 64
    max_windows: int | None = None
    title_tokens: int = 48
    pooling: str = "max"

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> WindowConfig:
        """Build from a config's ``window`` section, refusing unknown keys."""
        d = dict(d or {})
        known = set(cls.__dataclass_fields__)
        if set(d) - known:
            raise ValueError(f"unknown window settings {sorted(set(d) - known)}; known: {sorted(known)}")
        cfg = cls(**d)
        if cfg.pooling != "max":
            raise ValueError(f"window pooling {cfg.pooling!r} is not supported (only 'max')")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``config.json``."""
        return {"overlap": self.overlap, "max_windows": self.max_windows, "title_tokens": self.title_tokens,
                "pooling": self.pooling}


@dataclass
class WindowScores:
    """Every window of a batch of texts: ``item`` (text index), ``start``/``end`` (character span in the text),
    ``n_tokens`` (framed length) and ``probs`` ``(n_windows, n_cat)``; arrays of equal length."""

    item: np.ndarray
    start: np.ndarray
    end: np.ndarray
    n_tokens: np.ndarray
    probs: np.ndarray


@dataclass
class _Piece:
    """One window of one text, ready to batch: token ids (without padding) and its character span."""

    item: int
    ids: list[int]
    start: int
    end: int


def _special_frame(tok: Tokenizer) -> tuple[list[int], list[int]]:
    """Special ids the post-processor puts before and after a single sequence ([CLS] / [SEP], <s> / </s>)."""
    enc = tok.encode("x", add_special_tokens=True)
    mask = enc.special_tokens_mask
    first = mask.index(0) if 0 in mask else len(mask)
    last = len(mask) - mask[::-1].index(0) if 0 in mask else len(mask)
    return list(enc.ids[:first]), list(enc.ids[last:])


class OnnxClassifier:
    """Scores normalised texts with an exported ONNX encoder; safe to call from several threads."""

    def __init__(self, model_path: str | os.PathLike, tokenizer: Tokenizer | str | os.PathLike,
                 categories: Sequence[str], *, max_length: int = 256, text_prefix: str = "",
                 temperature: dict[str, float] | None = None, thresholds: dict[str, float] | None = None,
                 pad_token_id: int = 0, window: WindowConfig | None = None, batch_size: int = 64,
                 threads: int | None = None, providers: Sequence[str] | None = None, spin: bool | None = None):
        self.categories = tuple(categories)
        self.model_path = Path(model_path)
        self.max_length = int(max_length)
        self.text_prefix = text_prefix
        self.batch_size = int(batch_size)
        self.window = window or WindowConfig()
        self.pad_token_id = int(pad_token_id)
        temperature = temperature or {}
        self._inv_temp = np.array([1.0 / float(temperature.get(c, 1.0)) for c in self.categories], np.float32)
        thresholds = thresholds or {}
        self.thresholds = {c: float(thresholds.get(c, 0.5)) for c in self.categories}
        self._thr = np.array([self.thresholds[c] for c in self.categories], np.float32)

        tok = Tokenizer.from_file(os.fspath(tokenizer)) if not isinstance(tokenizer, Tokenizer) else tokenizer
        tok = Tokenizer.from_str(tok.to_str())  # private copy: we change truncation and padding
        tok.no_truncation()
        tok.no_padding()
        self._tok = tok
        self._prefix_ids, self._suffix_ids = _special_frame(tok)
        self._n_prefix = len(tok.encode(text_prefix, add_special_tokens=False).ids)
        self.max_body = self.max_length - len(self._prefix_ids) - len(self._suffix_ids)
        if self.max_body < 8:
            raise ValueError(f"max_length={max_length} leaves {self.max_body} tokens per window")
        if self.window.overlap < 0:
            raise ValueError(f"window overlap must be >= 0, got {self.window.overlap}")

        self.threads = int(threads) if threads else default_threads()
        self.providers = list(providers or _providers_from_env())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle intra-op threads sleep instead of spinning between runs: on shared or oversubscribed cores
        # spinning steals the CPU the work needs (2x slower one-window-per-run int8 measured on 2 shared
        # cores); QINGLANG_ONNX_SPIN=1 or spin=True turns it back on for dedicated cores
        self.spin = bool(spin) if spin is not None else os.environ.get(SPIN_ENV, "0") == "1"
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spin else "0")
        missing = [p for p in self.providers if p not in ort.get_available_providers()]
        if missing:
            raise ModelLoadError(f"onnxruntime here lacks execution provider(s) {missing}; available: "
                                 f"{ort.get_available_providers()} (for CUDA: pip install onnxruntime-gpu)")
        try:
            self._session = ort.InferenceSession(os.fspath(self.model_path), opts, providers=self.providers)
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph classes
            raise ModelLoadError(f"{self.model_path}: onnxruntime cannot load the model ({e})") from e
        names = [i.name for i in self._session.get_inputs()]
        for need in ("input_ids", "attention_mask"):
            if need not in names:
                raise ModelLoadError(f"{self.model_path}: model has no input {need!r} (inputs: {names})")
        self._extra_inputs = [n for n in names if n not in ("input_ids", "attention_mask")]
        if set(self._extra_inputs) - {"token_type_ids"}:
            raise ModelLoadError(f"{self.model_path}: unexpected model inputs {self._extra_inputs}")
        n_out = self._session.get_outputs()[0].shape[-1]
        if isinstance(n_out, int) and n_out != len(self.categories):
            raise ModelLoadError(f"{self.model_path}: model gives {n_out} scores but config lists "
                                 f"{len(self.categories)} categories {list(self.categories)}")

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_dir(cls, path: str | os.PathLike, config: dict[str, Any], *, threads: int | None = None,
                 providers: Sequence[str] | None = None, verify: bool = True) -> OnnxClassifier:
        """Load an exported model folder (``model.onnx``, ``tokenizer.json``, ``config.json``, manifest).

        Every file is checked against ``manifest.json`` first; ``config['runtime']['threads']`` and
        ``$QINGLANG_ONNX_THREADS`` override the thread count (``threads`` overrides both).
        """
        d = Path(path)
        if verify:
            verify_manifest(d)
        model_file = config.get("model_file", "model.onnx")
        for f in (model_file, "tokenizer.json"):
            if not (d / f).is_file():
                raise ModelLoadError(f"{d}: missing {f}")
        cats = config.get("categories")
        if not cats:
            raise ModelLoadError(f"{d}/config.json: no 'categories'")
        runtime = config.get("runtime", {})
        if threads is None and not os.environ.get(THREADS_ENV):
            threads = runtime.get("threads")
        try:
            window = WindowConfig.from_dict(config.get("window"))
        except (TypeError, ValueError) as e:
            raise ModelLoadError(f"{d}/config.json: bad 'window' section ({e})") from None
        return cls(d / model_file, d / "tokenizer.json", cats, max_length=int(config.get("max_length", 256)),
                   text_prefix=config.get("text_prefix", ""), temperature=config.get("temperature"),
                   thresholds=config.get("thresholds"), pad_token_id=int(config.get("pad_token_id", 0)),
                   window=window, batch_size=int(runtime.get("batch_size", 64)), threads=threads,
                   spin=None if os.environ.get(SPIN_ENV) else runtime.get("spin"),
                   providers=providers)

    # ------------------------------------------------------------------ public API
    def predict_scores(self, texts: Sequence[str], titles: Sequence[str | None] | None = None) -> np.ndarray:
        """Probabilities ``(len(texts), len(categories))`` for normalised texts (max over windows)."""
        return self.predict_scores_and_spans(texts, titles)[0]

    def predict_scores_and_spans(
        self, texts: Sequence[str], titles: Sequence[str | None] | None = None,
        window_gate: WindowGate | None = None,
    ) -> tuple[np.ndarray, list[list[ModelSpan]]]:
        """Scores plus, per text, the best window ``(start, end, category, score)`` of every category over
        its threshold; offsets index the given text (the body, never the title).

        ``titles``: one ``str | None`` per text (normalised like the texts); up to ``window.title_tokens`` tokens
        of it go in front of every window of its text. ``window_gate``: score only the windows it keeps (see the
        module docstring; it sees the window's body text, its text index tells the title); ``None`` scores all."""
        texts = list(texts)
        titles = check_titles(titles, len(texts))
        scores = np.zeros((len(texts), len(self.categories)), np.float32)
        spans: list[list[ModelSpan]] = [[] for _ in texts]
        if not texts:
            return scores, spans
        pieces = self._pieces(texts, titles)
        if window_gate is not None and pieces:
            keep = np.asarray(window_gate(np.array([p.item for p in pieces]),
                                          [texts[p.item][p.start:p.end] for p in pieces]), dtype=bool)
            if keep.shape != (len(pieces),):
                raise ValueError(f"window gate returned shape {keep.shape} for {len(pieces)} windows")
            pieces = [p for p, k in zip(pieces, keep) if k]
        best = np.full((len(texts), len(self.categories)), -1, np.int64)
        probs = self._score_pieces(pieces)
        for k, (piece, p) in enumerate(zip(pieces, probs)):
            row = scores[piece.item]
            better = p > row
            row[better] = p[better]
            best[piece.item, better] = k
        for i in range(len(texts)):
            for c, cat in enumerate(self.categories):
                k = best[i, c]
                if k >= 0 and scores[i, c] >= self._thr[c]:
                    spans[i].append((pieces[k].start, pieces[k].end, cat, float(scores[i, c])))
        return scores, spans

    def score_windows(self, texts: Sequence[str], titles: Sequence[str | None] | None = None) -> WindowScores:
        """Every window's own probabilities (no pooling), for analysis and for calibrating a window gate."""
        texts = list(texts)
        titles = check_titles(titles, len(texts))
        pieces = self._pieces(texts, titles) if texts else []
        probs = self._score_pieces(pieces) if pieces else np.zeros((0, len(self.categories)), np.float32)
        return WindowScores(np.array([p.item for p in pieces], np.int64), np.array([p.start for p in pieces], np.int64),
                            np.array([p.end for p in pieces], np.int64),
                            np.array([len(p.ids) for p in pieces], np.int64), probs)

    def predict_batch(self, texts: Iterable[str], buffer_size: int = 1024) -> Iterator[np.ndarray]:
        """Stream scores for any iterable of normalised texts: yields one ``(n_cat,)`` row per text, in order.

        Texts are read ``buffer_size`` at a time, sorted by length inside that buffer and scored one batch
        (``self.batch_size`` windows) at a time, so memory stays flat however many texts come.
        """
        it = iter(texts)
        while chunk := list(islice(it, max(1, buffer_size))):
            yield from self.predict_scores(chunk)

    # ------------------------------------------------------------------ internals
    def _pieces(self, texts: list[str], titles: Sequence[str | None] | None) -> list[_Piece]:
        """Tokenise every text once (in Rust, in parallel) and cut it into windows of token ids."""
        titles = titles or [None] * len(texts)
        heads = [self.text_prefix + (t.strip() + "\n" if t and t.strip() else "") for t in titles]
        encs = self._tok.encode_batch([h + t for h, t in zip(heads, texts)], add_special_tokens=False)
        pieces: list[_Piece] = []
        for i, (head, text, enc) in enumerate(zip(heads, texts, encs)):
            base = len(head)
            ids, offs = enc.ids, enc.offsets
            # head tokens end inside the head; a token straddling the seam ("▁hello" taking the prefix's
            # trailing space) belongs to the body
            n_head = 0
            while n_head < len(offs) and offs[n_head][1] <= base:
                n_head += 1
            head_ids = ids[:n_head][: self._n_prefix + self.window.title_tokens]
            body_ids = ids[n_head:]
            body_starts = [max(0, s - base) for s, _ in offs[n_head:]]
            if not body_ids:
                continue  # empty or whitespace-only text: scores stay 0
            budget = self.max_body - len(head_ids)
            windows = split_windows(text, budget, max(0, min(self.window.overlap, budget // 2 - 1)),
                                    token_cost(body_starts))
            if self.window.max_windows:
                windows = windows[: self.window.max_windows]
            for ws, we in windows:
                a, b = bisect_left(body_starts, ws), bisect_left(body_starts, we)
                if a == b:
                    continue
                pieces.append(_Piece(i, self._prefix_ids + head_ids + body_ids[a:b] + self._suffix_ids, ws, we))
        return pieces

    def _score_pieces(self, pieces: list[_Piece]) -> np.ndarray:
        """Probabilities for every piece, batching pieces of similar length together."""
        out = np.zeros((len(pieces), len(self.categories)), np.float32)
        order = sorted(range(len(pieces)), key=lambda k: len(pieces[k].ids))
        for lo in range(0, len(order), self.batch_size):
            idx = order[lo:lo + self.batch_size]
            logits = self.run_ids([pieces[k].ids for k in idx])
            out[idx] = 1.0 / (1.0 + np.exp(-logits * self._inv_temp))
        return out

    def run_ids(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        """Raw logits ``(len(batch), n_cat)`` for lists of token ids (already framed), padded here."""
        ids, mask = pad_batch(batch, self.pad_token_id)
        feed = {"input_ids": ids, "attention_mask": mask}
        for name in self._extra_inputs:
            feed[name] = np.zeros_like(ids)
        return np.asarray(self._session.run(None, feed)[0], np.float32)


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token id lists to the longest: ``(input_ids, attention_mask)``, both int64."""
    width = max(len(s) for s in seqs)
    ids = np.full((len(seqs), width), pad_id, np.int64)
    mask = np.zeros((len(seqs), width), np.int64)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = s
        mask[r, : len(s)] = 1
    return ids, mask


def _providers_from_env() -> list[str]:
    env = os.environ.get(PROVIDERS_ENV, "")
    return [p.strip() for p in env.split(",") if p.strip()] or ["CPUExecutionProvider"]
