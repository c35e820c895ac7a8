"""Readable evaluation reports: ``metrics.json``, ``report.md`` and a self-contained ``report.html``.

Charts (PR curves, reliability diagrams, score histograms) need matplotlib (``pip install .[report]``);
without it the HTML report is written without images and says so. All user text is HTML-escaped.
"""
from __future__ import annotations

import base64
import html
import io
import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["comparison_rows", "published_baselines", "write_reports"]

_COLS = ("precision", "recall", "f1", "macro_f1", "accuracy", "roc_auc", "pr_auc", "brier", "ece")


def published_baselines() -> list[dict[str, Any]]:
    """Published numbers for our datasets, with source and whether they are comparable to our split."""
    text = resources.files("qinglang_nlp").joinpath("data/published_baselines.json").read_text(encoding="utf-8")
    return json.loads(text)


def _f(v: Any) -> str:
    return "–" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


def comparison_rows(runs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (dataset, model, category) from ``{"dataset|model": report}``."""
    rows = []
    for key, rep in runs.items():
        ds, model = key.split("|", 1)
        for cat, e in rep["categories"].items():
            m = e["at_model_threshold"]
            rows.append({"dataset": ds, "model": model, "category": cat, "n": m["n"], **{c: m[c] for c in _COLS},
                         "f1_ci95": e["ci95"]["f1"], "acc_ci95": e["ci95"]["accuracy"],
                         "dev_threshold": e.get("dev_threshold"),
                         "f1_at_dev_threshold": (e.get("at_dev_threshold") or {}).get("f1"),
                         "texts_per_s": rep.get("texts_per_s")})
    return rows


def _md_table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(_f(r.get(c)) if not isinstance(r.get(c), list)
                                     else "[" + ", ".join(_f(x) for x in r[c]) + "]" for c in cols) + " |")
    return "\n".join(out)


def _charts(curves: dict[str, dict[str, np.ndarray]]) -> dict[str, str]:
    """PNG charts (base64) per 'dataset|model|category' from y/s arrays; empty without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    out = {}
    for key, d in curves.items():
        y, s = d["y"], d["s"]
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
        order = np.argsort(-s)
        tp = np.cumsum(y[order])
        prec = tp / np.arange(1, len(y) + 1)
        rec = tp / max(y.sum(), 1)
        axes[0].plot(rec, prec)
        axes[0].set(xlabel="recall", ylabel="precision", title="PR curve", xlim=(0, 1), ylim=(0, 1.02))
        bins = np.linspace(0, 1, 11)
        idx = np.minimum((s * 10).astype(int), 9)
        xs = [s[idx == b].mean() for b in range(10) if (idx == b).any()]
        ys = [y[idx == b].mean() for b in range(10) if (idx == b).any()]
        axes[1].plot([0, 1], [0, 1], "--", color="grey")
        axes[1].plot(xs, ys, "o-")
        axes[1].set(xlabel="mean score", ylabel="fraction positive", title="reliability")
        axes[2].hist([s[y == 0], s[y == 1]], bins=bins, label=["negative", "positive"])
        axes[2].set(xlabel="score", title="score histogram")
        axes[2].legend()
        fig.suptitle(key)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        plt.close(fig)
        out[key] = base64.b64encode(buf.getvalue()).decode("ascii")
    return out


def write_reports(out_dir: str | Path, runs: dict[str, dict[str, Any]],
                  curves: dict[str, dict[str, np.ndarray]] | None = None, command: str = "") -> dict[str, Path]:
    """Write ``metrics.json``, ``report.md`` and ``report.html`` into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = comparison_rows(runs)
    pub = published_baselines()
    (out / "metrics.json").write_text(json.dumps({"command": command, "runs": runs, "table": rows},
                                                 ensure_ascii=False, indent=2, default=float), encoding="utf-8")
    cols = ["dataset", "model", "category", "n", "precision", "recall", "f1", "f1_ci95", "macro_f1", "accuracy",
            "acc_ci95", "roc_auc", "pr_auc", "ece", "f1_at_dev_threshold", "texts_per_s"]
    pub_cols = ["dataset", "metric", "value", "model", "source", "split", "comparable", "verified"]
    datasets = {r["dataset"] for r in rows}
    pub_rows = [p for p in pub if p["dataset"] in datasets]
    md = [f"# Evaluation report\n\nCommand: `{command}`\n", "## Our numbers (carved test split unless stated)\n",
          _md_table(rows, cols), "\n## Published numbers for these datasets (not on our split)\n",
          _md_table(pub_rows, pub_cols) if pub_rows else "(none recorded)"]
    for key, rep in runs.items():
        for cat, e in rep["categories"].items():
            md.append(f"\n## {key} — {cat}\n")
            if e.get("perturbed"):
                md.append("Robustness (cloaked texts, model threshold):\n")
                md.append(_md_table([{"family": k, **v} for k, v in e["perturbed"].items()],
                                    ["family", "f1", "f1_drop", "accuracy", "flag_rate_safe"]))
            for f, table in e["by_fine"].items():
                md.append(f"\nBy `{f}`:\n")
                md.append(_md_table([{"value": k, **v} for k, v in table.items()],
                                    ["value", "n", "positives", "accuracy", "recall", "flag_rate"]))
            md.append("\nBy length:\n")
            md.append(_md_table([{"value": k, **v} for k, v in e["by_length"].items()],
                                ["value", "n", "positives", "accuracy", "recall", "flag_rate"]))
            for kind in ("false_positives", "false_negatives"):
                md.append(f"\nWorst {kind.replace('_', ' ')} ({e['errors']['grouped_by']}):\n")
                for x in e["errors"][kind]:
                    ev = ", ".join(f"{s['text']}({s['category']},{s['source']})" for s in x["evidence"])
                    md.append(f"- {x['score']:.3f} [{x['group']}] {x['text'][:120]!r}" + (f" — evidence: {ev}" if ev else ""))
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")

    charts = _charts(curves or {})
    esc = html.escape
    h = ["<!doctype html><html><head><meta charset='utf-8'><title>qinglang evaluation</title>",
         "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:13px}"
         "td,th{border:1px solid #ccc;padding:3px 6px}th{background:#f3f3f3}</style></head><body>",
         "<h1>Evaluation report</h1>", f"<p>Command: <code>{esc(command)}</code></p>"]

    def table(rs: list[dict[str, Any]], cs: list[str], cls: str) -> str:
        head = "".join(f"<th>{esc(c)}</th>" for c in cs)
        body = "".join("<tr>" + "".join(f"<td>{esc(_f(r.get(c)) if not isinstance(r.get(c), list) else str([round(x, 4) for x in r[c]]))}</td>"
                                         for c in cs) + "</tr>" for r in rs)
        return f"<table class='{cls}'><tr>{head}</tr>{body}</table>"

    h.append("<h2>Our numbers</h2>" + table(rows, cols, "metrics"))
    h.append("<h2>Published numbers (not on our split)</h2>" + (table(pub_rows, pub_cols, "published") if pub_rows
                                                                 else "<p>(none recorded)</p>"))
    if curves and not charts:
        h.append("<p>Charts omitted: matplotlib is not installed (pip install .[report]).</p>")
    for key, png in charts.items():
        h.append(f"<h3>{esc(key)}</h3><img alt='{esc(key)}' src='data:image/png;base64,{png}'/>")
    for key, rep in runs.items():
        for cat, e in rep["categories"].items():
            h.append(f"<h2>{esc(key)} — {esc(cat)}: errors</h2>")
            for kind in ("false_positives", "false_negatives"):
                h.append(f"<h3>{esc(kind)}</h3><ol>")
                for x in e["errors"][kind]:
                    h.append(f"<li>{x['score']:.3f} [{esc(str(x['group']))}] {esc(x['text'][:200])}</li>")
                h.append("</ol>")
    h.append("</body></html>")
    (out / "report.html").write_text("\n".join(h), encoding="utf-8")
    return {"metrics": out / "metrics.json", "md": out / "report.md", "html": out / "report.html"}
