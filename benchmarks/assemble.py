"""Rebuild BENCHMARKS.md: its head (up to the generated accuracy block) plus the results fragments.

    python benchmarks/assemble.py

Fragments (each written beside the benchmark that produced it, with its own commands): normalize.md (speed and
the cloaked test), normalize_speed.md, restore.md, lexicon.md, lexicon_update.md, transformer.md, onnx.md,
batch.md, reliability.md. Numbers are never typed here.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRAGMENTS = ["normalize.md", "normalize_speed.md", "restore.md", "lexicon.md", "lexicon_update.md", "lexicon_s5.md", "lexicon_s6.md", "lexicon_s7.md",
             "lexicon_quality_s5.md", "lexicon_quality_s6.md", "transformer.md", "cloak_update.md", "cloak_s4.md",
             "onnx.md", "onnx_update.md", "batch.md", "batch_s5.md", "batch_s6.md", "reliability.md"]
END = "<!-- accuracy:end -->"


def main() -> None:
    bench = ROOT / "BENCHMARKS.md"
    text = bench.read_text(encoding="utf-8")
    head = text.split(END, 1)[0] + END + "\n"
    parts = [head]
    for name in FRAGMENTS:
        p = ROOT / "benchmarks" / name
        if p.is_file():
            parts.append(f"\n<!-- from benchmarks/{name} -->\n" + p.read_text(encoding="utf-8").strip() + "\n")
    bench.write_text("".join(parts), encoding="utf-8")
    print(f"wrote {bench} from {[n for n in FRAGMENTS if (ROOT / 'benchmarks' / n).is_file()]}")


if __name__ == "__main__":
    main()
