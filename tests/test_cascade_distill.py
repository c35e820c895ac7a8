"""A window gate distilled from the transformer member's own window scores: distil -> calibrate -> score, and the
errors a bad gate folder gives."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("torch", reason="the tiny ONNX member is exported with torch (pip install .[train])")
pytest.importorskip("transformers", reason="export needs transformers (pip install .[train])")

from test_onnx import stacked_folder, tiny  # noqa: F401  (``tiny`` is the module-scoped ONNX fixture)

import qinglang_nlp as ql
from qinglang_nlp.cascade import (
    GATE_KIND,
    Cascade,
    distill_window_gate,
    load_window_gate,
    read_cascade_file,
    save_window_gate,
)
from qinglang_nlp.cascade import main as cascade_main
from qinglang_nlp.cli import main as cli_main

# paragraphs of WeChat-style articles: harmless filler around a few risky sentences
FILLER = ["市气象台发布大风蓝色预警，请注意出行安全。", "今天天气很好，我们去公园散步。", "晚饭吃了面条，很满足。",
          "本周末图书馆照常开放，欢迎市民前来阅读。", "地铁二号线将于下月延长运营时间。"]
RISKY = ["集资还差三万，哥哥的生日应援不能输给对家！", "你这个傻逼，滚远点！", "【紧急扩散】某地自来水有毒，千万别喝！",
         "姐妹们今天打投任务每人五十票，完不成别说是粉丝。", "震惊！吃香蕉会致癌，赶紧转给家人。"]
TITLES = ["【独家】某顶流塌房，对家连夜控评", "本地生活资讯", "健康科普：这些谣言别再信了", "周末去哪儿"]


def _posts(n: int, seed: int) -> list[dict]:
    """Articles of ~40 sentences (several windows each) with 0-2 risky sentences, plus short comments."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        sents = [FILLER[k] for k in rng.integers(0, len(FILLER), 40)]
        for _ in range(int(rng.integers(0, 3))):
            sents.insert(int(rng.integers(0, len(sents))), RISKY[int(rng.integers(0, len(RISKY)))])
        out.append({"id": f"wx-{seed}-{i}", "title": TITLES[i % len(TITLES)], "content": "<p>" + "".join(sents) + "</p>"})
        out.append({"id": f"wb-{seed}-{i}", "text": RISKY[i % len(RISKY)] if i % 3 == 0 else FILLER[i % len(FILLER)]})
    return out


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _labels(path: Path) -> list[list[str]]:
    return [r["labels"] for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())]


def _scores(path: Path) -> np.ndarray:
    return np.array([[r["scores"][c] for c in ("fanquan", "vulgar", "rumor")]
                     for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())])


@pytest.fixture()
def stacked(tiny, tiny_model_dir, tmp_path) -> Path:  # noqa: F811
    """A stack of the tiny ONNX model and the tiny baseline, both weighted."""
    return stacked_folder(tiny[1], tiny_model_dir, tmp_path / "stacked", (2.0, 1.0))


