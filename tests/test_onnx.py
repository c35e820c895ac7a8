"""ONNX export and inference on the tiny generated model: parity, folder format, refusals, long texts."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="export needs torch (pip install .[train])")
pytest.importorskip("transformers", reason="export needs transformers (pip install .[train])")

from qinglang_nlp.classifier import load_classifier
from qinglang_nlp.errors import ModelLoadError
from qinglang_nlp.modelio import read_config
from qinglang_nlp.normalize import normalize
from qinglang_nlp.onnx_classifier import OnnxClassifier
from qinglang_nlp.train.export import ExportError, export, parity_report, prune_tokenizer

TEXTS = [
    "黑粉都给我爬，刷榜打投冲冲冲",
    "姐妹们今天打投任务每人五十票，完不成别说是粉丝",
    "集资还差三万，哥哥的生日应援不能输给对家",
    "今天天气不错，适合出去走走。",
    "你这个傻逼，滚远点",
    "【紧急扩散】某地自来水有毒，千万别喝！",
    "震惊！吃香蕉会致癌，赶紧转给家人",
    "市气象台发布大风蓝色预警，请注意出行安全",
    "理性追星，拒绝集资，从我做起",
    "ＡＢＣ超话签到不能断！！",
]
LONG = ("今天天气很好，我们去公园散步。" * 12 + "你这个傻逼，滚远点！" + "晚饭吃了面条，很满足。" * 12)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, exported int8 folder) of the tiny random model."""
    from safetensors.numpy import load_file, save_file

    from qinglang_nlp.train.model import make_tiny_checkpoint

    root = tmp_path_factory.mktemp("onnx")
    ckpt = make_tiny_checkpoint(root / "ckpt", seed=3)
    # a random head scores everything ~0.5, right on the thresholds, where any int8 noise flips labels;
    # shift the biases so scores sit away from them, as most of a trained model's do
    heads = load_file(str(ckpt / "heads.safetensors"))
    heads["head.bias"] = np.array([1.5, -1.5, 0.8], np.float32)
    save_file(heads, str(ckpt / "heads.safetensors"))
    out = root / "model"
    export(ckpt, out, parity_texts=TEXTS * 4, variants=("dynamic",), log=lambda _: None)
    return ckpt, out


def _torch_probs(ckpt: Path, texts: list[str]) -> np.ndarray:
    from qinglang_nlp.train.model import MultiTaskClassifier

    return MultiTaskClassifier.from_checkpoint(ckpt).predict_proba(texts).numpy()


def _clf(folder: Path) -> OnnxClassifier:
    clf = load_classifier(folder, read_config(folder))
    assert isinstance(clf, OnnxClassifier)
    return clf


def test_folder_format_and_manifest(tiny: tuple[Path, Path]) -> None:
    _, out = tiny
    assert {p.name for p in out.iterdir()} == {"model.onnx", "tokenizer.json", "config.json", "manifest.json"}
    cfg = read_config(out)
    assert cfg["kind"] == "onnx" and cfg["categories"] == ["fanquan", "vulgar", "rumor"]
    assert set(cfg["thresholds"]) == set(cfg["categories"])
    assert set(cfg["decision"]) == {"review", "block"}
    assert cfg["max_length"] == 64 and "window" in cfg and "normalize" in cfg
    assert cfg["quantization"] == "dynamic"
    man = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert set(man["files"]) == {"model.onnx", "tokenizer.json", "config.json"}
    assert all(len(f["sha256"]) == 64 for f in man["files"].values())
    assert man["versions"]["onnxruntime"] and man["versions"]["torch"]
    assert man["metrics"]["parity"]["passed"] is True
    assert {c["variant"] for c in man["export"]["candidates"]} == {"fp32", "dynamic"}


