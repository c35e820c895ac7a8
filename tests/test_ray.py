"""Ray engine in local mode gives exactly the local engine's rows (skipped where Ray is not installed)."""
from __future__ import annotations

import json

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray[data]'): Ray engine not tested")
pytest.importorskip("pyarrow", reason="the Ray engine writes Parquet: needs pyarrow")

import qinglang_nlp as ql  # noqa: E402
from qinglang_nlp.batch import read_scored, score_file  # noqa: E402
from qinglang_nlp.ray_engine import score_ray  # noqa: E402

TEXTS = ["姐妹们今天打投任务每人五十票，完不成别说是粉丝", "今天天气不错，适合出去走走。", "你这个傻逼，滚远点",
         "【紧急扩散】某地自来水有毒，千万别喝！", "控评了控评了，热评前十必须都是我们的", "新歌上线了，旋律很抓耳"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_local_mode_equals_local_engine(local_ray, tiny_model_dir, tmp_path):
    lines = []
    for i in range(60):
        if i == 17:
            lines.append("{not json")
        elif i % 10 == 3:
            lines.append(json.dumps({"id": f"h{i}", "account": "偶像指数榜", "title": "打榜",
                                     "content": f"<p>{TEXTS[i % 6]}</p><script>x()</script>"}, ensure_ascii=False))
        else:
            lines.append(json.dumps({"id": f"t{i % 50}", "account": f"号{i % 4}", "text": TEXTS[i % 6],
                                     "likes": i}, ensure_ascii=False))
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    m = ql.load(tiny_model_dir)
    local = score_file(m, inp, tmp_path / "local.parquet", batch_size=8)
    summ = score_ray(inp, tmp_path / "ray_out", str(tiny_model_dir), workers=2, batch_size=8, rows_per_shard=13)
    got = sorted(read_scored(tmp_path / "ray_out"), key=lambda r: r["line"])
    want = list(read_scored(tmp_path / "local.parquet"))
    assert len(got) == 60 and got == want
    assert (summ.rows, summ.errors, summ.flagged, summ.duplicates) == \
        (local.rows, local.errors, local.flagged, local.duplicates) == (60, 1, local.flagged, 9)

    with pytest.raises(ValueError, match="not empty"):
        score_ray(inp, tmp_path / "ray_out", str(tiny_model_dir))


def test_ray_refuses_a_mapped_field_missing_from_the_header(tmp_path):
    """A mistyped --content-field is an error before Ray starts, as in the local engine."""
    from qinglang_nlp.batch import FieldMap

    p = tmp_path / "posts.csv"
    p.write_text("id,title,body\n1,标题,正文内容\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'正文' .*--content-field.* is not a column"):
        score_ray(p, tmp_path / "out", "baseline", fields=FieldMap(content="正文"))
    assert not (tmp_path / "out").exists()
