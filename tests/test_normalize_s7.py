"""Session-7 regressions found by hypothesis runs in explore mode on a wider alphabet (CJK, traditional, full-width,
stylised, financial numerals, emoji, invisible characters, lone surrogates, URLs, mentions). Each case failed on
the code before its fix."""
from __future__ import annotations

import pytest

from qinglang_nlp.normalize import normalize, normalize_batch

# ---- a lone surrogate near a traditional character -----------------------------------------------------------
# Python strings may hold lone surrogates (json.loads('"\\ud83d"'), a truncated emoji pair). The traditional step
# hands OpenCC a window of text around each traditional character, and OpenCC encodes it as UTF-8, which raised
# UnicodeEncodeError: normalize("這\ud83d個") crashed. The surrogate is now kept as it is, and the characters
# around it are converted.

@pytest.mark.parametrize(("raw", "want"), [
    ("這\ud83d個傻逼", "这\ud83d个傻逼"),
    ("體\ud800", "体\ud800"),
    ("\udfff體們說", "\udfff体们说"),
    ("網路\udc00謠言", "网路\udc00谣言"),
    ("\ud83d", "\ud83d"),  # alone it never crashed; in the batch below the next text's 這 put it in a window
])
def test_lone_surrogate_beside_a_traditional_character(raw: str, want: str) -> None:
    n = normalize(raw)
    assert n.text == want
    assert n.alignments == [(i, i + 1) for i in range(len(raw))]
    assert normalize(want).text == want
    assert normalize_batch(["你好", raw, "這是" * 40])[1].text == want
