"""Lexicon matching speed: build time, throughput (MB/s, median) and peak memory.

Matches ~10 MB (UTF-8) of real comments (CHNCI, COLD, SWSR train rows) against the bundled lists
(``bundled``) and 1k, 10k and all (~87k lines) konsheng terms read at run time from ``$QINGLANG_DATA/lexicons``
(never copied into the repo), with ``ahocorasick_rs`` and ``pyahocorasick``, with and without the pinyin view. Each configuration runs in its own subprocess so that its peak RSS (VmHWM) is its own.

    .venv/bin/python benchmarks/lexicon_speed.py [--mb 10] [--repeats 3] [--data DIR] [--json out.json]

Reported per configuration (medians over ``--repeats``): build seconds (normalising the terms + automata),
automaton seconds (the automata alone, from normalised keys), add/remove latency of one term (ms), matching
throughput on already normalised texts (the Moderator normalises once for lexicon and model) one ``match`` call
per comment and ``match_many`` over batches of 256, end-to-end ``match_many`` on raw strings (normalisation
included, one run), each as wall-clock and CPU-time MB/s (the machine is shared, so CPU time is the steadier
number), the hit count and peak RSS (MiB). A first line gives ``normalize_batch`` and ``pinyin_view`` alone and the load average.

``--startup N`` instead measures the first whole-word check (jieba's dictionary) in N fresh processes per case:
import + ``LexiconMatcher.default().build()``, then the first ``match`` that needs the dictionary, then a second
one; "cold" starts with empty cache folders (``QINGLANG_CACHE`` and ``TMPDIR``, where jieba keeps its own cache),
"warm" reuses the folders the cold run filled. ``--root DIR`` measures the checkout in DIR (an older commit from
``git archive``) with the same script.

    .venv/bin/python benchmarks/lexicon_speed.py --startup 5 [--root DIR]

``--stream`` instead compares the end-to-end paths on raw strings (normalisation included), side by side in one
process per configuration, the runs interleaved: the old way (``match_many`` on calls of 256 texts), ``scan``
(chunks of ``--chunk`` texts) in this process, and ``scan`` with each worker count of ``--workers``. Medians of
``--repeats`` runs of MB/s wall and MB/s CPU (this process plus its finished workers). ``--baseline COMMIT`` adds
``match_many`` and ``scan`` (each worker count) of the whole package at that commit (``git archive``, imported
next to today's as ``qinglang_nlp_COMMIT``: its own lexicon and normaliser). Every path must give the spans of the
first one (checked once, outside the timings).

    .venv/bin/python benchmarks/lexicon_speed.py --stream --sizes 10000 --pinyin off,on --repeats 5 [--workers 1,2] [--baseline 2bfce54]

``--helper-cost`` (with ``--stream``) adds, per configuration, what a chunk costs when a forked helper matches it
instead of this process: the chunks are sent one at a time (no overlap, so no contention between the two), and
the helper's CPU plus this process's (sending texts, building the returned ``Span``s) is set against matching
the same chunks here.

``--normalize-equal COMMIT`` instead counts the texts that ``normalize_batch`` (512 a call) and ``normalize`` give
differently today and at COMMIT (the whole package there, as ``--baseline``): normalised text, every character's
original span, parts and repeats, on the comments and on every string literal of the tests; exit status 1 if any.

``--call-sizes 256,512,...`` instead times ``normalize_batch`` alone on the comments in calls of that many texts
(median MB/s CPU of ``--repeats`` passes, sizes interleaved): the call size ``scan`` normalises at.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qinglang_nlp.datasets import data_dir, iter_dataset
from qinglang_nlp.lexicon import BUNDLED_LISTS, LexiconMatcher, Term, _Index, bundled_path, load_terms
from qinglang_nlp.normalize import normalize, normalize_batch, pinyin_view


def comments(mb: float, data: str | None) -> list[str]:
    """Real comments, round-robin over three datasets, until ``mb`` MB of UTF-8."""
    budget = int(mb * 1_000_000)
    iters = [iter_dataset(name, "train", data) for name in ("chnci", "cold", "swsr")]
    out: list[str] = []
    size = 0
    while size < budget and iters:
        for it in list(iters):
            rec = next(it, None)
            if rec is None:
                iters.remove(it)
                continue
            out.append(rec.text)
            size += len(rec.text.encode("utf-8"))
    return out


def konsheng_terms(data: str | None) -> list[str]:
    """Every line of every konsheng list (87k lines), in file order, stripped, non-empty."""
    d = data_dir(data) / "lexicons" / "konsheng_sensitive_lexicon"
    if not d.is_dir():
        sys.exit(f"konsheng lexicon not found at {d} (set QINGLANG_DATA or pass --data)")
    out = []
    for f in sorted(d.glob("*.txt")):
        out.extend(line.strip() for line in f.read_text(encoding="utf-8").splitlines() if line.strip())
    return out


def term_set(all_terms: list[str], n: int | None) -> list[str]:
    if n is None or n >= len(all_terms):
        return all_terms
    return random.Random(0).sample(all_terms, n)


def vmhwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _timed(fn, repeats: int) -> tuple[float, float]:
    """Median wall and median CPU seconds of ``fn()`` over ``repeats`` runs."""
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


BATCH = 256  # texts per match_many call (a Moderator batch)
WARM = ["预热一下：傻逼粉丝又去集资打投了 nmsl https://t.cn/x", "路口交通 他妈妈 have av"]


def run_one(n: int | None, backend: str, pinyin: bool, mb: float, repeats: int, data: str | None) -> dict:
    texts = comments(mb, data)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    if n == 0:  # the bundled lists, as LexiconMatcher.default() loads them
        lists: dict = {name: load_terms(bundled_path(name)) for name in BUNDLED_LISTS}
    else:
        lists = {"konsheng": [Term(t, "vulgar", list_name="konsheng") for t in term_set(konsheng_terms(data), n)]}
    terms = [t for ts in lists.values() for t in ts]
    for w in WARM:  # load normalisation tables (OpenCC, pinyin) outside the timings
        pinyin_view(normalize(w))
    holder: dict = {}

    def build_one() -> None:
        holder.clear()  # drop the previous matcher so that peak RSS holds one
        holder["m"] = LexiconMatcher(lists, pinyin=pinyin, backend=backend).build()

    build_w, build_c = _timed(build_one, repeats)
    m = holder["m"]
    # the automata alone (terms already normalised), separated from normalising the terms
    entries = [e for lst in m._snap.lists.values() for e in lst.values()]
    auto_w, auto_c = _timed(lambda: _Index(entries, backend), repeats)
    for w in WARM:
        m.match(w)
    normed = normalize_batch(texts)
    chunks = [normed[i:i + BATCH] for i in range(0, len(normed), BATCH)]
    raw_chunks = [texts[i:i + BATCH] for i in range(0, len(texts), BATCH)]
    hits = sum(len(m.match(nz)) for nz in normed)
    one_w, one_c = _timed(lambda: [m.match(nz) for nz in normed], repeats)
    many_w, many_c = _timed(lambda: [m.match_many(c) for c in chunks], repeats)
    e2e_w, e2e_c = _timed(lambda: [m.match_many(c) for c in raw_chunks], 1)  # normalisation-bound
    edits = []
    for i in range(20):  # one add + one remove of a new term, as a user would at run time
        t0 = time.perf_counter()
        m.add_term(f"测试词{i}号", category="vulgar", list_name="vulgar" if n == 0 else "konsheng")
        m.remove_term(f"测试词{i}号", list_name="vulgar" if n == 0 else "konsheng")
        edits.append((time.perf_counter() - t0) / 2)
    mbs = nbytes / 1e6
    return {
        "terms": len(terms), "keys": len(entries), "backend": backend, "pinyin": pinyin,
        "texts": len(texts), "mb": mbs, "hits": hits,
        "build_s": build_w, "build_cpu_s": build_c, "automaton_s": auto_w, "automaton_cpu_s": auto_c,
        "edit_ms": 1000 * statistics.median(edits),
        "one_mbs": mbs / one_w, "one_cpu_mbs": mbs / one_c,
        "many_mbs": mbs / many_w, "many_cpu_mbs": mbs / many_c,
        "e2e_mbs": mbs / e2e_w, "e2e_cpu_mbs": mbs / e2e_c,
        "peak_rss_mib": vmhwm_mib(),
    }


def _cpu_with_children() -> float:
    """CPU seconds of this process plus its finished (waited-for) child processes."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def package_at(commit: str) -> Any:
    """The whole ``qinglang_nlp`` package as it was at ``commit`` (``git archive``), imported next to today's as
    ``qinglang_nlp_<commit>``: its lexicon with its own normaliser, for end-to-end comparisons."""
    import importlib
    import tarfile
    import tempfile

    name = f"qinglang_nlp_{commit}"
    if name in sys.modules:
        return sys.modules[name]
    root = Path(tempfile.mkdtemp())
    tar = subprocess.run(["git", "archive", commit, "qinglang_nlp"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=__import__("io").BytesIO(tar)) as tf:
        tf.extractall(root, filter="data")
    (root / "qinglang_nlp").rename(root / name)
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(root))


