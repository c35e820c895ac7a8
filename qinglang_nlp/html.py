"""HTML / WeChat-article cleaning with offsets into the raw HTML.

``clean_html(html)`` returns a ``Normalized`` (only the ``html`` step applied) whose ``.text`` is the readable text
and whose alignment points into the raw HTML, so evidence found in the text maps back to the exact bytes of the
page. Scripts, styles, comments and ``<head>`` are dropped, except the ``<title>`` (or, when empty, the
``og:title`` meta tag that WeChat articles carry), which becomes the first line. An opener that is never closed
(``<!--``, ``<script>``, ``<style>``, ``<noscript>``, ``<svg>``, a ``<head>`` with no ``</head>`` or ``<body``)
removes only itself: the text after it is kept, so ``<!--你这个傻逼`` in a comment is still moderated. Block
tags (``p``, ``div``, ``br``, ``section``, ``h1``-``h6``, ``li``, ``tr``) become paragraph breaks; runs of blank
lines and indentation collapse to one newline; entities (``&nbsp;``, ``&amp;``, ``&#x4f60;``) are decoded.

``html_edits`` (tags, entities) and then ``break_edits`` (blank lines) are the edit lists that ``normalize``'s
``html`` step applies; an edit is ``(start, end, replacement, anchor_start, anchor_end)``.
"""
from __future__ import annotations

import html as _html
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .normalize import Normalized

__all__ = ["break_edits", "clean_html", "decode_entities", "html_edits", "looks_like_html"]

_TAGS = (
    "html|head|body|div|p|br|span|section|article|script|style|title|meta|img|a|h[1-6]|strong|b|i|em|li|ul|ol|"
    "table|tr|td|th|iframe|blockquote|pre|code|figure|figcaption|link|noscript|svg|mp-style-type|!doctype"
)
# other tags seen in crawled pages: stripped when the text looks like HTML, but never on their own a reason to
# treat text as HTML. Only known tag names are stripped, so "<b33>" (made of text by a later step) is not a tag.
_MORE_TAGS = (
    "font|u|s|sup|sub|small|big|center|hr|label|button|input|form|select|option|textarea|video|audio|source|"
    "picture|canvas|nav|header|footer|main|aside|dl|dt|dd|caption|thead|tbody|tfoot|col|colgroup|abbr|cite|q|"
    "mark|del|ins|kbd|samp|var|wbr|time|address|details|summary|object|embed|param|map|area|base|"
    "mpvoice|mpprofile|mp-miniprogram|mp-common-profile|qqmusic|mpcps|[a-zA-Z][a-zA-Z0-9]*-[a-zA-Z0-9-]+"
)
# a tag name ends at whitespace, "/" or ">" as HTML requires ("<i`x>" or "<b33>" are not tags)
_LOOKS = re.compile(rf"<(?:/?(?:{_TAGS})(?=[\s/>])|!--)", re.IGNORECASE)
_BLOCK = re.compile(r"^/?(?:p|div|br|section|article|h[1-6]|li|ul|ol|tr|table|blockquote|pre|figure|figcaption|"
                    r"title|body|html)\b", re.IGNORECASE)
