"""Batch scoring and reports under hostile input and a flaky machine: each test is a bug that was found and fixed."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_batch import _CrashAfter, _jsonl, _write_jsonl

import qinglang_nlp as ql
from qinglang_nlp.batch import FieldMap, ResumeError, parts_dir, read_scored, row_text, score_file, state_path
from qinglang_nlp.cli import main
from qinglang_nlp.io import iter_rows
from qinglang_nlp.report import build_report

POSTS = [
    {"id": "wb-1", "account": "路人甲", "text": "今天天气不错，适合出去走走。"},
    {"id": "wb-2", "account": "路人乙", "text": "你这个傻逼，滚远点"},
    {"id": "wx-3", "account": "偶像指数榜", "title": "本周榜单", "content": "<p>姐妹们今天打投任务每人五十票</p>"},
]


@pytest.fixture()
def model(tiny_model):
    return tiny_model


def test_output_that_is_the_input_is_refused_and_the_input_survives(model, tmp_path):
    inp = _write_jsonl(tmp_path / "posts.jsonl", POSTS)
    before = inp.read_bytes()
    for kw in ({}, {"overwrite": True}):
        with pytest.raises(ValueError, match="is the input"):
            score_file(model, inp, inp, **kw)
        with pytest.raises(ValueError, match="is the input"):  # the same file by another name
            score_file(model, inp, tmp_path / "." / "posts.jsonl", **kw)
    assert inp.read_bytes() == before
    r = CliRunner().invoke(main, ["score", str(inp), "-o", str(inp), "--overwrite", "-m", str(model.path), "-q"])
    assert r.exit_code == 1 and "is the input" in r.output and inp.read_bytes() == before


@pytest.mark.parametrize("ext", ["jsonl", "parquet"])
def test_committed_output_that_went_missing_is_not_reported_complete(model, tmp_path, ext):
    if ext == "parquet":
        pytest.importorskip("pyarrow", reason="Parquet output needs pyarrow")
    inp = _write_jsonl(tmp_path / "posts.jsonl", POSTS * 10)
    out = tmp_path / f"scored.{ext}"
    score_file(model, inp, out)
    out.unlink()  # a user cleaning up, or a disk that lost the file: the state still says complete
    with pytest.raises(ResumeError, match="missing"):
        score_file(model, inp, out)
    assert score_file(model, inp, out, overwrite=True).rows == 30 and len(list(read_scored(out))) == 30


def test_partial_parquet_output_with_missing_parts_is_refused(model, tmp_path):
    pytest.importorskip("pyarrow", reason="Parquet output needs pyarrow")
    inp = _write_jsonl(tmp_path / "posts.jsonl", POSTS * 10)
    out = tmp_path / "scored.parquet"
    with pytest.raises(KeyboardInterrupt):
        score_file(_CrashAfter(model, 2), inp, out, batch_size=4, chunk_rows=4)
    assert json.loads(state_path(out).read_text())["parts"] == 2
    (parts_dir(out) / "part-000000.parquet").unlink()
    with pytest.raises(ResumeError, match="missing"):
        score_file(model, inp, out, batch_size=4, chunk_rows=4)


def test_resume_refuses_the_same_model_name_with_other_files_or_lexicon(tiny_model_dir, tmp_path):
    from qinglang_nlp.modelio import write_manifest

    inp = _write_jsonl(tmp_path / "posts.jsonl", POSTS * 4)
    out = tmp_path / "scored.jsonl"
    with_lexicon = ql.load(tiny_model_dir)
    with pytest.raises(KeyboardInterrupt):
        score_file(_interrupt_after(with_lexicon, 1), inp, out, batch_size=4, chunk_rows=4)
    # --no-lexicon: the same name@version, but other evidence and decisions
    with pytest.raises(ResumeError, match="different model"):
        score_file(ql.load(tiny_model_dir, lexicon=False), inp, out, batch_size=4, chunk_rows=4)
    # a retrained or re-tuned copy that kept the name and version
    other = tmp_path / "retuned"
    shutil.copytree(tiny_model_dir, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["thresholds"] = {c: 0.2 for c in cfg["thresholds"]}
    (other / "config.json").write_text(json.dumps(cfg))
    write_manifest(other)
    retuned = ql.load(other)
    assert retuned.name == with_lexicon.name
    with pytest.raises(ResumeError, match="different model"):
        score_file(retuned, inp, out, batch_size=4, chunk_rows=4)
    s = score_file(ql.load(tiny_model_dir), inp, out, batch_size=4, chunk_rows=4)  # the same model continues
    assert s.complete and s.resumed_from == 4 and len(_jsonl(out)) == 12


def _interrupt_after(model, n: int):
    """``model`` itself (so it keeps its identity), raising KeyboardInterrupt on the model call after ``n``."""
    real, left = model.predict_batch, [n]

    def predict_batch(texts, batch_size=64):
        if left[0] <= 0:
            raise KeyboardInterrupt
        left[0] -= 1
        return real(texts, batch_size=batch_size)

    model.predict_batch = predict_batch
    return model


def test_report_on_a_file_that_was_never_scored_is_an_error_not_an_all_clear(tmp_path):
    raw = _write_jsonl(tmp_path / "posts.jsonl", POSTS)  # the input, passed by mistake
    with pytest.raises(ValueError, match=r"posts.jsonl: record 1 .*not a scored record"):
        build_report(raw)
    r = CliRunner().invoke(main, ["report", str(raw), "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 1 and "not a scored record" in r.output and not (tmp_path / "r.html").exists()
    # error rows and scored rows are both scored records
    rep = build_report([{"id": "a", "line": 1, "error": "line 1: invalid JSON"},
                        {"id": "b", "line": 2, "scores": {"fanquan": 0.1, "vulgar": 0.9, "rumor": 0.0},
                         "labels": ["vulgar"], "decision": "block", "evidence": []}])
    assert rep.rows == 2 and rep.errors == 1 and len(rep.queue) == 1


@pytest.mark.parametrize("ext", ["jsonl", "parquet"])
def test_output_in_a_folder_that_does_not_exist_yet(model, tmp_path, ext):
    if ext == "parquet":
        pytest.importorskip("pyarrow", reason="Parquet output needs pyarrow")
    inp = _write_jsonl(tmp_path / "posts.jsonl", POSTS)
    out = tmp_path / "new" / "day-1" / f"scored.{ext}"
    assert score_file(model, inp, out).rows == 3 and len(list(read_scored(out))) == 3


def test_output_that_is_a_folder_is_a_clear_error_and_the_folder_is_kept(model, tmp_path):
    inp = _write_jsonl(tmp_path / "posts.jsonl", POSTS)
    folder = tmp_path / "results"
    (folder / "keep.txt").parent.mkdir()
    (folder / "keep.txt").write_text("别删我", encoding="utf-8")
    for kw in ({}, {"overwrite": True}):
        with pytest.raises(ValueError, match="is a folder"):
            score_file(model, inp, folder, **kw)
    r = CliRunner().invoke(main, ["score", str(inp), "-o", str(folder), "--overwrite", "-m", str(model.path), "-q"])
    assert r.exit_code == 1 and "is a folder" in r.output
    assert (folder / "keep.txt").read_text(encoding="utf-8") == "别删我"


def test_an_empty_text_cell_does_not_hide_title_and_content(model, tmp_path):
    """A mixed export (Weibo rows fill ``text``, WeChat rows ``title``/``content``): CSV has no null, only ''."""
    inp = tmp_path / "mixed.csv"
    with open(inp, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "title", "content"])
        w.writerow(["wb-1", "你这个傻逼，滚远点", "", ""])
        w.writerow(["wx-2", "", "打榜通知", "<p>姐妹们今天打投任务每人五十票</p>"])
        w.writerow(["wx-3", "", "", ""])  # nothing at all: still an (empty) text, scored as documented
    out = tmp_path / "scored.jsonl"
    score_file(model, inp, out, keep_text=True)
    rows = _jsonl(out)
    assert [r["text"] for r in rows] == ["你这个傻逼，滚远点", "打榜通知\n姐妹们今天打投任务每人五十票", ""]
    assert rows[1]["scores"]["fanquan"] > 0.1 and rows[2]["scores"] == {"fanquan": 0.0, "vulgar": 0.0, "rumor": 0.0}
    assert row_text({"text": "", "content": "集资还差三万"}, FieldMap()) == "集资还差三万"
    assert row_text({"text": ""}, FieldMap()) == ""


def test_csv_header_with_a_repeated_column_is_refused(model, tmp_path):
    inp = tmp_path / "dup.csv"
    inp.write_text("id,text,text\n1,你这个傻逼,今天天气不错\n", encoding="utf-8")  # DictReader kept only the last
    with pytest.raises(ValueError, match=r"dup.csv: line 1: column 'text' appears twice"):
        list(iter_rows(inp))
    r = CliRunner().invoke(main, ["score", str(inp), "-o", str(tmp_path / "o.jsonl"), "-m", str(model.path), "-q"])
    assert r.exit_code == 1 and "appears twice" in r.output


def test_csv_quote_never_closed_is_an_error_not_one_row_swallowing_the_rest(model, tmp_path):
    inp = tmp_path / "posts.csv"
    inp.write_text('id,text\n1,你好\n\n2,"打投集资冲冲冲\n3,今天天气不错\n4,你这个傻逼\n', encoding="utf-8")
    rows = list(iter_rows(inp))
    assert rows[0].data == {"id": "1", "text": "你好"}
    assert len(rows) == 2 and rows[1].data is None and rows[1].line == 6
    assert rows[1].error.startswith("line 4: a quoted field is never closed, so line 4 to line 6")
    s = score_file(model, inp, tmp_path / "o.jsonl")
    assert s.rows == 2 and s.errors == 1
    # a quoted field over two lines that closes at the very end of the file (no final newline) is fine
    inp.write_text('id,text\n1,"第一行\n第二行"', encoding="utf-8")
    assert [r.data for r in iter_rows(inp)] == [{"id": "1", "text": "第一行\n第二行"}]


def _strict_json(line: str):
    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(line, parse_constant=refuse)


def test_nan_and_infinity_passthrough_values_keep_the_output_valid_json(model, tmp_path):
    pa = pytest.importorskip("pyarrow", reason="Parquet input needs pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ["a", "b"], "text": ["今天天气不错", "你这个傻逼"],
                             "ctr": [float("nan"), 0.25], "score": [float("inf"), -1.5]}), tmp_path / "in.parquet")
    (tmp_path / "in.jsonl").write_text('{"id": "c", "text": "再见", "x": NaN, "y": [Infinity, 1]}\n', encoding="utf-8")
    for name in ("in.parquet", "in.jsonl"):
        out = tmp_path / f"{name}.scored.jsonl"
        score_file(model, tmp_path / name, out)
        rows = [_strict_json(x) for x in out.read_text(encoding="utf-8").splitlines()]
        assert all("error" not in r for r in rows)
        if name == "in.parquet":
            assert [r["extra"] for r in rows] == [{"ctr": None, "score": None}, {"ctr": 0.25, "score": -1.5}]
        else:
            assert rows[0]["extra"] == {"x": None, "y": [None, 1]}


@pytest.mark.parametrize("depth", [300, 100_000])
def test_deeply_nested_json_is_an_error_row_not_a_crash(model, tmp_path, depth):
    """RecursionError (json.loads at 100 000 levels, the passthrough copy at a few hundred) killed the run."""
    nested = "[" * depth + "]" * depth
    inp = tmp_path / "deep.jsonl"
    inp.write_text('{"id": "a", "text": "你好"}\n'
                   f'{{"id": "deep", "text": "你这个傻逼", "x": {nested}}}\n'
                   '{"id": "c", "text": "今天天气不错"}\n', encoding="utf-8")
    out = tmp_path / "o.jsonl"
    s = score_file(model, inp, out)
    rows = _jsonl(out)
    assert s.rows == 3 and s.errors == 1 and [r["line"] for r in rows] == [1, 2, 3]
    assert "nested" in rows[1]["error"] and "decision" in rows[2]
    if depth < 1000:
        assert rows[1]["id"] == "deep" and "'x'" in rows[1]["error"]


def test_report_never_writes_over_the_scored_file_or_one_of_its_own_outputs(model, tmp_path):
    scored = tmp_path / "scored.jsonl"
    score_file(model, _write_jsonl(tmp_path / "posts.jsonl", POSTS), scored)
    before = scored.read_bytes()
    for args in (["-o", str(scored)],  # hours of scoring replaced by an HTML page
                 ["-o", str(tmp_path / "r.html"), "--queue", str(scored)],
                 ["-o", str(tmp_path / "r.md")],  # the Markdown report (default OUTPUT with .md) replaced the HTML
                 ["-o", str(tmp_path / "r.html"), "--queue", str(tmp_path / "r.html")]):
        r = CliRunner().invoke(main, ["report", str(scored), *args])
        assert r.exit_code == 1 and "same file" in r.output, (args, r.output)
    assert scored.read_bytes() == before
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "r.md").exists()
    r = CliRunner().invoke(main, ["report", str(scored), "-o", str(tmp_path / "r.md"), "--no-markdown"])
    assert r.exit_code == 0 and (tmp_path / "r.md").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_a_mapped_field_that_is_not_a_column_is_a_clear_error(model, tmp_path):
    """A typo in --content-field scored every WeChat post on its title alone, without a word."""
    inp = tmp_path / "wechat.csv"
    with open(inp, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["文章ID", "标题", "正文"])
        w.writerow(["a1", "打榜通知", "姐妹们今天打投任务每人五十票，完不成别说是粉丝"])
    with pytest.raises(ValueError, match=r"'内容' \(--content-field\) is not a column of .*wechat.csv"):
        score_file(model, inp, tmp_path / "o.jsonl", FieldMap(id="文章ID", title="标题", content="内容"))
    r = CliRunner().invoke(main, ["score", str(inp), "-o", str(tmp_path / "c.jsonl"), "-m", str(model.path), "-q",
                                  "--id-field", "文章ID", "--title-field", "标题", "--content-field", "内容"])
    assert r.exit_code == 1 and "'内容' (--content-field) is not a column" in r.output and "正文" in r.output
    # the right mapping works; default names that a file lacks (here: text, account, url) are fine
    s = score_file(model, inp, tmp_path / "ok.jsonl", FieldMap(id="文章ID", title="标题", content="正文"),
                   keep_text=True)
    assert s.errors == 0 and _jsonl(tmp_path / "ok.jsonl")[0]["text"].endswith("完不成别说是粉丝")
    pa = pytest.importorskip("pyarrow", reason="Parquet input needs pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"mid": ["1"], "weibo_text": ["你这个傻逼"]}), tmp_path / "weibo.parquet")
    with pytest.raises(ValueError, match=r"'wb_text' \(--text-field\) is not a column"):
        score_file(model, tmp_path / "weibo.parquet", tmp_path / "w.jsonl", FieldMap(id="mid", text="wb_text"))


def test_rows_without_an_id_are_reported_on_the_terminal(model, tmp_path):
    """A JSONL file has no header to check --id-field against: the summary line is where a typo shows."""
    inp = _write_jsonl(tmp_path / "posts.jsonl", POSTS)
    r = CliRunner().invoke(main, ["score", str(inp), "-o", str(tmp_path / "o.jsonl"), "-m", str(model.path),
                                  "--id-field", "mid"])
    assert r.exit_code == 0 and "3 rows without id" in r.output
    r = CliRunner().invoke(main, ["score", str(inp), "-o", str(tmp_path / "p.jsonl"), "-m", str(model.path)])
    assert r.exit_code == 0 and "without id" not in r.output


def test_report_on_an_interrupted_run_reads_the_committed_rows_and_says_it_is_incomplete(model, tmp_path):
    inp = _write_jsonl(tmp_path / "posts.jsonl", POSTS * 10)
    out = tmp_path / "scored.jsonl"
    with pytest.raises(KeyboardInterrupt):
        score_file(_CrashAfter(model, 2), inp, out, batch_size=4, chunk_rows=4)
    with open(out, "ab") as f:
        f.write(b'{"id": "wb-2", "line": 9, "sco')  # a chunk cut off by the crash, past the committed bytes
    committed = json.loads(state_path(out).read_text())["rows"]
    assert len(list(read_scored(out))) == committed == 8
    rep = build_report(out)
    assert rep.rows == committed and rep.incomplete and "8 rows" in rep.incomplete
    r = CliRunner().invoke(main, ["report", str(out), "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 0 and "incomplete" in r.output
    assert "incomplete" in (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "incomplete" in (tmp_path / "r.md").read_text(encoding="utf-8")
    score_file(model, inp, out, batch_size=4, chunk_rows=4)  # finished: a full report, no warning
    rep = build_report(out)
    assert rep.rows == 30 and rep.incomplete is None


def test_an_unreadable_input_leaves_no_partial_output_that_blocks_the_rerun(model, tmp_path):
    inp = tmp_path / "posts.csv"
    inp.write_bytes("id,文本\n1,你好\n".encode("gbk"))  # a GBK header: refused as a whole file
    out = tmp_path / "scored.jsonl"
    with pytest.raises(ValueError, match="header is not valid UTF-8"):
        score_file(model, inp, out)
    assert not out.exists() and not state_path(out).exists()
    inp.write_text("id,文本\n1,你好\n", encoding="utf-8")  # converted: the same command now just works
    assert score_file(model, inp, out, FieldMap(text="文本")).rows == 1


@pytest.mark.parametrize("doc", [POSTS, {"data": POSTS}])
def test_a_pretty_printed_json_file_is_refused_not_scored_line_by_line(model, tmp_path, doc):
    """Every line of an indented .json file ('[', '  {', '"id": ...,') became an 'invalid JSON' error row."""
    inp = tmp_path / "posts.json"
    inp.write_text("\ufeff\n" + json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    out = tmp_path / "scored.jsonl"
    with pytest.raises(ValueError, match=r"posts.json: line 2: .*not JSON Lines .*jq -c"):
        score_file(model, inp, out)
    assert not out.exists()
    # one object per line is JSON Lines, whatever the extension
    _write_jsonl(inp, POSTS)
    assert score_file(model, inp, out).rows == 3


def test_a_second_run_on_the_same_output_is_refused_while_the_first_writes(model, tmp_path):
    """Two `qinglang score` runs on one output (a cron job overlapping itself) appended 39k rows for 20k posts."""
    inp = _write_jsonl(tmp_path / "posts.jsonl", POSTS * 10)
    out = tmp_path / "scored.jsonl"
    refused = []

    class FirstRun:  # the model of the first run starts a second run on the same output mid-way
        name = model.name

        def prepare(self, text, index=None):
            return model.prepare(text, index)

        def predict_batch(self, texts, batch_size=64):
            if not refused:
                with pytest.raises(ValueError, match="being written by another qinglang score run") as e:
                    score_file(model, inp, out, batch_size=4, chunk_rows=4)
                refused.append(str(e.value))
            return model.predict_batch(texts, batch_size=batch_size)

    s = score_file(FirstRun(), inp, out, batch_size=4, chunk_rows=4)
    assert refused and s.rows == 30 and [r["line"] for r in _jsonl(out)] == list(range(1, 31))
    assert not Path(f"{out}.lock").exists()
    assert score_file(model, inp, out).complete  # the lock is gone with the run


def test_os_errors_are_a_message_not_a_traceback(model, tmp_path):
    """An output under a regular file (or a full disk, a read-only folder): one clear line, exit code 1."""
    inp = _write_jsonl(tmp_path / "posts.jsonl", POSTS)
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("x")
    r = CliRunner().invoke(main, ["score", str(inp), "-o", str(not_a_folder / "o.jsonl"), "-m", str(model.path), "-q"])
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit) and "notes.txt" in r.output
    score_file(model, inp, tmp_path / "s.jsonl")
    r = CliRunner().invoke(main, ["report", str(tmp_path / "s.jsonl"), "-o", str(not_a_folder / "r.html")])
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit) and "notes.txt" in r.output


def test_jsonl_concatenated_from_files_with_a_bom_each(model, tmp_path):
    """`cat a.jsonl b.jsonl` of two Windows exports: b's BOM used to make its first row 'invalid JSON'."""
    part = "\ufeff" + "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in POSTS[:2])
    inp = tmp_path / "all.jsonl"
    inp.write_text(part + part, encoding="utf-8")
    s = score_file(model, inp, tmp_path / "o.jsonl")
    assert s.rows == 4 and s.errors == 0 and s.duplicates == 2