def helper_cost(m: LexiconMatcher, texts: list[str], chunk: int, repeats: int) -> dict:
    """CPU seconds of scan's chunks matched here, and matched by one forked helper (its CPU, and this process's
    for sending and unpacking), the chunks sent one at a time; medians of ``repeats``."""
    import multiprocessing
    import resource
    from concurrent.futures import ProcessPoolExecutor

    from qinglang_nlp import lexicon

    def kids() -> float:
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    chunks = [texts[i:i + chunk] for i in range(0, len(texts), chunk)]
    here, helper, dispatch = [], [], []
    for _ in range(repeats):
        c0 = time.process_time()
        for c in chunks:
            m._scan_chunk(c)
        here.append(time.process_time() - c0)
        k0, c0 = kids(), time.process_time()
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"), initializer=lexicon._pool_init,
                                   initargs=(m, m._get()))
        protos = lexicon._protos(m._get())
        for c in chunks:
            lexicon._unpack(pool.submit(lexicon._pool_scan, c).result(), c, protos)
        pool.shutdown()
        dispatch.append(time.process_time() - c0)
        helper.append(kids() - k0)
    return {"here_s": statistics.median(here), "helper_s": statistics.median(helper),
            "dispatch_s": statistics.median(dispatch)}


def run_stream(n: int | None, pinyin: bool, mb: float, repeats: int, data: str | None, workers: list[int],
               chunk: int, baseline: str | None = None, helper: bool = False) -> dict:
    """End-to-end MB/s (raw strings in, spans out) of match_many(256 per call), scan() and scan(workers=N), and
    of match_many(256 per call) and scan of the package at commit ``baseline``."""
    texts = comments(mb, data)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    if n == 0:
        lists: dict = {name: load_terms(bundled_path(name)) for name in BUNDLED_LISTS}
    else:
        lists = {"konsheng": [Term(t, "vulgar", list_name="konsheng") for t in term_set(konsheng_terms(data), n)]}
    m = LexiconMatcher(lists, pinyin=pinyin, backend="rs").build()
    for w in WARM:
        pinyin_view(normalize(w))
        m.match(w)
    paths = {}
    if baseline:
        import importlib

        old_mod = importlib.import_module(package_at(baseline).__name__ + ".lexicon")
        old_lists = {name: [old_mod.Term(**{f: getattr(t, f) for f in t.__dataclass_fields__}) for t in ts]
                     for name, ts in lists.items()}
        om = old_mod.LexiconMatcher(old_lists, pinyin=pinyin, backend="rs").build()
        for w in WARM:
            om.match(w)
        paths[f"match_many(256) at {baseline}"] = lambda: [s for i in range(0, len(texts), BATCH)
                                                          for s in om.match_many(texts[i:i + BATCH])]
        for k in workers:
            paths[f"scan(workers={k}) at {baseline}"] = lambda k=k: list(om.scan(texts, chunk_size=chunk, workers=k))
    paths["match_many(256)"] = lambda: [s for i in range(0, len(texts), BATCH) for s in m.match_many(texts[i:i + BATCH])]
    for k in workers:
        paths[f"scan(workers={k})"] = lambda k=k: list(m.scan(texts, chunk_size=chunk, workers=k))
    def fields(res: list[list[Any]]) -> list[list[tuple]]:  # a baseline package's Span is a class of its own
        return [[tuple(vars(sp).values()) for sp in r] for r in res]

    old = fields(paths[next(iter(paths))]())
    same = {name: fields(fn()) == old for name, fn in paths.items()}  # also warms every path once
    wall: dict[str, list[float]] = {name: [] for name in paths}
    cpu: dict[str, list[float]] = {name: [] for name in paths}
    loads = [os.getloadavg()[0]]
    for _ in range(repeats):  # interleaved: a load change hits every path alike
        for name, fn in paths.items():
            w0, c0 = time.perf_counter(), _cpu_with_children()
            fn()
            wall[name].append(time.perf_counter() - w0)
            cpu[name].append(_cpu_with_children() - c0)
        loads.append(os.getloadavg()[0])
    mbs = nbytes / 1e6
    cost = helper_cost(m, texts, chunk, repeats) if helper else None
    return {
        "helper_cost": cost,
        "terms": sum(len(v) for v in lists.values()), "pinyin": pinyin, "texts": len(texts), "mb": mbs,
        "spans": sum(map(len, old)), "chunk": chunk, "load_min": min(loads), "load_max": max(loads),
        "paths": {name: {"mbs": mbs / statistics.median(wall[name]), "cpu_mbs": mbs / statistics.median(cpu[name]),
                         "identical": same[name]} for name in paths},
    }


