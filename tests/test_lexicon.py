"""Tests of qinglang_nlp.lexicon: spans on the original text, rules, allow lists, edits, user lists."""
from __future__ import annotations

import json
import threading

import pytest

from qinglang_nlp.errors import DataError
from qinglang_nlp.lexicon import (
    BUNDLED_LISTS,
    LexiconMatcher,
    Term,
    bundled_path,
    hit_features,
    load_terms,
)
from qinglang_nlp.normalize import normalize
from qinglang_nlp.taxonomy import SUBLABELS


@pytest.fixture(scope="module")
def default() -> LexiconMatcher:
    return LexiconMatcher.default().build()


def terms_of(spans) -> list[str]:
    return [s.term for s in spans]


def check_spans(text: str, spans) -> None:
    for s in spans:
        assert text[s.start:s.end] == s.text, (text, s)
        assert s.source == "lexicon"
    assert [s.start for s in spans] == sorted(s.start for s in spans)


# ----------------------------------------------------------------------------- bundled lists


def test_bundled_lists_load_and_use_taxonomy_codes():
    for name in BUNDLED_LISTS:
        terms = load_terms(bundled_path(name))
        assert len(terms) >= 50, name
        for t in terms:
            if t.allow:
                assert name == "allow"
            else:
                assert t.sublabel in SUBLABELS and SUBLABELS[t.sublabel].category == t.category
    fq = {t.term: t.sublabel for t in load_terms(bundled_path("fanquan"))}
    for word, sub in [("打投", "fq_datafraud"), ("集资", "fq_fundraise"), ("控评", "fq_datafraud"),
                      ("反黑", "fq_datafraud"), ("轮博", "fq_datafraud"), ("做数据", "fq_datafraud"),
                      ("拉踩", "fq_war"), ("引战", "fq_war"), ("对家", "fq_war"), ("开盒", "fq_doxx"),
                      ("人肉", "fq_doxx"), ("私生", "fq_doxx"), ("代拍", "fq_doxx")]:
        assert fq[word] == sub


def test_fandom_hits_carry_labels_and_spans(default):
    text = "姐妹们快去打投！控评组集合，别让对家粉丝带节奏"
    spans = default.match(text)
    check_spans(text, spans)
    got = {s.term: (s.category, s.sublabel, s.list_name, s.view) for s in spans}
    assert got["打投"] == ("fanquan", "fq_datafraud", "fanquan", "text")
    assert got["控评组"][1] == "fq_datafraud"
    assert got["对家"][1] == "fq_war"
    assert "控评" not in got  # nested inside 控评组 of the same category


def test_spans_slice_the_users_spelling():
    m = LexiconMatcher({"v": [Term("傻逼", "vulgar", "vu_abuse"), Term("av", "vulgar", "vu_sexual")]}, pinyin=False)
    text = "😀你才是傻X，天天看ＡＶ的傻 逼"
    spans = m.match(text)
    check_spans(text, spans)
    assert [(s.text, s.term, s.view) for s in spans] == [
        ("傻X", "傻逼", "variant"),  # the user's spelling on the span, the canonical entry as term
        ("ＡＶ", "av", "variant"),
        ("傻 逼", "傻逼", "variant"),
    ]
    assert m.match("傻逼")[0].view == "text"


def test_first_spelling_of_a_key_is_the_reported_term(default):
    spans = default.match("你sb吧")
    assert [(s.text, s.term, s.view) for s in spans] == [("sb", "傻逼", "variant")]


def test_match_accepts_normalized(default):
    text = "他被人开盒，住址都挂出来了"
    assert default.match(normalize(text)) == default.match(text)


def test_match_many_equals_match_one_by_one(default):
    texts = ["姐妹们快去打投！控评组集合", "", "前面路口交通管制", "你个傻逼\x00傻逼", "有没有人约泡", "看av", "傻"]
    assert default.match_many(texts) == [default.match(t) for t in texts]
    assert default.match_many([normalize(t) for t in texts]) == default.match_many(texts)


def test_rejects_other_input(default):
    with pytest.raises(TypeError, match=r"str or Normalized, got bytes \(item 1\)"):
        default.match_many(["好", b"bytes"])


# ------------------------------------------------------------------------------ reported FPs


