"""Tests of the lexicon's list syntax ({a|b} groups), the compact jieba segmenter and the list fixes."""
from __future__ import annotations

import pytest

from qinglang_nlp.errors import DataError
from qinglang_nlp.lexicon import (
    LexiconMatcher,
    Term,
    _compact_jieba,
    _jieba_words,
    expand_alternatives,
    load_terms,
)


@pytest.fixture(scope="module")
def default() -> LexiconMatcher:
    return LexiconMatcher.default().build()


def test_expand_alternatives():
    assert expand_alternatives("{不|别}{引战|拉踩}") == ["不引战", "不拉踩", "别引战", "别拉踩"]
    assert expand_alternatives("{|不}集资") == ["集资", "不集资"]
    assert expand_alternatives("引战") == ["引战"]
    with pytest.raises(ValueError, match="unbalanced"):
        expand_alternatives("{不|别引战")
    with pytest.raises(ValueError, match="more than 4"):
        expand_alternatives("{a|b|c}{d|e}", limit=4)


def test_tsv_groups_expand_and_errors_name_the_line(tmp_path):
    p = tmp_path / "a.tsv"
    p.write_text("term\tcategory\tsublabel\tseverity\tflags\n{不|别}引战\tfanquan\t\t\tallow\n", encoding="utf-8")
    assert [t.term for t in load_terms(p)] == ["不引战", "别引战"]
    p.write_text("term\tcategory\tsublabel\tseverity\tflags\n{不引战\tfanquan\t\t\tallow\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"a\.tsv:2: unbalanced braces"):
        load_terms(p)
    q = tmp_path / "plain.txt"  # only .tsv lists expand groups: third-party .txt lines stay literal
    q.write_text("{不|别}\n", encoding="utf-8")
    assert [t.term for t in load_terms(q, category="vulgar")] == ["{不|别}"]


# Safe rows of the train/dev splits that the bundled lists hit before this change (texts from the 饭圈 corpus
# and the public sets, shortened), and true hits that must survive.
@pytest.mark.parametrize("text", [
    "后援会提醒：接机请保持秩序，不跟车不拍私人行程",           # refused behaviour (allow {不|别|…}X)
    "请大家不要引战，好好看剧",
    "我们不做数据，不做kp，不撕对家，只做一个安静的粉丝",
    "多个平台取消了“打榜”“集资”相关功能",                     # a quoted term is named, not done
    "发现任何私生行为，请及时告知现场安保人员",                # behaviour named as a kind of act
    "网络水军实在可怕",                                          # no fandom frame (ctx=30 fandom words)
    "哥们儿，你这么变着法的引战东北高校，不太好吧？",
    "带红袖章的之前就是一市井无赖，不信大家人肉搜一下。",
    "这是真粉还是黑粉",                                          # 黑粉 named, no attack nearby
    "答：以个人名义向不特定多数人募集资金，风险较大",
    "结婚率再创新低",                                            # pinyin jiehunlv is not 婚驴 (nopy)
    "当父母的不管，出了事就推这个推那个",                        # danfu is not 荡妇 (nopy)
])
def test_train_dev_false_positives_do_not_fire(default, text):
    assert [s.term for s in default.match(text)] == []


@pytest.mark.parametrize("text,term", [
    ("姐妹们快去打投！", "打投"),
    ("对家粉丝买了水军，大家去控评", "水军"),
    ("这个黑粉天天在超话门口蹲着骂人，大家别客气", "黑粉"),
    ("这个黑子我已经人肉出来了，家住某某区，对家粉丝都来看", "人肉"),
    ("集资链接在置顶，今晚十二点截止", "集资链接"),
    ("你这个婊子", "婊子"),
])
def test_true_hits_still_fire(default, text, term):
    assert term in [s.term for s in default.match(text)]


def test_compact_segmenter_matches_jieba_and_loads_faster(tmp_path, monkeypatch):
    jieba = pytest.importorskip("jieba")
    monkeypatch.setenv("QINGLANG_CACHE", str(tmp_path))
    words, total, longest = _jieba_words()  # parses dict.txt and writes the cache
    assert len(list(tmp_path.glob("jieba-words-*.bin"))) == 1
    again, total2, longest2 = _jieba_words()  # read back from the cache
    assert again == words and total2 == total and longest2 == longest and words["交通"] > 0
    assert longest["路"] == max(len(w) for w in words if w[0] == "路")
    ref = jieba.Tokenizer()
    ref.initialize()
    mine = _compact_jieba()
    for text in ["前面路口交通管制，绕行吧", "他妈妈今天来学校开家长会", "我干你", "衣服很干净", "陆先生今天来了",
                 "姐妹们快去打投！控评组集合，别让对家粉丝带节奏", "南京市长江大桥", "I have a dream 买了usb线",
                 "他来到了网易杭研大厦", "小明硕士毕业于中国科学院计算所，后在日本京都大学深造"]:
        assert list(mine.tokenize(text, HMM=True)) == list(ref.tokenize(text, HMM=True)), text


def test_whole_word_edges_need_no_dictionary():
    m = LexiconMatcher({"u": [Term("口交", "vulgar", "vu_sexual", whole_word=True)]}, pinyin=False)
    assert [s.term for s in m.match("口交，")] == ["口交"]
    assert m._words._tk is None  # decided by the punctuation and the text edge alone
    assert m.match("前面路口交通管制") == []
    assert m._words._tk is not None


def test_pinyin_view_matches_syllable_by_syllable():
    from qinglang_nlp.normalize import syllable_string

    m = LexiconMatcher({"u": [Term("善恶", "vulgar", "vu_abuse"), Term("约炮", "vulgar", "vu_sexual")]})
    assert m.match("你说啥呢？") == []  # sha|ne is not shan|e, although both spell "shane"
    assert [(s.text, s.view) for s in m.match("有人约泡吗")] == [("约泡", "pinyin")]
    assert [(s.text, s.view) for s in m.match("行善恶报")] == [("善恶", "text")]
    pua = syllable_string("约炮")  # the private-use characters standing for yue, pao
    assert all("\ue000" <= c <= "\uf8ff" for c in pua)
    assert m.match(f"图标{pua}图标") == []  # private-use characters of the text itself are not syllables


def test_pinyin_hits_in_a_batch_land_on_their_own_text():
    m = LexiconMatcher({"u": [Term("约炮", "vulgar", "vu_sexual")]})
    texts = ["没事", "有人约泡吗", "", "曰炮，还有约跑"]
    got = m.match_many(texts)
    assert [[(s.start, s.end, s.text, s.view) for s in x] for x in got] == [
        [], [(2, 4, "约泡", "pinyin")], [], [(0, 2, "曰炮", "pinyin"), (5, 7, "约跑", "pinyin")]]
    assert got == [m.match(t) for t in texts]


def test_unwritable_cache_folder_is_not_an_error(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("QINGLANG_CACHE", str(blocker / "cache"))  # mkdir fails: a file is in the way
    words, total, _ = _jieba_words()
    assert words["路口"] > 0 and total > 0