def call_sizes(mb: float, repeats: int, data: str | None, sizes: list[int]) -> None:
    """Print normalize_batch MB/s (wall and CPU, medians) per texts-per-call, the sizes interleaved."""
    texts = comments(mb, data)
    mbs = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    normalize_batch(texts)  # load the tables (and the restorer's LM) outside the timings
    wall: dict[int, list[float]] = {n: [] for n in sizes}
    cpu: dict[int, list[float]] = {n: [] for n in sizes}
    for _ in range(repeats):
        for n in sizes:
            w, c = _timed(lambda n=n: [normalize_batch(texts[i:i + n]) for i in range(0, len(texts), n)], 1)
            wall[n].append(w)
            cpu[n].append(c)
    print(f"# normalize_batch alone, {len(texts)} comments, {mbs:.2f} MB, commit {_commit(ROOT)}, medians of {repeats} "
          f"interleaved passes, load average {os.getloadavg()[0]:.1f}")
    print("| texts per call | MB/s wall | MB/s CPU |")
    print("|---|---|---|")
    for n in sizes:
        print(f"| {n} | {mbs / statistics.median(wall[n]):.1f} | {mbs / statistics.median(cpu[n]):.1f} |")


def reference(mb: float, repeats: int, data: str | None) -> dict:
    texts = comments(mb, data)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    for w in WARM:
        pinyin_view(normalize(w))
    out: dict = {"texts": len(texts), "mb": nbytes / 1e6}
    w, c = _timed(lambda: normalize_batch(texts), repeats)
    out["normalize_mbs"], out["normalize_cpu_mbs"] = nbytes / 1e6 / w, nbytes / 1e6 / c
    normed = normalize_batch(texts)
    w, c = _timed(lambda: [pinyin_view(nz) for nz in normed], repeats)
    out["pinyin_view_mbs"], out["pinyin_view_cpu_mbs"] = nbytes / 1e6 / w, nbytes / 1e6 / c
    out["load_avg"] = os.getloadavg()[0]
    return out