@pytest.mark.parametrize("text", [
    "前面路口交通管制，绕行吧",
    "他妈妈今天来学校开家长会",
    "女装店周末打折，买了条裙子",
    "陆先生今天来了",
    "这件衣服洗得很干净",
    "我是私生子又怎样",
    "警方打击非法集资",
    "垃圾分类从我做起",
    "I have a dream",
    "买了根usb线",
    "开盒即食的自热火锅",
    "对家出牌太快了",
    "敌军很快被打投降了",
    "大盘回踩五日线后反弹",
    "司马光砸缸",
    "打印机的纸张不够了",
    "他出生在北京",
])
def test_reported_false_positives_do_not_fire(default, text):
    assert default.match(text) == []


@pytest.mark.parametrize("text,term", [
    ("他妈的烦死了", "他妈的"),
    ("喜欢口交", "口交"),
    ("看av", "av"),
    ("她被开盒了，家里电话都被扒出来", "被开盒"),
    ("对家粉丝又来撕了", "对家"),
    ("你就是个垃圾", "垃圾"),
    ("未成年集资应援太离谱", "未成年"),
])
def test_true_hits_fire(default, text, term):
    spans = default.match(text)
    check_spans(text, spans)
    assert term in terms_of(spans)


def test_whole_word_rule_uses_jieba_boundaries():
    m = LexiconMatcher({"u": [Term("口交", "vulgar", "vu_sexual", whole_word=True),
                              Term("陆", "vulgar", "vu_hate", whole_word=True),
                              Term("干", "vulgar", "vu_abuse", whole_word=True)]}, pinyin=False)
    assert m.match("前面路口交通管制") == []  # 路口/交通 cut through 口交
    assert terms_of(m.match("他喜欢口交")) == ["口交"]
    assert m.match("陆先生今天来了") == [] and m.match("大陆") == []
    assert m.match("衣服很干净") == [] and m.match("干活去") == []
    assert terms_of(m.match("我干你")) == ["干"]
    # without the rule the same terms fire inside ordinary words
    loose = LexiconMatcher({"u": [Term("口交", "vulgar", "vu_sexual"), Term("干", "vulgar", "vu_abuse")]},
                           pinyin=False)
    assert terms_of(loose.match("前面路口交通管制")) == ["口交"]
    assert terms_of(loose.match("衣服很干净")) == ["干"]


def test_latin_boundary_rule():
    m = LexiconMatcher({"u": [Term("av", "vulgar", "vu_sexual")]}, pinyin=False)
    assert m.match("I have a dream") == [] and m.match("java") == []
    assert [s.text for s in m.match("看AV，")] == ["AV"]
    assert [s.text for s in m.match("av女优")] == ["av"]  # a CJK neighbour is a boundary
    off = LexiconMatcher({"u": [Term("av", "vulgar", "vu_sexual", latin_boundary=False)]}, pinyin=False)
    assert [s.text for s in off.match("have")] == ["av"]


def test_needs_context_with_words_and_with_other_hits():
    words = LexiconMatcher({"u": [Term("对家", "fanquan", "fq_war", context_window=6,
                                       context_terms=("粉", "撕"))]}, pinyin=False)
    assert words.match("对家出牌太快了") == []
    assert terms_of(words.match("对家粉丝又来撕了")) == ["对家"]
    assert words.match("对家打牌，过了很久很久很久之后才来撕") == []  # 撕 is too far away
    # re-adding the term with other context words takes effect on the next call
    words.add_term(Term("对家", "fanquan", "fq_war", context_window=6, context_terms=("出牌",)), list_name="u")
    assert terms_of(words.match("对家出牌太快了")) == ["对家"] and words.match("对家粉丝又来撕了") == []
    other = LexiconMatcher({"u": [Term("女装", "vulgar", "vu_sexual", context_window=5),
                                  Term("约炮", "vulgar", "vu_sexual")]}, pinyin=False)
    assert other.match("女装店周末打折") == []
    assert sorted(terms_of(other.match("穿女装约炮"))) == ["女装", "约炮"]


