"""Second review of session 4 (batch grouping, titles, cascades, the normaliser's disk cache): regressions."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def _scores(results: list) -> list:
    return [(r.scores, r.labels, r.decision, [(s.start, s.end) for s in r.evidence]) for r in results]


def test_cascade_predict_batch_takes_a_generator(tiny_model):
    """Cascade.predict_batch/predict_staged took any iterable (like Moderator.predict_batch); titles= made them
    call len() on the texts, so a generator raised TypeError even without titles."""
    from qinglang_nlp.cascade import Cascade

    texts = ["黑粉都给我爬，刷榜打投冲冲冲", "", "谢谢你的帮助，祝你生活愉快", "你这个傻逼，滚远点！"]
    c = Cascade(tiny_model, tiny_model, {"fanquan": 0.1, "vulgar": 0.1, "rumor": 0.1})
    want = c.predict_batch(texts)
    assert _scores(c.predict_batch(t for t in texts)) == _scores(want)
    assert _scores(c.predict_batch((t for t in texts), titles=[None, "标题", None, ""])) == \
        _scores(c.predict_batch(texts, titles=[None, "标题", None, ""]))
