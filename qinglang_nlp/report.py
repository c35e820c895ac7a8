"""Reports on scored posts: per account, per category, a review queue ordered by risk.

``build_report(scored)`` streams a scored file (JSONL, Parquet, or a Ray output folder) once and keeps only
aggregates, the review queue (rows whose decision is not ``pass``) and a few top posts per account.
``write_html`` writes one self-contained HTML file (charts embedded as PNG data URIs; every piece of user
text is HTML-escaped, so a post containing ``<script>`` shows as text). ``write_markdown`` writes the same
tables as Markdown with the charts as PNG files beside it. ``write_queue_csv`` writes the review queue;
cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or CR) get a
leading ``'``.

Risk order: decision (block, then review), then the highest category score, then input line.
"""
from __future__ import annotations

import base64
import csv
import heapq
import html
import io
import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .taxonomy import CATEGORIES

__all__ = ["Report", "build_report", "safe_cell", "write_html", "write_markdown", "write_queue_csv"]

_DECISION_RANK = {"block": 2, "review": 1, "pass": 0}
_BINS = 20
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(v: Any) -> Any:
    """A CSV cell that spreadsheets will not evaluate: text starting with = + - @ TAB CR gets a leading '."""
    if isinstance(v, str) and v.startswith(_FORMULA_START):
        return "'" + v
    return v


def _risk_key(rec: dict[str, Any]) -> tuple:
    scores = rec.get("scores") or {}
    return (_DECISION_RANK.get(rec.get("decision", "pass"), 0), max(scores.values(), default=0.0),
            -int(rec.get("line", 0)))


def _snippets(rec: dict[str, Any], k: int = 3, width: int = 40) -> list[str]:
    out, seen = [], set()
    for sp in rec.get("evidence") or []:
        t = str(sp.get("text", ""))[:width]
        key = (sp.get("category"), t)
        if t and key not in seen:
            seen.add(key)
            out.append(f"{sp.get('category')}: {t}")
        if len(out) >= k:
            break
    return out


def _slim(rec: dict[str, Any]) -> dict[str, Any]:
    """What the report keeps of a post."""
    return {"id": rec.get("id"), "line": rec.get("line"), "account": rec.get("account"), "title": rec.get("title"),
            "url": rec.get("url"), "published_at": rec.get("published_at"), "decision": rec.get("decision"),
            "labels": list(rec.get("labels") or []), "scores": dict(rec.get("scores") or {}),
            "evidence": _snippets(rec), "model": rec.get("model")}


@dataclass
class _Account:
    posts: int = 0
    errors: int = 0
    flagged: Counter = field(default_factory=Counter)
    decisions: Counter = field(default_factory=Counter)
    terms: Counter = field(default_factory=Counter)
    top: list = field(default_factory=list)  # heap of (risk key, seq, slim record)


