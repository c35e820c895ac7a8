"""Batch scoring: schema mapping, HTML, malformed rows, duplicate ids, crash-safe resume, Parquet, cascade."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import qinglang_nlp as ql
from qinglang_nlp.batch import FieldMap, ResumeError, read_scored, score_file, state_path
from qinglang_nlp.cli import main

ROOT = Path(__file__).resolve().parents[1]

POSTS = [
    {"id": "wx-001", "account": "偶像指数榜", "title": "本周榜单冲刺",
     "content": "<p>姐妹们今天打投任务每人五十票，<b>完不成别说是粉丝</b></p><p>集资还差三万&amp;冲冲冲</p>",
     "url": "https://mp.example/s/1", "published_at": "2026-11-01T20:00:00", "read_count": 10234},
    {"id": "wx-002", "account": "为爱签个到", "title": "签到第128天", "content": "轮博做数据，超话签到不能断",
     "url": "https://mp.example/s/2", "published_at": "2026-11-02"},
    {"id": "wb-003", "account": "路人甲", "text": "今天天气不错，适合出去走走。"},
    {"id": "wb-004", "account": "路人乙", "text": "你这个傻逼，滚远点", "likes": 3},
    {"id": "wb-005", "account": "辟谣小组", "text": "【紧急扩散】某地自来水有毒，千万别喝！"},
]


def _many(n: int) -> list[dict]:
    """``n`` posts cycling through ``POSTS`` with unique ids."""
    out = []
    for i in range(n):
        p = dict(POSTS[i % len(POSTS)])
        p["id"] = f"{p['id']}-{i}"
        out.append(p)
    return out


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture()
def model(tiny_model_dir):
    return ql.load(tiny_model_dir, lexicon=False)


def test_schema_mapping_and_passthrough(model, tmp_path):
    inp = tmp_path / "posts.csv"
    with open(inp, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["文章ID", "公众号", "标题", "正文", "链接", "发布时间", "阅读数"])
        w.writerow(["a1", "偶像指数榜", "打榜通知", "今晚周榜最后冲刺，小号全部登上来打投", "u1", "2026-11-01", "999"])
        w.writerow(["a2", "生活小记", "晚饭", "晚饭吃了面条，很满足", "u2", "2026-11-02", "12"])
    fields = FieldMap(id="文章ID", account="公众号", title="标题", content="正文", url="链接",
                      published_at="发布时间")
    out = tmp_path / "out.jsonl"
    s = score_file(model, inp, out, fields, keep_text=True)
    rows = _jsonl(out)
    assert s.rows == 2 and s.errors == 0 and s.complete
    assert [r["id"] for r in rows] == ["a1", "a2"]
    assert rows[0]["account"] == "偶像指数榜" and rows[0]["url"] == "u1" and rows[0]["published_at"] == "2026-11-01"
    assert rows[0]["title"] == "打榜通知"
    assert rows[0]["extra"] == {"阅读数": "999"}  # unmapped fields pass through untouched
    assert rows[0]["text"] == "打榜通知\n今晚周榜最后冲刺，小号全部登上来打投"
    assert rows[0]["model"] == model.name and set(rows[0]["scores"]) == {"fanquan", "vulgar", "rumor"}


def test_html_content_is_cleaned_and_evidence_offsets_point_into_cleaned_text(tiny_model_dir, tmp_path):
    m = ql.load(tiny_model_dir)  # with the bundled lexicon: evidence spans
    inp = _write_jsonl(tmp_path / "in.jsonl", [POSTS[0], {"id": "x", "content": "<script>alert(1)</script>"
                                                            "<section>控评了控评了，热评前十必须都是我们的</section>"}])
    out = tmp_path / "out.jsonl"
    score_file(m, inp, out, keep_text=True)
    r0, r1 = _jsonl(out)
    assert "<p>" not in r0["text"] and "&amp;" not in r0["text"] and "集资还差三万&冲冲冲" in r0["text"]
    assert "alert" not in r1["text"] and "<section>" not in r1["text"]
    assert r0["extra"] == {"read_count": 10234}
    spans = r0["evidence"] + r1["evidence"]
    assert spans, "the lexicon should find 打投/集资/控评"
    for r in (r0, r1):
        for sp in r["evidence"]:
            assert r["text"][sp["start"]:sp["end"]] == sp["text"]


def test_malformed_rows_each_yield_one_error_row_in_order(model, tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b"".join([
        json.dumps(POSTS[2], ensure_ascii=False).encode() + b"\n",
        b"{broken json\n",
        b"\n",  # blank lines are not rows
        b'{"id": "n1", "text": null}\n',
        b'{"id": "n2", "text": ["list"]}\n',
        b'{"id": "bad-utf8", "text": "\xd6\xd0\xce\xc4"}\n',  # GBK bytes
        b'"just a string"\n',
        json.dumps(POSTS[3], ensure_ascii=False).encode() + b"\n",
    ]))
    out = tmp_path / "out.jsonl"
    s = score_file(model, inp, out)
    rows = _jsonl(out)
    assert [r["line"] for r in rows] == [1, 2, 4, 5, 6, 7, 8]
    assert s.rows == 7 and s.errors == 5
    err = {r["line"]: r["error"] for r in rows if "error" in r}
    assert "invalid JSON" in err[2] and "no 'text'" in err[4] and "not text" in err[5]
    assert "invalid UTF-8" in err[6] and "expected a JSON object" in err[7]
    assert rows[2]["id"] == "n1" and rows[3]["id"] == "n2"  # an error row keeps the id when there is one
    assert rows[-1]["id"] == "wb-004" and "decision" in rows[-1]


def test_csv_bad_row_does_not_sink_the_file(model, tmp_path):
    inp = tmp_path / "in.csv"
    inp.write_bytes("id,text\n1,你好\n".encode() + b"2,\xc4\xe3\xba\xc3\n" + "3,再见\n4,多,一列\n".encode())
    rows = list(read_scored(_score_to(model, inp, tmp_path / "o.jsonl")))
    assert [r.get("id") for r in rows] == ["1", None, "3", None]
    assert "invalid UTF-8" in rows[1]["error"] and "more cells" in rows[3]["error"]


def _score_to(model, inp, out, **kw):
    score_file(model, inp, out, **kw)
    return out


def test_duplicate_ids_are_reported_not_merged(model, tmp_path):
    rows = [POSTS[2], POSTS[3], dict(POSTS[2], text="同一个 id 的另一条"), POSTS[4], POSTS[2]]
    inp = _write_jsonl(tmp_path / "in.jsonl", rows)
    s = score_file(model, inp, tmp_path / "o.jsonl")
    assert s.rows == 5 and len(_jsonl(tmp_path / "o.jsonl")) == 5
    assert s.duplicates == 2
    assert s.duplicate_examples == [{"id": "wb-003", "first_line": 1, "line": 3},
                                    {"id": "wb-003", "first_line": 1, "line": 5}]
    r = CliRunner().invoke(main, ["score", str(inp), "-o", str(tmp_path / "c.jsonl"), "-m",
                                  str(model.path), "--no-lexicon"])
    assert r.exit_code == 0 and "2 duplicate ids" in r.output and "'wb-003': line 3" in r.output
    summary = json.loads((tmp_path / "c.jsonl.summary.json").read_text())
    assert summary["duplicates"] == 2 and summary["rows"] == 5


class _CrashAfter:
    """The real model, but raises after ``n`` batches (a Ctrl-C in the middle of a run)."""

    def __init__(self, model, n: int):
        self.m, self.n, self.name = model, n, model.name

    def prepare(self, text, index=None):
        return self.m.prepare(text, index)

    def predict_batch(self, texts, batch_size=64):
        if self.n <= 0:
            raise KeyboardInterrupt
        self.n -= 1
        return self.m.predict_batch(texts, batch_size=batch_size)


@pytest.mark.parametrize("ext", ["jsonl", "parquet"])
def test_resume_after_interruption_loses_and_duplicates_nothing(model, tmp_path, ext):
    if ext == "parquet":
        pytest.importorskip("pyarrow", reason="Parquet output needs pyarrow")
    posts = _many(230)
    posts.insert(57, "{oops")  # a malformed row in the middle
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join((p if isinstance(p, str) else json.dumps(p, ensure_ascii=False)) + "\n"
                           for p in posts), encoding="utf-8")
    ref = tmp_path / f"ref.{ext}"
    score_file(model, inp, ref, batch_size=8, chunk_rows=20)
    out = tmp_path / f"out.{ext}"
    for n in (3, 4, 5):  # three interruptions at different points
        with pytest.raises(KeyboardInterrupt):
            score_file(_CrashAfter(model, n), inp, out, batch_size=8, chunk_rows=20)
        st = json.loads(state_path(out).read_text())
        assert not st["complete"] and st["rows"] >= 20
        if ext == "jsonl":  # a chunk half-written after the last commit
            with open(out, "ab") as f:
                f.write(b'{"id": "half-written')
    s = score_file(model, inp, out, batch_size=8, chunk_rows=20)
    assert s.complete and s.resumed_from > 0 and s.rows == 231 and s.errors == 1
    got, want = list(read_scored(out)), list(read_scored(ref))
    assert got == want
    assert [r["line"] for r in got] == list(range(1, 232))
    again = score_file(model, inp, out)  # already complete: nothing rescored
    assert again.complete and again.resumed_from == 231


class _BatchDependent:
    """Scores that depend on the other texts of the batch (as dynamic int8 quantisation does)."""

    def __init__(self, model, crash_after: int | None = None):
        self.m, self.name, self.left = model, "batch-dependent@0", crash_after

    def prepare(self, text, index=None):
        return self.m.prepare(text, index)

    def predict_batch(self, texts, batch_size=64):
        if self.left is not None:
            if self.left <= 0:
                raise KeyboardInterrupt
            self.left -= 1
        out = self.m.predict_batch(texts, batch_size=batch_size)
        shift = 0.001 * (sum(map(len, texts)) % 97) / 97
        for r in out:
            r.scores = {c: round(v * (1 - shift), 6) for c, v in r.scores.items()}
        return out


def test_resume_sends_the_same_batches_as_an_uninterrupted_run(model, tmp_path):
    posts = _many(150)
    posts.insert(31, "{oops")
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join((p if isinstance(p, str) else json.dumps(p, ensure_ascii=False)) + "\n"
                           for p in posts), encoding="utf-8")
    score_file(_BatchDependent(model), inp, tmp_path / "ref.jsonl", batch_size=7, chunk_rows=10)
    for n in (2, 5, 9):
        with pytest.raises(KeyboardInterrupt):
            score_file(_BatchDependent(model, n), inp, tmp_path / "out.jsonl", batch_size=7, chunk_rows=10)
    score_file(_BatchDependent(model), inp, tmp_path / "out.jsonl", batch_size=7, chunk_rows=10)
    assert (tmp_path / "out.jsonl").read_bytes() == (tmp_path / "ref.jsonl").read_bytes()


def test_resume_refuses_other_model_or_input_and_overwrite_starts_over(tiny_model_dir, model, tmp_path):
    inp = _write_jsonl(tmp_path / "in.jsonl", _many(40))
    out = tmp_path / "o.jsonl"
    with pytest.raises(KeyboardInterrupt):
        score_file(_CrashAfter(model, 1), inp, out, batch_size=8, chunk_rows=8)
    other = ql.load(_second_model(tiny_model_dir, tmp_path), lexicon=False)
    with pytest.raises(ResumeError, match="different model"):
        score_file(other, inp, out)
    _write_jsonl(inp, _many(41))
    with pytest.raises(ResumeError, match="different input"):
        score_file(model, inp, out)
    s = score_file(model, inp, out, overwrite=True)
    assert s.resumed_from == 0 and len(_jsonl(out)) == 41
    (tmp_path / "plain.jsonl").write_text("old\n")
    with pytest.raises(ResumeError, match="no resume state"):
        score_file(model, inp, tmp_path / "plain.jsonl")


def test_parquet_input_and_output_round_trip(model, tmp_path):
    pa = pytest.importorskip("pyarrow", reason="Parquet needs pyarrow")
    import datetime as dt

    import pyarrow.parquet as pq

    rows = _many(12)
    tbl = pa.table({"id": [r["id"] for r in rows], "account": [r["account"] for r in rows],
                    "text": [r.get("text") or r["title"] + "：" + r["content"] for r in rows],
                    "published_at": [dt.datetime(2026, 11, 1, 8, i) for i in range(12)],
                    "shares": list(range(12))})
    pq.write_table(tbl, tmp_path / "in.parquet", row_group_size=5)
    s = score_file(model, tmp_path / "in.parquet", tmp_path / "o.parquet")
    got = list(read_scored(tmp_path / "o.parquet"))
    assert s.rows == 12 and [r["line"] for r in got] == list(range(1, 13))
    assert got[3]["published_at"] == "2026-11-01T08:03:00" and got[3]["extra"] == {"shares": 3}
    assert not (tmp_path / "o.parquet.parts").exists()
    score_file(model, tmp_path / "in.parquet", tmp_path / "o.jsonl")
    assert list(read_scored(tmp_path / "o.jsonl")) == got


def _second_model(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """Another model folder: the tiny model renamed, with lower thresholds (flags more)."""
    from qinglang_nlp.modelio import write_manifest

    d = tmp_path / "second"
    shutil.copytree(tiny_model_dir, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["name"] = "tiny-second"
    cfg["thresholds"] = {c: 0.4 for c in cfg["thresholds"]}
    cfg["decision"]["review"] = {c: 0.4 for c in cfg["thresholds"]}
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "manifest.json").unlink()
    write_manifest(d)
    return d


def test_cascade_sends_only_candidates_and_keeps_calibrated_recall(tiny_model_dir, tmp_path):
    from qinglang_nlp.cascade import Cascade, calibrate, measure

    first = ql.load(tiny_model_dir)
    second = ql.load(_second_model(tiny_model_dir, tmp_path))
    dev = [p.get("text") or p["content"] for p in POSTS] + [
        "今天的晚霞真好看", "新歌上线了，旋律很抓耳", "谢谢你的帮助，祝你生活愉快", "控评了控评了，热评前十必须都是我们的",
        "网传某超市食品含有塑料，已经有人中毒", "去你妈的，恶心死了", "市气象台发布大风蓝色预警，请注意出行安全"]
    cfg = calibrate(first, second, dev, target_recall=1.0)
    assert cfg["kind"] == "cascade" and set(cfg["cutoffs"]) == {"fanquan", "vulgar", "rumor"}
    for c, st in cfg["dev"]["categories"].items():
        if st["second_flagged"]:
            assert st["dev_recall"] == 1.0, (c, st)
    cas = Cascade(first, second, cfg["cutoffs"], cfg["lexicon_gate"])
    staged = cas.predict_staged(dev)
    full = second.predict_batch(dev)
    for (r, stage), f in zip(staged, full):
        if stage == 2:
            assert r.to_dict() == f.to_dict()
        else:
            assert r.decision == "pass" and r.labels == [] and r.model == first.name
    m = measure(cas, dev)
    assert m["recall_all"] == 1.0  # measured on the dev set itself, where recall 1.0 was asked for
    # the CLI with a cascade file: a stage column, and second-stage rows equal the second model's rows
    (tmp_path / "cascade.json").write_text(json.dumps({**cfg, "first": str(tiny_model_dir)}))
    inp = _write_jsonl(tmp_path / "in.jsonl", [{"id": str(i), "text": t} for i, t in enumerate(dev)])
    r = CliRunner().invoke(main, ["score", str(inp), "-o", str(tmp_path / "o.jsonl"), "-m",
                                  str(second.path), "--cascade", str(tmp_path / "cascade.json"), "-q"])
    assert r.exit_code == 0, r.output
    rows = _jsonl(tmp_path / "o.jsonl")
    assert [x["stage"] for x in rows] == [s for _, s in staged]
    assert 1 in {x["stage"] for x in rows} and 2 in {x["stage"] for x in rows}


def test_cascade_calibration_cutoff_meets_the_target_on_skewed_scores():
    import numpy as np

    from qinglang_nlp.cascade import _cutoff_for_recall

    s = np.linspace(0.01, 1.0, 100)
    gated = np.zeros(100, dtype=bool)
    t = _cutoff_for_recall(s, gated, 0.9)
    assert (s >= t).mean() >= 0.9 and (s >= t + 1e-9).mean() < 0.9
    gated[:50] = True  # the lowest half are lexicon hits: the score cut-off can be much higher
    t2 = _cutoff_for_recall(s, gated, 0.9)
    assert t2 > t and ((s >= t2) | gated).mean() >= 0.9


def test_kill_test_three_sigkills(tiny_model_dir, tmp_path):
    """SIGKILL the scorer at random points 3 times, rerun, and compare (20 kills: benchmarks/kill_test.py)."""
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "kill_test.py"), "--kills", "3", "--rows", "600",
                        "--workdir", str(tmp_path), "--seed", "7", "-m", str(tiny_model_dir)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["ok"] and res["kills"] == 3 and res["rows"] == 600


def test_shards_read_back_the_whole_file_with_the_same_lines(tmp_path):
    """The Ray engine's shards, read in order, are exactly the file's rows (JSONL byte ranges, Parquet groups)."""
    from qinglang_nlp.io import iter_rows, iter_shard, plan_shards

    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b"\xef\xbb\xbf" + "\n".join(
        ["{bad"] + [json.dumps(p, ensure_ascii=False) for p in _many(40)] + [""] * 2 + ['{"id": "last", "text": "再见"}']
    ).encode() + b"\n\n")
    whole = list(iter_rows(inp))
    for n in (1, 7, 1000):
        shards = plan_shards(inp, rows_per_shard=n)
        assert len(shards) == (1 if n == 1000 else -(-45 // n))  # 45 physical lines
        assert [r for s in shards for r in iter_shard(s)] == whole
    pa = pytest.importorskip("pyarrow", reason="Parquet needs pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": [str(i) for i in range(23)], "text": ["打投"] * 23}), tmp_path / "in.parquet",
                   row_group_size=5)
    whole = list(iter_rows(tmp_path / "in.parquet"))
    shards = plan_shards(tmp_path / "in.parquet", rows_per_shard=9)
    assert [s.first for s in shards] == [1, 11, 21]
    assert [r for s in shards for r in iter_shard(s)] == whole and whole[-1].line == 23
