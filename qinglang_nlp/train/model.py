"""Multi-task classifier (one encoder, one sigmoid head per category) and its checkpoint folder format.

Checkpoint folder (written by ``finetune``, read by the ONNX export)::

    config.json          Hugging Face encoder config (model_type "bert"; AutoModel/AutoConfig load it)
    model.safetensors    encoder weights (no pooler: load with AutoModel.from_pretrained(p, add_pooling_layer=False))
    tokenizer.json       tokenizers.Tokenizer with post-processor ([CLS] ... [SEP] or <s> ... </s>),
                         truncation to max_length and padding (pad id) enabled
    heads.safetensors    "head.weight" [n_cat, hidden], "head.bias" [n_cat];
                         optional "sub.weight" [n_sub, hidden], "sub.bias" [n_sub]
    qinglang.json        see ``QinglangMeta``: categories (head row order), sublabels (sub-head row order),
                         pooling ("cls" | "mean"), max_length, text_prefix, normalize (NormalizeConfig dict),
                         temperature {cat: T}, thresholds {cat: {"label", "review", "block"}}, pad_token_id,
                         data_hashes, metrics, backbone

Inference contract: ``text -> normalize(text, meta.normalize).text -> text_prefix + text -> tokenizer.encode
-> encoder -> pool (mean over attention_mask, or position 0 for "cls") -> head -> logit / temperature[cat]
-> sigmoid``. ``forward`` returns the raw logits (no temperature, no sigmoid).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "CHECKPOINT_FILES",
    "FORMAT",
    "MultiTaskClassifier",
    "QinglangMeta",
    "load_tokenizer",
    "make_tiny_checkpoint",
]

FORMAT = "qinglang-transformer/1"
CHECKPOINT_FILES = ("config.json", "model.safetensors", "tokenizer.json", "heads.safetensors", "qinglang.json")


@dataclass
class QinglangMeta:
    """Everything besides weights that inference needs, stored as ``qinglang.json``."""

    categories: list[str]
    sublabels: list[str] = field(default_factory=list)
    pooling: str = "mean"
    max_length: int = 256
    text_prefix: str = ""
    normalize: dict[str, Any] = field(default_factory=dict)
    temperature: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    pad_token_id: int = 0
    data_hashes: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    backbone: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT

    def __post_init__(self) -> None:
        if self.pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {self.pooling!r}")
        if not self.categories:
            raise ValueError("a checkpoint needs at least one category")
        for c in self.categories:
            self.temperature.setdefault(c, 1.0)
            self.thresholds.setdefault(c, {"label": 0.5, "review": 0.5, "block": 0.9})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QinglangMeta:
        """Inverse of ``to_dict``; refuses an unknown format."""
        fmt = d.get("format", FORMAT)
        if fmt != FORMAT:
            raise ValueError(f"qinglang.json format {fmt!r} is not supported (expected {FORMAT!r})")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def load_tokenizer(path: str | os.PathLike) -> Any:
    """Load ``tokenizer.json`` (a file or a folder holding it) as a ``tokenizers.Tokenizer``.

    Never build a tokenizer from a vocab file with transformers' slow/fast classes: under transformers 5
    ``BertTokenizerFast(vocab_file=...)`` silently yields a 5-token vocabulary.
    """
    from tokenizers import Tokenizer

    p = Path(path)
    if p.is_dir():
        p = p / "tokenizer.json"
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no tokenizer.json")
    tok = Tokenizer.from_file(str(p))
    if tok.get_vocab_size() < 10:
        raise ValueError(f"{p}: tokenizer has only {tok.get_vocab_size()} tokens (broken tokenizer.json?)")
    return tok


def _encoder_from_config(config: Any) -> nn.Module:
    from transformers import AutoModel

    return AutoModel.from_config(config, add_pooling_layer=False)


class MultiTaskClassifier(nn.Module):
    """Transformer encoder + pooled sigmoid heads: one per category, plus optional sub-label heads."""

    def __init__(self, encoder: nn.Module, meta: QinglangMeta, tokenizer: Any = None):
        super().__init__()
        self.encoder = encoder
        self.meta = meta
        self.tokenizer = tokenizer
        hidden = int(encoder.config.hidden_size)
        self.head = nn.Linear(hidden, len(meta.categories))
        self.sub = nn.Linear(hidden, len(meta.sublabels)) if meta.sublabels else None
        self.dropout = nn.Dropout(float(getattr(encoder.config, "hidden_dropout_prob", 0.1)))

    @property
    def categories(self) -> list[str]:
        """Category order of the logits' columns."""
        return list(self.meta.categories)

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooled sentence vector [batch, hidden] (mean over non-pad tokens, or the first token)."""
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        h = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        if self.meta.pooling == "cls":
            return h[:, 0]
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp(min=1.0)

    def forward_all(self, input_ids: torch.Tensor,
                    attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(category logits [batch, n_cat], sub-label logits [batch, n_sub] or None)."""
        z = self.dropout(self.pooled(input_ids, attention_mask))
        return self.head(z), (self.sub(z) if self.sub is not None else None)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Raw category logits [batch, n_cat]; apply temperature and sigmoid outside."""
        return self.forward_all(input_ids, attention_mask)[0]

    @torch.no_grad()
    def predict_proba(self, texts: list[str], batch_size: int = 32) -> torch.Tensor:
        """Calibrated probabilities [n, n_cat] for raw texts (normalise, prefix, tokenise, temperature)."""
        from ..normalize import normalize

        if self.tokenizer is None:
            raise RuntimeError("this classifier has no tokenizer attached")
        self.eval()
        temps = torch.tensor([float(self.meta.temperature.get(c, 1.0)) for c in self.meta.categories])
        outs = []
        for i in range(0, len(texts), batch_size):
            chunk = [self.meta.text_prefix + normalize(t, self.meta.normalize).text for t in texts[i:i + batch_size]]
            ids, mask = encode_batch(self.tokenizer, chunk, self.meta.max_length, self.meta.pad_token_id)
            outs.append(torch.sigmoid(self.forward(ids, mask) / temps))
        return torch.cat(outs) if outs else torch.zeros(0, len(self.meta.categories))

    def save_checkpoint(self, path: str | os.PathLike) -> Path:
        """Write the checkpoint folder (see module docstring); returns its path."""
        from safetensors.torch import save_file

        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        if self.tokenizer is None:
            raise RuntimeError("cannot save a checkpoint without a tokenizer")
        self.encoder.save_pretrained(d, safe_serialization=True)
        tok = _configured_tokenizer(self.tokenizer, self.meta.max_length, self.meta.pad_token_id)
        tok.save(str(d / "tokenizer.json"))
        heads = {"head.weight": self.head.weight.detach().cpu().contiguous(),
                 "head.bias": self.head.bias.detach().cpu().contiguous()}
        if self.sub is not None:
            heads["sub.weight"] = self.sub.weight.detach().cpu().contiguous()
            heads["sub.bias"] = self.sub.bias.detach().cpu().contiguous()
        save_file(heads, str(d / "heads.safetensors"), metadata={"format": FORMAT})
        (d / "qinglang.json").write_text(json.dumps(self.meta.to_dict(), ensure_ascii=False, indent=2) + "\n",
                                         encoding="utf-8")
        return d

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike) -> MultiTaskClassifier:
        """Load a checkpoint folder written by ``save_checkpoint``."""
        from safetensors.torch import load_file
        from transformers import AutoModel

        d = Path(path)
        missing = [f for f in CHECKPOINT_FILES if not (d / f).is_file()]
        if missing:
            raise FileNotFoundError(f"{d}: not a qinglang checkpoint, missing {missing}")
        meta = QinglangMeta.from_dict(json.loads((d / "qinglang.json").read_text(encoding="utf-8")))
        encoder = AutoModel.from_pretrained(str(d), add_pooling_layer=False)
        tok = load_tokenizer(d)
        if tok.get_vocab_size() != encoder.config.vocab_size:
            raise ValueError(f"{d}: tokenizer has {tok.get_vocab_size()} tokens but the encoder's "
                             f"vocab_size is {encoder.config.vocab_size}")
        model = cls(encoder, meta, tok)
        heads = load_file(str(d / "heads.safetensors"))
        model.head.weight.data.copy_(heads["head.weight"])
        model.head.bias.data.copy_(heads["head.bias"])
        if model.sub is not None:
            if "sub.weight" not in heads:
                raise ValueError(f"{d}: qinglang.json lists sublabels but heads.safetensors has no sub head")
            model.sub.weight.data.copy_(heads["sub.weight"])
            model.sub.bias.data.copy_(heads["sub.bias"])
        model.eval()
        return model


def _configured_tokenizer(tok: Any, max_length: int, pad_id: int) -> Any:
    """A copy of ``tok`` with truncation to ``max_length`` and padding with ``pad_id`` enabled."""
    from tokenizers import Tokenizer

    t = Tokenizer.from_str(tok.to_str())
    t.enable_truncation(max_length=max_length)
    t.enable_padding(pad_id=pad_id, pad_token=t.id_to_token(pad_id) or "[PAD]")
    return t


def encode_batch(tok: Any, texts: list[str], max_length: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenise ``texts`` (with special tokens), truncate to ``max_length``, pad to the longest; (ids, mask)."""
    t = _configured_tokenizer(tok, max_length, pad_id) if tok.truncation is None or tok.padding is None else tok
    encs = t.encode_batch(texts)
    ids = torch.tensor([e.ids for e in encs], dtype=torch.long)
    mask = torch.tensor([e.attention_mask for e in encs], dtype=torch.long)
    return ids, mask


