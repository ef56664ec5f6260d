"""Tokenisers (runtime/text.py): Chinese without spaces and English, at word, BPE and character
level; what is stored (JSON) encodes exactly as what was trained; padding and lengths."""

import json

import numpy as np
import pytest

from runtime.text import PAD_ID, UNK_ID, TextTokenizer, TokenizerInvalid

TEXTS = [
    "我喜欢这部电影",
    "这部电影太无聊了",
    "This film was wonderful!",
    "A boring film, a waste of time.",
    "我不喜欢无聊的电影",
    "Wonderful acting, wonderful music",
]


def test_word_level_splits_chinese_by_character_and_english_by_word():
    tokenizer = TextTokenizer.train(TEXTS, kind="word", vocabulary=100, max_length=12)
    assert tokenizer.tokens("我喜欢这部电影") == ["我", "喜", "欢", "这", "部", "电", "影"]
    assert tokenizer.tokens("This FILM was wonderful!") == ["this", "film", "was", "wonderful", "!"]
    ids, lengths = tokenizer.encode(["我喜欢电影", "zebra wonderful", ""])
    assert ids.shape == (3, 12) and ids.dtype == np.int64
    assert lengths.tolist() == [5, 2, 1]
    assert ids[1, 0] == UNK_ID and ids[1, 1] != UNK_ID  # "zebra" is unknown
    assert ids[2].tolist() == [UNK_ID] + [PAD_ID] * 11  # an empty text: one unknown token
    assert (ids[0, 5:] == PAD_ID).all()


def test_bpe_and_char_levels():
    bpe = TextTokenizer.train(TEXTS * 3, kind="bpe", vocabulary=120, max_length=16)
    assert "".join(t.removeprefix("##") for t in bpe.tokens("wonderful")) == "wonderful"
    assert bpe.tokens("电影") == ["电", "影"]
    char = TextTokenizer.train(TEXTS, kind="char", vocabulary=200, max_length=8)
    assert char.tokens("a film") == ["a", "f", "i", "l", "m"]
    assert char.tokens("我喜欢这部电影很好") == ["我", "喜", "欢", "这", "部", "电", "影", "[UNK]"]


def test_long_texts_are_cut_at_max_length():
    tokenizer = TextTokenizer.train(TEXTS, kind="char", vocabulary=200, max_length=4)
    ids, lengths = tokenizer.encode(["wonderful"])
    assert lengths.tolist() == [4] and (ids != PAD_ID).all()


@pytest.mark.parametrize("kind", ["word", "bpe", "char"])
def test_the_stored_tokeniser_encodes_exactly_as_the_trained_one(kind):
    trained = TextTokenizer.train(TEXTS, kind=kind, vocabulary=150, max_length=10)
    stored = trained.to_json()
    assert "我" in stored  # readable JSON, Chinese as written
    loaded = TextTokenizer.from_json(stored)
    texts = ["我喜欢 wonderful music", "无聊", "unseen words entirely"]
    for got, want in zip(loaded.encode(texts), trained.encode(texts), strict=True):
        np.testing.assert_array_equal(got, want)
    # Trained again on the same texts: the same tokeniser.
    assert TextTokenizer.train(TEXTS, kind=kind, vocabulary=150, max_length=10).to_json() == stored


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ("not json", "not a stored tokeniser"),
        (json.dumps({"kind": "word"}), "not a stored tokeniser"),
        ("x" * (16 * 1024 * 1024 + 1), "over 16777216 characters"),
    ],
)
def test_what_is_not_a_stored_tokeniser_is_refused(stored, message):
    with pytest.raises(TokenizerInvalid, match=message):
        TextTokenizer.from_json(stored)


def test_a_stored_tokeniser_with_other_special_ids_is_refused():
    data = json.loads(TextTokenizer.train(TEXTS, vocabulary=50).to_json())
    vocab = data["tokenizer"]["model"]["vocab"]
    vocab["[PAD]"], vocab["[UNK]"] = vocab["[UNK]"], vocab["[PAD]"]
    with pytest.raises(TokenizerInvalid, match="ids 0 and 1 must be"):
        TextTokenizer.from_json(json.dumps(data))
    data["max_length"] = 10**9
    with pytest.raises(TokenizerInvalid, match="kind or max_length"):
        TextTokenizer.from_json(json.dumps(data))


def test_a_literal_pad_token_in_a_text_is_unknown_not_padding():
    tokenizer = TextTokenizer.train(TEXTS, vocabulary=100, max_length=8)
    ids, lengths = tokenizer.encode(["wonderful [PAD] music"])
    assert lengths.tolist() == [3]
    assert ids[0, :3].tolist() == [tokenizer.tokenizer.token_to_id("wonderful"), UNK_ID, ids[0, 2]]
    assert (ids[0, :3] != PAD_ID).all() and (ids[0, 3:] == PAD_ID).all()


def test_the_model_cards_entry_gives_back_the_same_tokeniser_and_is_checked():
    from runtime.text import tokenizer_card, tokenizer_from_card

    trained = TextTokenizer.train(TEXTS, kind="bpe", vocabulary=120, max_length=16)
    entry = tokenizer_card(trained)
    assert {key: entry[key] for key in ("kind", "max_length", "pad_id", "unk_id")} == {
        "kind": "bpe",
        "max_length": 16,
        "pad_id": PAD_ID,
        "unk_id": UNK_ID,
    }
    assert entry["vocabulary"] == trained.vocabulary and entry["json"] == trained.to_json()
    loaded = tokenizer_from_card(json.loads(json.dumps(entry)))  # as a JSON column keeps it
    for got, want in zip(loaded.encode(TEXTS), trained.encode(TEXTS), strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(TokenizerInvalid, match="not the one it was stored with"):
        tokenizer_from_card({**entry, "json": entry["json"].replace("[UNK]", "[UNK]", 1) + " "})
    with pytest.raises(TokenizerInvalid, match="holds no stored tokeniser"):
        tokenizer_from_card({"sha256": entry["sha256"]})
