"""Second review (session 7) of batch scoring under nasty real-world input, and of the lexicon scan changed in
bd927ae: each test here failed before the fix committed with it (the scan's collector bug found here is
fixed and tested in test_lexicon_scan_s7.py, 6c98c5e)."""
from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import qinglang_nlp as ql
from qinglang_nlp.batch import FieldMap, read_scored, score_file
from qinglang_nlp.cli import main
from qinglang_nlp.html import _MORE_TAGS, _TAGS


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
        {"id": "no-semicolons", "content": "你这个&#20667&#x903c，滚远点"},  # a browser shows these as 傻逼 too
        {"id": "named", "title": "晚饭&amp;宵夜", "content": "吃了面条&nbsp;很满足，AT&T 的账单也到了"},
    ])
    out = tmp_path / "scored.jsonl"
    score_file(m, inp, out, keep_text=True)
    plain, *ents, named = read_scored(out)
    for ent in ents:
        assert ent["text"] == "你这个傻逼，滚远点" and ent["scores"] == plain["scores"]
        assert [e["text"] for e in ent["evidence"]] == [e["text"] for e in plain["evidence"]] and ent["evidence"]
        for sp in ent["evidence"]:
            assert ent["text"][sp["start"]:sp["end"]] == sp["text"]
    # the title is plain text (only content is HTML); AT&T is not an entity
    assert named["text"] == "晚饭&amp;宵夜\n吃了面条 很满足，AT&T 的账单也到了"



@pytest.mark.parametrize("content", [
    "<p>&lt;script&gt;你这个傻逼，滚远点</p>",  # an article that shows the text "<script>" to its readers
    "<p>&lt;!--你这个傻逼，滚远点</p>",
    "&lt;script&gt;你这个傻逼，滚远点",  # no tag: decoded by decode_entities
    "<head><title>&lt;script&gt;</title></head><p>你这个傻逼，滚远点</p>",
])
def test_an_escaped_tag_is_text_a_reader_sees_not_markup_that_hides_the_rest(tiny_model_dir, tmp_path, content):
    """&lt;script&gt; is text on the page, but it was decoded to "<script>" and the next html pass (clean_html's,
    or the model's normalize) dropped it and everything after it: the post scored as empty. The decoded "<" is
    now a look-alike (U+2039) that no pass reads as markup."""
    m = ql.load(tiny_model_dir)  # with the bundled lexicon: evidence spans
    inp = _write(tmp_path / "posts.jsonl", [{"id": "wx-1", "content": content}])
    score_file(m, inp, tmp_path / "scored.jsonl", keep_text=True)
    (row,) = read_scored(tmp_path / "scored.jsonl")
    assert "\u2039script>" in row["text"] or "\u2039!--" in row["text"]
    assert row["text"].endswith("你这个傻逼，滚远点") and row["decision"] != "pass"
    assert [e["text"] for e in row["evidence"]] == ["傻逼"]


# the regexes html.py used before: kept here as the oracle of the linear-time searches that replaced them
_OLD_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.DOTALL | re.IGNORECASE)
_OLD_OG = re.compile(r"""<meta\b[^>]*property=["']og:title["'][^>]*content=["']([^"']*)["'][^>]*>""", re.IGNORECASE)
_OLD_HEAD = re.compile(r"<head\b[^>]*>.*?(?:</head\s*>|(?=<body\b)|\Z)", re.DOTALL | re.IGNORECASE)
_OLD_WS_BREAK = re.compile(r"[ \t\r\f\v\u00a0]*\n\s*")
_ENTITY = r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});?"
_TAG_RE = rf"(?P<tag></?(?:{_TAGS}|{_MORE_TAGS})(?=[\s/>])[^<>]*>)"
_OLD_TOKEN = re.compile(  # an unclosed comment or block ran to the end of the text (\Z)
    r"(?P<comment><!--.*?(?:-->|\Z))"
    r"|(?P<drop><(?P<dtag>script|style|noscript|svg)\b[^>]*>.*?(?:</(?P=dtag)\s*>|\Z))"
    rf"|{_TAG_RE}|(?P<entity>{_ENTITY})",
    re.DOTALL | re.IGNORECASE,
)
# the rule since: a closed comment or block as before; an unclosed <!-- is a token of its own, an unclosed
# <script> a plain tag (the alternatives after it), and a <head> needs </head> or <body to end
_NEW_TOKEN = re.compile(
    r"(?P<comment><!--.*?-->)"
    r"|(?P<drop><(?P<dtag>script|style|noscript|svg)\b[^>]*>.*?</(?P=dtag)\s*>)"
    r"|(?P<marker><!--)"
    rf"|{_TAG_RE}|(?P<entity>{_ENTITY})",
    re.DOTALL | re.IGNORECASE,
)
_NEW_HEAD = re.compile(r"<head\b[^>]*>.*?(?:</head\s*>|(?=<body\b))", re.DOTALL | re.IGNORECASE)


