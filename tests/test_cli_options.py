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