@dataclass
class Report:
    """Aggregates of one scored file."""

    source: str
    rows: int = 0
    errors: int = 0
    flagged: Counter = field(default_factory=Counter)
    decisions: Counter = field(default_factory=Counter)
    models: Counter = field(default_factory=Counter)
    stages: Counter = field(default_factory=Counter)
    histograms: dict[str, list[int]] = field(default_factory=lambda: {c: [0] * _BINS for c in CATEGORIES})
    flagged_histograms: dict[str, list[int]] = field(default_factory=lambda: {c: [0] * _BINS for c in CATEGORIES})
    accounts: dict[str, _Account] = field(default_factory=lambda: defaultdict(_Account))
    queue: list[dict[str, Any]] = field(default_factory=list)
    error_examples: list[dict[str, Any]] = field(default_factory=list)
    top_per_account: int = 3
    incomplete: str | None = None  # why the scored file does not cover its whole input yet

    def add(self, rec: dict[str, Any]) -> None:
        """Count one scored record; raises ``ValueError`` for a record that is neither a result nor an error."""
        if "error" not in rec and not ("decision" in rec and "scores" in rec):
            raise ValueError(f"record {self.rows + 1} (id {rec.get('id')!r}) is not a scored record (no 'decision'/"
                             "'scores' or 'error'): is this the input of `qinglang score` rather than its output?")
        self.rows += 1
        acc_name = str(rec.get("account") or "(no account)")
        acc = self.accounts[acc_name]
        acc.posts += 1
        if "error" in rec:
            self.errors += 1
            acc.errors += 1
            if len(self.error_examples) < 20:
                self.error_examples.append({"id": rec.get("id"), "line": rec.get("line"), "error": rec["error"]})
            return
        labels = rec.get("labels") or []
        dec = rec.get("decision", "pass")
        self.decisions[dec] += 1
        acc.decisions[dec] += 1
        self.models[str(rec.get("model"))] += 1
        if rec.get("stage") is not None:
            self.stages[int(rec["stage"])] += 1
        for c in labels:
            self.flagged[c] += 1
            acc.flagged[c] += 1
        for c, s in (rec.get("scores") or {}).items():
            if c in self.histograms:
                b = min(_BINS - 1, max(0, int(float(s) * _BINS)))
                self.histograms[c][b] += 1
                if c in labels:
                    self.flagged_histograms[c][b] += 1
        for sp in rec.get("evidence") or []:
            if sp.get("source") == "lexicon" or sp.get("term"):
                acc.terms[(sp.get("category"), sp.get("term") or sp.get("text"))] += 1
        if dec != "pass" or labels:
            slim = _slim(rec)
            self.queue.append(slim)
            item = (_risk_key(rec), self.rows, slim)
            if len(acc.top) < self.top_per_account:
                heapq.heappush(acc.top, item)
            else:
                heapq.heappushpop(acc.top, item)

    def ordered_queue(self) -> list[dict[str, Any]]:
        """The review queue, riskiest first."""
        return sorted(self.queue, key=_risk_key, reverse=True)

    def account_rows(self) -> list[dict[str, Any]]:
        """One summary per account, most flagged posts first."""
        out = []
        for name, a in self.accounts.items():
            scored = a.posts - a.errors
            any_flag = a.decisions.get("review", 0) + a.decisions.get("block", 0)
            out.append({
                "account": name, "posts": a.posts, "errors": a.errors, "scored": scored,
                "share": {c: (a.flagged.get(c, 0) / scored if scored else 0.0) for c in CATEGORIES},
                "flagged": {c: a.flagged.get(c, 0) for c in CATEGORIES},
                "review": a.decisions.get("review", 0), "block": a.decisions.get("block", 0),
                "risky_share": any_flag / scored if scored else 0.0,
                "top_terms": [(c, t, n) for (c, t), n in a.terms.most_common(5)],
                "top_posts": [x[2] for x in sorted(a.top, key=lambda x: x[0], reverse=True)],
            })
        out.sort(key=lambda r: (r["review"] + r["block"], r["risky_share"], r["posts"]), reverse=True)
        return out


def build_report(scored: str | os.PathLike | Iterable[dict[str, Any]], top_per_account: int = 3) -> Report:
    """Read a scored file (or iterate records) once into a :class:`Report`."""
    from .batch import read_scored, unfinished_state

    rep = Report(source=str(scored) if isinstance(scored, (str, os.PathLike)) else "(records)",
                 top_per_account=top_per_account)
    st = unfinished_state(scored) if isinstance(scored, (str, os.PathLike)) else None
    if st is not None:
        rep.incomplete = (f"incomplete: the scoring run that writes {Path(scored).name} has not finished; "
                          f"{st.get('rows', 0)} rows are committed so far (rerun the same `qinglang score` "
                          "command to finish)")
    records = read_scored(scored) if isinstance(scored, (str, os.PathLike)) else scored
    for rec in records:
        try:
            rep.add(rec)
        except ValueError as e:
            raise ValueError(f"{rep.source}: {e}") from None
    return rep


