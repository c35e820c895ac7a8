"""Hostile input never crashes, never escapes the documented errors, and spans stay inside the original."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from qinglang_nlp.cli import main

HOSTILE = {
    "combining_flood": "傻" + "\u0301" * 10_000 + "逼",
    "rtl_override": "\u202e逼傻\u202c 正常文本",
    "zero_width_everywhere": "\u200b".join("打投集资控评"),
    "emoji_flood": "🐶" * 5_000,
    "variation_selectors": "傻\ufe0f逼\ufe0e",
    "private_use": "\ue000\uf8ff打投",
    "mixed_scripts": "ｓｂ 𝐬𝐛 ⓢⓑ 傻b 煞笔 儍逼",
    "bom_inside": "\ufeff打投\ufeff",
    "crlf": "第一行\r\n第二行\r\n",
    "long_line": "打投" * 50_000,
    "html_like": "<script>alert('x')</script><b>打投</b>",
    "only_punct": "！！！？？？……",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_api_survives(tiny_model_dir, name):
    import qinglang_nlp as ql

    m = ql.load(tiny_model_dir)  # with the bundled lexicon: hits must map back into the original
    text = HOSTILE[name]
    r = m.predict(text)
    assert all(0.0 <= v <= 1.0 for v in r.scores.values())
    for s in r.evidence:
        assert 0 <= s.start < s.end <= len(text) and text[s.start:s.end] == s.text


def test_deeply_nested_html_is_cleaned():
    from qinglang_nlp.html import clean_html

    out = clean_html("<div>" * 3000 + "打投" + "</div>" * 3000)
    text = out if isinstance(out, str) else out.text
    assert "打投" in text and "<div>" not in text


def test_cli_bad_input_matrix(tiny_model_dir, tmp_path):
    """Every row of a hostile file yields one output row; the bad ones are error records."""
    lines = [json.dumps({"id": k, "text": v}, ensure_ascii=False).encode("utf-8") for k, v in HOSTILE.items()]
    lines += [b'{"id": "nul", "text": "a\\u0000b"}', b'{"id": "surrogate", "text": "\\ud800"}',
              "打投".encode("gb18030"), b"\xef\xbb\xbf{}", b'{"id": "num", "text": 1.5}']
    p = tmp_path / "hostile.jsonl"
    p.write_bytes(b"\r\n".join(lines) + b"\r\n")
    out = tmp_path / "out.jsonl"
    r = CliRunner().invoke(main, ["score", str(p), "-o", str(out), "-m", str(tiny_model_dir), "-q"])
    assert r.exit_code == 1
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(lines)
    errors = {x["line"]: x["error"] for x in rows if "error" in x}
    n = len(HOSTILE)
    assert set(errors) == {n + 1, n + 2, n + 3, n + 4, n + 5}
    assert "NUL" in errors[n + 1] and "surrogate" in errors[n + 2] and "UTF-8" in errors[n + 3]