def test_distil_calibrate_score_round_trip(stacked, tiny_model_dir, tmp_path):
    train = _write(tmp_path / "crawl_sample.jsonl", _posts(12, seed=1))
    dev = _write(tmp_path / "dev.jsonl", _posts(8, seed=2))
    gate = tmp_path / "gate"
    assert cascade_main(["distill", str(stacked), str(train), "-o", str(gate)]) == 0
    cfg = json.loads((gate / "config.json").read_text(encoding="utf-8"))
    assert cfg["kind"] == GATE_KIND and (gate / "manifest.json").is_file()
    assert cfg["distill"]["multi_window_texts"] == 12 and cfg["distill"]["windows"] > 24
    # the gate predicts the transformer's own window scores (on the windows it was fitted on)
    second = ql.load(stacked, lexicon=False)
    scorer = load_window_gate(gate, second.classifier.categories)
    assert min(cfg["distill"]["train_corr"].values()) > 0.5, cfg["distill"]
    # calibrate the windows-only cascade on dev posts for every flag, then score them through the CLI
    cas = tmp_path / "cascade.json"
    assert cascade_main([str(tiny_model_dir), str(stacked), str(dev), "-o", str(cas), "--windows-only",
                         "--recall", "1.0", "--gate", str(gate)]) == 0
    wg = json.loads(cas.read_text(encoding="utf-8"))["window_gate"]
    assert wg["gate"] == str(gate) and "member" not in wg and set(wg["cutoffs"]) == {"fanquan", "vulgar", "rumor"}
    assert 0 < wg["dev"]["tokens_run"] < 1, wg["dev"]  # some article windows are skipped
    full, gated = tmp_path / "full.jsonl", tmp_path / "gated.jsonl"
    for out, extra in ((full, []), (gated, ["--cascade", str(cas)])):
        r = CliRunner().invoke(cli_main, ["score", str(dev), "-o", str(out), "-m", str(stacked), "-q", *extra])
        assert r.exit_code == 0, r.output
    lf, lg = _labels(full), _labels(gated)
    assert any(lf), "the fixture must have flags for the gate to keep"
    assert all(set(a) <= set(b) for a, b in zip(lf, lg))  # recall 1.0 was asked on these very posts
    # the CLI ran the gate: skipped windows lower some article scores (never a flag, as asserted above)
    sf, sg = _scores(full), _scores(gated)
    assert (sg <= sf + 1e-6).all() and (sg < sf - 1e-6).any()
    # the same gate object scores the windows in the gated model: its scores, not the baseline member's
    texts = ["今天天气很好。" * 5, RISKY[1]]
    assert not np.allclose(scorer.predict_scores(texts), dict(second.classifier.members)["baseline"].predict_scores(texts))


def test_a_relative_gate_path_is_found_beside_the_cascade_file_and_the_gate_picks_the_windows(
        stacked, tiny_model_dir, tmp_path):
    from qinglang_nlp.normalize import normalize
    from qinglang_nlp.stacked import gate_keep

    second = ql.load(stacked, lexicon=False)
    clf = second.classifier
    texts = [p.get("text") or p["content"] for p in _posts(6, seed=3)]
    scorer, info = distill_window_gate(second, texts)
    save_window_gate(scorer, tmp_path / "cfg" / "my_gate", second, info)
    # cut-offs at the gate's own 80th percentile per category: some windows run, some do not
    norms = [normalize(t).text for t in texts]
    _, tr = clf.windowed_member()
    ws = tr.score_windows(norms)
    g = scorer.predict_scores([norms[i][a:b] for i, a, b in zip(ws.item, ws.start, ws.end)])
    cut = dict(zip(clf.categories, np.quantile(g, 0.8, axis=0).tolist()))
    cfg = {"kind": "cascade", "first": str(tiny_model_dir), "lexicon_gate": False,
           "cutoffs": dict.fromkeys(("fanquan", "vulgar", "rumor"), 0.0),
           "window_gate": {"gate": "my_gate", "cutoffs": cut}}
    (tmp_path / "cfg" / "cascade.json").write_text(json.dumps(cfg), encoding="utf-8")
    read = read_cascade_file(tmp_path / "cfg" / "cascade.json")
    assert read["window_gate"]["gate"] == str((tmp_path / "cfg" / "my_gate").resolve())
    cas = Cascade(ql.load(tiny_model_dir, lexicon=False), second, read["cutoffs"], False, read["window_gate"])
    assert cas.to_dict()["window_gate"]["gate"] == read["window_gate"]["gate"]
    # the gated model runs exactly the windows the distilled scorer keeps: recompute them by hand
    keep = gate_keep(ws.item, g, np.array([cut[c] for c in clf.categories]))
    assert 0 < keep.sum() < len(keep)
    tmax = np.zeros((len(texts), 3))
    np.maximum.at(tmax, ws.item[keep], ws.probs[keep])
    expect = clf.combine([tmax, dict(clf.members)["baseline"].predict_scores(norms)])
    assert np.allclose(clf.predict_scores(norms), expect, atol=1e-5)
    clf.set_window_gate(None)