# A generated vocabulary for tiny test models: frequent characters plus fandom / abuse / rumour words' characters.
_TINY_CHARS = (
    "的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天"
    "而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些"
    "与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相"
    "次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报今爬谁给"
    "饭圈粉丝爱豆偶像明星黑粉控评打投刷榜应援集资撕逼拉踩引战私生站姐造谣谣言辟谣假消息网暴辱骂傻逼垃圾滚脑残"
    "恶心贱狗妈死色情低俗歧视女权男地域疫情地震病毒转发微博热搜评论超话哥姐弟妹冲啊吧吗呢哈啦哦嗯"
)


def make_tiny_checkpoint(path: str | os.PathLike, seed: int = 0, categories: tuple[str, ...] | None = None,
                         sublabels: tuple[str, ...] = ()) -> Path:
    """Write a tiny random ``MultiTaskClassifier`` checkpoint (2 layers, hidden 32, 4 heads) for tests.

    The tokenizer is a WordPiece ``tokenizer.json`` over a few hundred CJK characters, ASCII letters and
    digits plus [PAD]/[UNK]/[CLS]/[SEP]/[MASK]; CJK characters are split one per token (BERT style).
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig

    from ..taxonomy import CATEGORIES

    chars: list[str] = []
    for ch in _TINY_CHARS + "abcdefghijklmnopqrstuvwxyz0123456789!?,.#@，。！？、：“”":
        if ch not in chars:
            chars.append(ch)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {t: i for i, t in enumerate(specials + chars)}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                                                lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=0)
    encoder = _encoder_from_config(config)
    meta = QinglangMeta(categories=list(categories or CATEGORIES), sublabels=list(sublabels), pooling="mean",
                        max_length=64, pad_token_id=0, backbone={"name": "tiny-random", "seed": seed})
    model = MultiTaskClassifier(encoder, meta, tok)
    return model.save_checkpoint(path)