_ENTITY = r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});?"
_TAG_RE = rf"</?(?:{_TAGS}|{_MORE_TAGS})(?=[\s/>])[^<>]*>"
# One token starts at each match: a comment marker, the start of a script/style/noscript/svg opening tag, a tag,
# an entity. Where a comment or a block ends is found by ``_tokens`` (closers looked up, not scanned for).
_TOKEN = re.compile(
    r"(?P<comment><!--)"
    r"|(?P<drop><(?P<dtag>script|style|noscript|svg)\b)"
    rf"|(?P<tag>{_TAG_RE})"
    rf"|(?P<entity>{_ENTITY})",
    re.IGNORECASE,
)
_TAG = re.compile(rf"(?P<tag>{_TAG_RE})", re.IGNORECASE)
_COMMENT_CLOSE = "-->"
_DROP_CLOSE = {t: re.compile(rf"</{t}\s*>", re.IGNORECASE) for t in ("script", "style", "noscript", "svg")}
_HEAD_OPEN = re.compile(r"<head\b", re.IGNORECASE)
_HEAD_REST = re.compile(r".*?(?:</head\s*>|(?=<body\b))", re.DOTALL | re.IGNORECASE)
# Pieces of <title ...>TEXT</title> and <meta property="og:title" content="TEXT">, found one at a time in
# linear time (whole-tag regexes backtracked through every unclosed tag: 40,000 characters of
# "<meta property='og:title' " in a <head> took two minutes).
_TITLE_OPEN = re.compile(r"<title\b", re.IGNORECASE)
_TITLE_CLOSE = re.compile(r"</title\s*>", re.IGNORECASE)
_META_OPEN = re.compile(r"<meta\b", re.IGNORECASE)
_OG_PROPERTY = re.compile(r"""property=["']og:title["']""", re.IGNORECASE)
_CONTENT = re.compile(r"""content=["']""", re.IGNORECASE)
_QUOTE = re.compile(r"""["']""")
# a break starts where its run of spaces does (else each space of a long run without a newline is tried again)
_WS_BREAK = re.compile(r"(?<![ \t\r\f\v\u00a0])[ \t\r\f\v\u00a0]*\n\s*")


def _same(s: str) -> str:
    return s


def looks_like_html(text: str) -> bool:
    """True when ``text`` contains an HTML tag or comment that the ``html`` step would remove."""
    return _LOOKS.search(text) is not None


# what a "<" written as an entity (&lt; &#60;) or in a title becomes: a real "<" would be read as markup on the next
# pass, so "&lt;script&gt;", text a reader sees, hid everything after it from the model
_LT = "\u2039"


def _as_text(s: str) -> str:
    """``s`` (decoded text) with no ``<`` that a later pass could read as the start of a tag or comment."""
    return s.replace("<", _LT)


def _decoded(entity: str) -> str:
    """What an entity stands for (a no-break space becomes a plain space, ``<`` a look-alike: see ``_LT``)."""
    return _as_text(_html.unescape(entity).replace("\u00a0", " "))


def decode_entities(text: str) -> str:
    """``text`` with its HTML entities decoded as :func:`clean_html` decodes them, for text without tags (a
    crawled paragraph such as ``你这个&#20667;&#36924;``, which ``clean_html`` leaves as it is)."""
    return re.sub(_ENTITY, lambda m: _decoded(m.group()), text, flags=re.IGNORECASE)


def _title_span(text: str, hs: int, he: int) -> tuple[int, int] | None:
    """Span of the text of the first ``<title>`` in ``text[hs:he]``; None when it is never closed. What
    ``<title\\b[^>]*>(.*?)</title\\s*>`` finds, in linear time."""
    m = _TITLE_OPEN.search(text, hs, he)
    gt = -1 if m is None else text.find(">", m.end(), he)
    close = None if gt < 0 else _TITLE_CLOSE.search(text, gt + 1, he)
    return None if close is None else (gt + 1, close.start())


def _og_title_span(text: str, hs: int, he: int) -> tuple[int, int] | None:
    """Span of the content of the first og:title meta tag in ``text[hs:he]``, or None. What
    ``<meta\\b[^>]*property=["']og:title["'][^>]*content=["']([^"']*)["'][^>]*>`` finds (the last content=
    after the first og:title property of the tag), in linear time."""
    last_gt = text.rfind(">", hs, he)
    pos = hs
    while (m := _META_OPEN.search(text, pos, he)) is not None:
        gt = text.find(">", m.end(), he)  # where the tag ends (a later <meta before it ends there too)
        if gt < 0:
            return None
        prop = _OG_PROPERTY.search(text, m.end(), gt)
        if prop is not None:
            for c in reversed([c.end() for c in _CONTENT.finditer(text, prop.end(), gt)]):
                q = _QUOTE.search(text, c, he)  # the value may hold a ">"; a ">" must follow it
                if q is not None and last_gt >= q.end():
                    return c, q.start()
        pos = gt + 1
    return None


