"""Exceptions raised by qinglang-nlp. All derive from ``QinglangError``."""
from __future__ import annotations

__all__ = ["DataError", "ModelLoadError", "QinglangError"]


class QinglangError(Exception):
    """Base class of the library's own errors."""


class ModelLoadError(QinglangError):
    """A model folder is missing, corrupt, truncated or does not match its manifest."""


class DataError(QinglangError, ValueError):
    """A dataset or input file cannot be read; the message names the file and line."""
