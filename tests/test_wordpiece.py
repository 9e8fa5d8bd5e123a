"""data.WordPieceTokenizer: equal to Hugging Face's ``BertTokenizer`` built from the same
small vocab.txt (which the test writes), on hypothesis-drawn strings (any Unicode,
whitespace runs, accents, CJK, special tokens), cased and uncased; decoding, batches,
saving, errors. The cross-checks skip without transformers."""
from __future__ import annotations

import json
import string
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm.data import WordPieceTokenizer, tokenizers

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
LETTERS = string.ascii_lowercase + "éèüñßσςάı" + string.ascii_uppercase + "ÉÜΣİ"
WORDS = ["the", "play", "##ing", "##ed", "##s", "un", "##aff", "##able", "hello", "world", "don", "Hello", "é", "##é", "café", "Straße"]
VOCAB = list(dict.fromkeys(  # one line per token
    SPECIALS[:1] + ["[unused0]"] + SPECIALS[1:]
    + list(LETTERS) + ["##" + char for char in LETTERS]
    + list(string.digits + string.punctuation + "¿¡«»—…") + ["你", "好", "世", "界", "々", "ー"]
    + WORDS
))
CONFIGS = {
    "uncased": {"do_lower_case": True},
    "cased": {"do_lower_case": False},
    "cased, accents stripped, no CJK split": {"do_lower_case": False, "strip_accents": True, "tokenize_chinese_chars": False},
}
# Any character that is the same in every Unicode version: one already assigned in Unicode
# 3.2, or one still unassigned. The two sides' tables are of different Unicode versions
# (Python 3.11's is 14.0; Hugging Face's Rust tokenizer takes categories from older tables),
# and they disagree on characters added in between, such as U+11438 (a Newa vowel sign, Mn).
ANY_CHARACTER = st.characters(blacklist_categories=("Cs",)).filter(
    lambda char: unicodedata.ucd_3_2_0.category(char) != "Cn" or unicodedata.category(char) == "Cn"
)
FRAGMENTS = st.one_of(
    st.sampled_from(WORDS + SPECIALS + ["[mask]", "[CLS", " ", "  ", "\t", "\n\r", "\u3000", "\xa0", "\u2028", "\x00", "\ufffd", "\u200b", "e\u0301"]),
    st.text(ANY_CHARACTER, max_size=4),
    st.text(LETTERS + "你好世界々ー.,!?'-$#()", max_size=10),
)
TEXTS = st.lists(FRAGMENTS, max_size=12).map("".join)


def write_folder(folder, config: dict):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.fixture(scope="module", params=list(CONFIGS), ids=list(CONFIGS))
def pair(request, tmp_path_factory):
    """(ours, Hugging Face's) from one folder."""
    transformers = pytest.importorskip("transformers", reason="transformers not installed: the cross-check is skipped")
    folder = write_folder(tmp_path_factory.mktemp("wordpiece"), CONFIGS[request.param])
    return WordPieceTokenizer.from_pretrained(folder), transformers.BertTokenizer.from_pretrained(folder)


@settings(max_examples=300, deadline=None)
@given(text=TEXTS)
def test_encode_equals_hugging_face(pair, text):
    ours, theirs = pair
    assert ours.encode(text) == theirs(text)["input_ids"]
    assert ours.tokenize(text) == theirs.tokenize(text)


@settings(max_examples=150, deadline=None)
@given(ids=st.lists(st.integers(0, len(VOCAB) - 1), max_size=20), skip=st.booleans())
def test_decode_equals_hugging_face(pair, ids, skip):
    ours, theirs = pair
    assert ours.decode(ids, skip_special_tokens=skip) == theirs.decode(ids, skip_special_tokens=skip)


def test_encode_batch_equals_hugging_face(pair):
    ours, theirs = pair
    texts = ["Hello, world! The playing", "un", "", "café Straße 你好世界 and a much longer text than fits"]
    ids, mask = ours.encode_batch(texts, max_length=8)
    expected = theirs(texts, padding="max_length", truncation=True, max_length=8)
    assert ids.dtype == mask.dtype == np.int64
    np.testing.assert_array_equal(ids, expected["input_ids"])
    np.testing.assert_array_equal(mask, expected["attention_mask"])


def test_the_steps_and_the_ids(tmp_path):
    tokenizer = WordPieceTokenizer.from_pretrained(write_folder(tmp_path, {"do_lower_case": True}))
    assert tokenizer.normalize("Héllo\tWORLD\x00你好") == "hello world 你  好 "
    assert tokenizer.pre_tokenize("don't stop--now") == ["don", "'", "t", "stop", "-", "-", "now"]
    assert tokenizer.wordpiece("playing") == ["play", "##ing"] and tokenizer.wordpiece("unaffable") == ["un", "##aff", "##able"]
    assert tokenizer.wordpiece("x" * 101) == ["[UNK]"]
    assert tokenizer.tokenize("Un-affable [MASK]") == ["un", "-", "a", "##f", "##f", "##able", "[MASK]"]  # greedy, longest first
    assert (tokenizer.pad_id, tokenizer.unknown_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id) == (0, 2, 3, 4, 5)
    assert tokenizer.special_ids == [0, 2, 3, 4, 5] and tokenizer.vocab_size == len(VOCAB)
    ids = tokenizer.encode("The playing.")
    assert ids[0] == tokenizer.cls_id and ids[-1] == tokenizer.sep_id
    assert tokenizer.encode("The playing.", add_special_tokens=False) == ids[1:-1]
    assert tokenizer.decode(ids) == "[CLS] the playing. [SEP]"
    assert tokenizer.decode(ids, skip_special_tokens=True) == "the playing."


def test_save_and_load(tmp_path):
    tokenizer = WordPieceTokenizer.from_pretrained(write_folder(tmp_path, {"do_lower_case": False, "strip_accents": True}))
    tokenizer.save(tmp_path / "tokenizer.json")
    loaded = WordPieceTokenizer.from_dict(json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8")))
    text = "Café Straße, [MASK] 你好!"
    assert loaded.encode(text) == tokenizer.encode(text) and loaded.strip_accents and not loaded.lowercase
    assert isinstance(tokenizer, tokenizers.Tokenizer)


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no vocab.txt: a BERT tokenizer reads its vocabulary from it"):
        WordPieceTokenizer.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"the vocabulary lacks the special tokens \['\[CLS\]', '\[MASK\]'\]"):
        WordPieceTokenizer(["[PAD]", "[UNK]", "[SEP]", "a"])
    tokenizer = WordPieceTokenizer(SPECIALS + ["a"])
    with pytest.raises(ValueError, match=r"max_length must leave room for \[CLS\] and \[SEP\] \(at least 2\), got 1"):
        tokenizer.encode_batch(["a"], max_length=1)


def test_a_saved_wordpiece_vocabulary_loads_back_through_tokenizer_from_dict():
    tokenizer = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world"])
    restored = tokenizers.tokenizer_from_dict(tokenizer.to_dict())
    assert isinstance(restored, WordPieceTokenizer)
    assert restored.encode("hello world") == tokenizer.encode("hello world") == [2, 5, 6, 3]
