"""Tokenizers: lossless round trips over arbitrary Unicode, vocabularies, JSON save/load;
the byte-level BPE's special-token policy, old checkpoints, and streaming in bounded memory."""
from __future__ import annotations

import json
import os
import sys
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinylm as tl
from text_strategies import SPECIAL_TOKENS, TEXTS, TRAINING_TEXT, trained_bpe
from tinylm.data import load_corpus
from tinylm.data.pretokenize import STREAM_BUFFER
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
    assert tokenizer.merges == [(b"a", b"a")]
    assert tokenizer.encode("aaab") == [256, ord("a"), ord("b")]
    assert tokenizer.vocab_size == 257
    assert len(BPE.encode(SAMPLE)) < len(SAMPLE.encode("utf-8")) / 2
    assert train_tokenizer("bpe", SAMPLE, num_merges=30).vocab_size == 256 + 30


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


# ------------------------------------------------------------ the byte-level BPE

# saved by tinylm's first BPETokenizer (ids 0-255 bytes, 256 + k the k-th merge, the "words"
# pre-tokenisation), trained on SAMPLE * 3 with 24 merges; the ids are what it encoded then
OLD_CHECKPOINT = {"type": "bpe", "merges": [
    [97, 116], [104, 101], [116, 257], [99, 256], [171, 229], [101, 110], [109, 256], [111, 110], [114, 256],
    [115, 256], [128, 130], [140, 260], [144, 228], [144, 229], [156, 168], [157, 269], [158, 260], [173, 268],
    [184, 138], [227, 266], [229, 272], [231, 267], [256, 101], [261, 100]]}
OLD_ENCODINGS = {
    "the cat sat on the mat": [258, 32, 259, 32, 265, 32, 263, 32, 258, 32, 262],
    "  the  rat\n\nthe end ": [32, 32, 258, 32, 32, 264, 10, 10, 258, 32, 279, 32],
    "猫坐在垫子上。": [277, 271, 270, 276, 273, 274, 275],
    "don't: 1234 cats' 'tis": [100, 263, 39, 116, 58, 32, 49, 50, 51, 52, 32, 259, 115, 39, 32, 39, 116, 105, 115],
    "the<|endoftext|>cat": [258, 60, 124, 279, 111, 102, 116, 101, 120, 116, 124, 62, 259],
    "Ünïcödé thére\tthe\u3000mat": [195, 156, 110, 195, 175, 99, 195, 182, 100, 195, 169, 32, 116, 104, 195, 169, 114, 101, 9, 258, 227, 128, 128, 262],
    "": [],
}


def test_an_old_bpe_checkpoint_loads_and_encodes_exactly_as_before(tmp_path):
    tokenizer = tokenizer_from_dict(OLD_CHECKPOINT)
    assert tokenizer.pattern == "words" and tokenizer.vocab_size == 280
    for text, ids in OLD_ENCODINGS.items():
        assert tokenizer.encode(text) == ids, text
        assert tokenizer.decode(ids) == text
    tl.save({"tokenizer": tokenizer.to_dict()}, tmp_path / "checkpoint.npz")  # and saved again, the new way
    again = tokenizer_from_dict(tl.load(tmp_path / "checkpoint.npz")["tokenizer"])
    assert all(again.encode(text) == ids for text, ids in OLD_ENCODINGS.items())


@pytest.fixture(scope="module")
def gpt2_like():
    return trained_bpe()


def test_checkpoints_keep_the_vocabulary_the_merges_the_special_tokens_and_the_pattern(tmp_path, gpt2_like):
    # a tokenizer read from GPT-2's files: the bytes do not have ids 0-255 in order there
    gpt2_like.save_pretrained(tmp_path / "folder")
    vocab = json.loads((tmp_path / "folder" / "vocab.json").read_text(encoding="utf-8"))
    shuffled = {token: (i * 7919) % len(vocab) for i, token in enumerate(vocab)}  # another order, one id each
    (tmp_path / "folder" / "vocab.json").write_text(json.dumps(shuffled), encoding="utf-8")
    (tmp_path / "folder" / "tokenizer_config.json").unlink()
    tokenizer = BPETokenizer.from_pretrained(tmp_path / "folder")
    assert tokenizer.vocab[shuffled["Ġ"]] == b" "
    tl.save({"tokenizer": tokenizer.to_dict()}, tmp_path / "checkpoint.npz")
    loaded = tokenizer_from_dict(tl.load(tmp_path / "checkpoint.npz")["tokenizer"])
    assert (loaded.vocab, loaded.merges, loaded.special_tokens, loaded.pattern) == (
        tokenizer.vocab, tokenizer.merges, tokenizer.special_tokens, "gpt2")
    text = TRAINING_TEXT[:3000]
    assert loaded.encode(text, special="allow") == tokenizer.encode(text, special="allow")
    assert [tokenizer.vocab[i] for i in tokenizer.encode(text, special="allow")] == [
        gpt2_like.vocab[i] for i in gpt2_like.encode(text, special="allow")]  # the same tokens, other ids