# -- charts ----------------------------------------------------------------------------------------

def _charts(rep: Report, accounts: list[dict[str, Any]], n_accounts: int = 15) -> dict[str, bytes]:
    """PNG charts (ASCII labels only: accounts are shown by rank, named in the table)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    out: dict[str, bytes] = {}

    def png(fig) -> bytes:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
        plt.close(fig)
        return buf.getvalue()

    scored = max(1, rep.rows - rep.errors)
    fig, ax = plt.subplots(figsize=(5, 2.6))
    ax.bar(list(CATEGORIES), [100 * rep.flagged.get(c, 0) / scored for c in CATEGORIES],
           color=["#c0392b", "#8e44ad", "#2471a3"])
    ax.set_ylabel("% of scored posts flagged")
    ax.set_title("Flagged share per category")
    out["flagged"] = png(fig)

    fig, axes = plt.subplots(1, len(CATEGORIES), figsize=(10, 2.6), sharey=False)
    edges = [i / _BINS for i in range(_BINS)]
    for ax, c in zip(axes, CATEGORIES):
        ax.bar(edges, rep.histograms[c], width=1 / _BINS, align="edge", color="#95a5a6", label="all")
        ax.bar(edges, rep.flagged_histograms[c], width=1 / _BINS, align="edge", color="#c0392b", label="flagged")
        ax.set_yscale("symlog")
        ax.set_title(f"{c} score")
        ax.set_xlim(0, 1)
    axes[0].legend(fontsize=7)
    axes[0].set_ylabel("posts (symlog)")
    out["histograms"] = png(fig)

    top = accounts[:n_accounts]
    if top:
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(top) + 1))
        ys = list(range(len(top)))[::-1]
        left = [0] * len(top)
        for dec, color in (("block", "#c0392b"), ("review", "#e67e22")):
            vals = [a[dec] for a in top]
            ax.barh(ys, vals, left=left, color=color, label=dec)
            left = [x + y for x, y in zip(left, vals)]
        ax.set_yticks(ys, [f"#{i + 1}" for i in range(len(top))])
        ax.set_xlabel("flagged posts")
        ax.set_title("Accounts with most flagged posts (# = row in the account table)")
        ax.legend(fontsize=7)
        out["accounts"] = png(fig)
    return out


# -- writers ---------------------------------------------------------------------------------------

def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _link(p: dict[str, Any]) -> str:
    label = _e(p.get("title") or p.get("id") or f"line {p.get('line')}")
    url = p.get("url")
    if isinstance(url, str) and url.lower().startswith(("http://", "https://")):
        return f'<a href="{_e(url)}" rel="noopener noreferrer">{label}</a>'
    return label


def _scores_text(p: dict[str, Any]) -> str:
    return " ".join(f"{c[:2]} {p['scores'].get(c, 0):.2f}" for c in CATEGORIES)


_CSS = """body{font-family:system-ui,"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;margin:24px;
color:#222}table{border-collapse:collapse;margin:8px 0 24px;font-size:13px}th,td{border:1px solid #ccc;
padding:3px 6px;vertical-align:top;text-align:left}th{background:#f3f3f3}td.n{text-align:right}
.block{color:#c0392b;font-weight:bold}.review{color:#d35400}small{color:#666}img{max-width:100%}"""


def write_html(rep: Report, path: str | os.PathLike, max_accounts: int = 200, max_queue: int = 200) -> Path:
    """One self-contained HTML file; all user text escaped."""
    accounts = rep.account_rows()
    charts = _charts(rep, accounts)
    queue = rep.ordered_queue()
    scored = rep.rows - rep.errors
    h: list[str] = ['<!DOCTYPE html><html lang="zh"><head><meta charset="utf-8">',
                    f"<title>qinglang report: {_e(Path(rep.source).name)}</title><style>{_CSS}</style></head><body>",
                    f"<h1>Moderation report</h1><p><small>source: {_e(rep.source)}; models: "
                    f"{_e(', '.join(f'{m} ({n})' for m, n in rep.models.most_common()))}</small></p>",
                    f"<p>{rep.rows} posts, {scored} scored, {rep.errors} errors; decisions: "
                    f"{_e(', '.join(f'{k} {v}' for k, v in sorted(rep.decisions.items())))}"
                    + (f"; cascade stages: {_e(dict(sorted(rep.stages.items())))}" if rep.stages else "")
                    + f"; {len(queue)} posts in the review queue.</p>"]
    if rep.incomplete:
        h.append(f'<p class="block">Warning, {_e(rep.incomplete)}.</p>')
    h.append("<h2>Per category</h2><table><tr><th>category</th><th>flagged</th><th>share of scored</th></tr>")
    for c in CATEGORIES:
        n = rep.flagged.get(c, 0)
        h.append(f"<tr><td>{c}</td><td class=n>{n}</td><td class=n>{_pct(n / scored if scored else 0)}</td></tr>")
    h.append("</table>")
    for key, alt in (("flagged", "flagged share per category"), ("histograms", "score histograms"),
                     ("accounts", "accounts with most flagged posts")):
        if key in charts:
            h.append(f'<p><img alt="{alt}" src="data:image/png;base64,{base64.b64encode(charts[key]).decode()}"></p>')
    if not charts:
        h.append("<p><small>(charts need matplotlib)</small></p>")
    h.append(f"<h2>Per account</h2><p><small>{len(accounts)} accounts; the {min(len(accounts), max_accounts)} "
             "with most flagged posts shown.</small></p>")
    h.append('<table id="accounts"><tr><th>#</th><th>account</th><th>posts</th>'
             + "".join(f"<th>{c} flagged</th>" for c in CATEGORIES)
             + "<th>review</th><th>block</th><th>top evidence</th><th>most risky posts</th></tr>")
    for i, a in enumerate(accounts[:max_accounts], 1):
        terms = "<br>".join(f"{_e(c)}: {_e(t)} ×{n}" for c, t, n in a["top_terms"])
        posts = "<br>".join(f'<span class="{_e(p["decision"])}">{_e(p["decision"])}</span> {_link(p)} '
                            f"<small>{_e(_scores_text(p))}</small>" for p in a["top_posts"])
        h.append(f"<tr><td class=n>{i}</td><td>{_e(a['account'])}</td><td class=n>{a['posts']}</td>"
                 + "".join(f"<td class=n>{a['flagged'][c]} ({_pct(a['share'][c])})</td>" for c in CATEGORIES)
                 + f"<td class=n>{a['review']}</td><td class=n>{a['block']}</td><td>{terms}</td><td>{posts}</td></tr>")
    h.append("</table>")
    h.append(f"<h2>Most risky posts</h2><p><small>top {min(max_queue, len(queue))} of the review queue "
             "(full queue in the CSV)</small></p>")
    h.append('<table id="queue"><tr><th>#</th><th>decision</th><th>account</th><th>post</th><th>labels</th>'
             "<th>scores</th><th>evidence</th></tr>")
    for i, p in enumerate(queue[:max_queue], 1):
        h.append(f'<tr><td class=n>{i}</td><td class="{_e(p["decision"])}">{_e(p["decision"])}</td>'
                 f"<td>{_e(p['account'])}</td><td>{_link(p)}<br><small>id {_e(p['id'])}, line {_e(p['line'])}"
                 f"</small></td><td>{_e(', '.join(p['labels']))}</td><td>{_e(_scores_text(p))}</td>"
                 f"<td>{'<br>'.join(_e(s) for s in p['evidence'])}</td></tr>")
    h.append("</table>")
    if rep.error_examples:
        h.append("<h2>Rows that could not be scored</h2><table><tr><th>line</th><th>id</th><th>reason</th></tr>")
        for x in rep.error_examples:
            h.append(f"<tr><td class=n>{_e(x['line'])}</td><td>{_e(x['id'])}</td><td>{_e(x['error'])}</td></tr>")
        h.append("</table>")
    h.append("</body></html>\n")
    p = Path(path)
    p.write_text("\n".join(h), encoding="utf-8")
    return p


def _md(v: Any) -> str:
    s = "" if v is None else str(v)
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
            .replace("\r", " ").replace("\n", " ").replace("[", "\\[").replace("]", "\\]"))


def write_markdown(rep: Report, path: str | os.PathLike, max_accounts: int = 100, max_queue: int = 50) -> Path:
    """The report as Markdown; charts are written as PNG files in ``<name>_charts/`` beside it."""
    p = Path(path)
    accounts = rep.account_rows()
    charts = _charts(rep, accounts)
    cdir = p.with_name(p.stem + "_charts")
    if charts:
        cdir.mkdir(parents=True, exist_ok=True)
        for k, data in charts.items():
            (cdir / f"{k}.png").write_bytes(data)
    scored = rep.rows - rep.errors
    queue = rep.ordered_queue()
    lines = ["# Moderation report", "", f"Source: `{_md(rep.source)}`. {rep.rows} posts, {scored} scored, "
             f"{rep.errors} errors; {len(queue)} in the review queue.", "",
             *([f"> **Warning**, {_md(rep.incomplete)}.", ""] if rep.incomplete else []),
             "| category | flagged | share of scored |", "|---|---:|---:|"]
    for c in CATEGORIES:
        n = rep.flagged.get(c, 0)
        lines.append(f"| {c} | {n} | {_pct(n / scored if scored else 0)} |")
    lines.append("")
    for k in charts:
        lines += [f"![{k}]({cdir.name}/{k}.png)", ""]
    lines += ["## Per account", "", "| # | account | posts | " + " | ".join(CATEGORIES) + " | review | block | "
              "top evidence |", "|---:|---|---:|" + "---:|" * len(CATEGORIES) + "---:|---:|---|"]
    for i, a in enumerate(accounts[:max_accounts], 1):
        terms = "; ".join(f"{_md(c)}: {_md(t)} ×{n}" for c, t, n in a["top_terms"][:3])
        lines.append(f"| {i} | {_md(a['account'])} | {a['posts']} | "
                     + " | ".join(f"{a['flagged'][c]} ({_pct(a['share'][c])})" for c in CATEGORIES)
                     + f" | {a['review']} | {a['block']} | {terms} |")
    lines += ["", "## Most risky posts", "", "| # | decision | account | post | scores | evidence |",
              "|---:|---|---|---|---|---|"]
    for i, q in enumerate(queue[:max_queue], 1):
        lines.append(f"| {i} | {q['decision']} | {_md(q['account'])} | {_md(q['title'] or q['id'])} | "
                     f"{_scores_text(q)} | {_md('; '.join(q['evidence']))} |")
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def write_queue_csv(rep: Report, path: str | os.PathLike) -> Path:
    """The whole review queue, riskiest first, as UTF-8 CSV (BOM for Excel), formulas neutralised."""
    p = Path(path)
    with open(p, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rank", "decision", "risk", *CATEGORIES, "labels", "id", "account", "title", "url",
                    "published_at", "evidence", "line", "model"])
        for i, q in enumerate(rep.ordered_queue(), 1):
            sc = q["scores"]
            w.writerow([i, q["decision"], round(max(sc.values(), default=0.0), 6),
                        *(round(sc.get(c, 0.0), 6) for c in CATEGORIES), ";".join(q["labels"]),
                        *(safe_cell("" if q[k] is None else str(q[k]))
                          for k in ("id", "account", "title", "url", "published_at")),
                        safe_cell(" | ".join(q["evidence"])), q["line"], safe_cell(str(q["model"]))])
    return p
