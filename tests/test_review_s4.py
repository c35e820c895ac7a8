"""Second review of session 4 (batch grouping, titles, cascades, the normaliser's disk cache): regressions."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest


def _scores(results: list) -> list:
    return [(r.scores, r.labels, r.decision, [(s.start, s.end) for s in r.evidence]) for r in results]


def test_cascade_predict_batch_takes_a_generator(tiny_model):
    """Cascade.predict_batch/predict_staged took any iterable (like Moderator.predict_batch); titles= made them
    call len() on the texts, so a generator raised TypeError even without titles."""
    from qinglang_nlp.cascade import Cascade

    texts = ["黑粉都给我爬，刷榜打投冲冲冲", "", "谢谢你的帮助，祝你生活愉快", "你这个傻逼，滚远点！"]
    c = Cascade(tiny_model, tiny_model, {"fanquan": 0.1, "vulgar": 0.1, "rumor": 0.1})
    want = c.predict_batch(texts)
    assert _scores(c.predict_batch(t for t in texts)) == _scores(want)
    assert _scores(c.predict_batch((t for t in texts), titles=[None, "标题", None, ""])) == \
        _scores(c.predict_batch(texts, titles=[None, "标题", None, ""]))


_NOISE_PROBE = """
import importlib, sys
N = importlib.import_module("qinglang_nlp.normalize")
if sys.argv[1] == "edited":  # emoji.tsv with one more word emoji, as a newer version or a local edit has it
    read = N._read_tsv
    N._read_tsv = lambda name, *a: read(name, *a) + ([["\\U0001F31A", "黑脸"]] if name == "emoji.tsv" else [])
