"""Mine a new batch of real candidate items for the 饭圈 corpus (round 3) from shared train/dev files.

    .venv/bin/python training/mine_fanquan.py --out work_tmp/fq_v3/candidates.jsonl --n 800   # + --n-rumor 200

Only *chooses what to read*: every candidate is labelled by hand under GUIDELINE.md before it enters
``raw/``. Rules (same spirit as rounds 1-2, see the corpus README):

* CHNCI rows (train.csv, dev.csv) only; never a text in any dataset's carved test split; never a row already in
  ``raw/*.jsonl``; deduplicated on punctuation-free text within the batch and against corpus items stored
  with text (COLD/SWSR; the others are excluded by file and row);
* Weibo16 and CED source posts (train/dev files) with an entertainment cue (``ENTERTAIN``), for the gossip
  hoaxes the guideline labels ``fq_rumor`` and the celebrity news it labels 0; at most ``--n-rumor`` of them;
* 6 to 300 characters; not a bare @-mention / emoji / bracket emoticon line;
* the text has a *specific* fandom cue (the round-1 specific cues plus fan-role words such as 哥哥粉, 姐姐粉,
  正主, 你家, 爱豆), ranked by a seeded hash (seed 11) so the choice is reproducible and not cherry-picked;
  a quarter of the batch is drawn from entertainment rows with a general fan word (粉丝, 偶像, 追星), so the
  batch also holds the ordinary negatives a deployed model meets.

The output rows carry ``id``, ``text`` (for the readers, never committed), ``text_ref``, ``style`` and the
``cue`` that chose the row; Weibo16/CED rows also carry the dataset's ``rumor`` label (1 = rumor), which the
readers copy, as round 1 did for Weibo21.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qinglang_nlp.datasets import data_dir, is_carved_test
from qinglang_nlp.fanquan_corpus import corpus_dir, dedup_key, read_jsonl, text_sha256

SPECIFIC = ("脑残粉", "黑粉", "唯粉", "毒唯", "对家", "控评", "打投", "打榜", "刷榜", "集资", "应援", "超话", "私生",
            "开盒", "拉踩", "引战", "塌房", "脱粉", "回踩", "粉圈", "饭圈", "粉头", "站姐", "后援会", "水军", "黑子",
            "洗地", "顶流", "糊咖", "蒸煮", "正主", "爱豆", "追星", "哥哥粉", "姐姐粉", "粉籍", "路人粉", "真爱粉",
            "你家哥哥", "你家姐姐", "你家爱豆", "你家蒸煮", "粉丝滤镜", "护主", "撕番", "番位", "营销号", "黑料",
            "通稿", "代拍", "接机", "反黑", "做数据", "轮博", "投票", "签到")
GENERAL = ("粉丝", "偶像", "明星")  # 追星 is a specific cue
#: entertainment cues for the rumor datasets (Weibo16, CED): gossip hoaxes about entertainers are ``fq_rumor``
ENTERTAIN = ("明星", "艺人", "演员", "歌手", "影帝", "影后", "天王", "天后", "偶像", "粉丝", "绯闻", "恋情", "娱乐圈",
             "经纪人", "经纪公司", "综艺", "选秀", "超女", "快男", "剧组", "导演", "出道")
PLATFORM_STYLE = {"wb": "weibo_comment", "dy": "douyin_comment", "bz": "bilibili_comment", "bili": "bilibili_comment"}
JUNK = re.compile(r"^(\s*(@\S+|\[[^\]]{1,8}\]|[\W_]))*\s*$")


def _rank(text: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{text}".encode()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=800)
    ap.add_argument("--n-rumor", type=int, default=200, help="items from Weibo16 + CED")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()

    root = data_dir()
    seen: set[str] = set()
    used: set[tuple[str, str, int]] = set()
    for p in sorted(corpus_dir().glob("raw/*.jsonl")):
        for r in read_jsonl(p):
            if r.get("text"):
                seen.add(dedup_key(r["text"]))
            ref = r.get("text_ref")
            if ref:
                used.add((ref["dataset"], ref["file"], ref["row"]))
    specific, general = [], []
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    for fn in ("train.csv", "dev.csv"):
        with open(root / "chnci" / fn, encoding="utf-8-sig", newline="") as f:
            for i, r in enumerate(csv.DictReader(f)):
                t = r["content"] or ""
                if not 6 <= len(t) <= 300 or JUNK.match(t) or ("chnci", fn, i) in used or is_carved_test(t):
                    continue
                cue = next((c for c in SPECIFIC if c in t), None)
                gen = None if cue else next((c for c in GENERAL if c in t), None)
                if cue is None and not (gen and r["genre"] == "entainment"):
                    continue
                row = {"text": t, "text_ref": {"dataset": "chnci", "file": fn, "row": i, "sha256": text_sha256(t)},
                       "style": PLATFORM_STYLE.get(r["platform"], "social_comment"), "cue": cue or gen,
                       "genre": r["genre"]}
                (specific if cue else general).append(row)
    rumor = []
    for ds in ("weibo16", "ced"):
        for fn in ("train.jsonl", "dev.jsonl"):
            with open(root / ds / fn, encoding="utf-8") as f:
                for i, line in enumerate(f):
                    if not line.strip():
                        continue
                    src = json.loads(line)
                    t = src.get("text") or ""
                    cue = next((c for c in ENTERTAIN if c in t), None)
                    if cue is None or not 6 <= len(t) <= 300 or (ds, fn, i) in used or is_carved_test(t):
                        continue
                    rumor.append({"text": t, "text_ref": {"dataset": ds, "file": fn, "row": i,
                                                          "sha256": text_sha256(t)},
                                  "style": "weibo_post", "cue": cue, "genre": ds, "rumor": int(src["label"])})
    out, keys = [], set(seen)
    n_general = args.n // 4
    for pool, k in ((sorted(rumor, key=lambda r: _rank(r["text"], args.seed)), args.n_rumor),
                    (sorted(general, key=lambda r: _rank(r["text"], args.seed)), n_general),
                    (sorted(specific, key=lambda r: _rank(r["text"], args.seed)), args.n - n_general)):
        taken = 0
        for r in pool:
            key = dedup_key(r["text"])
            if key in keys:
                continue
            keys.add(key)
            ref = r["text_ref"]
            r["id"] = f"real3-{ref['dataset']}-{ref['file'].split('.')[0]}-{ref['row']:06d}"
            out.append(r)
            taken += 1
            if taken == k:
                break
    out.sort(key=lambda r: r["id"])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for r in out:
            keep = ("id", "text", "text_ref", "style", "cue", "genre", "rumor")
            f.write(json.dumps({k: r[k] for k in keep if k in r}, ensure_ascii=False) + "\n")
    print(f"{len(rumor)} Weibo16/CED, {len(specific)} specific-cue and {len(general)} general entertainment rows "
          f"available; wrote {len(out)} to {args.out}")


if __name__ == "__main__":
    main()
