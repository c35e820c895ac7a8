"""CLI options beyond the basics: `normalize` (model config, steps, explain), `export` (variants)."""
from __future__ import annotations

import json

from click.testing import CliRunner

from qinglang_nlp.cli import main
from qinglang_nlp.normalize import NormalizeConfig


def _run(*args: str):
    return CliRunner().invoke(main, ["normalize", *args])


def test_model_option_uses_the_models_normalisation_config(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"kind": "baseline", "normalize": dict(NormalizeConfig().to_dict(), restore=True)}),
                                        encoding="utf-8")
    plain = _run("你真是个ex的人")
    assert plain.exit_code == 0 and plain.output.strip() == "你真是个ex的人"  # library defaults: restore off
    r = _run("-m", str(folder), "你真是个ex的人")
    assert r.exit_code == 0, r.output
    assert r.output.strip() == "你真是个恶心的人"


def test_step_switches_one_step_and_refuses_unknown_names():
    assert _run("哈哈哈哈哈哈").output.strip() == "哈哈哈"
    assert _run("--step", "repeats=off", "哈哈哈哈哈哈").output.strip() == "哈哈哈哈哈哈"
    bad = _run("--step", "nosuchstep=on", "x")
    assert bad.exit_code == 2 and "nosuchstep" in bad.output and "homophones" in bad.output
    assert _run("--step", "repeats=maybe", "x").exit_code == 2


def test_explain_says_how_many_changes_it_left_out():
    text = " ".join(["ＳＢ"] * 5)
    r = _run("--explain", "--max-changes", "2", text)
    assert r.exit_code == 0, r.output
    assert "more (--max-changes)" in r.output


def test_missing_model_is_a_clear_error(tmp_path):
    r = _run("-m", str(tmp_path / "nowhere" / "m"), "x")
    assert r.exit_code == 1 and "--model" in r.output and "does not exist" in r.output


def test_export_variants_default_is_the_libraries_and_unknown_ones_are_refused(tmp_path):
    import pytest

    pytest.importorskip("torch")
    from qinglang_nlp.train.export import VARIANTS

    opt = next(p for p in main.commands["export"].params if p.name == "variants")
    assert tuple(opt.default.split(",")) == VARIANTS
    (tmp_path / "ck").mkdir()
    r = CliRunner().invoke(main, ["export", str(tmp_path / "ck"), "-o", str(tmp_path / "out"), "--variants", "fp16,int3"])
    assert r.exit_code == 1 and "int3" in r.output and "Traceback" not in r.output


def _posts(tmp_path):
    p = tmp_path / "posts.jsonl"
    p.write_text('{"id": "a", "text": "他们又在刷流水了"}\n{"id": "b", "text": "路口交通很堵"}\n', encoding="utf-8")
    return p


def _evidence(out):
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return {r["id"]: [(e["text"], e.get("list_name")) for e in r["evidence"] if e["source"] == "lexicon"] for r in rows}


def test_score_adds_user_deny_and_allow_lists(tmp_path):
    posts, out = _posts(tmp_path), tmp_path / "out.jsonl"
    (tmp_path / "mine.txt").write_text("刷流水\n", encoding="utf-8")
    (tmp_path / "ok.txt").write_text("路口交通\n", encoding="utf-8")
    r = CliRunner().invoke(main, ["score", str(posts), "-m", "baseline", "-o", str(out), "-q",
                                  "--lexicon", f"{tmp_path / 'mine.txt'}:fanquan", "--allow-list", str(tmp_path / "ok.txt")])
    assert r.exit_code == 0, r.output
    ev = _evidence(out)
    assert ev["a"] == [("刷流水", "user:mine")]
    assert ev["b"] == []  # 口交 inside 路口交通: the bundled allow list already suppresses it, and so does ours


def test_score_user_list_errors_are_clear(tmp_path):
    posts = _posts(tmp_path)
    (tmp_path / "mine.txt").write_text("刷流水\n", encoding="utf-8")
    base = ["score", str(posts), "-m", "baseline", "-q"]
    r = CliRunner().invoke(main, [*base, "--lexicon", str(tmp_path / "mine.txt")])
    assert r.exit_code == 1 and "needs a category" in r.output
    r = CliRunner().invoke(main, [*base, "--lexicon", f"{tmp_path / 'mine.txt'}:spam"])
    assert r.exit_code == 2 and "category must be one of" in r.output
    r = CliRunner().invoke(main, [*base, "--lexicon", str(tmp_path / "nope.txt:vulgar")])
    assert r.exit_code == 2 and "is not a file" in r.output
    r = CliRunner().invoke(main, [*base, "--no-lexicon", "--lexicon", f"{tmp_path / 'mine.txt'}:fanquan"])
    assert r.exit_code == 2 and "--no-lexicon" in r.output


def test_resume_refuses_other_user_lists(tmp_path):
    posts, out = _posts(tmp_path), tmp_path / "out.jsonl"
    (tmp_path / "mine.txt").write_text("刷流水\n", encoding="utf-8")
    (tmp_path / "other.txt").write_text("做数据\n", encoding="utf-8")
    args = ["score", str(posts), "-m", "baseline", "-o", str(out), "-q", "--chunk-rows", "1"]
    r = CliRunner().invoke(main, [*args, "--lexicon", f"{tmp_path / 'mine.txt'}:fanquan"])
    assert r.exit_code == 0, r.output
    # make the output partial again (as after a crash), then continue with a different list
    state = json.loads((tmp_path / "out.jsonl.state.json").read_text(encoding="utf-8"))
    assert state["model_identity"]["lexicon_terms"]
    first_line = out.read_text(encoding="utf-8").splitlines(keepends=True)[0]
    state.update(rows=1, bytes=len(first_line.encode("utf-8")), complete=False)
    (tmp_path / "out.jsonl.state.json").write_text(json.dumps(state), encoding="utf-8")
    r = CliRunner().invoke(main, [*args, "--lexicon", f"{tmp_path / 'other.txt'}:fanquan"])
    assert r.exit_code != 0 and "different model" in r.output
    # the same list continues the partial output (the refusal above is the lists' doing)
    r = CliRunner().invoke(main, [*args, "--lexicon", f"{tmp_path / 'mine.txt'}:fanquan"])
    assert r.exit_code == 0, r.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
