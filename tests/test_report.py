"""`qinglang report`: per-account table, escaping of user text, review queue order, formula-safe CSV."""
from __future__ import annotations

import csv
import json
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

from qinglang_nlp.cli import main
from qinglang_nlp.report import build_report, safe_cell, write_html, write_queue_csv


def _rec(i, account, decision, scores, labels=(), title=None, evidence=(), url=None):
    return {"id": f"p{i}", "line": i, "account": account, "title": title, "url": url,
            "scores": dict(zip(("fanquan", "vulgar", "rumor"), scores)), "labels": list(labels),
            "decision": decision, "evidence": list(evidence), "model": "tiny@0"}


RECORDS = [
    _rec(1, "偶像指数榜", "review", (0.81, 0.1, 0.2), ["fanquan"], "本周打榜冲刺",
         [{"start": 0, "end": 2, "text": "打投", "category": "fanquan", "source": "lexicon", "term": "打投"}],
         "https://mp.example/s/1"),
    _rec(2, "偶像指数榜", "block", (0.97, 0.1, 0.1), ["fanquan"], "集资还差三万",
         [{"start": 0, "end": 2, "text": "集资", "category": "fanquan", "source": "lexicon", "term": "集资"}]),
    _rec(3, "为爱签个到", "review", (0.66, 0.1, 0.1), ["fanquan"], "签到第128天"),
    _rec(4, "为爱签个到", "pass", (0.1, 0.1, 0.1), [], "今日份日常"),
    _rec(5, "<script>alert('x')</script>", "review", (0.1, 0.72, 0.1), ["vulgar"],
         "=HYPERLINK(\"http://evil\",\"点我\")",
         [{"start": 0, "end": 8, "text": "<img src=x onerror=alert(1)>", "category": "vulgar", "source": "model"}],
         "javascript:alert(1)"),
    _rec(6, "生活小记", "pass", (0.05, 0.02, 0.03), [], "晚饭吃了面条"),
    {"id": "p7", "line": 7, "account": "生活小记", "error": "line 7: invalid JSON", "model": "tiny@0"},
    _rec(8, "辟谣小组", "review", (0.1, 0.1, 0.91), ["rumor"], "+86 转发：自来水有毒"),
]


