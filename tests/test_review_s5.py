"""Second review of session 5's changes (normalize "@" inside insults, runs, homophones, restore; the distilled
window gate of the cascade). Each test failed on the code before its fix."""
from __future__ import annotations

import pytest

try:  # the cascade tests need the tiny ONNX member, exported with torch; the others do not
    pytest.importorskip("torch", reason="the tiny ONNX member is exported with torch (pip install .[train])")
    pytest.importorskip("transformers", reason="export needs transformers (pip install .[train])")
    from test_cascade_distill import _posts, _write, stacked  # noqa: F401  (``stacked``: a fixture)
    from test_onnx import tiny  # noqa: F401  (the module-scoped ONNX fixture ``stacked`` uses)
    _NO_ONNX = ""
except pytest.skip.Exception as e:
    _NO_ONNX = str(e)

import qinglang_nlp as ql

needs_onnx = pytest.mark.skipif(bool(_NO_ONNX), reason=_NO_ONNX or "-")


@needs_onnx
def test_a_gate_named_relative_to_the_working_directory_is_found_from_anywhere(
        stacked, tiny_model_dir, tmp_path, monkeypatch):
    # `calibrate --gate gates/wx -o cascades/wx.json` wrote "gate": "gates/wx" into the cascade file: a path
    # relative to the working directory of that command, which the file does not record. `qinglang score --cascade`
    # run from any other folder failed ("window gate folder gates/wx does not exist"), or loaded another folder of
    # that name there, whose windows the cut-offs were not calibrated for.
    from qinglang_nlp.cascade import Cascade, read_cascade_file
    from qinglang_nlp.cascade import main as cascade_main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "cascades").mkdir()
    _write(tmp_path / "crawl.jsonl", _posts(12, seed=1))
    _write(tmp_path / "dev.jsonl", _posts(8, seed=2))
    assert cascade_main(["distill", str(stacked), "crawl.jsonl", "-o", "gates/wx"]) == 0
    assert cascade_main([str(tiny_model_dir), str(stacked), "dev.jsonl", "-o", "cascades/wx.json", "--windows-only",
                         "--gate", "gates/wx"]) == 0
    elsewhere = tmp_path / "jobs"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = read_cascade_file(tmp_path / "cascades" / "wx.json")
    assert cfg["window_gate"]["gate"] == str((tmp_path / "gates" / "wx").resolve())
    cas = Cascade(ql.load(tiny_model_dir, lexicon=False), ql.load(stacked, lexicon=False), cfg["cutoffs"], False,
                  cfg["window_gate"])
    assert cas.to_dict()["window_gate"]["gate"] == cfg["window_gate"]["gate"]


# ---- normalize: whitespace before an "@" ends the word, the "@" starts a mention ----------------------------------
# The "@ inside an insult" rule (4eef3fb) also took a run of spaces before the "@" as noise inside a word, so two
# mentions, or a word and the mention after it, were glued when the last character before the space and the first
# of the name read as a pair of a target term: a CHNCI train comment lost its second mention ("秘籍  @叭叭" reads
# 鸡巴), "恭喜你 @马嘉祺" became "恭喜你妈嘉祺" and "为啥 @毕导" a lexicon hit "啥 @毕" (傻逼). A space before "@" is
# how Weibo and Douyin write a mention; the rule keeps "@" without it (傻@逼, 傻@@逼, 傻🐶@逼).

@pytest.mark.parametrize(("raw", "mentions"), [
    ("@~~ @不长高秘籍  @叭叭tata 刷到几个视角了", ["@不长高秘籍", "@叭叭tata"]),  # chnci/train.csv
    ("恭喜你 @马嘉祺 生日快乐", ["@马嘉祺"]),
    ("为啥 @毕导 说的", ["@毕导"]),
    ("干啥\u3000@毕业生", ["@毕业生"]),  # a full-width space is a space
])
def test_a_mention_after_a_space_stays_a_mention(raw: str, mentions: list[str]) -> None:
    from qinglang_nlp.normalize import normalize, normalize_batch

    n = normalize(raw)
    assert [p.value for p in n.parts if p.kind == "mention"] == mentions
    assert all(m in n.text for m in mentions)
    assert normalize(n.text).text == n.text
    assert normalize_batch(["你好", raw])[1].text == n.text


def test_an_at_without_a_space_inside_an_insult_is_still_noise() -> None:
    from qinglang_nlp.normalize import normalize

    for raw, want in [("你是傻@逼", "你是傻逼"), ("傻@@逼", "傻逼"), ("傻🐶@逼", "傻逼"), ("你是煞*@笔吧", "你是傻逼吧")]:
        assert normalize(raw).text == want