print(int(N._noise_classes()[0x1F31A]))
"""


def test_noise_class_cache_follows_the_emoji_table(tmp_path):
    """The noise-class table marks word emoji (from data/normalize/emoji.tsv) with bit 4; the cached file was keyed
    by normalize.py alone, so after an emoji.tsv change every process read the old table back (🌚 not a word emoji)."""
    env = {**os.environ, "QINGLANG_CACHE": str(tmp_path)}

    def probe(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _NOISE_PROBE, mode], env=env, capture_output=True, text=True,
                             check=True, timeout=120)
        return int(out.stdout.split()[-1])

    assert probe("shipped") == 1  # a noise character only; the table is now in the cache folder
    assert any(p.name.startswith("normalize-noise_classes") for p in tmp_path.iterdir())
    assert probe("edited") == 1 | 4  # a word emoji in the edited table, not the cached old one


def test_predict_batch_refuses_a_bad_item_before_scoring_naming_the_first(tiny_model, monkeypatch):
    """Length-grouped predict_batch checked each item only when its group came up: the texts of every earlier
    group were scored before a bad item raised, and with two bad items the one that sorted first was named, not
    the first in the input."""
    calls = []
    real = tiny_model._results
    monkeypatch.setattr(tiny_model, "_results", lambda *a, **k: calls.append(1) or real(*a, **k))
    texts = ["谢谢你的帮助，祝你生活愉快", "今天天气\x00不错，出去走走吧", "好", None]
    with pytest.raises(ValueError, match=r"item 1: contains a NUL"):
        tiny_model.predict_batch(texts, batch_size=1)
    long_bad = ["短评"] * 5 + ["饭圈乱象" * 50 + "\x00"]  # sorts last: five groups before it
    with pytest.raises(ValueError, match=r"item 5: contains a NUL"):
        tiny_model.predict_batch(long_bad, batch_size=1)
    with pytest.raises(ValueError, match=r"title of item 2: contains a NUL"):
        tiny_model.predict_batch(["正文", "正文二", "正文三"], batch_size=1, titles=[None, "标题", "标\x00题"])
    assert calls == []
    # good input: still one result per text, in input order, grouped or not
    ok = ["谢谢你的帮助，祝你生活愉快", "", "你这个傻逼，滚远点！", "好", "谢谢你的帮助，祝你生活愉快"]
    assert _scores(tiny_model.predict_batch(ok, batch_size=2)) == _scores([tiny_model.predict(t) for t in ok])


def test_stale_reasons_see_a_backbone_with_another_tokenizer(tmp_path, monkeypatch):
    """Since only PREPARE_KEYS count, a config (or --backbone) naming a backbone with another tokenizer left the
    prepared token ids 'current': ``finetune check`` said so and ``qinglang train`` did not re-prepare, then
    training stopped with 'tokenizer differs ... re-run prepare'."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import shutil

    import qinglang_nlp.train.finetune as ft
    from qinglang_nlp.datasets import Record
    from qinglang_nlp.train.model import load_tokenizer, make_tiny_checkpoint

    tiny = make_tiny_checkpoint(tmp_path / "tiny", seed=0)
    other = tmp_path / "other"
    shutil.copytree(tiny, other)
    tj = json.loads((other / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = tj["model"]["vocab"]
    vocab["饭"], vocab["圈"] = vocab["圈"], vocab["饭"]  # same size, other ids
    (other / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False), encoding="utf-8")

    recs = {"train": {"cold": [Record(t, "cold", f"cold:{i}", {"fanquan": None, "vulgar": i % 2, "rumor": None}, {})
                               for i, t in enumerate(["饭圈打投冲冲冲", "今天天气真好"] * 3)]},
            "dev": {"cold": []}, "eval": {}}
    monkeypatch.setattr(ft, "collect_records", lambda c, d=None: recs)
    cfg = ft.load_config(None, backbone=str(tiny), datasets={"cold": {}}, max_length=16, run_log=None)
    out = ft.prepare_records(recs, cfg, load_tokenizer(tiny), tmp_path / "prep")
    assert ft.stale_reasons(cfg, out) == []
    assert ft.stale_reasons(dict(cfg, backbone=str(tmp_path / "moved")), out) == []  # unreadable: train says so
    reasons = ft.stale_reasons(dict(cfg, backbone=str(other)), out)
    assert len(reasons) == 1 and "tokenizer" in reasons[0] and str(other) in reasons[0]
    assert ft.stale_reasons(cfg, out, backbone=str(other)) == reasons  # the --backbone override


def test_window_gate_calibration_scores_a_title_alone_as_the_moderator_does():
    """The Moderator scores a titled post whose body is blank as the joined text (no title apart); the gate
    calibration cut every titled post at the seam, so such posts were calibrated on an empty body."""
    from qinglang_nlp.cascade import calibrate_window_gate
    from qinglang_nlp.moderator import Moderator
    from qinglang_nlp.normalize import NormalizeConfig
    from qinglang_nlp.onnx_classifier import WindowScores
    from qinglang_nlp.stacked import StackedClassifier

    cats = ("fanquan", "vulgar", "rumor")
    seen: list = []

    class Windowed:
        categories = cats

        def score_windows(self, texts, titles=None):
            seen.append((list(texts), None if titles is None else list(titles)))
            n = len(texts)
            return WindowScores(np.arange(n), np.zeros(n, int), np.array([len(t) for t in texts]), np.full(n, 10),
                                np.array([[0.9 if "塌房" in t else 0.1] * 3 for t in texts]))

        def predict_scores_and_spans(self, texts, titles=None, window_gate=None):
            return np.array([[0.9 if "塌房" in t else 0.1] * 3 for t in texts]), [[] for _ in texts]

    class Base:
        categories = cats

        def predict_scores(self, texts):
            return np.array([[0.5] * 3 for _ in texts])

    clf = StackedClassifier([("transformer", Windowed()), ("baseline", Base())], cats,
                            {c: {"weights": [1.0, 0.0], "bias": 0.0} for c in cats}, dict.fromkeys(cats, 0.5))
    second = Moderator(clf, {"kind": "stacked", "name": "fake", "categories": list(clf.categories),
                             "thresholds": clf.thresholds, "decision": {"block": clf.thresholds},
                             "normalize": NormalizeConfig.none().to_dict()})
    calibrate_window_gate(second, ["", "今天天气很好", "   "], target_recall=1.0,
                          titles=["某顶流塌房", "某顶流塌房", "标题"])
    assert seen[0] == (["某顶流塌房\n", "今天天气很好", "标题\n   "], [None, "某顶流塌房", None])


class _StopAfter:
    """A model that raises KeyboardInterrupt on its (n+1)-th call (an interrupted job)."""

    def __init__(self, model, calls: int):
        self.m, self.name, self.left = model, model.name, calls
        self.path, self.lexicon = model.path, model.lexicon

    def prepare(self, text, index=None):
        return self.m.prepare(text, index)

    def predict_batch(self, texts, batch_size=64, titles=None):
        if self.left <= 0:
            raise KeyboardInterrupt
        self.left -= 1
        return self.m.predict_batch(texts, batch_size=batch_size, titles=titles)


def test_resume_with_another_batch_size_is_refused(tiny_model, tmp_path):
    """score_groups promises a resumed run the batches an uninterrupted run sends (identical scores even for a
    model whose output depends on the batch, as the transformer's padding does); a rerun with another
    --batch-size silently continued with other batches."""
    from qinglang_nlp.batch import ResumeError, score_file

    posts = ["黑粉都给我爬，刷榜打投冲冲冲", "谢谢你的帮助，祝你生活愉快", "你这个傻逼，滚远点！", "今天天气真好"] * 6
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(posts)),
                   encoding="utf-8")
    score_file(tiny_model, inp, tmp_path / "ref.jsonl", batch_size=4, chunk_rows=4)
    out = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        score_file(_StopAfter(tiny_model, 2), inp, out, batch_size=4, chunk_rows=4)
    with pytest.raises(ResumeError, match=r"batch size 4 \(now 16\)"):
        score_file(tiny_model, inp, out, batch_size=16, chunk_rows=4)
    score_file(tiny_model, inp, out, batch_size=4, chunk_rows=4)
    assert out.read_bytes() == (tmp_path / "ref.jsonl").read_bytes()