def _head_span(text: str) -> tuple[int, int] | None:
    """Span of the first ``<head>`` to its ``</head>`` or to the next ``<body``, or None. What
    ``<head\\b[^>]*>.*?(?:</head\\s*>|(?=<body\\b))`` finds, in linear time.

    A ``<head>`` closed by neither is not a head: only its tag is removed and what follows it is read as text
    (titles, tags and entities handled as anywhere else). Before, it ran to the end of the text, so a comment
    written as ``<head>你这个傻逼`` became empty and passed. A crawled page cut short inside its real ``<head>``
    holds only metadata: its tags (meta, link, closed scripts and styles) are removed as tags anyway, and the title
    text stays as a line of its own, which is about what the head would have given; only the og:title fallback
    is lost for such a page (and a script cut short with it keeps its code as text): moderation may read more of
    such a page, never less.
    """
    m = _HEAD_OPEN.search(text)
    gt = -1 if m is None else text.find(">", m.end())
    if gt < 0:
        return None
    rest = _HEAD_REST.match(text, gt + 1)
    return None if rest is None else (m.start(), rest.end())


class _Closers:
    """The first ``>``, ``-->`` or ``</script>`` (...) at or after a position, for positions asked in increasing
    order (openers, left to right): a closer found is kept and serves every later opener before it, and one not
    found is never looked for again, so the text is read about once per kind of closer, not to the end for each
    unclosed opener."""

    def __init__(self, text: str):
        self.text = text
        self._found: dict[str, tuple[int, int, int]] = {}  # kind -> (asked from, start, end); start -1: none

    def _next(self, kind: str, pos: int) -> tuple[int, int]:
        got = self._found.get(kind)
        if got is not None and got[0] <= pos and (got[1] < 0 or pos <= got[1]):
            return got[1], got[2]
        if kind == ">" or kind == _COMMENT_CLOSE:
            i = self.text.find(kind, pos)
            got = (pos, i, i + len(kind))
        else:
            m = _DROP_CLOSE[kind].search(self.text, pos)
            got = (pos, -1, -1) if m is None else (pos, m.start(), m.end())
        self._found[kind] = got
        return got[1], got[2]

    def next_gt(self, pos: int) -> int:
        """Index of the first ``>`` at or after ``pos``, or -1."""
        return self._next(">", pos)[0]

    def comment_end(self, pos: int) -> int:
        """End of the first ``-->`` that starts at or after ``pos``, or -1."""
        start, end = self._next(_COMMENT_CLOSE, pos)
        return end if start >= 0 else -1

    def drop_end(self, tag: str, pos: int) -> int:
        """End of the first ``</tag>`` (``tag`` lower case) that starts at or after ``pos``, or -1."""
        start, end = self._next(tag, pos)
        return end if start >= 0 else -1


class _Block:
    """A closed comment or script/style/noscript/svg block, read like the ``re.Match`` of the other tokens."""

    __slots__ = ("_span", "lastgroup")

    def __init__(self, start: int, end: int, kind: str):
        self._span = (start, end)
        self.lastgroup = kind

    def start(self) -> int:
        return self._span[0]

    def end(self) -> int:
        return self._span[1]

    def span(self) -> tuple[int, int]:
        return self._span


