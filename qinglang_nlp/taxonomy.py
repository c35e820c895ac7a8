"""The three 清朗 risk categories and their sub-labels, with Chinese and English names.

Categories are the stable keys of ``Result.scores``; sub-labels are the codes used by the
饭圈 corpus (``subtype``), the lexicons (``sublabel``) and evaluation reports.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CATEGORIES", "SUBLABELS", "TAXONOMY", "Category", "SubLabel", "category_of", "sublabel"]


@dataclass(frozen=True)
class SubLabel:
    """One fine-grained label inside a category."""

    code: str
    category: str
    zh: str
    en: str
    definition: str


@dataclass(frozen=True)
class Category:
    """One risk category: the key used in ``Result.scores``."""

    code: str
    zh: str
    en: str
    definition: str
    sublabels: tuple[SubLabel, ...]


def _subs(cat: str, rows: list[tuple[str, str, str, str]]) -> tuple[SubLabel, ...]:
    return tuple(SubLabel(code, cat, zh, en, d) for code, zh, en, d in rows)


TAXONOMY: tuple[Category, ...] = (
    Category(
        "fanquan", "饭圈乱象", "fan-circle chaos",
        "Fandom behaviour named by the 2021 清朗·饭圈乱象整治 campaign: fan wars, pile-ons, doxxing, "
        "pressure to spend or vote, data and comment manipulation, fandom rumours, minors drawn in.",
        _subs("fanquan", [
            ("fq_war", "引战互撕/拉踩", "fan war / put-downs",
             "Provoking or fighting another fandom, or raising one idol by trampling another (拉踩, 引战, 撕)."),
            ("fq_abuse", "网暴辱骂", "fandom pile-on / abuse",
             "Organised or fandom-motivated abuse of a person: calls to 冲/挂/网暴, insults at idols, fans or critics."),
            ("fq_doxx", "人肉开盒/私生", "doxxing / sasaeng",
             "Exposing or seeking private information (开盒, 人肉), stalking idols (私生, 跟车), trading itineraries."),
            ("fq_fundraise", "集资应援/诱导消费", "fund-raising / induced spending",
             "集资, 应援 money targets, pressure to buy albums or products in bulk for rankings or 'rights'."),
            ("fq_datafraud", "打榜刷量/控评/做数据", "ranking / data / comment manipulation",
             "打投, 刷榜, 轮博, 做数据, 控评, 反黑 brigades, buying or faking traffic, sign-in (签到) pushes with quotas."),
            ("fq_rumor", "饭圈造谣", "fandom rumour",
             "Fabricated or unverified claims about idols or fans spread as fact inside fandom conflicts (造谣, 黑料)."),
            ("fq_minor", "未成年人卷入", "minors involved",
             "Drawing minors into fundraising, voting, fan wars or spending; minors' accounts organised for fandom work."),
        ]),
    ),
    Category(
        "vulgar", "低俗", "vulgar / abusive",
        "Abusive, obscene or discriminatory language: insults, sexual vulgarity, hate against groups.",
        _subs("vulgar", [
            ("vu_abuse", "辱骂/人身攻击", "abuse / personal attack", "Insults, curses and personal attacks."),
            ("vu_sexual", "色情低俗", "sexual / obscene", "Sexual vulgarity, obscene descriptions or solicitation."),
            ("vu_hate", "歧视/仇恨", "discrimination / hate",
             "Attacks or stereotypes against groups by gender, region, race, sexuality, disability."),
        ]),
    ),
    Category(
        "rumor", "谣言", "rumour",
        "Fabricated or unverified claims stated as fact, especially on public safety, health and disasters.",
        _subs("rumor", [
            ("ru_rumor", "谣言", "rumour", "A fabricated or unverified claim presented as fact."),
        ]),
    ),
)

CATEGORIES: tuple[str, ...] = tuple(c.code for c in TAXONOMY)
SUBLABELS: dict[str, SubLabel] = {s.code: s for c in TAXONOMY for s in c.sublabels}


def sublabel(code: str) -> SubLabel:
    """Return the sub-label for ``code``; raises ``KeyError`` naming the known codes."""
    try:
        return SUBLABELS[code]
    except KeyError:
        raise KeyError(f"unknown sub-label {code!r}; known: {sorted(SUBLABELS)}") from None


def category_of(code: str) -> str:
    """Category code of a sub-label code (or of a category code itself)."""
    if code in CATEGORIES:
        return code
    return sublabel(code).category
