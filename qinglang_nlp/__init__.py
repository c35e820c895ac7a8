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
from .normalize import (
    NormalizeConfig,
    Normalized,
    explain,
    normalize,
    normalize_batch,
    pinyin_view,
    to_pinyin,
)
from .result import Result, Span
from .taxonomy import CATEGORIES, TAXONOMY

__version__ = "0.1.0"

__all__ = [
    "CATEGORIES",
    "TAXONOMY",
    "DataError",
    "LexiconMatcher",
    "ModelLoadError",
    "Moderator",
    "NormalizeConfig",
    "Normalized",
    "QinglangError",
    "Result",
    "Span",
    "Term",
    "__version__",
    "explain",
    "hit_features",
    "load",
    "load_terms",
    "normalize",
    "normalize_batch",
    "pinyin_view",
    "to_pinyin",
]