def _kinds(matches) -> list[tuple[tuple[int, int], str]]:
    return [(m.span(), "comment" if m.lastgroup == "marker" else m.lastgroup) for m in matches]


def test_html_searches_find_what_the_old_regexes_found():
    """The linear-time searches find what the old regexes found, except for openers never closed (which ran to the
    end of the text and hid it: now they remove only themselves; see test_html_failclosed_s7.py)."""
    from qinglang_nlp.html import _WS_BREAK, _head_span, _og_title_span, _title_span, _tokens

    toks = ["<title>", "<TITLE x=1>", "<titlex>", "</title>", "</title >", "</title", "<meta ", "<META ", "<metax ",
            "property='og:title' ", 'property="og:title"', "PROPERTY='OG:TITLE'", "content='", 'content="', "本周榜单",
            "'", '"', ">", "<", " ", "\n", "/>", "<script>", "<script ", "</script>", "</SCRIPT >", "<svg", "</svg>",
            "<!--", "-->", "<head>", "<head ", "</head>", "<body>", "<p>", "<b ", "&amp;", "&nbsp", "&#20667;", "&",
            "\t", "\u3000", "\u00a0", "你好", "<STYLE>", "</style>", "<noscript>", "</noscript >", "-", "--", "<!"]
    rng = random.Random(52)
    unclosed = 0
    for _ in range(20_000):
        s = "".join(rng.choice(toks) for _ in range(rng.randint(0, 14)))
        hs = min(rng.randint(0, 3), len(s))
        he = rng.randint(hs, len(s))
        old_t, old_og, old_head = _OLD_TITLE.search(s, hs, he), _OLD_OG.search(s, hs, he), _OLD_HEAD.search(s)
        assert _title_span(s, hs, he) == (old_t.span(1) if old_t else None), (s, hs, he)
        assert _og_title_span(s, hs, he) == (old_og.span(1) if old_og else None), (s, hs, he)
        new_head = _NEW_HEAD.search(s)
        assert _head_span(s) == (new_head.span() if new_head else None), s
        if new_head or not old_head:  # a head that is closed (or none at all): as before
            assert (new_head and new_head.span()) == (old_head and old_head.span()), s
        got = [(m.span(), m.lastgroup) for m in _tokens(s)]
        assert got == _kinds(_NEW_TOKEN.finditer(s)), s
        old = _kinds(_OLD_TOKEN.finditer(s))
        if got != old:  # only where an old token was an opener that ran to the end, never closed
            unclosed += 1
            last = old[-1]
            assert last[0][1] == len(s) and last[1] in ("comment", "drop"), s
            assert old[:-1] == got[:len(old) - 1], s
            there = _NEW_TOKEN.match(s, last[0][0])  # the rule now finds no closed comment or block there
            assert there is None or there.lastgroup not in ("comment", "drop"), s
        lead, trail = len(s) - len(s.lstrip()), len(s.rstrip())
        assert ([m.span() for m in _WS_BREAK.finditer(s, lead, max(lead, trail))]
                == [m.span() for m in _OLD_WS_BREAK.finditer(s, lead, max(lead, trail))]), s
    assert unclosed > 1000  # the unclosed case is exercised


@pytest.mark.parametrize("page", [
    "<p>姐妹们</p>" + "<svg " * 40_000,  # 10 s of CPU before (the whole token regex tried each <svg to the end)
    "<p>姐妹们</p>" + "<script " * 25_000,  # 6 s
    "<head " * 33_000,  # 9 s (the <head> regex)
    "<p>姐妹们" + " " * 199_000 + "打投</p>",  # 44 s (the paragraph-break regex tried each space)
])
def test_hostile_html_is_cleaned_in_linear_time(page):
    """A content cell of 200,000 characters of unclosed <svg / <script / <head tags or of spaces took 6-44 s of CPU
    to clean (a 1 MB one, cleaned before any length check, minutes); each regex now reads it about once."""
    from qinglang_nlp.html import clean_html

    t0 = time.process_time()
    clean_html(page)
    assert time.process_time() - t0 < 1.0


@pytest.mark.parametrize("page", [
    "<head>" + "<meta property='og:title' " * 1500,  # 39,000 chars: over 200 s of backtracking before
    "<head>" + "<title>" * 20_000,  # 140,000 chars: quadratic, 9 s at 100,000 before
])
def test_a_head_full_of_unclosed_title_tags_is_cleaned_in_linear_time(model, tmp_path, page):
    """One hostile post (a <head> of unclosed <meta og:title> or <title> tags) held the whole batch job for
    minutes: the title regexes backtracked through every tag. Its row comes back in well under a second."""
    inp = _write(tmp_path / "posts.jsonl", [{"id": "wx-1", "content": page + "</head><p>姐妹们今天打投任务每人五十票</p>"},
                                            {"id": "wx-2", "content": "<p>晚饭吃了面条，很满足</p>"}])
    t0 = time.process_time()
    s = score_file(model, inp, tmp_path / "scored.jsonl", keep_text=True)
    assert time.process_time() - t0 < 5.0
    rows = list(read_scored(tmp_path / "scored.jsonl"))
    assert s.rows == 2 and s.errors == 0 and [r["id"] for r in rows] == ["wx-1", "wx-2"]
    assert rows[0]["text"] == "姐妹们今天打投任务每人五十票"



