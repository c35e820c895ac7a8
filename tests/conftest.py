"""Shared fixtures: a tiny baseline model trained in seconds on texts written here."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Property tests (hypothesis) draw the same examples on every run, so a run on main cannot turn red by chance;
# QINGLANG_HYPOTHESIS=explore draws fresh random examples (and keeps failures in .hypothesis/) to hunt for bugs.
try:
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("fixed", derandomize=True, database=None)
    _hyp_settings.register_profile("explore")
    _hyp_settings.load_profile(os.environ.get("QINGLANG_HYPOTHESIS", "fixed"))
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    pass

SHARED_DATA = Path(os.environ.get("QINGLANG_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Tables the library caches between processes go to a per-session folder, not the user's ~/.cache."""
    old = os.environ.get("QINGLANG_CACHE")
    os.environ["QINGLANG_CACHE"] = str(tmp_path_factory.mktemp("qinglang-cache"))
    yield
    if old is None:
        os.environ.pop("QINGLANG_CACHE", None)
    else:
        os.environ["QINGLANG_CACHE"] = old


# (text, fanquan, vulgar, rumor); -1 = not judged
TINY = [
    ("黑粉都给我爬，刷榜打投冲冲冲", 1, 0, -1),
    ("姐妹们今天打投任务每人五十票，完不成别说是粉丝", 1, 0, -1),
    ("集资还差三万，哥哥的生日应援不能输给对家", 1, 0, -1),
    ("控评了控评了，热评前十必须都是我们的", 1, 0, -1),
    ("对家就是糊咖，拉踩我们哥哥也配", 1, 1, -1),
    ("开盒了，这个黑子的住址和电话都在这里", 1, 0, -1),
    ("私生跟车拍到了，明天机场继续蹲", 1, 0, -1),
    ("轮博做数据，超话签到不能断", 1, 0, -1),
    ("今天天气不错，适合出去走走。", 0, 0, 0),
    ("这部电影的配乐很好听，推荐大家去看", 0, 0, 0),
    ("理性追星，拒绝集资，从我做起", 0, 0, -1),
    ("新歌上线了，旋律很抓耳", 0, 0, -1),
    ("你这个傻逼，滚远点", 0, 1, -1),
    ("什么垃圾东西，脑残一个", 0, 1, -1),
    ("去你妈的，恶心死了", 0, 1, -1),
    ("女的就该在家带孩子", 0, 1, -1),
    ("谢谢你的帮助，祝你生活愉快", 0, 0, 0),
    ("晚饭吃了面条，很满足", 0, 0, 0),
    ("【紧急扩散】某地自来水有毒，千万别喝！", 0, 0, 1),
    ("震惊！吃香蕉会致癌，赶紧转给家人", 0, 0, 1),
    ("网传某超市食品含有塑料，已经有人中毒", 0, 0, 1),
    ("喝醋可以杀死病毒，专家都这么说", 0, 0, 1),
    ("市气象台发布大风蓝色预警，请注意出行安全", 0, 0, 0),
    ("今年的高考报名工作将于下月开始", 0, 0, 0),
]


def tiny_arrays():
    texts = [t for t, *_ in TINY]
    y = np.array([row[1:] for row in TINY], dtype=np.int64)
    return texts, y


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A baseline model folder trained on ``TINY`` with fixed thresholds."""
    pytest.importorskip("sklearn")
    from qinglang_nlp.normalize import NormalizeConfig, normalize
    from qinglang_nlp.taxonomy import CATEGORIES
    from qinglang_nlp.train.baseline import TrainConfig, export_baseline, fit_baseline, to_classifier

    texts, y = tiny_arrays()
    norm = [normalize(t).text for t in texts]
    cfg = TrainConfig(min_df=1, C=10.0)
    vec, models = fit_baseline(norm, y, cfg)
    clf = to_classifier(vec, models, CATEGORIES, cfg)
    config = {
        "kind": "baseline", "name": "tiny", "version": "0", "categories": list(CATEGORIES),
        "thresholds": {c: 0.5 for c in CATEGORIES},
        "decision": {"review": {c: 0.5 for c in CATEGORIES}, "block": {c: 0.9 for c in CATEGORIES}},
        "normalize": NormalizeConfig().to_dict(),
        "baseline": {"ngram_range": [1, 3], "sublinear_tf": True},
    }
    out = tmp_path_factory.mktemp("tiny_model")
    export_baseline(clf, out, config)
    return out


@pytest.fixture()
def tiny_model(tiny_model_dir):
    import qinglang_nlp as ql

    return ql.load(tiny_model_dir, lexicon=False)


@pytest.fixture()
def shared_data() -> Path:
    if not (SHARED_DATA / "cold" / "train.csv").is_file():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set QINGLANG_DATA)")
    return SHARED_DATA
