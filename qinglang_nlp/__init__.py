"""qinglang-nlp: moderation of Chinese social-media text (饭圈乱象, 低俗, 谣言).

    import qinglang_nlp as ql
    m = ql.load()
    r = m.predict("黑粉都给我爬，刷榜打投冲冲冲")
    r.scores, r.labels, r.decision, r.evidence
"""
from __future__ import annotations

from .errors import DataError, ModelLoadError, QinglangError
from .lexicon import LexiconMatcher, Term, hit_features, load_terms
from .moderator import Moderator, load
from .normalize import Normalized, NormalizeConfig, explain, normalize, normalize_batch, pinyin_view, to_pinyin
from .result import Result, Span
from .taxonomy import CATEGORIES, TAXONOMY

__version__ = "0.1.0"

__all__ = [
    "load", "Moderator", "LexiconMatcher", "Term", "load_terms", "hit_features", "CATEGORIES", "TAXONOMY", "Result", "Span", "normalize", "normalize_batch", "pinyin_view", "to_pinyin", "explain", "Normalized",
    "NormalizeConfig",
    "QinglangError", "ModelLoadError", "DataError", "__version__",
]