def test_int8_parity_with_torch_on_round_trip(tiny: tuple[Path, Path]) -> None:
    ckpt, out = tiny
    texts = [normalize(t).text for t in TEXTS]
    ref = _torch_probs(ckpt, TEXTS)
    got = _clf(out).predict_scores(texts)
    assert got.shape == (len(TEXTS), 3) and got.dtype == np.float32
    assert np.all((got >= 0) & (got <= 1))
    assert np.abs(got - ref).max() < 0.1  # int8 noise on a random 32-wide model; the gate bounds labels
    assert np.mean((got >= 0.5) == (ref >= 0.5)) == 1.0


def test_fp32_export_matches_torch_closely(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, _ = tiny
    export(ckpt, tmp_path / "fp32", quantize="none", parity_texts=TEXTS, log=lambda _: None)
    got = _clf(tmp_path / "fp32").predict_scores([normalize(t).text for t in TEXTS])
    assert np.abs(got - _torch_probs(ckpt, TEXTS)).max() < 1e-4


def test_results_in_input_order_and_streaming(tiny: tuple[Path, Path]) -> None:
    clf = _clf(tiny[1])
    texts = [normalize(t).text for t in TEXTS] + [LONG]
    together = clf.predict_scores(texts)
    alone = np.stack([clf.predict_scores([t])[0] for t in texts])
    assert np.allclose(together, alone, atol=1e-5)
    streamed = np.stack(list(clf.predict_batch((t for t in texts * 3), buffer_size=4)))
    assert np.allclose(streamed, np.concatenate([together] * 3), atol=1e-5)


def test_empty_text_scores_zero(tiny: tuple[Path, Path]) -> None:
    scores, spans = _clf(tiny[1]).predict_scores_and_spans(["", "   ", "你好"])
    assert np.all(scores[:2] == 0) and spans[0] == spans[1] == []


def test_long_text_windows_cover_it_and_evidence_slices_it(tiny: tuple[Path, Path]) -> None:
    clf = _clf(tiny[1])
    original = "ＢＩＧ新闻！！" + LONG
    norm = normalize(original)
    pieces = clf._pieces([norm.text], None)
    assert len(pieces) > 3
    assert all(len(p.ids) <= clf.max_length for p in pieces)
    covered = np.zeros(len(norm.text), bool)
    for p in pieces:
        covered[p.start:p.end] = True
    assert covered.all()
    # force every category over threshold so that each reports its best window as evidence
    clf.thresholds = dict.fromkeys(clf.categories, 0.0)
    clf._thr = np.zeros(3, np.float32)
    scores, spans = clf.predict_scores_and_spans([norm.text])
    assert len(spans[0]) == 3
    for start, end, cat, score in spans[0]:
        assert (start, end) in {(p.start, p.end) for p in pieces}
        assert score == pytest.approx(scores[0, clf.categories.index(cat)])
        oa, ob = norm.to_original(start, end)
        assert normalize(original[oa:ob]).text == norm.text[start:end]
    # the text's score is the max over its windows
    per_window = clf.predict_scores([norm.text[p.start:p.end] for p in pieces])
    assert np.allclose(scores[0], per_window.max(0), atol=0.02)


def test_title_is_scored_with_the_body(tiny: tuple[Path, Path]) -> None:
    clf = _clf(tiny[1])
    body = normalize(LONG).text
    with_title, spans = clf.predict_scores_and_spans([body], titles=["【紧急扩散】自来水有毒"])
    without = clf.predict_scores([body])
    assert not np.allclose(with_title, without)
    assert all(0 <= s < e <= len(body) for s, e, _, _ in spans[0])
    with pytest.raises(ValueError, match="titles"):
        clf.predict_scores([body], titles=[])


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_corrupt_file_is_refused(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    d = _copy(tiny[1], tmp_path / "m")
    data = bytearray((d / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (d / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=r"model\.onnx: sha256"):
        _clf(d)


def test_missing_file_is_refused(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    d = _copy(tiny[1], tmp_path / "m")
    (d / "tokenizer.json").unlink()
    with pytest.raises(ModelLoadError, match=r"'tokenizer\.json'.*missing"):
        _clf(d)


def test_wrong_sha256_in_manifest_is_refused(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    d = _copy(tiny[1], tmp_path / "m")
    man = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    man["files"]["config.json"]["sha256"] = "0" * 64
    (d / "manifest.json").write_text(json.dumps(man), encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"config\.json: sha256 .* does not match"):
        _clf(d)


def test_mismatched_categories_are_refused(tiny: tuple[Path, Path]) -> None:
    cfg = read_config(tiny[1])
    cfg["categories"] = ["fanquan", "vulgar"]
    with pytest.raises(ModelLoadError, match="gives 3 scores but config lists 2"):
        OnnxClassifier.from_dir(tiny[1], cfg)


def test_parity_gate_fails_loudly(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    cats = ["fanquan", "vulgar", "rumor"]
    ref = np.array([[0.9, 0.1, 0.6], [0.2, 0.8, 0.4], [0.7, 0.3, 0.1], [0.1, 0.6, 0.9]])
    gold = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 0], [0, 1, 1]])
    ok = parity_report(ref, ref + 0.01, cats, dict.fromkeys(cats, 0.5), gold)
    assert ok.passed and ok.auc["fanquan"] == 1.0
    flipped = ref.copy()
    flipped[0, 2] = 0.3  # one rumour label flips, and the rumour AUC drops
    bad = parity_report(ref, flipped, cats, dict.fromkeys(cats, 0.5), gold)
    assert not bad.passed
    assert any(f.startswith("rumor: label agreement 0.75") for f in bad.failures)
    assert any("rumor: ROC-AUC" in f for f in bad.failures)
    with pytest.raises(ExportError, match="parity gate failed"):
        export(tiny[0], tmp_path / "x", parity_texts=TEXTS, variants=("dynamic",), min_agreement=1.01,
               log=lambda _: None)
    assert not (tmp_path / "x").exists()


def test_size_budget_is_enforced(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="exceeds the size budget"):
        export(tiny[0], tmp_path / "x", parity_texts=TEXTS, variants=("dynamic",), max_mb=0.01,
               log=lambda _: None)


def test_vocabulary_pruning_keeps_corpus_tokenisation() -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    pieces = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(p, -float(len(p))) for p in ["▁", "饭圈", "打投", "谣言", "集资", "应援", "▁饭圈", "天气", "今天"]]
    pieces += [(c, -5.0) for c in "饭圈打投谣言集资应援天气今明很好"]
    tok = Tokenizer(models.Unigram(pieces, unk_id=3))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tok.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>"])
    corpus = ["饭圈打投", "今天天气很好"]
    keep = {i for t in corpus for i in tok.encode(t).ids} | {tok.token_to_id(c) for c in "饭圈打投谣言集资应援天气今明很好"}
    small, old_ids = prune_tokenizer(tok, keep)
    assert small.get_vocab_size() < tok.get_vocab_size()
    for t in corpus:
        assert [int(old_ids[i]) for i in small.encode(t).ids] == tok.encode(t).ids
    # unseen words still tokenise, into kept characters
    assert "<unk>" not in small.encode("明天集资应援").tokens
    assert small.encode("x").ids[0] == small.token_to_id("<s>")


def test_inference_module_does_not_import_torch() -> None:
    code = ("import sys, qinglang_nlp.onnx_classifier, qinglang_nlp.windows; "
            "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_dynamic_int8_is_scored_one_window_per_run(tiny: tuple[Path, Path]) -> None:
    """Dynamic int8 takes activation scales per run: batched, a text's score would depend on its neighbours."""
    from qinglang_nlp.train.export import batch_drift

    folder = tiny[1]
    clf = _clf(folder)
    assert clf.batch_size == read_config(folder)["runtime"]["batch_size"] == 1
    seqs = [e.ids for e in clf._tok.encode_batch([normalize(t).text for t in TEXTS])]
    assert batch_drift(clf, seqs) == 0.0
    batched = OnnxClassifier.from_dir(folder, read_config(folder) | {"runtime": {"batch_size": 64}})
    assert batch_drift(batched, seqs) > 1e-4


def test_scoring_from_several_threads_gives_the_same_scores(tiny: tuple[Path, Path]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    clf = _clf(tiny[1])
    texts = [normalize(t).text for t in TEXTS] + [LONG]
    expected = clf.predict_scores(texts)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: clf.predict_scores(texts), range(8)))
    assert all(np.array_equal(r, expected) for r in results)


def test_moderator_on_the_onnx_folder_keeps_the_contract(tiny: tuple[Path, Path]) -> None:
    """The whole pipeline (normalise → lexicon → ONNX → decide) on an exported folder, as ql.load users see it."""
    import qinglang_nlp as ql

    m = ql.load(tiny[1])
    texts = TEXTS + [LONG, "", "🙂"]
    batch = m.predict_batch(texts, batch_size=3)
    assert len(batch) == len(texts)
    for t, r in zip(texts, batch):
        single = m.predict(t)
        assert all(abs(single.scores[c] - r.scores[c]) <= 1e-4 for c in r.scores)
        assert r.decision in ("pass", "review", "block")
        for s in r.evidence:
            assert t[s.start:s.end] == s.text and s.source in ("lexicon", "model")
    assert batch[len(TEXTS) + 1].scores == {"fanquan": 0.0, "vulgar": 0.0, "rumor": 0.0}


def stacked_folder(onnx_dir: Path, baseline_dir: Path, out: Path, weights: tuple[float, float]) -> Path:
    """A stacked model folder of an exported ONNX member and a baseline member, with fixed stacker weights."""
    from qinglang_nlp.modelio import write_manifest

    shutil.copytree(onnx_dir, out / "transformer")
    shutil.copytree(baseline_dir, out / "baseline")
    cfg = read_config(onnx_dir)
    stacked = {"kind": "stacked", "categories": cfg["categories"], "members": ["transformer", "baseline"],
               "stacker": {c: {"weights": list(weights), "bias": 0.0} for c in cfg["categories"]},
               "thresholds": cfg["thresholds"], "decision": cfg["decision"], "normalize": cfg["normalize"]}
    (out / "config.json").write_text(json.dumps(stacked), encoding="utf-8")
    write_manifest(out)
    return out


def test_stacked_with_an_onnx_member_scores_and_points_like_it(tiny: tuple[Path, Path], tiny_model_dir: Path,
                                                               tmp_path: Path) -> None:
    """A stack that weights only the ONNX member reproduces its scores and its best-window spans."""
    from qinglang_nlp.stacked import StackedClassifier

    _, out = tiny
    d = stacked_folder(out, tiny_model_dir, tmp_path / "stacked", (1.0, 0.0))
    stacked = load_classifier(d, read_config(d))
    assert isinstance(stacked, StackedClassifier)
    texts = [normalize(t).text for t in TEXTS + [LONG]]
    s_stacked, sp_stacked = stacked.predict_scores_and_spans(texts)
    s_onnx, sp_onnx = _clf(out).predict_scores_and_spans(texts)
    assert np.allclose(s_stacked, s_onnx, atol=1e-5)
    assert [[(a, b, c) for a, b, c, _ in row] for row in sp_stacked] == \
        [[(a, b, c) for a, b, c, _ in row] for row in sp_onnx]
    assert any(sp_stacked)


def _gather_model(table: np.ndarray) -> object:
    from onnx import TensorProto, helper, numpy_helper

    g = helper.make_graph([helper.make_node("Gather", ["table", "ids"], ["y"], name="emb")], "g",
                          [helper.make_tensor_value_info("ids", TensorProto.INT64, [None])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, table.shape[1]])],
                          [numpy_helper.from_array(table, "table")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_int8_word_embeddings_dequantise_only_the_gathered_rows() -> None:
    import onnxruntime as ort
    from onnx import TensorProto

    from qinglang_nlp.train.export import _int8_word_embeddings

    rng = np.random.default_rng(0)
    table = (rng.standard_normal((300, 16)) * np.linspace(0.01, 3, 300)[:, None]).astype(np.float32)
    model = _gather_model(table)
    assert _int8_word_embeddings(model) == "table"
    stored = {i.name: i.data_type for i in model.graph.initializer}
    assert stored == {"table_int8": TensorProto.INT8, "table_row_scale": TensorProto.FLOAT}
    ids = np.array([0, 7, 299, 7], np.int64)
    y = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"ids": ids})[0]
    step = np.abs(table[ids]).max(axis=1, keepdims=True) / 127  # each row keeps its own scale
    assert np.all(np.abs(y - table[ids]) <= step / 2 + 1e-7)
    assert np.abs(y - table[ids]).max() > 0  # it really is quantised


def test_fp16_storage_is_folded_back_to_float32_kernels() -> None:
    import onnxruntime as ort
    from onnx import TensorProto

    from qinglang_nlp.train.export import _fp16_storage

    table = np.random.default_rng(1).standard_normal((300, 16)).astype(np.float32)
    model = _gather_model(table)
    assert _fp16_storage(model) == 1
    assert [i.data_type for i in model.graph.initializer] == [TensorProto.FLOAT16]
    assert model.graph.node[0].op_type == "Cast"  # before its user: the graph stays sorted
    ids = np.array([3, 299], np.int64)
    y = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"ids": ids})[0]
    assert y.dtype == np.float32
    assert np.allclose(y, table[ids], rtol=2 ** -11, atol=1e-7) and not np.array_equal(y, table[ids])