STARTUP_CODE = r"""
import json, time
w0, c0 = time.perf_counter(), time.process_time()
from qinglang_nlp.lexicon import LexiconMatcher
m = LexiconMatcher.default().build()
w1, c1 = time.perf_counter(), time.process_time()
first = m.match("前面路口交通管制，他妈妈来了")  # 口交 and 他妈 are whole-word terms: the dictionary is needed
w2, c2 = time.perf_counter(), time.process_time()
second = m.match("路口交通管制时他喜欢口交")
w3, c3 = time.perf_counter(), time.process_time()
assert first == [] and [s.term for s in second] == ["口交"], (first, second)
print(json.dumps({"build_s": w1 - w0, "build_cpu_s": c1 - c0, "first_s": w2 - w1, "first_cpu_s": c2 - c1,
                  "second_ms": 1000 * (w3 - w2)}))
"""


def startup(repeats: int, root: Path) -> None:
    """First-call latency of the whole-word check in fresh processes (cold and warm caches), medians."""
    import tempfile

    print(f"# startup of {root} (commit {_commit(root)}), {repeats} fresh processes per case, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| case | import+build s wall / CPU | first match s wall / CPU | second match ms |")
    print("|---|---|---|---|")
    for case in ("cold", "warm"):
        rows = []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as d:
                env = {**os.environ, "QINGLANG_CACHE": d, "TMPDIR": d, "PYTHONPATH": str(root)}
                if case == "warm":  # fill the caches first, then measure a second process
                    subprocess.run([sys.executable, "-c", STARTUP_CODE], cwd=root, env=env, check=True,
                                   capture_output=True)
                res = subprocess.run([sys.executable, "-c", STARTUP_CODE], cwd=root, env=env, check=True,
                                     capture_output=True, text=True)
                rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(f"| {case} | {med['build_s']:.2f} / {med['build_cpu_s']:.2f} | {med['first_s']:.2f} / "
              f"{med['first_cpu_s']:.2f} | {med['second_ms']:.1f} |", flush=True)


