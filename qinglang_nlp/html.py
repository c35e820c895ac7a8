"""HTML / WeChat-article cleaning with offsets into the raw HTML.

``clean_html(html)`` returns a ``Normalized`` (only the ``html`` step applied) whose ``.text`` is the readable text
and whose alignment points into the raw HTML, so evidence found in the text maps back to the exact bytes of the
page. Scripts, styles, comments and ``<head>`` are dropped, except the ``<title>`` (or, when empty, the
``og:title`` meta tag that WeChat articles carry), which becomes the first line. Block tags (``p``, ``div``,
``br``, ``section``, ``h1``-``h6``, ``li``, ``tr``) become paragraph breaks; runs of blank lines and indentation
collapse to one newline; entities (``&nbsp;``, ``&amp;``, ``&#x4f60;``) are decoded.

``html_edits`` is the edit list that ``normalize``'s ``html`` step applies.
"""
from __future__ import annotations

import html as _html
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .normalize import Normalized

__all__ = ["clean_html", "html_edits", "looks_like_html"]

_TAGS = (
    "html|head|body|div|p|br|span|section|article|script|style|title|meta|img|a|h[1-6]|strong|b|i|em|li|ul|ol|"
    "table|tr|td|th|iframe|blockquote|pre|code|figure|figcaption|link|noscript|svg|mp-style-type|!doctype"
)
_LOOKS = re.compile(rf"<(?:/?(?:{_TAGS})\b|!--)", re.IGNORECASE)
_BLOCK = re.compile(r"^/?(?:p|div|br|section|article|h[1-6]|li|ul|ol|tr|table|blockquote|pre|figure|figcaption|"
                    r"title|body|html)\b", re.IGNORECASE)
_TOKEN = re.compile(
    r"(?P<comment><!--.*?(?:-->|\Z))"
    r"|(?P<drop><(?P<dtag>script|style|noscript|svg)\b[^>]*>.*?(?:</(?P=dtag)\s*>|\Z))"
    r"|(?P<title><title\b[^>]*>(?P<tbody>.*?)</title\s*>)"
    r"|(?P<head></?head\b[^>]*>)"
    r"|(?P<tag></?[a-zA-Z!][^<>]*>)"
    r"|(?P<entity>&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});?)",
    re.DOTALL | re.IGNORECASE,
)
_OG_TITLE = re.compile(r"""<meta\b[^>]*property=["']og:title["'][^>]*content=["']([^"']*)["'][^>]*>""", re.IGNORECASE)
_WS_BREAK = re.compile(r"[ \t\r\f\v\u00a0]*\n[\s\u00a0]*")


def looks_like_html(text: str) -> bool:
    """True when ``text`` contains an HTML tag or comment that the ``html`` step would remove."""
    return _LOOKS.search(text) is not None


def html_edits(text: str) -> list[tuple]:
    """Edits ``(start, end, replacement, anchor_start, anchor_end)`` that turn raw HTML into readable text."""
    edits: list[tuple] = []
    title_seen = False
    in_head = False
    for m in _TOKEN.finditer(text):
        s, e = m.start(), m.end()
        kind = m.lastgroup
        if kind == "dtag" or kind == "tbody":
            kind = "drop" if m.group("drop") else "title"
        if kind == "head":
            if m.group().startswith("</"):
                in_head = False
            else:
                in_head = True
            edits.append((s, e, "", None, None))
            continue
        if kind == "title":
            title = _html.unescape(m.group("tbody")).strip()
            if not title:
                og = _OG_TITLE.search(text)
                title = _html.unescape(og.group(1)).strip() if og else ""
            if title and not title_seen:
                title_seen = True
                ts, te = m.start("tbody"), m.end("tbody")
                edits.append((s, e, title + "\n", ts, te) if title != m.group("tbody")
                             else (s, ts, "", None, None))
                if title == m.group("tbody"):
                    edits.append((te, e, "\n", te, e))
            else:
                edits.append((s, e, "", None, None))
            continue
        if kind in ("comment", "drop"):
            edits.append((s, e, "", None, None))
            continue
        if in_head and kind != "tag":
            continue
        if kind == "tag":
            inner = m.group()[1:-1].strip()
            if inner.lower().startswith("meta") and not title_seen:
                og = _OG_TITLE.fullmatch(m.group())
                if og and og.group(1).strip():
                    title_seen = True
                    edits.append((s, e, _html.unescape(og.group(1)).strip() + "\n", s, e))
                    continue
            edits.append((s, e, "\n" if _BLOCK.match(inner) else "", s, e))
            continue
        if kind == "entity":
            r = _html.unescape(m.group()).replace("\u00a0", " ")
            if r != m.group():
                edits.append((s, e, r, s, e))
    edits = _drop_head_text(text, edits)
    return _collapse_breaks(text, edits)