@pytest.mark.parametrize("cut", ['wx-3,晚饭\n', 'wx-3,晚饭,"吃了面条，很满足\n', 'wx-3,晚饭,"吃了面条，很满足'])
def test_a_csv_row_cut_short_is_an_error_row_not_scored_in_part(model, tmp_path, cut):
    """A CSV whose last row was cut short (a crawler killed mid-write) scored that row on what was left: a row
    with fewer cells than the header read the missing content as absent and was scored on its title alone, and
    a quote left open on the last line was read as closed. A JSONL line cut short is an error row; so are these."""
    inp = tmp_path / "posts.csv"
    inp.write_text("id,title,content\nwx-1,本周榜单,姐妹们今天打投任务每人五十票\nwx-2,标题\n" + cut,
                   encoding="utf-8")
    out = tmp_path / "scored.jsonl"
    s = score_file(model, inp, out)
    rows = list(read_scored(out))
    assert s.rows == 3 and s.errors == 2 and [r["line"] for r in rows] == [2, 3, 4]
    assert "decision" in rows[0]
    assert rows[1]["error"] == "line 3: 2 cells, the header has 3 (was the row cut short?)"
    assert "cut short" in rows[2]["error"]




@pytest.mark.parametrize("fmt,sep", [("csv", ","), ("tsv", "\t")])
def test_a_stray_quote_does_not_swallow_the_rows_up_to_the_next_quote(model, tmp_path, fmt, sep):
    """A post that opens with an unmatched ASCII quote made the lenient CSV reader read every line up to the next
    quote in the file as that post's text: three rows became one, with no error. Strict parsing tells such a quote
    (it closes in the middle of a cell) from a quoted field over several lines, which still reads as one row."""
    inp = tmp_path / f"posts.{fmt}"
    inp.write_text(sep.join(["id", "text"]) + "\n" + "".join(sep.join(r) + "\n" for r in [
        ("wb-1", '"震惊！吃香蕉会致癌，赶紧转给家人'), ("wb-2", "今天天气不错，适合出去走走。"),
        ("wb-3", '他说"好的"'), ("wb-4", '"第一行\n第二行"'), ("wb-5", "你这个傻逼，滚远点")]), encoding="utf-8")
    out = tmp_path / "scored.jsonl"
    s = score_file(model, inp, out)
    rows = list(read_scored(out))
    assert s.rows == 3 and s.errors == 1 and [r["line"] for r in rows] == [4, 6, 7]
    assert rows[0]["error"].startswith("line 2: a quote opened a field that closes in the middle of a cell")
    assert "so line 2 to line 4 read as one row" in rows[0]["error"]
    assert [r.get("id") for r in rows] == [None, "wb-4", "wb-5"] and "decision" in rows[1]


@pytest.fixture()
def model(tiny_model):
    return tiny_model


@pytest.mark.parametrize("name,header,hint", [
    ("posts.csv", "id;title;content", "separated by ';'? save it as CSV"),
    ("posts.csv", "id\ttext", "separated by '\\t'? pass --format tsv"),
    ("posts.tsv", "id,text", "separated by ','? pass --format csv"),
    ("posts.csv", "id,body", None),
])
def test_a_file_without_a_text_column_is_refused_not_scored_into_error_rows(model, tmp_path, name, header, hint):
    """A CSV saved with ';' (or a TSV named .csv, or a body column under another name) reads as columns none of
    which holds text: every row became an error row. It is now refused before any output, saying why."""
    sep = next(c for c in "\t;," if c in header)
    inp = tmp_path / name
    inp.write_text(header + "\n" + sep.join(["wb-1", "你这个傻逼，滚远点", "正文"][:header.count(sep) + 1]) + "\n",
                   encoding="utf-8")
    out = tmp_path / "scored.jsonl"
    with pytest.raises(ValueError, match="has no column 'text', 'title' or 'content' to score") as e:
        score_file(model, inp, out)
    assert hint in str(e.value) if hint else "one column" not in str(e.value)
    r = CliRunner().invoke(main, ["score", str(inp), "-o", str(out), "-m", str(model.path), "-q"])
    assert r.exit_code == 1 and "--text-field" in r.output and not out.exists()
    if hint is None:  # the way out the message names
        assert score_file(model, inp, out, FieldMap(text="body")).errors == 0