def test_a_pipe_as_input_is_a_clear_error(model, tmp_path):
    """`qinglang score <(zcat posts.jsonl.gz)`: 'File or stream is not seekable.' named neither file nor fix."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    fifo = tmp_path / "posts.jsonl"
    os.mkfifo(fifo)
    for out in (tmp_path / "o.jsonl", io.StringIO()):
        with pytest.raises(ValueError, match=r"posts.jsonl is not a regular file .*decompress"):
            score_file(model, fifo, out)
    assert not (tmp_path / "o.jsonl").exists()


def test_resume_notices_an_edit_near_the_end_of_a_1_to_2_mib_input(model, tmp_path):
    """The fingerprint hashed the first MiB and, only past 2 MiB, the last: the tail of a 1.5 MiB file was unseen."""
    rows = [dict(POSTS[i % 3], id=f"p{i:05d}") for i in range(15000)]
    inp = _write_jsonl(tmp_path / "posts.jsonl", rows)
    assert 1 << 20 < inp.stat().st_size <= 2 << 20
    out = tmp_path / "scored.jsonl"
    with pytest.raises(KeyboardInterrupt):
        score_file(_CrashAfter(model, 1), inp, out, batch_size=64, chunk_rows=64)
    data = inp.read_bytes()
    inp.write_bytes(data[:-200] + data[-200:].replace("傻逼".encode(), "笨蛋".encode()))  # same size
    assert inp.stat().st_size == len(data) and inp.read_bytes() != data
    with pytest.raises(ResumeError, match="different input"):
        score_file(model, inp, out, batch_size=64, chunk_rows=64)


def test_overwrite_that_is_interrupted_leaves_no_summary_of_the_old_run(model, tmp_path, monkeypatch):
    inp = _write_jsonl(tmp_path / "posts.jsonl", POSTS * 10)
    out = tmp_path / "scored.jsonl"
    args = ["score", str(inp), "-o", str(out), "-m", str(model.path), "-q", "--no-lexicon", "--batch-size", "4",
            "--chunk-rows", "4"]
    assert CliRunner().invoke(main, args).exit_code == 0
    summary = Path(f"{out}.summary.json")
    assert json.loads(summary.read_text())["complete"] is True
    _ctrl_c_after(monkeypatch, 2)
    r = CliRunner().invoke(main, [*args, "--overwrite"])
    assert r.exit_code == 1 and "interrupted" in r.output
    assert not summary.exists()  # it said complete: true, with the old run's counts, beside a partial output


def test_rerunning_a_finished_job_keeps_its_duplicate_and_missing_id_counts(model, tmp_path):
    inp = _write_jsonl(tmp_path / "posts.jsonl", [*POSTS, POSTS[0], {"text": "没有 id 的评论"}])
    out = tmp_path / "scored.jsonl"
    args = ["score", str(inp), "-o", str(out), "-m", str(model.path), "--no-lexicon"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0 and "1 duplicate ids, 1 rows without id" in first.output
    again = CliRunner().invoke(main, args)  # the same command again: "already complete"
    assert again.exit_code == 0 and "already complete" in again.output
    assert "1 duplicate ids, 1 rows without id" in again.output and "'wb-1': line 4" in again.output
    summary = json.loads(Path(f"{out}.summary.json").read_text())
    assert summary["duplicates"] == 1 and summary["missing_ids"] == 1 and summary["rows"] == 5
    assert summary["duplicate_examples"] == [{"id": "wb-1", "first_line": 1, "line": 4}]


@pytest.mark.parametrize("kind", ["gzip", "zip", "utf-16"])
def test_compressed_or_utf16_input_is_named_as_such(model, tmp_path, kind):
    """A .jsonl.gz passed with --format jsonl (or Excel's UTF-16 'Unicode text') gave one 'invalid UTF-8 (is the
    file GB18030/GBK?)' error row per line."""
    import gzip
    import zipfile

    text = "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in POSTS)
    inp = tmp_path / "posts.jsonl"
    if kind == "gzip":
        inp.write_bytes(gzip.compress(text.encode()))
    elif kind == "zip":
        with zipfile.ZipFile(inp, "w") as z:
            z.writestr("posts.jsonl", text)
    else:
        inp.write_text(text, encoding="utf-16")
    for fmt in ("jsonl", "csv"):
        with pytest.raises(ValueError, match=rf"posts.jsonl is {kind.upper()}"):
            score_file(model, inp, tmp_path / f"o-{fmt}.jsonl", fmt=fmt)
    assert not (tmp_path / "o-jsonl.jsonl").exists()


def _ctrl_c_after(monkeypatch, n: int) -> None:
    """Every ``Moderator`` raises KeyboardInterrupt on its model call after ``n`` (Ctrl-C during a CLI run)."""
    from qinglang_nlp import moderator

    real, calls = moderator.Moderator.predict_batch, []

    def interrupted(self, texts, batch_size=64):
        calls.append(1)
        if len(calls) > n:
            raise KeyboardInterrupt
        return real(self, texts, batch_size=batch_size)

    monkeypatch.setattr(moderator.Moderator, "predict_batch", interrupted)


def test_ctrl_c_with_stdout_output_does_not_promise_a_resume(model, tmp_path, monkeypatch):
    inp = _write_jsonl(tmp_path / "posts.jsonl", POSTS * 10)
    _ctrl_c_after(monkeypatch, 1)
    r = CliRunner().invoke(main, ["score", str(inp), "-m", str(model.path), "-q", "--no-lexicon", "--batch-size", "4"])
    assert r.exit_code == 1 and "interrupted" in r.output
    assert "rerun the same command to continue" not in r.output and "not resumable" in r.output


def test_parquet_with_a_repeated_column_name_is_refused(model, tmp_path):
    pa = pytest.importorskip("pyarrow", reason="Parquet input needs pyarrow")
    import pyarrow.parquet as pq

    t = pa.Table.from_arrays([pa.array(["1"]), pa.array(["你这个傻逼"]), pa.array(["今天天气不错"])],
                             names=["id", "text", "text"])
    pq.write_table(t, tmp_path / "dup.parquet")  # to_pylist() kept the last 'text' and dropped the first
    with pytest.raises(ValueError, match=r"dup.parquet: column 'text' appears twice"):
        score_file(model, tmp_path / "dup.parquet", tmp_path / "o.jsonl")


@pytest.mark.parametrize("ext", ["jsonl", "parquet"])
def test_lone_surrogates_in_passthrough_fields_do_not_kill_the_run(model, tmp_path, ext):
    """A crawler that cut an emoji in half: '\\ud83d' in a nickname made every commit (and every resume) crash."""
    if ext == "parquet":
        pytest.importorskip("pyarrow", reason="Parquet output needs pyarrow")
    inp = tmp_path / "posts.jsonl"
    inp.write_text('{"id": "a", "text": "今天天气不错"}\n'
                   '{"id": "b\\ud83d", "account": "小可爱\\ud83d", "text": "你这个傻逼", "昵称\\udc00": ["\\ud83d"]}\n'
                   '{"id": "b\\ud83d", "text": "\\ud83d"}\n', encoding="utf-8")
    out = tmp_path / f"scored.{ext}"
    s = score_file(model, inp, out)
    rows = list(read_scored(out))
    assert s.rows == 3 and s.errors == 1 and [r["line"] for r in rows] == [1, 2, 3]
    assert rows[1]["account"] == "小可爱\ufffd" and rows[1]["extra"] == {"昵称\ufffd": ["\ufffd"]}
    assert "decision" in rows[1] and "lone surrogate" in rows[2]["error"]  # the text itself: an error row
    assert s.duplicates == 1 and s.duplicate_examples[0]["id"] == "b\ufffd"
    json.dumps(s.to_dict(), ensure_ascii=False).encode("utf-8")  # summary.json can be written


class _Poisoned(_CrashAfter):
    """The real model, but it fails on any batch holding ``poison`` (or on everything when ``poison`` is '')."""

    def __init__(self, model, poison: str):
        super().__init__(model, 0)
        self.poison = poison

    def predict_batch(self, texts, batch_size=64):
        if any(self.poison in t for t in texts):
            raise RuntimeError("ONNXRuntimeError: invalid input")
        return self.m.predict_batch(texts, batch_size=batch_size)


def test_a_text_the_model_fails_on_is_an_error_row_not_a_crash_loop(model, tmp_path):
    """One poison post crashed the job, and every resume sent the same batch again: the job could never finish."""
    posts = [dict(POSTS[i % 3], id=f"p{i}") for i in range(10)]
    posts[5] = {"id": "p5", "text": "毒药帖子"}
    inp = _write_jsonl(tmp_path / "posts.jsonl", posts)
    score_file(model, inp, tmp_path / "ref.jsonl", batch_size=4)
    s = score_file(_Poisoned(model, "毒药"), inp, tmp_path / "o.jsonl", batch_size=4)
    got, ref = _jsonl(tmp_path / "o.jsonl"), _jsonl(tmp_path / "ref.jsonl")
    assert s.complete and s.rows == 10 and s.errors == 1 and [r["line"] for r in got] == list(range(1, 11))
    assert got[5]["id"] == "p5" and "the model failed on this row (RuntimeError: ONNXRuntimeError" in got[5]["error"]
    assert got[:5] + got[6:] == ref[:5] + ref[6:]  # the rest of the batch is scored as usual
    # a model that fails on everything is broken, not the rows: the run stops, nothing is written as an error
    with pytest.raises(RuntimeError, match="ONNXRuntimeError"):
        score_file(_Poisoned(model, ""), inp, tmp_path / "broken.jsonl", batch_size=4)
    assert _jsonl(tmp_path / "broken.jsonl") == []