def _drop_head_text(text: str, edits: list[tuple]) -> list[tuple]:
    hs = re.search(r"<head\b[^>]*>", text, re.IGNORECASE)
    he = re.search(r"</head\s*>", text, re.IGNORECASE)
    if not hs:
        return edits
    lo, hi = hs.end(), (he.start() if he and he.start() > hs.end() else hs.end())
    out = []
    pos = lo
    for ed in sorted(edits):
        s, e = ed[0], ed[1]
        if lo <= s and e <= hi:
            if s > pos:
                out.append((pos, s, "", None, None))
            pos = e
        out.append(ed)
    if pos < hi:
        out.append((pos, hi, "", None, None))
    return sorted(out)


def _collapse_breaks(text: str, edits: list[tuple]) -> list[tuple]:
    """Merge the edits with a pass that collapses whitespace around line breaks in the resulting text."""
    edits = sorted(edits)
    # Build the intermediate text with a map back to positions, then collapse blank runs there.
    pieces: list[tuple[str, int, int, object]] = []  # (text, orig_s, orig_e, edit or None)
    pos = 0
    for ed in edits:
        s, e, r = ed[0], ed[1], ed[2]
        if s > pos:
            pieces.append((text[pos:s], pos, s, None))
        pieces.append((r, s, e, ed))
        pos = e
    if pos < len(text):
        pieces.append((text[pos:], pos, len(text), None))
    # Simple approach: whitespace runs that contain a newline, spread over untouched text and edits, become one
    # "\n" edit covering the raw span. Work on the untouched pieces only: trim whitespace around breaks there.
    out: list[tuple] = []
    for txt, s, e, ed in pieces:
        if ed is not None:
            out.append(ed)
            continue
        for m in _WS_BREAK.finditer(txt):
            if m.group() != "\n":
                out.append((s + m.start(), s + m.end(), "\n", s + m.start(), s + m.end()))
    out.sort()
    # Consecutive "\n" outputs separated only by deletions or whitespace are reduced to one.
    res: list[tuple] = []
    last_nl_end = -1
    for ed in out:
        s, e, r = ed[0], ed[1], ed[2]
        if r == "\n" and last_nl_end >= 0 and text[last_nl_end:s].strip() == "" and _only_deletes(res, last_nl_end, s):
            res.append((s, e, "", None, None))
            last_nl_end = e
            continue
        res.append(ed)
        if r.endswith("\n"):
            last_nl_end = e
        elif r:
            last_nl_end = -1
    return res


def _only_deletes(res: list[tuple], lo: int, hi: int) -> bool:
    return all(not ed[2] for ed in res if lo <= ed[0] < hi)


def clean_html(html: str) -> Normalized:
    """Readable text of an HTML page or WeChat article; ``.to_original`` maps text spans into the raw HTML."""
    from .normalize import NormalizeConfig, normalize

    if not isinstance(html, str):
        raise TypeError(f"clean_html() expects str, got {type(html).__name__}")
    cfg = NormalizeConfig.none()
    cfg = NormalizeConfig(**{**cfg.to_dict(), "html": True})
    return normalize(html, cfg)