def test_bad_or_missing_gate_folders_give_clear_errors(stacked, tiny_model_dir, tmp_path):
    second = ql.load(stacked, lexicon=False)
    cats = second.classifier.categories
    with pytest.raises(ValueError, match="does not exist.*distill"):
        load_window_gate(tmp_path / "nope")
    with pytest.raises(ValueError, match="not a window gate folder"):
        load_window_gate(tiny_model_dir)  # a model folder, not a gate
    scorer, info = distill_window_gate(second, [p.get("text") or p["content"] for p in _posts(4, seed=4)])
    gate = save_window_gate(scorer, tmp_path / "gate", second, info)
    bad = tmp_path / "tampered"
    shutil.copytree(gate, bad)
    np.save(bad / "coef.npy", np.zeros_like(np.load(bad / "coef.npy")), allow_pickle=False)
    with pytest.raises(ValueError, match="window gate .*tampered.*coef.npy"):
        load_window_gate(bad)
    with pytest.raises(ValueError, match="scores .*fanquan"):
        load_window_gate(gate, ("fanquan", "vulgar"))
    cut = dict.fromkeys(cats, 0.5)
    with pytest.raises(ValueError, match="does not exist"):
        Cascade(ql.load(tiny_model_dir, lexicon=False), second, cut, False, {"gate": str(tmp_path / "x"), "cutoffs": cut})
    # the CLI says so in one line instead of a traceback
    cas = tmp_path / "cascade.json"
    cas.write_text(json.dumps({"kind": "cascade", "first": str(tiny_model_dir), "cutoffs": cut,
                               "window_gate": {"gate": str(tmp_path / "x"), "cutoffs": cut}}), encoding="utf-8")
    posts = _write(tmp_path / "p.jsonl", [{"text": "你这个傻逼，滚远点"}])
    r = CliRunner().invoke(cli_main, ["score", str(posts), "-o", str(tmp_path / "o.jsonl"), "-m", str(stacked),
                                      "-q", "--cascade", str(cas)])
    assert r.exit_code != 0 and "window gate folder" in r.output and "does not exist" in r.output
    # distilling needs a stacked model and texts long enough to be cut into windows
    with pytest.raises(ValueError, match="stacked second model"):
        distill_window_gate(ql.load(tiny_model_dir, lexicon=False), ["今天天气很好。" * 80])
    with pytest.raises(ValueError, match="several windows"):
        distill_window_gate(second, ["今天天气很好", "你这个傻逼"])


def test_a_gate_refitted_into_the_same_folder_is_a_different_model_for_resume(stacked, tiny_model_dir, tmp_path):
    # the cascade file names the gate folder only; re-distilling into that folder without recalibrating changes
    # which windows run, so a partial output made with the old gate must not be continued with the new one
    dev = _write(tmp_path / "dev.jsonl", _posts(8, seed=2))
    gate, cas = tmp_path / "gate", tmp_path / "cascade.json"
    assert cascade_main(["distill", str(stacked), str(_write(tmp_path / "a.jsonl", _posts(12, seed=1))), "-o",
                         str(gate)]) == 0
    assert cascade_main([str(tiny_model_dir), str(stacked), str(dev), "-o", str(cas), "--windows-only",
                         "--gate", str(gate)]) == 0
    out = tmp_path / "scored.jsonl"
    args = ["score", str(dev), "-o", str(out), "-m", str(stacked), "-q", "--cascade", str(cas)]
    r = CliRunner().invoke(cli_main, args)
    assert r.exit_code == 0, r.output
    lines = out.read_text(encoding="utf-8").splitlines()
    out.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")  # as if the run had stopped after 3 rows
    shutil.rmtree(gate)
    assert cascade_main(["distill", str(stacked), str(_write(tmp_path / "b.jsonl", _posts(12, seed=7))), "-o",
                         str(gate)]) == 0
    r = CliRunner().invoke(cli_main, args)
    assert r.exit_code != 0 and "different model" in r.output, r.output


def test_the_cascade_command_reports_bad_input_in_one_line(stacked, tiny_model_dir, tmp_path, capsys):
    empty = _write(tmp_path / "empty.jsonl", [])
    assert cascade_main(["distill", str(stacked), str(empty), "-o", str(tmp_path / "g")]) == 2
    assert cascade_main([str(tiny_model_dir), str(stacked), str(empty), "-o", str(tmp_path / "c.json")]) == 2
    assert cascade_main([str(tiny_model_dir), str(stacked), str(tmp_path / "missing.jsonl"), "-o",
                         str(tmp_path / "c.json")]) == 2
    a_file = tmp_path / "gate_file"
    a_file.write_text("x", encoding="utf-8")
    assert cascade_main(["distill", str(stacked), str(empty), "-o", str(a_file), "--overwrite"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and all(line.startswith("error: ") for line in err), err
    assert "not a folder" in err[3] and "Traceback" not in "".join(err)