def test_allow_list_suppresses_by_containment_per_category():
    m = LexiconMatcher({"deny": [Term("口交", "vulgar", "vu_sexual"), Term("集资", "fanquan", "fq_fundraise")]},
                       pinyin=False)
    assert terms_of(m.match("路口交通")) == ["口交"]
    m.add_allow("口交通")  # every category
    assert m.match("路口交通") == []
    assert terms_of(m.match("喜欢口交")) == ["口交"]  # identity is not needed, containment is
    m.add_allow("非法集资", category="vulgar")  # wrong category: no effect on a fanquan hit
    assert terms_of(m.match("打击非法集资")) == ["集资"]
    m.add_allow("非法集资", category="fanquan")
    assert m.match("打击非法集资") == []
    assert terms_of(m.match("粉丝集资应援")) == ["集资"]


# --------------------------------------------------------------------------------- edits


def test_add_and_remove_take_effect_on_next_call():
    m = LexiconMatcher({"base": [Term("脑残", "vulgar", "vu_abuse")]}, pinyin=False)
    text = "这个脑残粉又在轮博"
    assert terms_of(m.match(text)) == ["脑残"]
    m.add_term("轮博", category="fanquan", sublabel="fq_datafraud", list_name="mine")
    spans = m.match(text)
    assert terms_of(spans) == ["脑残", "轮博"] and spans[1].list_name == "mine"
    assert m.remove_term("脑残") == 1
    assert terms_of(m.match(text)) == ["轮博"]
    m.remove_term("轮博", list_name="mine")
    assert m.match(text) == []
    m.add_term("脑残", sublabel="vu_abuse", severity=3)  # re-adding a removed base term
    assert [s.severity for s in m.match(text)] == [3]
    with pytest.raises(KeyError, match="不存在"):
        m.remove_term("不存在")
    with pytest.raises(KeyError, match="no lexicon list named 'nope'"):
        m.remove_term("脑残", list_name="nope")


def test_single_edits_use_delta_then_compact():
    m = LexiconMatcher({"base": [Term("脑残", "vulgar", "vu_abuse")]}, pinyin=False, delta_limit=2)
    base = m.build()._snap.base
    m.add_term("智障", sublabel="vu_abuse")
    assert m._snap.base is base and m._snap.delta is not None  # base automaton reused
    m.remove_term("脑残")
    assert m._snap.base is base  # removal is a tombstone
    m.add_term("白痴", sublabel="vu_abuse")
    m.add_term("废物", sublabel="vu_abuse")
    assert m._snap.base is not base and m._snap.delta is None  # compacted
    assert terms_of(m.match("脑残智障白痴废物")) == ["智障", "白痴", "废物"]


def test_edits_are_safe_while_other_threads_match():
    m = LexiconMatcher({"base": [Term("脑残", "vulgar", "vu_abuse")]}, pinyin=False).build()
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                got = terms_of(m.match("脑残说集资"))
                assert got[0] == "脑残" and set(got) <= {"脑残", "集资"}
        except BaseException as e:  # noqa: BLE001 - surfaced below
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(30):
        m.add_term("集资", sublabel="fq_fundraise", list_name="x")
        m.remove_term("集资", list_name="x")
    stop.set()
    for t in threads:
        t.join()
    assert errors == []


# ---------------------------------------------------------------------------- user lists


def test_load_txt_csv_json_and_several_lists(tmp_path):
    (tmp_path / "a.txt").write_text("# comment\n白嫖怪\n\n下头男\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text("term,category,sublabel,severity,flags\n刷流水,fanquan,fq_datafraud,3,\n"
                                    "pdd,vulgar,vu_abuse,1,latin\n", encoding="utf-8")
    (tmp_path / "c.json").write_text(json.dumps([{"term": "杀猪盘", "category": "rumor", "sublabel": "ru_rumor"},
                                                 "割韭菜"], ensure_ascii=False), encoding="utf-8")
    a = load_terms(tmp_path / "a.txt", category="vulgar", sublabel="vu_hate")
    assert [t.term for t in a] == ["白嫖怪", "下头男"] and a[0].list_name == "a"
    b = load_terms(tmp_path / "b.csv")
    assert b[0].severity == 3 and b[1].latin_boundary is True
    c = load_terms(tmp_path / "c.json", category="rumor")
    assert [t.term for t in c] == ["杀猪盘", "割韭菜"] and c[1].category == "rumor"

    m = LexiconMatcher(pinyin=False)
    m.add_list("a", tmp_path / "a.txt", category="vulgar", sublabel="vu_hate")
    m.add_list("b", tmp_path / "b.csv")
    m.add_list("c", tmp_path / "c.json", category="rumor")
    text = "下头男天天刷流水，小心杀猪盘，shopdd不算"
    spans = m.match(text)
    check_spans(text, spans)
    assert [(s.term, s.list_name) for s in spans] == [("下头男", "a"), ("刷流水", "b"), ("杀猪盘", "c")]
    m.remove_list("b")
    assert terms_of(m.match(text)) == ["下头男", "杀猪盘"]


