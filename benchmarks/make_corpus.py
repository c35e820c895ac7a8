"""Synthetic crawl of WeChat public-account posts and Weibo posts/comments, built from the shared corpora.

    .venv/bin/python benchmarks/make_corpus.py -o /tmp/posts_100k.jsonl --rows 100000 [--split test] [--seed 0]

Mix (by default): 50% Weibo comments (short texts of COLD, CHNCI, SWSR, fanquan short items), 25% Weibo
posts (Weibo21, Weibo16, CED), 20% WeChat articles (title + about 1,500 characters of WeChat-style HTML:
``<section>``/``<p>``/``<span style>``, ``&nbsp;``, images, an inline ``<script>``; paragraphs drawn from the
rumour posts and the fanquan written articles, or, for 饭圈 accounts, mostly fanquan items) and 5% titles
only. Accounts have Zipf-skewed post counts (a few accounts post thousands, most post a handful); 公众号
accounts include the 打榜/签到 style "偶像指数榜" and "为爱签个到". Schema: id, account, title, content (HTML)
or text, url, published_at, plus pass-through fields ``kind``, ``read_count`` and ``src`` (dataset:record id
of the first text used). Texts come from the ``--split`` carved split (default ``test``: not seen by
trained models). Nothing from shared/ is written into the repository: write the corpus outside it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHORT = ("cold", "chnci", "swsr")
POSTS = ("weibo21", "weibo16", "ced")
FANQUAN_ACCOUNTS = ["偶像指数榜", "为爱签个到", "星光打榜站", "超话数据组", "应援小分队", "爱豆日报"]
WECHAT_WORDS = ["娱乐", "星闻", "生活", "健康", "资讯", "观察", "日报", "速递", "视界", "圈内", "热点", "科普"]
STYLES = ["font-size:15px;color:#333;", "line-height:1.75em;letter-spacing:1px;", "color:rgb(62,62,62);"]


def _zipf_weights(n: int, a: float) -> list[float]:
    return [1.0 / (k ** a) for k in range(1, n + 1)]


def load_texts(split: str, data: str | None) -> dict[str, list[tuple[str, str, bool]]]:
    """(source id, text, positive) per dataset of one carved split; absent datasets are skipped.

    ``positive``: the dataset labels the text 1 in any category."""
    from qinglang_nlp.datasets import iter_dataset
    from qinglang_nlp.errors import DataError

    out: dict[str, list[tuple[str, str]]] = {}
    for name in (*SHORT, *POSTS, "fanquan"):
        try:
            out[name] = [(r.id, r.text, any(v == 1 for v in r.labels.values()))
                         for r in iter_dataset(name, split, data)]
        except (DataError, OSError, ValueError) as e:
            print(f"skip {name}: {e}", file=sys.stderr)
            out[name] = []
    if not any(out.values()):
        raise SystemExit(f"no texts found for split {split!r} (set QINGLANG_DATA or --data)")
    return out


def wechat_html(paras: list[str], rng: random.Random, title: str) -> str:
    """WeChat-article-like HTML around ``paras``."""
    parts = ['<section style="margin:0 8px;" data-tools="editor">']
    for i, p in enumerate(paras):
        st = rng.choice(STYLES)
        if rng.random() < 0.3:
            p = p.replace("，", "，<strong>", 1) + "</strong>" if "，" in p else p
        parts.append(f'<p style="{st}"><span style="{st}">{p}</span></p>')
        if rng.random() < 0.25:
            parts.append(f'<p><img data-src="https://mmbiz.example/{rng.getrandbits(40):x}.jpg" '
                         'style="width:100%;"/></p><p>&nbsp;</p>')
        if i == 0 and rng.random() < 0.5:
            parts.append('<p style="text-align:center;"><span>▼ 点击上方蓝字关注我们 ▼</span></p>')
    parts.append(f'</section><script type="text/javascript">var msg_title = "{title[:20]}";</script>')
    return "".join(parts)


def make(rows: int, texts: dict[str, list[tuple[str, str, bool]]], seed: int = 0, n_wechat: int = 600,
         n_weibo: int = 8000, positive_rate: float | None = None):
    """Yield ``rows`` post dicts.

    ``positive_rate``: draw each text from the dataset-positive texts with this probability, else from the
    negatives (default: as the datasets mix them, which is far more toxic than a real crawl).
    """
    rng = random.Random(seed)

    class _Pool(list):
        def pick(self):
            if positive_rate is None:
                return rng.choice(self)[:2]
            want = rng.random() < positive_rate
            side = self.pos if want and self.pos else self.neg if self.neg else self.pos
            return rng.choice(side)[:2]

    def pool(items):
        p = _Pool(items)
        p.pos = [x for x in items if x[2]]
        p.neg = [x for x in items if not x[2]]
        return p

    short = pool([x for n in SHORT for x in texts[n]] + [x for x in texts["fanquan"] if len(x[1]) < 120])
    posts = pool([x for n in POSTS for x in texts[n]])
    fq_long = [x for x in texts["fanquan"] if len(x[1]) >= 60] or texts["fanquan"]
    fq_all = pool(texts["fanquan"])
    long_pool = pool(posts + fq_long)
    if not short:
        short = posts if posts else fq_all
    if not posts:
        posts = short
    wechat = FANQUAN_ACCOUNTS + [f"{rng.choice(WECHAT_WORDS)}{rng.choice(WECHAT_WORDS)}{k}号" for k in
                                 range(n_wechat - len(FANQUAN_ACCOUNTS))]
    rng.shuffle(wechat[len(FANQUAN_ACCOUNTS):])
    w_weights = _zipf_weights(len(wechat), 1.1)
    # keep the 打榜/签到 accounts among the busy ones, not necessarily the busiest
    weibo = [f"微博用户{rng.getrandbits(32):08x}" for _ in range(n_weibo)]
    u_weights = _zipf_weights(n_weibo, 1.05)
    t0 = 1767225600  # 2026-01-01 UTC
    for i in range(rows):
        r = rng.random()
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 + rng.randrange(330 * 86400)))
        if r < 0.25:  # WeChat article (20%) or title only (5%)
            acc = rng.choices(wechat, w_weights)[0]
            fq = acc in FANQUAN_ACCOUNTS
            src, first = (fq_all if fq and fq_all else long_pool).pick()
            title = first.replace("\n", " ")[: rng.randint(12, 30)]
            url = f"https://mp.weixin.qq.example/s/{hashlib.sha1(f'{seed}:{i}'.encode()).hexdigest()[:22]}"
            rec = {"id": f"wx-{i:07d}", "account": acc, "title": title, "url": url, "published_at": ts}
            if r < 0.20:
                target = max(200, int(rng.lognormvariate(7.3, 0.35)))  # median ~1,500 characters
                paras, n = [first], len(first)
                src_pool = fq_all if fq and fq_all and rng.random() < 0.8 else long_pool
                while n < target:
                    p = src_pool.pick()[1]
                    paras.append(p)
                    n += len(p)
                rec["content"] = wechat_html(paras, rng, title)
                kind = "article"
            else:
                kind = "title"
            rec.update(kind=kind, read_count=int(rng.paretovariate(1.2) * 100), src=src)
        else:
            acc = rng.choices(weibo, u_weights)[0]
            src, text = (posts if r < 0.5 else short).pick()
            kind = "weibo_post" if r < 0.5 else "comment"
            rec = {"id": f"wb-{i:07d}", "account": acc, "text": text,
                   "url": f"https://weibo.example/{acc[-8:]}/{i}", "published_at": ts,
                   "kind": kind, "read_count": int(rng.paretovariate(1.5) * 10), "src": src}
        yield rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", required=True, help=".jsonl or .parquet")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--split", default="test", choices=["train", "dev", "test"])
    ap.add_argument("--data", default=None, help="shared data folder (default $QINGLANG_DATA or ../shared/data)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--positive-rate", type=float, default=None,
                    help="share of texts drawn from dataset positives (default: the datasets' own mix)")
    a = ap.parse_args(argv)
    out = Path(a.output)
    if ROOT in out.resolve().parents and "benchmarks" in out.resolve().parts:
        print("note: keep generated corpora out of git (they quote the shared datasets)", file=sys.stderr)
    texts = load_texts(a.split, a.data)
    recs = make(a.rows, texts, a.seed, positive_rate=a.positive_rate)
    if out.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = ["id", "account", "title", "content", "text", "url", "published_at", "kind", "read_count", "src"]
        with pq.ParquetWriter(out, pa.schema([(c, pa.int64() if c == "read_count" else pa.string())
                                              for c in cols])) as w:
            batch: list[dict] = []
            for r in recs:
                batch.append(r)
                if len(batch) == 10_000:
                    w.write_table(pa.Table.from_pylist(batch, schema=w.schema))
                    batch = []
            if batch:
                w.write_table(pa.Table.from_pylist(batch, schema=w.schema))
    else:
        with open(out, "w", encoding="utf-8") as f:
            for r in recs:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    counts = {k: len(v) for k, v in texts.items()}
    print(json.dumps({"rows": a.rows, "bytes": out.stat().st_size, "source_texts": counts}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