def test_score_user_lists_reach_a_cascades_first_stage(tmp_path):
    """--lexicon added the user's terms to the second model only: the first stage's lexicon gate never saw them,
    so with --cascade a post holding a user deny term passed at stage 1 unless its scores sent it on."""
    from click.testing import CliRunner

    from qinglang_nlp.cli import main

    posts, out = tmp_path / "posts.jsonl", tmp_path / "out.jsonl"
    posts.write_text('{"id": "a", "text": "他们又在刷流水了"}\n{"id": "b", "text": "路口交通很堵"}\n', encoding="utf-8")
    (tmp_path / "mine.txt").write_text("刷流水\n", encoding="utf-8")
    cas = tmp_path / "cascade.json"  # no score reaches the cut-offs: only a lexicon hit makes a candidate
    cas.write_text(json.dumps({"kind": "cascade", "first": "baseline", "lexicon_gate": True,
                               "cutoffs": {"fanquan": 2.0, "vulgar": 2.0, "rumor": 2.0}}), encoding="utf-8")
    r = CliRunner().invoke(main, ["score", str(posts), "-m", "baseline", "-o", str(out), "-q", "--cascade", str(cas),
                                  "--lexicon", f"{tmp_path / 'mine.txt'}:fanquan"])
    assert r.exit_code == 0, r.output
    rows = {x["id"]: x for x in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert rows["a"]["stage"] == 2
    assert [(e["text"], e.get("list_name")) for e in rows["a"]["evidence"] if e["source"] == "lexicon"] == \
        [("刷流水", "user:mine")]
    assert rows["b"]["stage"] == 1


@pytest.mark.parametrize("cutoff", [0.0, 2.0])  # every row to stage 2 / every row stays at stage 1
def test_cascade_says_when_it_truncated_a_text(tiny_model_dir, cutoff):
    """With on_long='truncate' the cascade cut texts before its stages saw them, so every result (stage 1 or 2)
    said truncated=False; with titles the stages cut and said so."""
    import qinglang_nlp as ql
    from qinglang_nlp.cascade import Cascade

    m = ql.load(tiny_model_dir, lexicon=False, max_chars=20, on_long="truncate")
    c = Cascade(m, m, dict.fromkeys(("fanquan", "vulgar", "rumor"), cutoff), False)
    texts = ["今天天气很好，我们去公园散步。" * 5, "短评"]
    assert [r.truncated for r in m.predict_batch(texts)] == [True, False]
    assert [r.truncated for r in c.predict_batch(texts)] == [True, False]
    assert [r.truncated for r in c.predict_batch(texts, titles=["标题", None])] == [True, False]
