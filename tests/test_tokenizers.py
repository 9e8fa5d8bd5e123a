"""Tokenizers: lossless round trips over arbitrary Unicode, vocabularies, JSON save/load."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm.data.tokenizers import (
    BPETokenizer,
    CharTokenizer,
    WordTokenizer,
    load_tokenizer,
    tokenizer_from_dict,
    train_tokenizer,
)

SAMPLE = "the cat sat on the mat; the cat ate the rat. 猫坐在垫子上。 the end\n"
# a BPE trained once on a little mixed text (merges of ASCII and of Chinese bytes)
BPE = BPETokenizer.train(SAMPLE * 3, num_merges=40)


@settings(max_examples=60, deadline=None)
@given(st.text())
def test_char_tokenizer_round_trips_any_text(text):
    tokenizer = CharTokenizer.train(text)
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert len(tokenizer.encode(text)) == len(text)


@settings(max_examples=60, deadline=None)
@given(st.text())
def test_word_tokenizer_round_trips_the_text_it_was_built_from(text):
    tokenizer = WordTokenizer.train(text, min_frequency=1)
    assert tokenizer.decode(tokenizer.encode(text)) == text


@settings(max_examples=60, deadline=None)
@given(st.text())
def test_byte_level_bpe_round_trips_any_text_even_unseen(text):
    assert BPE.decode(BPE.encode(text)) == text


def test_bpe_merges_the_most_frequent_pair_first_and_shortens_the_text():
    tokenizer = BPETokenizer.train("aaab aaab aaab", num_merges=1)
    assert tokenizer.merges == [(ord("a"), ord("a"))]
    assert tokenizer.encode("aaab") == [256, ord("a"), ord("b")]
    assert tokenizer.vocab_size == 257
    assert len(BPE.encode(SAMPLE)) < len(SAMPLE.encode("utf-8")) / 2


def test_bpe_decodes_invalid_utf8_to_the_replacement_character():
    first_byte_of_chinese = "猫".encode("utf-8")[0]
    assert BPE.decode([first_byte_of_chinese]) == "\ufffd"


def test_word_tokenizer_maps_rare_words_to_unk_and_keeps_spacing_and_punctuation():
    tokenizer = WordTokenizer.train(SAMPLE, min_frequency=2)
    assert tokenizer.decode(tokenizer.encode("the cat ate, the dog!")) == "the cat <unk><unk> the <unk><unk>"
    assert tokenizer.encode("dog")[0] == 0 == tokenizer.ids["<unk>"]
    assert tokenizer.tokens[1] == " "  # the most frequent piece first


def test_char_tokenizer_names_a_character_it_never_saw():
    with pytest.raises(ValueError, match=r"the character 'z' is not in this tokenizer's vocabulary of 3 characters"):
        CharTokenizer.train("abc").encode("abz")


@pytest.mark.parametrize(
    "tokenizer",
    [CharTokenizer.train(SAMPLE), WordTokenizer.train(SAMPLE, min_frequency=2), BPE],
    ids=["char", "word", "bpe"],
)
def test_vocabularies_save_and_load_as_json(tmp_path, tokenizer):
    path = tmp_path / "vocab.json"
    tokenizer.save(path)
    loaded = load_tokenizer(path)
    assert type(loaded) is type(tokenizer)
    assert loaded.vocab_size == tokenizer.vocab_size
    assert loaded.encode(SAMPLE) == tokenizer.encode(SAMPLE)


def test_saved_vocabulary_is_readable_json(tmp_path):
    CharTokenizer.train("猫a").save(tmp_path / "vocab.json")
    assert (tmp_path / "vocab.json").read_text(encoding="utf-8") == '{"type": "char", "chars": ["a", "猫"]}'


def test_train_tokenizer_by_name_and_its_errors():
    assert isinstance(train_tokenizer("word", SAMPLE, min_frequency=3), WordTokenizer)
    with pytest.raises(ValueError, match=r"unknown tokenizer 'sentencepiece': expected one of \['bpe', 'char', 'word'\]"):
        train_tokenizer("sentencepiece", SAMPLE)
    with pytest.raises(ValueError, match="unknown tokenizer type 'x' in the vocabulary"):
        tokenizer_from_dict({"type": "x"})
    with pytest.raises(ValueError, match="min_frequency must be at least 1, got 0"):
        WordTokenizer.train(SAMPLE, min_frequency=0)