def test_toxicn_style_json_object_keys_are_terms(tmp_path):
    (tmp_path / "general.json").write_text('{"傻逼": [1, 2], "辣鸡": [3]}', encoding="utf-8")
    assert [t.term for t in load_terms(tmp_path / "general.json", category="vulgar")] == ["傻逼", "辣鸡"]


def test_list_errors_name_file_line_and_problem(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("term\tcategory\tsublabel\tseverity\tflags\n打投\tfanquan\tfq_datafraud\t2\tfast\n",
                   encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.tsv:2: unknown flag 'fast'"):
        load_terms(bad)
    bad.write_text("term\tcategory\tsublabel\tseverity\tflags\n打投\tfanquan\tvu_abuse\t2\t\n", encoding="utf-8")
    with pytest.raises(DataError, match="belongs to 'vulgar'"):
        load_terms(bad)
    with pytest.raises(DataError, match="needs a category"):
        (tmp_path / "x.txt").write_text("打投\n", encoding="utf-8")
        load_terms(tmp_path / "x.txt")
    with pytest.raises(DataError, match="does not exist"):
        load_terms(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="severity must be an int 1-3"):
        Term("打投", "fanquan", "fq_datafraud", severity=5)


def test_backends_agree(default):
    terms = [t for name in ("fanquan", "vulgar", "allow") for t in load_terms(bundled_path(name))]
    rs = LexiconMatcher({"all": terms}, pinyin=False, backend="rs")
    py = LexiconMatcher({"all": terms}, pinyin=False, backend="py")
    for text in ["姐妹们快去打投！控评组集合", "前面路口交通管制", "你就是个垃圾，傻逼", "have av 看AV"]:
        assert rs.match(text) == py.match(text)


def test_hit_features_have_fixed_keys(default):
    empty = hit_features([])
    feats = hit_features(default.match("傻逼粉丝又去集资了"))
    assert set(feats) == set(empty)
    assert feats["lex_vulgar_max_severity"] == 3.0 and feats["lex_severe"] == 1.0
    assert feats["lex_fanquan_count"] == 1.0 and feats["lex_fq_fundraise_count"] == 1.0
    assert empty["lex_any"] == 0.0


# ------------------------------------------------------------------------------- pinyin view


def test_pinyin_view_catches_homophones():
    m = LexiconMatcher({"v": [Term("约炮", "vulgar", "vu_sexual"), Term("智障", "vulgar", "vu_abuse")]})
    for text, orig in [("有没有人约泡", "约泡"), ("你是智樟吗", "智樟")]:
        spans = m.match(text)
        check_spans(text, spans)
        assert [(s.text, s.view) for s in spans] == [(orig, "pinyin")]
    assert [s.view for s in m.match("有没有人约炮")] == ["text"]  # the text view wins the duplicate
    assert LexiconMatcher({"v": [Term("约炮", "vulgar", "vu_sexual")]}, pinyin=False).match("有没有人约泡") == []


def test_pinyin_view_needs_whole_syllables_and_a_cjk_character():
    m = LexiconMatcher({"v": [Term("妈的", "vulgar", "vu_abuse"), Term("西安", "vulgar", "vu_hate")]})
    assert m.match("I made it") == []  # Latin-only stretch: left to explicit Latin terms
    assert m.match("先去") == []  # 先 (xian) is one syllable, 西安 two
    assert [s.text for s in m.match("洗按摩")] == ["洗按"]


def test_pinyin_view_skips_single_characters_and_nopy():
    m = LexiconMatcher({"v": [Term("干", "vulgar", "vu_abuse"),
                              Term("打投", "fanquan", "fq_datafraud", pinyin=False)]})
    assert m.match("赶紧去") == [] and m.match("大头照") == []
    assert [s.term for s in m.match("快去打投")] == ["打投"]
