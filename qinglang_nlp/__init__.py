"""qinglang-nlp: moderation of Chinese social-media text (饭圈乱象, 低俗, 谣言).

    import qinglang_nlp as ql
    m = ql.load()
    r = m.predict("黑粉都给我爬，刷榜打投冲冲冲")
    r.scores, r.labels, r.decision, r.evidence
"""
from __future__ import annotations

from .errors import DataError, ModelLoadError, QinglangError
from .moderator import Moderator, load
from .normalize import Normalized, NormalizeConfig, normalize
from .result import Result, Span
from .taxonomy import CATEGORIES, TAXONOMY

__version__ = "0.1.0"

__all__ = [
    "load", "Moderator", "CATEGORIES", "TAXONOMY", "Result", "Span", "normalize", "Normalized", "NormalizeConfig",
    "QinglangError", "ModelLoadError", "DataError", "__version__",
]
