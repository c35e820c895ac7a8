"""The qinglang CLI: score keeps every row, errors are records with line numbers, exit code says so."""
from __future__ import annotations

import json

from click.testing import CliRunner

from qinglang_nlp.cli import main


def _score(args):
    return CliRunner().invoke(main, ["score", *args], catch_exceptions=False)


def test_score_jsonl_with_bad_rows(tiny_model_dir, tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_bytes("\n".join([
        json.dumps({"id": "a", "text": "打投集资冲冲冲"}, ensure_ascii=False),
        "{not json",
        json.dumps({"id": "c", "body": "没有 text 字段"}, ensure_ascii=False),
        json.dumps({"id": "d", "text": "今天天气不错"}, ensure_ascii=False),
        json.dumps({"id": "e", "text": 5}),
        json.dumps([1, 2]),
        json.dumps({"id": "g", "title": "标题", "content": "<p>正文<b>加粗</b></p>"}, ensure_ascii=False),
    ]).encode() + b"\n" + b'{"id": "h", "text": "\xff\xfe"}\n')
    out = tmp_path / "out.jsonl"
    r = _score([str(inp), "-o", str(out), "-m", str(tiny_model_dir), "-q", "--no-lexicon"])
    assert r.exit_code == 1
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [x["line"] for x in rows] == [1, 2, 3, 4, 5, 6, 7, 8]
    ok = {x["id"]: x for x in rows if "error" not in x}
    assert set(ok) == {"a", "d", "g"}
    errs = {x["line"]: x["error"] for x in rows if "error" in x}
    assert "invalid JSON" in errs[2]
    assert "no 'text'" in errs[3]
    assert "not text" in errs[5]
    assert "expected a JSON object" in errs[6]
    assert "invalid UTF-8" in errs[8]
    assert ok["a"]["decision"] in ("pass", "review", "block")


def test_score_csv_all_good_exit_zero(tiny_model_dir, tmp_path):
    inp = tmp_path / "in.csv"
    inp.write_text("id,text\n1,你好\n2,\"带,逗号的文本\"\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    r = _score([str(inp), "-o", str(out), "-m", str(tiny_model_dir), "-q"])
    assert r.exit_code == 0, r.output
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["1", "2"]


def test_score_refuses_missing_model(tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"text": "x"}\n')
    r = CliRunner().invoke(main, ["score", str(inp), "-m", str(tmp_path / "nomodel")])
    assert r.exit_code != 0 and "does not exist" in r.output


def test_normalize_command():
    r = CliRunner().invoke(main, ["normalize", "ＡＢＣ"])
    assert r.exit_code == 0 and r.output.strip().splitlines()[0] == "abc"


def test_evaluate_generic_file(tiny_model_dir, tmp_path):
    f = tmp_path / "e.jsonl"
    f.write_text("".join(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n"
                         for t, y in [("傻逼滚", 1), ("你好呀", 0), ("脑残垃圾", 1), ("谢谢你", 0)]))
    r = CliRunner().invoke(main, ["evaluate", str(f), "-m", str(tiny_model_dir), "--category", "vulgar", "-q",
                                  "-o", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    assert "vulgar" in r.output
    met = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    (key,) = met["runs"]
    assert met["runs"][key]["categories"]["vulgar"]["at_model_threshold"]["n"] == 4
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "<table class='metrics'>" in page and "e.jsonl" in page