@pytest.mark.parametrize("variant", ["fp16", "emb8"])
def test_fp16_and_emb8_variants_export_batch_freely_and_match_torch(
        tiny: tuple[Path, Path], tmp_path: Path, variant: str) -> None:
    ckpt, _ = tiny
    out = tmp_path / variant
    man = export(ckpt, out, parity_texts=TEXTS * 4, variants=(variant,), log=lambda _: None)
    cfg = read_config(out)
    assert cfg["quantization"] == variant and cfg["runtime"]["batch_size"] == 64  # no activation is quantised
    assert man["metrics"]["parity"]["passed"] and man["metrics"]["parity"]["batch_drift"] <= 1e-4
    clf = _clf(out)
    got = clf.predict_scores([normalize(t).text for t in TEXTS])
    assert np.abs(got - _torch_probs(ckpt, TEXTS)).max() < 0.02
    fp32_mb = next(c["bytes"] for c in man["export"]["candidates"] if c["variant"] == "fp32")
    assert (out / "model.onnx").stat().st_size < fp32_mb


def test_unknown_variant_is_refused_by_name(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown quantisation variant.*'int3'"):
        export(tiny[0], tmp_path / "x", parity_texts=TEXTS, variants=("int3",), log=lambda _: None)


def test_a_variant_over_the_size_budget_is_not_shipped(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    man = json.loads((tiny[1] / "manifest.json").read_text(encoding="utf-8"))
    dyn = next(c["bytes"] for c in man["export"]["candidates"] if c["variant"] == "dynamic")
    budget = (dyn + (tiny[1] / "tokenizer.json").stat().st_size + 20_000) / 1e6  # int8 fits, fp16 storage does not
    lines: list[str] = []
    export(tiny[0], tmp_path / "x", parity_texts=TEXTS * 4, variants=("fp16", "dynamic"), max_mb=budget,
           log=lines.append)
    assert any(line.startswith("fp16: passes, but") for line in lines)
    assert read_config(tmp_path / "x")["quantization"] == "dynamic"