class _Tables(HTMLParser):
    """Collects the text of every table cell, by table id."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.tags: list[str] = []
        self._tid = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "table":
            self._tid = dict(attrs).get("id", f"t{len(self.tables)}")
            self.tables[self._tid] = []
        elif tag == "tr" and self._tid:
            self.tables[self._tid].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._tid:
            self.tables[self._tid][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _parse(html_text: str) -> _Tables:
    p = _Tables()
    p.feed(html_text)
    return p


def test_html_report_has_account_table_and_escapes_user_text(tmp_path):
    rep = build_report(RECORDS)
    out = write_html(rep, tmp_path / "r.html")
    text = out.read_text(encoding="utf-8")
    parsed = _parse(text)
    assert "script" not in parsed.tags  # no injected tags: the only <img>s are our embedded charts
    assert parsed.tags.count("img") == text.count('src="data:image/png;base64,')
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "onerror" not in text.replace("&lt;img src=x onerror=alert(1)&gt;", "")
    assert 'href="javascript:' not in text
    acc = parsed.tables["accounts"]
    assert acc[0][:3] == ["#", "account", "posts"]
    by_name = {r[1]: r for r in acc[1:]}
    assert set(by_name) == {"偶像指数榜", "为爱签个到", "<script>alert('x')</script>", "生活小记", "辟谣小组"}
    assert by_name["偶像指数榜"][2] == "2" and by_name["偶像指数榜"][3] == "2 (100.0%)"
    assert by_name["为爱签个到"][3] == "1 (50.0%)"
    assert acc[1][1] == "偶像指数榜"  # most flagged posts first
    assert "打投" in by_name["偶像指数榜"][-2] and "集资还差三万" in by_name["偶像指数榜"][-1]
    queue = parsed.tables["queue"]
    assert [r[1] for r in queue[1:]] == ["block", "review", "review", "review", "review"]
    assert queue[2][3].startswith("+86") and queue[1][3].startswith("集资还差三万")  # rumor 0.91 before 0.81


def test_queue_csv_neutralises_formulas_and_is_ordered(tmp_path):
    rep = build_report(RECORDS)
    p = write_queue_csv(rep, tmp_path / "q.csv")
    with open(p, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == ["p2", "p8", "p1", "p5", "p3"]
    t = {r["id"]: r for r in rows}
    assert t["p5"]["title"].startswith("'=HYPERLINK")
    assert t["p8"]["title"] == "'+86 转发：自来水有毒"
    assert t["p5"]["url"] == "javascript:alert(1)"
    assert float(t["p2"]["risk"]) == 0.97 and t["p2"]["decision"] == "block"
    assert safe_cell("-1+2") == "'-1+2" and safe_cell("@SUM(A1)") == "'@SUM(A1)" and safe_cell("打投") == "打投"
    assert safe_cell(-3) == -3


def test_report_cli_on_scored_fixture(tiny_model_dir, tmp_path):
    posts = [{"id": "a1", "account": "偶像指数榜", "title": "打榜", "content": "<p>姐妹们今天打投任务每人五十票</p>"},
             {"id": "a2", "account": "偶像指数榜", "text": "集资还差三万，哥哥的生日应援不能输给对家"},
             {"id": "b1", "account": "为爱签个到", "text": "轮博做数据，超话签到不能断"},
             {"id": "c1", "account": "<b>生活</b>", "text": "<script>alert(1)</script>晚饭吃了面条"},
             {"id": "c2", "account": "<b>生活</b>", "text": "你这个傻逼，滚远点"}]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in posts), encoding="utf-8")
    r = CliRunner().invoke(main, ["score", str(inp), "-o", str(tmp_path / "s.jsonl"), "-m", str(tiny_model_dir),
                                  "-q"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["report", str(tmp_path / "s.jsonl"), "-o", str(tmp_path / "rep" / "r.html")])
    assert r.exit_code == 0, r.output
    html_text = (tmp_path / "rep" / "r.html").read_text(encoding="utf-8")
    parsed = _parse(html_text)
    names = [row[1] for row in parsed.tables["accounts"][1:]]
    assert sorted(names) == sorted(["偶像指数榜", "为爱签个到", "<b>生活</b>"])
    assert "<b>生活</b>" not in html_text and "&lt;b&gt;生活&lt;/b&gt;" in html_text
    assert "data:image/png;base64," in html_text or "charts need matplotlib" in html_text
    md = (tmp_path / "rep" / "r.md").read_text(encoding="utf-8")
    assert "偶像指数榜" in md and "&lt;b&gt;生活&lt;/b&gt;" in md
    with open(tmp_path / "rep" / "r_review_queue.csv", encoding="utf-8-sig") as f:
        q = list(csv.DictReader(f))
    assert q and all(x["decision"] in ("review", "block") for x in q)


def test_report_reads_parquet_like_jsonl(tiny_model_dir, tmp_path):
    pytest.importorskip("pyarrow", reason="Parquet needs pyarrow")
    from qinglang_nlp.batch import read_scored, score_file
    import qinglang_nlp as ql

    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": str(i), "account": a, "text": t}, ensure_ascii=False) + "\n"
                           for i, (a, t) in enumerate([("偶像指数榜", "控评了控评了，热评前十必须都是我们的"),
                                                       ("路人", "今天天气不错"), ("路人", "去你妈的，恶心死了")])),
                   encoding="utf-8")
    m = ql.load(tiny_model_dir)
    score_file(m, inp, tmp_path / "s.jsonl")
    score_file(m, inp, tmp_path / "s.parquet")
    a, b = build_report(tmp_path / "s.jsonl"), build_report(tmp_path / "s.parquet")
    assert a.ordered_queue() == b.ordered_queue() and a.account_rows() == b.account_rows()
    assert list(read_scored(tmp_path / "s.parquet")) == list(read_scored(tmp_path / "s.jsonl"))