def _tokens(text: str) -> Iterator[re.Match | _Block]:
    """Each comment, script/style/noscript/svg block, tag and entity, in order; ``lastgroup`` says which.

    A comment or block runs to its first closer (``-->``, ``</script>``, ...); one that is never closed is not a
    block: an unclosed ``<!--`` is a comment of its own four characters, an unclosed ``<script>`` a plain tag, and
    the text after it is read as usual. Before, it ran to the end of the text, so a comment written as
    ``<!--你这个傻逼`` or ``<script>你这个傻逼`` became empty and passed moderation. Each opener's closer is looked
    up (``_Closers``), so text full of unclosed openers is read in linear time.
    """
    closers = _Closers(text)
    pos = 0
    while pos >= 0:
        start, pos = pos, -1
        for m in _TOKEN.finditer(text, start):  # tags and entities in one run; a block's end restarts it
            kind = m.lastgroup
            if kind == "comment":
                close = closers.comment_end(m.end())
                if close >= 0:
                    yield _Block(m.start(), close, kind)
                    pos = close
                    break
            elif kind == "drop":
                gt = closers.next_gt(m.end())  # the opening tag ends at its first ">"
                close = -1 if gt < 0 else closers.drop_end(m.group("dtag").lower(), gt + 1)
                if close >= 0:
                    yield _Block(m.start(), close, kind)
                    pos = close
                    break
                t = _TAG.match(text, m.start())  # never closed: read as a plain tag, if it is one
                if t is not None:
                    yield t
                    pos = t.end()
                    break
                continue  # no token starts inside the tag name: the search goes on after it
            yield m


def _head_edits(text: str, head: tuple[int, int], fold: Callable[[str], str]) -> list[tuple]:
    """The <head> becomes its title (or og:title) and a newline; everything else in it is dropped."""
    hs, he = head
    tm = _title_span(text, hs, he)
    if tm and text[tm[0]:tm[1]].strip():
        ts, te = tm
        raw = text[ts:te]
        title = _as_text(fold(_html.unescape(raw)).strip())
        edits: list[tuple] = [(hs, ts, "", None, None)]
        if title != raw:  # entities or padding in the title: the whole title aligns to its raw span
            edits.append((ts, te, title, ts, te))
        edits.append((te, he, "\n", te, he))
        return edits
    og = _og_title_span(text, hs, he)
    if og and text[og[0]:og[1]].strip():
        return [(hs, he, _as_text(fold(_html.unescape(text[og[0]:og[1]])).strip()) + "\n", og[0], og[1])]
    return [(hs, he, "", None, None)]


def html_edits(text: str, fold: Callable[[str], str] | None = None) -> list[tuple]:
    """Edits ``(start, end, replacement, anchor_start, anchor_end)`` that turn raw HTML into readable text.

    ``fold`` is applied to text decoded from entities and titles (``normalize`` passes its earlier steps).
    """
    fold = fold or _same
    head = _head_span(text)
    edits = _head_edits(text, head, fold) if head else []
    hs, he = head if head else (-1, -1)
    for m in _tokens(text):
        s, e = m.start(), m.end()
        if hs <= s < he:
            continue
        kind = m.lastgroup
        if kind in ("comment", "drop"):
            edits.append((s, e, "", None, None))
        elif kind == "tag":
            inner = text[s + 1:e - 1].strip()
            edits.append((s, e, "\n" if _BLOCK.match(inner) else "", s, e))
        else:  # entity
            raw = m.group()
            r = _as_text(fold(_decoded(raw)))
            if r != raw:
                edits.append((s, e, r, s, e))
    edits.sort()
    return edits


def break_edits(text: str) -> list[tuple]:
    """Second pass, on the tag-free text: one newline per paragraph break, no leading or trailing blanks."""
    edits: list[tuple] = []
    lead = len(text) - len(text.lstrip())
    trail = len(text.rstrip())
    if lead:
        edits.append((0, lead, "", None, None))
    for m in _WS_BREAK.finditer(text, lead, max(lead, trail)):
        if m.group() != "\n":
            edits.append((m.start(), m.end(), "\n", m.start(), m.end()))
    if lead < trail < len(text):
        edits.append((trail, len(text), "", None, None))
    return edits


def clean_html(html: str) -> Normalized:
    """Readable text of an HTML page or WeChat article; ``.to_original`` maps text spans into the raw HTML."""
    from .normalize import NormalizeConfig, normalize

    if not isinstance(html, str):
        raise TypeError(f"clean_html() expects str, got {type(html).__name__}")
    cfg = NormalizeConfig.none()
    cfg = NormalizeConfig(**{**cfg.to_dict(), "html": True})
    return normalize(html, cfg)
