"""Coverage-guided fuzzing of the normaliser, the HTML cleaner and the lexicon (kept out of CI).

    pip install atheris
    python tests/fuzz/fuzz_normalize.py -atheris_runs=200000          # or -max_total_time=600

Each input is decoded as UTF-8 (invalid bytes replaced) and run through ``normalize``, ``normalize_batch``,
``clean_html``, ``pinyin_view`` and the bundled lexicon. Allowed outcomes: a result whose alignments lie inside
the original, spans that slice the original, idempotent normalisation. Anything else (an exception, a span
outside the text) is a finding: atheris stops and writes the crashing input to ``crash-*``.
"""
from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from qinglang_nlp.html import clean_html
    from qinglang_nlp.lexicon import LexiconMatcher
    from qinglang_nlp.normalize import normalize, normalize_batch, pinyin_view

LEX = LexiconMatcher.default()


def check(text: str) -> None:
    n = normalize(text)
    assert len(n.alignments) == len(n.text)
    for s, e in n.alignments:
        assert 0 <= s <= e <= len(text), (s, e, len(text))
    assert normalize(n.text).text == n.text, "not idempotent"
    assert normalize_batch([text, text])[0].text == n.text
    h = clean_html(text)
    for s, e in h.alignments:
        assert 0 <= s <= e <= len(text)
    pv = pinyin_view(n)
    if pv.text:
        a, b = pv.to_original(0, len(pv.text))
        assert 0 <= a <= b <= len(text)
    for sp in LEX.match(n):
        assert text[sp.start:sp.end] == sp.text


def one_input(data: bytes) -> None:
    check(data.decode("utf-8", errors="replace").replace("\x00", ""))


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
