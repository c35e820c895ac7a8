"""Second review (session 7) of batch scoring under nasty real-world input, and of the lexicon scan changed in
bd927ae: each test here failed before the fix committed with it (or is an xfail naming a bug left open)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import qinglang_nlp as ql
from qinglang_nlp.batch import read_scored, score_file


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_entities_in_content_without_tags_are_decoded_before_scoring(tiny_model_dir, tmp_path):
    """A crawled paragraph with no tag left its entities raw: 傻逼 written as &#20667;&#36924; lost its lexicon
    evidence (and most of its vulgar score), because clean_html leaves tag-free text as it is."""
    m = ql.load(tiny_model_dir)  # with the bundled lexicon: evidence spans
    inp = _write(tmp_path / "posts.jsonl", [
        {"id": "plain", "content": "你这个傻逼，滚远点"},
        {"id": "entities", "content": "你这个&#20667;&#36924;，滚远点"},
        {"id": "named", "title": "晚饭&amp;宵夜", "content": "吃了面条&nbsp;很满足，AT&T 的账单也到了"},
    ])
    out = tmp_path / "scored.jsonl"
    score_file(m, inp, out, keep_text=True)
    plain, ent, named = read_scored(out)
    assert ent["text"] == "你这个傻逼，滚远点" and ent["scores"] == plain["scores"]
    assert [e["text"] for e in ent["evidence"]] == [e["text"] for e in plain["evidence"]] and ent["evidence"]
    for sp in ent["evidence"]:
        assert ent["text"][sp["start"]:sp["end"]] == sp["text"]
    # the title is plain text (only content is HTML); AT&T is not an entity
    assert named["text"] == "晚饭&amp;宵夜\n吃了面条 很满足，AT&T 的账单也到了"
