"""Build the character LM of ``qinglang_nlp.restore`` from the TRAIN splits of the trainable datasets.

    .venv/bin/python training/build_charlm.py                 # writes qinglang_nlp/data/charlm.npz
    .venv/bin/python training/build_charlm.py --check         # exit 1 if a rebuild differs from the shipped file

Reads, through ``qinglang_nlp.datasets`` (data folder from ``--data``, ``$QINGLANG_DATA`` or ../shared/data), the
carved ``train`` split of cold, swsr, chnci, weibo21, weibo16, ced and our 饭圈 corpus (``training/data/fanquan``).
Never the carved test split, never toxicn (evaluation only), never a dev or official test file's rows outside the
carved train split. Texts whose hash puts them in the carved test split are skipped even if a corpus lists them
as train. The output holds counts turned into log-probabilities and candidate tables, no text; its ``meta`` records
the sha256 of every data file read, the number of texts per dataset and the build parameters. Deterministic:
the same data gives a byte-identical array set (the .npz zip container is compared array by array).
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qinglang_nlp.datasets import data_dir, is_carved_test, iter_dataset
from qinglang_nlp.restore import LM_PATH, CharLM, build_charlm

SOURCES = ("cold", "swsr", "chnci", "weibo21", "weibo16", "ced", "fanquan")


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def data_hashes(d: Path) -> dict[str, str]:
    """sha256 of every data file the build can read (dataset folders and the 饭圈 corpus train split)."""
    out = {}
    for name in SOURCES:
        folder = ROOT / "training" / "data" / "fanquan" if name == "fanquan" else d / name
        files = [folder / "train.jsonl"] if name == "fanquan" else sorted(
            p for p in folder.iterdir() if p.suffix in (".csv", ".jsonl", ".json"))
        for p in files:
            if p.is_file():
                rel = f"training/data/fanquan/{p.name}" if name == "fanquan" else f"{name}/{p.name}"
                out[rel] = _sha256(p)
    return out


def train_texts(d: Path) -> tuple[list[str], dict[str, int]]:
    """The carved train texts, in dataset then file order; counts per dataset."""
    texts, counts = [], {}
    for name in SOURCES:
        n = 0
        for rec in iter_dataset(name, "train", d):
            if is_carved_test(rec.text):
                continue
            texts.append(rec.text)
            n += 1
        counts[name] = n
    return texts, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="shared data folder (default $QINGLANG_DATA or ../shared/data)")
    ap.add_argument("--out", default=str(LM_PATH))
    ap.add_argument("--check", action="store_true", help="rebuild and compare with --out instead of writing")
    args = ap.parse_args()
    d = data_dir(args.data)
    texts, counts = train_texts(d)
    lm = build_charlm(texts, meta={"data_sha256": data_hashes(d), "texts_per_dataset": counts,
                                   "split": "carved train", "builder": "training/build_charlm.py"})
    if args.check:
        old = CharLM.load(args.out)
        same = set(old.arrays) == set(lm.arrays) and all(
            np.array_equal(np.asarray(old.arrays[k]), np.asarray(lm.arrays[k])) for k in lm.arrays)
        print("charlm: identical to", args.out if same else f"DIFFERENT from {args.out}")
        sys.exit(0 if same else 1)
    lm.save(args.out)
    size = Path(args.out).stat().st_size
    print(f"wrote {args.out}: {size / 1e6:.2f} MB; {lm.meta['texts']} texts ({counts}), {lm.meta['tokens']} tokens, "
          f"vocab {lm.meta['vocab']}, bigrams {lm.meta['bigrams_stored']} stored of {lm.meta['bigrams_seen']}, "
          f"discount {lm.meta['discount']:.3f}")


if __name__ == "__main__":
    main()