def _commit(root: Path) -> str:
    res = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=False)
    return res.stdout.strip() or "unknown (not a git checkout)"


def stream_table(args: argparse.Namespace, sub: Callable[[str], dict]) -> None:
    """Print the --stream table: one row per term set, pinyin setting and path."""
    print(f"# end to end on raw strings (normalisation included), commit {_commit(ROOT)}, {os.cpu_count()} CPUs, "
          f"medians of {args.repeats} interleaved runs; CPU = this process + its workers")
    print("| terms | pinyin | path | MB/s wall | MB/s CPU | same spans as the first path | spans | load avg (min-max) |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for size in args.sizes.split(","):
        for py in args.pinyin.split(","):
            r = sub(f"stream:{size}:{py}")
            rows.append(r)
            for name, p in r["paths"].items():
                if name.startswith("scan"):
                    head, _, tail = name.partition(")")
                    name = f"{head}, chunk_size={r['chunk']}){tail}"
                print(f"| {r['terms']} | {py} | {name} | {p['mbs']:.1f} | {p['cpu_mbs']:.1f} "
                      f"| {'yes' if p['identical'] else 'NO'} | {r['spans']} | {r['load_min']:.1f}-{r['load_max']:.1f} |",
                      flush=True)
    for r in rows:
        c = r["helper_cost"]
        if c:
            print(f"- {r['terms']} terms, pinyin {'on' if r['pinyin'] else 'off'}: the chunks matched here "
                  f"{c['here_s']:.2f} s CPU; by one helper {c['helper_s']:.2f} s in the helper + {c['dispatch_s']:.2f} s "
                  f"here (sending, building the Spans) = {(c['helper_s'] + c['dispatch_s']) / c['here_s']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"stream": rows}, indent=1))


def normalize_equal(commit: str, mb: float, data: str | None) -> int:
    """Print and return how many texts ``normalize_batch`` (512 a call) and ``normalize`` normalise differently
    today and at ``commit`` (text, every character's original span, parts, repeats): the comments, and every
    string literal of the tests (in calls of 512 and in one call)."""
    import ast
    import importlib

    old = importlib.import_module(package_at(commit).__name__ + ".normalize")
    new = importlib.import_module("qinglang_nlp.normalize")

    def sig(n: Any) -> tuple:
        return n.original, n.text, n.alignments, [tuple(p) for p in n.parts], [tuple(r) for r in n.repeats]

    lits: set[str] = set()
    for f in sorted((ROOT / "tests").glob("test_*.py")):
        lits.update(node.value for node in ast.walk(ast.parse(f.read_text(encoding="utf-8")))
                    if isinstance(node, ast.Constant) and isinstance(node.value, str))
    fixtures = sorted(lits)
    texts = comments(mb, data)
    bad = 0
    for name, items, size in (("test literals", fixtures, 512), ("test literals, one call", fixtures, len(fixtures)),
                              (f"{mb:g} MB of comments", texts, 512)):
        for a in range(0, len(items), size):
            bad += sum(sig(x) != sig(y) for x, y in zip(new.normalize_batch(items[a:a + size]),
                                                          old.normalize_batch(items[a:a + size])))
        print(f"normalize_batch, {name}: {len(items)} texts, differences so far {bad}", flush=True)
    bad += sum(sig(new.normalize(t)) != sig(old.normalize(t)) for t in fixtures)
    print(f"normalize() on the test literals too: {bad} differences in all (commit {_commit(ROOT)} vs {commit})")
    return bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data", default=None)
    ap.add_argument("--sizes", default="bundled,1000,10000,all", help="bundled = the bundled lists")
    ap.add_argument("--backends", default="rs,py")
    ap.add_argument("--py-sizes", default="10000", help="sizes at which the 'py' backend is measured")
    ap.add_argument("--pinyin", default="off,on")
    ap.add_argument("--json", default=None)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--startup", type=int, default=0, help="measure first-call latency in N fresh processes per case")
    ap.add_argument("--root", default=str(ROOT), help="checkout to measure with --startup")
    ap.add_argument("--stream", action="store_true", help="compare match_many, scan and scan with workers end to end")
    ap.add_argument("--workers", default="1,2", help="worker counts of scan measured with --stream")
    ap.add_argument("--chunk", type=int, default=2048, help="scan chunk_size measured with --stream")
    ap.add_argument("--helper-cost", action="store_true", help="with --stream: CPU of a chunk in a helper vs here")
    ap.add_argument("--normalize-equal", default=None, metavar="COMMIT",
                    help="count texts that normalize_batch/normalize give differently today and at COMMIT")
    ap.add_argument("--call-sizes", default=None, help="time normalize_batch alone at these texts-per-call sizes")
    ap.add_argument("--baseline", default=None, help="with --stream: also match_many and scan of the package at this commit")
    args = ap.parse_args()
    if args.normalize_equal:
        sys.exit(1 if normalize_equal(args.normalize_equal, args.mb, args.data) else 0)
    if args.call_sizes:
        call_sizes(args.mb, args.repeats, args.data, [int(n) for n in args.call_sizes.split(",")])
        return
    if args.startup:
        startup(args.startup, Path(args.root).resolve())
        return
    if args.one:
        if args.one == "ref":
            print(json.dumps(reference(args.mb, args.repeats, args.data)))
            return
        if args.one.startswith("stream:"):
            _, n, py = args.one.split(":")
            size = None if n == "all" else 0 if n == "bundled" else int(n)
            workers = [int(k) for k in args.workers.split(",")]
            print(json.dumps(run_stream(size, py == "on", args.mb, args.repeats, args.data, workers, args.chunk,
                                        args.baseline, args.helper_cost)))
            return
        n, backend, py = args.one.split(":")
        size = None if n == "all" else 0 if n == "bundled" else int(n)
        print(json.dumps(run_one(size, backend, py == "on", args.mb, args.repeats, args.data)))
        return
    common = ["--mb", str(args.mb), "--repeats", str(args.repeats), "--workers", args.workers,
              "--chunk", str(args.chunk)] + (["--data", args.data] if args.data else [])
    common += ["--baseline", args.baseline] if args.baseline else []
    common += ["--helper-cost"] if args.helper_cost else []

    def sub(one: str) -> dict:
        res = subprocess.run([sys.executable, __file__, "--one", one, *common], capture_output=True, text=True, check=False,
                             env={**os.environ, "PYTHONHASHSEED": "0"})
        if res.returncode != 0:
            sys.exit(f"configuration {one} failed:\n{res.stderr[-2000:]}")
        return json.loads(res.stdout.strip().splitlines()[-1])

    if args.stream:
        stream_table(args, sub)
        return
    ref = sub("ref")
    print(f"# {ref['texts']} comments, {ref['mb']:.2f} MB, load average {ref['load_avg']:.1f} on "
          f"{os.cpu_count()} CPUs; normalize_batch alone {ref['normalize_mbs']:.2f} MB/s "
          f"(CPU {ref['normalize_cpu_mbs']:.2f}); pinyin_view alone {ref['pinyin_view_mbs']:.1f} MB/s "
          f"(CPU {ref['pinyin_view_cpu_mbs']:.1f})")
    print("| terms (keys) | backend | pinyin | build s wall / CPU | automaton s wall / CPU | add/remove ms "
          "| match() MB/s wall / CPU "
          f"| match_many({BATCH}) MB/s wall / CPU | normalise+match_many MB/s wall / CPU | hits | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for size in args.sizes.split(","):
        for backend in args.backends.split(","):
            if backend == "py" and size not in args.py_sizes.split(","):
                continue
            for py in args.pinyin.split(","):
                r = sub(f"{size}:{backend}:{py}")
                rows.append(r)
                print(f"| {r['terms']} ({r['keys']}) | {backend} | {py} | {r['build_s']:.2f} / {r['build_cpu_s']:.2f} "
                      f"| {r['automaton_s']:.2f} / {r['automaton_cpu_s']:.2f} "
                      f"| {r['edit_ms']:.1f} | {r['one_mbs']:.1f} / {r['one_cpu_mbs']:.1f} "
                      f"| {r['many_mbs']:.1f} / {r['many_cpu_mbs']:.1f} | {r['e2e_mbs']:.2f} / {r['e2e_cpu_mbs']:.2f} "
                      f"| {r['hits']} | {r['peak_rss_mib']:.0f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"reference": ref, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
