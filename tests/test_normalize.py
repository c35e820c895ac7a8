"""Tests of qinglang_nlp.normalize: steps with real Chinese cases, alignment, pinyin view, properties."""
from __future__ import annotations

import pytest

from qinglang_nlp.normalize import NormalizeConfig, normalize, pinyin_view, to_pinyin


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("煞笔", "傻逼"), ("sb", "傻逼"), ("nmsl", "你妈死了"), ("傻 逼", "傻逼"), ("傻*逼", "傻逼"),
        ("儍逼", "傻逼"), ("扌喿", "操"), ("ＳＢ", "傻逼"), ("𝐬𝐛", "傻逼"), ("傻\u200b逼", "傻逼"),
        ("哈哈哈哈哈哈", "哈哈哈"), ("傻🐶逼", "傻逼"), ("3 4", "3 4"), ("hello world", "hello world"),
        ("nmslx password", "nmslx password"),
    ],
)
def test_evasion_examples(raw: str, expected: str) -> None:
    assert normalize(raw).text == expected


def test_contract_to_original() -> None:
    n = normalize("你是傻 *逼吗")
    i = n.text.index("傻逼")
    assert n.original[slice(*n.to_original(i, i + 2))] == "傻 *逼"


def test_pinyin_contract() -> None:
    assert to_pinyin("傻逼") == pinyin_view(normalize("煞笔")).text == "shabi"


def test_config_round_trip() -> None:
    cfg = NormalizeConfig(max_repeat=2, homophones=False)
    assert NormalizeConfig.from_dict(cfg.to_dict()) == cfg


def test_non_str_raises_type_error_naming_type() -> None:
    with pytest.raises(TypeError, match="bytes"):
        normalize(b"abc")  # type: ignore[arg-type]