def test_special_tokens_raise_by_default_or_become_ids_or_stay_text(gpt2_like):
    text = "end of story<|endoftext|>next"
    with pytest.raises(ValueError, match=r"the text holds the special token '<\|endoftext\|>': pass special='allow' "
                                         r"to encode it as its id 656, or special='text' to encode it as ordinary text"):
        gpt2_like.encode(text)
    allowed = gpt2_like.encode(text, special="allow")
    assert allowed.count(gpt2_like.eos_token_id) == 1 and gpt2_like.eos_token_id == 656
    as_text = gpt2_like.encode(text, special="text")
    assert gpt2_like.eos_token_id not in as_text and len(as_text) > len(allowed)
    assert gpt2_like.decode(allowed) == gpt2_like.decode(as_text) == text
    with pytest.raises(ValueError, match="special must be 'raise', 'allow' or 'text', got 'skip'"):
        gpt2_like.encode(text, special="skip")
    assert BPE.eos_token_id is None and BPE.special_tokens == {}


@settings(max_examples=100, deadline=None)
@given(TEXTS)
def test_gpt2_bpe_round_trips_any_text(text):
    tokenizer = trained_bpe()
    assert tokenizer.decode(tokenizer.encode(text, special="allow")) == text
    assert tokenizer.decode(tokenizer.encode(text, special="text")) == text


@settings(max_examples=100, deadline=None)
@given(st.lists(TEXTS, max_size=6))
def test_encode_iterable_gives_the_ids_of_the_whole_text(chunks):
    tokenizer = trained_bpe()
    assert list(tokenizer.encode_iterable(chunks, special="allow")) == tokenizer.encode("".join(chunks), special="allow")


def test_encode_iterable_reads_lazily(gpt2_like):
    lines = (TRAINING_TEXT * 4).splitlines(keepends=True)
    read = []

    def reading(lines):
        for line in lines:
            read.append(line)
            yield line

    ids = gpt2_like.encode_iterable(reading(lines), special="allow")
    first = next(ids)
    assert len("".join(read)) < 2 * STREAM_BUFFER < len(TRAINING_TEXT) * 4  # a buffer or so read, not the whole text
    assert [first, *ids] == gpt2_like.encode("".join(lines), special="allow")


def test_bpe_errors_name_the_problem(gpt2_like):
    with pytest.raises(ValueError, match=r"the id 9999 is not in the vocabulary \(ids below 658\)"):
        gpt2_like.decode([1, 9999])
    byte_vocab = {b: bytes([b]) for b in range(256)}
    with pytest.raises(ValueError, match=r"needs all 256 bytes as tokens; b'\\xff' and 0 more are missing"):
        BPETokenizer({b: bytes([b]) for b in range(255)}, [])
    with pytest.raises(ValueError, match=r"the vocabulary gives the token b'a' more than one id"):
        BPETokenizer({**byte_vocab, 256: b"a"}, [])
    with pytest.raises(ValueError, match=r"merge 0 \(b'a', b'b'\): b'ab' is not in the vocabulary"):
        BPETokenizer(byte_vocab, [(b"a", b"b")])
    with pytest.raises(ValueError, match=r"merge 1 \(b'a', b'b'\) is already merge 0"):
        BPETokenizer({**byte_vocab, 256: b"ab"}, [(b"a", b"b"), (b"a", b"b")])
    with pytest.raises(ValueError, match=r"eos_token '</s>' must be one of the special tokens \['<\|pad\|>'\]"):
        BPETokenizer(byte_vocab, [], ["<|pad|>"], eos_token="</s>")
    with pytest.raises(ValueError, match="unknown pre-tokenisation pattern 'cl100k'"):
        BPETokenizer(byte_vocab, [], pattern="cl100k")


def resident_memory() -> int:
    """Bytes of this process in RAM now (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the resident memory from /proc (Linux)")
def test_encode_iterable_keeps_memory_flat_on_a_50_mb_file(tmp_path, gpt2_like):
    """A 50 MB file of numbered lines (so the pieces never stop being new and the cache of
    pieces fills and starts afresh many times) is encoded id by id; the resident memory,
    sampled as it goes, grows by the cache (a few MB) at the start and then no more.
    Holding the text or the ids would cost 50 MB or hundreds. (~40 s on a busy 2-core machine.)"""
    lines = load_corpus("builtin").splitlines(keepends=True)
    path, size, documents = tmp_path / "big.txt", 50 * 2**20, 0
    with open(path, "w", encoding="utf-8") as file:
        written = number = 0
        while written < size:
            line = f"{number} {lines[number % len(lines)]}"
            if number % 1000 == 999:
                line, documents = "<|endoftext|>" + line, documents + 1
            written += file.write(line)
            number += 1
    samples = []

    def lines_measuring_memory(file):
        for number, line in enumerate(file):
            if number % 10_000 == 0:
                samples.append(resident_memory())
            yield line

    before = resident_memory()
    with open(path, encoding="utf-8") as file:
        counts = Counter(gpt2_like.encode_iterable(lines_measuring_memory(file), special="allow"))
    assert counts[gpt2_like.eos_token_id] == documents  # every line went through
    MiB, tenth = 2**20, len(samples) // 10
    assert max(samples) - before < 64 * MiB, f"grew by {(max(samples) - before) / MiB:.0f} MiB encoding a 50 MB file"
    assert max(samples[tenth:]) - samples[tenth] < 16 * MiB, (
        f"after the first tenth of the file, memory grew by a further {(max(samples[tenth:]) - samples[tenth]) / MiB:.0f} MiB"
    )
