"""Text into token ids, the same way everywhere: a tokeniser trained on a dataset version's
training texts (Hugging Face `tokenizers`), stored with the version as JSON (the library's own
format and this module's settings: never a pickle), and applied identically in training,
evaluation, the try-your-model page and the prediction API.

Three kinds: "word" (words; Chinese, written without spaces, one character per token), "bpe"
(byte-pair merges learnt within words, Chinese characters kept apart) and "char" (every
character but spaces). Text is NFKC-normalised and lower-cased first. Id 0 is padding, id 1
stands for what the vocabulary lacks; a batch comes out as ids padded to `max_length` and each
text's length (at least 1: an empty text is one unknown token), which is what a recurrent
layer needs to read packed sequences.
"""

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

KINDS = ("word", "bpe", "char")
PAD, UNK = "[PAD]", "[UNK]"
PAD_ID, UNK_ID = 0, 1
MAX_JSON_CHARS = 16 * 1024 * 1024
MAX_VOCABULARY = 200_000
MAX_LENGTH = 4096


class TokenizerInvalid(ValueError):
    """A stored tokeniser that cannot be used; the text says why."""


def _normalizer():
    return normalizers.Sequence(
        [
            normalizers.NFKC(),
            normalizers.BertNormalizer(
                clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=True
            ),
        ]
    )


def _build(kind: str) -> tuple[Tokenizer, object]:
    specials = [PAD, UNK]
    if kind == "bpe":
        tokenizer = Tokenizer(models.BPE(unk_token=UNK))
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        return tokenizer, lambda size: trainers.BpeTrainer(
            vocab_size=size, special_tokens=specials, show_progress=False
        )
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    if kind == "word":
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex("."), "isolated")]
        )
    return tokenizer, lambda size: trainers.WordLevelTrainer(
        vocab_size=size, special_tokens=specials, show_progress=False
    )


@dataclass
class TextTokenizer:
    kind: str
    max_length: int
    tokenizer: Tokenizer

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        *,
        kind: str = "word",
        vocabulary: int = 8000,
        max_length: int = 64,
    ) -> "TextTokenizer":
        """A tokeniser learnt from `texts` (the training part only: nothing hidden)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if not 2 < vocabulary <= MAX_VOCABULARY or not 0 < max_length <= MAX_LENGTH:
            raise ValueError("vocabulary and max_length are out of range")
        tokenizer, trainer = _build(kind)
        tokenizer.normalizer = _normalizer()
        tokenizer.train_from_iterator(texts, trainer=trainer(vocabulary))
        return cls(kind=kind, max_length=max_length, tokenizer=tokenizer)

    @property
    def vocabulary(self) -> int:
        return self.tokenizer.get_vocab_size()

    def tokens(self, text: str) -> list[str]:
        return self.tokenizer.encode(text).tokens[: self.max_length]

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64 [N, max_length], zero-padded; lengths int64 [N], at least 1). Id 0 is
        padding only: "[PAD]" written in a text (which the library matches as its special
        token) is an unknown token there, so a text's length is its count of non-zero ids."""
        ids = np.full((len(texts), self.max_length), PAD_ID, dtype=np.int64)
        lengths = np.ones(len(texts), dtype=np.int64)
        for row, encoding in enumerate(self.tokenizer.encode_batch(list(texts))):
            sample = encoding.ids[: self.max_length] or [UNK_ID]
            ids[row, : len(sample)] = sample
            lengths[row] = len(sample)
        ids[(ids == PAD_ID) & (np.arange(self.max_length) < lengths[:, None])] = UNK_ID
        return ids, lengths

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": self.kind,
                "max_length": self.max_length,
                "tokenizer": json.loads(self.tokenizer.to_str()),
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> "TextTokenizer":
        """The tokeniser stored as `text`, checked; TokenizerInvalid if it is not one."""
        if len(text) > MAX_JSON_CHARS:
            raise TokenizerInvalid(f"the tokeniser is over {MAX_JSON_CHARS} characters")
        try:
            data = json.loads(text)
            kind, max_length = data["kind"], data["max_length"]
            tokenizer = Tokenizer.from_str(json.dumps(data["tokenizer"]))
        except Exception as exc:  # json's errors, a missing key, and the library's own
            raise TokenizerInvalid(f"not a stored tokeniser: {exc}") from None
        if kind not in KINDS or not isinstance(max_length, int) or not 0 < max_length <= MAX_LENGTH:
            raise TokenizerInvalid("the tokeniser's kind or max_length is not valid")
        vocabulary = tokenizer.get_vocab_size()
        if vocabulary > MAX_VOCABULARY:
            raise TokenizerInvalid(f"a vocabulary of {vocabulary}; at most {MAX_VOCABULARY}")
        if tokenizer.token_to_id(PAD) != PAD_ID or tokenizer.token_to_id(UNK) != UNK_ID:
            raise TokenizerInvalid(f"ids 0 and 1 must be {PAD} and {UNK}")
        return cls(kind=kind, max_length=max_length, tokenizer=tokenizer)


# --- With a trained model ------------------------------------------------------------------------
# The tokeniser is trained on an assignment's train part, so it belongs to the model trained
# there: its model card holds it (`card["tokenizer"]`), and the try page and the prediction API
# encode texts with it exactly as the model's training and grading did.

LENGTHS_IN_WORDS = "the count of ids that are not 0 (padding), at least 1"


def tokenizer_card(tokenizer: TextTokenizer) -> dict:
    """The model card's entry for `tokenizer`: what it is in a few fields, its JSON (a string:
    kept exactly, so its sha256 can be checked) and that JSON's sha256."""
    stored = tokenizer.to_json()
    return {
        "kind": tokenizer.kind,
        "max_length": tokenizer.max_length,
        "vocabulary": tokenizer.vocabulary,
        "pad_id": PAD_ID,
        "unk_id": UNK_ID,
        "lengths": LENGTHS_IN_WORDS,
        "sha256": hashlib.sha256(stored.encode()).hexdigest(),
        "json": stored,
    }


def tokenizer_from_card(entry: object) -> TextTokenizer:
    """The tokeniser of a model card's entry, its JSON checked against its sha256 and then as
    any stored tokeniser; TokenizerInvalid if it is not one."""
    if not isinstance(entry, dict) or not isinstance(entry.get("json"), str):
        raise TokenizerInvalid("the model card's tokenizer holds no stored tokeniser")
    stored = entry["json"]
    if len(stored) > MAX_JSON_CHARS:
        raise TokenizerInvalid(f"the tokeniser is over {MAX_JSON_CHARS} characters")
    if hashlib.sha256(stored.encode()).hexdigest() != entry.get("sha256"):
        raise TokenizerInvalid("the model card's tokeniser is not the one it was stored with")
    return TextTokenizer.from_json(stored)
