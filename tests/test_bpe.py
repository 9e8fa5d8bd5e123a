"""BPE training: the incremental trainer equals its naive twin; ties, special tokens, layout."""
from __future__ import annotations

import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from text_strategies import SPECIAL_TOKENS, TEXTS, TRAINING_TEXT
from tinylm.data import load_corpus, train_bpe, train_bpe_naive
from tinylm.data.bpe import apply_merges, merge_pair


@settings(max_examples=150, deadline=None)
@given(st.lists(TEXTS, max_size=4).map("".join), st.integers(0, 60), st.sampled_from([[], SPECIAL_TOKENS]))
def test_incremental_training_equals_the_naive_recount(text, num_merges, special_tokens):
    vocab_size = 256 + num_merges + len(special_tokens)
    assert train_bpe(text, vocab_size, special_tokens) == train_bpe_naive(text, vocab_size, special_tokens)


def test_incremental_training_equals_the_naive_recount_on_english():
    text = load_corpus("builtin")[:20_000]
    vocab, merges = train_bpe(text, 256 + 150)
    assert (vocab, merges) == train_bpe_naive(text, 256 + 150)
    assert len(merges) == 150 and (b" t", b"he") in merges


def test_ties_go_to_the_lexicographically_greater_pair():
    # "xy", " yx": the pairs (x, y), (" ", y) and (y, x) are each seen once; (y, x) is the greatest
    assert train_bpe("xy yx", 257)[1] == [(b"y", b"x")]
    # equal counts, the pairs compared as bytes: (b"b", b"a") > (b"a", b"b") > (b" ", b"b")
    assert train_bpe("ab ba", 257)[1] == [(b"b", b"a")]
    _, merges = train_bpe("abc abc abd abd", 256 + 3)
    assert merges[:2] == [(b"a", b"b"), (b" ", b"ab")]  # 4 each for ("a","b"); then (" ", "ab") 3 > ("ab", "c") 2


def test_the_vocabulary_has_the_bytes_then_the_merges_then_the_special_tokens():
    vocab, merges = train_bpe("the cat<|endoftext|>the hat", 256 + 4 + 2, SPECIAL_TOKENS)
    assert [vocab[i] for i in range(256)] == [bytes([b]) for b in range(256)]
    assert [vocab[256 + k] for k in range(len(merges))] == [left + right for left, right in merges]
    assert [vocab[256 + len(merges) + i] for i in range(2)] == [token.encode() for token in SPECIAL_TOKENS]
    assert len(vocab) == 256 + 4 + 2


def test_special_tokens_are_never_split_nor_merged_across():
    text = "a<|endoftext|>" * 100
    assert train_bpe(text, 256 + 30, ["<|endoftext|>"])[1] == []  # between them only single "a"s: nothing to merge
    assert (b"<", b"|") in train_bpe(text, 256 + 30)[1]  # without it, "<|endoftext|>" is ordinary text


def test_training_stops_when_no_pair_is_left():
    vocab, merges = train_bpe("abab", 1000)
    assert merges == [(b"a", b"b"), (b"ab", b"ab")]
    assert len(vocab) == 258


def test_a_path_is_read_as_its_text(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TRAINING_TEXT[:30_000], encoding="utf-8")
    assert train_bpe(pathlib.Path(path), 400, SPECIAL_TOKENS) == train_bpe(path.read_text("utf-8"), 400, SPECIAL_TOKENS)


def test_merge_pair_goes_left_to_right_without_overlap():
    assert merge_pair("aaa", ("a", "a"), "X") == ("X", "a")
    assert merge_pair((1, 2, 1, 2, 1), (1, 2), 9) == (9, 9, 1)


def test_apply_merges_replays_the_lowest_rank_first():
    ranks = {(2, 3): 0, (1, 2): 1, (4, 3): 2}  # (2, 3) -> 5 first, so (1, 2) never meets
    merged = {(2, 3): 5, (1, 2): 4, (4, 3): 6}
    assert apply_merges([1, 2, 3], ranks, merged) == (1, 5)
    assert apply_merges([1, 2, 2], ranks, merged) == (4, 2)


def test_training_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"vocab_size 257 is too small: the 256 bytes and 2 special token\(s\) alone take 258"):
        train_bpe("text", 257, SPECIAL_TOKENS)
    with pytest.raises(ValueError, match=r"special_tokens must be distinct non-empty strings, got \['<\|a\|>', '<\|a\|>'\]"):
        train_bpe("text", 300, ["<|a|>", "<|a|>"])
    with pytest.raises(TypeError, match=r"train_bpe reads a str \(the text\) or a path \(pathlib.Path\) of a text file, got bytes"):
        train_bpe(b"text", 300)
