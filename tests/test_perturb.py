"""Tests of qinglang_nlp.perturb: every cloaking family is deterministic, changes the target, and is undone by
normalisation where the normaliser claims coverage."""
from __future__ import annotations

import random

import pytest

from qinglang_nlp.normalize import normalize
from qinglang_nlp.perturb import FAMILIES, cloak, default_terms, make_families

TOXIC = "你就是个傻逼，你妈死了"
SAFE = "今天天气真好，我们去公园散步吧"

EXPECTED_FAMILIES = {
    "homophone", "pinyin_full", "pinyin_initials", "lookalike", "radical_split", "traditional", "emoji",
    "noise_insert", "zero_width", "fullwidth", "stylised",
}


def test_family_names() -> None:
    assert set(FAMILIES) == EXPECTED_FAMILIES


@pytest.mark.parametrize("family", sorted(EXPECTED_FAMILIES))
def test_deterministic_for_a_seed(family: str) -> None:
    fn = FAMILIES[family]
    assert fn(TOXIC, random.Random(7)) == fn(TOXIC, random.Random(7))
    assert cloak(TOXIC, family, seed=3) == cloak(TOXIC, family, seed=3)


@pytest.mark.parametrize("family", sorted(EXPECTED_FAMILIES))
def test_cloaks_the_target_terms(family: str) -> None:
    out = cloak(TOXIC, family)
    assert out != TOXIC
    assert "傻逼" not in out or family == "traditional"  # the offensive term is disguised (傻逼 has no 繁體)
    assert out.startswith("你就是个") or family in ("fullwidth", "traditional")  # text outside targets is kept


@pytest.mark.parametrize("family", sorted(EXPECTED_FAMILIES - {"traditional"}))
def test_safe_text_is_cloaked_too(family: str) -> None:
    assert cloak(SAFE, family, seed=1) != SAFE or family in ("radical_split", "emoji", "lookalike")


def test_examples() -> None:
    rng = random.Random(0)
    assert FAMILIES["pinyin_full"](TOXIC, rng) == "你就是个shabi，nimasile"
    assert FAMILIES["pinyin_initials"](TOXIC, rng) == "你就是个sb，nmsl"
    assert FAMILIES["fullwidth"]("傻逼", rng) == "ｓｈａｂｉ"
    assert FAMILIES["stylised"]("傻逼", random.Random(3)) in {
        "".join(chr(b + ord(c) - 0x61) for c in "shabi") for b in (0x1D41A, 0x1D482, 0x1D4EA, 0x1D51E,
                                                                  0x1D586, 0x1D5BA, 0x1D5EE, 0x1D68A, 0x24D0)}
    assert FAMILIES["radical_split"]("你妈", rng) == "亻尔女马"
    assert FAMILIES["traditional"]("你妈说话", rng) == "你媽说话"  # only the target term is cloaked
    assert "\u200b" in FAMILIES["zero_width"]("傻逼", random.Random(1)) or \
        any(z in FAMILIES["zero_width"]("傻逼", random.Random(1)) for z in "\u200c\u200d\u2060\ufeff")


@pytest.mark.parametrize("family", ["pinyin_full", "pinyin_initials", "noise_insert", "zero_width", "fullwidth",
                                    "stylised", "traditional", "lookalike", "homophone"])
def test_normalisation_undoes_covered_families(family: str) -> None:
    for seed in range(5):
        assert "傻逼" in normalize(cloak(TOXIC, family, seed=seed)).text


def test_custom_terms_and_rate() -> None:
    fams = make_families(terms=["公园"], rate=0.0)
    assert fams["pinyin_full"](SAFE, random.Random(0)) == "今天天气真好，我们去gongyuan散步吧"
    assert "傻逼" in default_terms()


def test_bad_input() -> None:
    with pytest.raises(TypeError, match="bytes"):
        FAMILIES["homophone"](b"x", random.Random(0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown cloaking family"):
        cloak("x", "rot13")


def test_cloaking_does_not_depend_on_the_hash_seed():
    """Equal-length targets are ordered by text, so two processes with different hash seeds cloak alike."""
    import os
    import subprocess
    import sys

    code = ("from qinglang_nlp.perturb import make_families\n"
            "f = make_families(terms=['傻逼', '垃圾', '脑残', '滚蛋', '废物', '贱人'])\n"
            "import random\n"
            "print([f[k]('你这个傻逼垃圾脑残滚蛋废物贱人', random.Random(3)) for k in sorted(f)])")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(s)}).stdout for s in (1, 2, 3)}
    assert len(outs) == 1
