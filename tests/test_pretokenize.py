"""Pre-tokenisation: GPT-2's pattern in ``re`` equals the references' on every assigned code
point, and cutting a stream gives the pieces of the whole text."""
from __future__ import annotations

import functools
import re
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from text_strategies import SPECIAL_TOKENS, TEXTS
from tinylm.data.pretokenize import (
    GPT2_PATTERN,
    compiled_pattern,
    gpt2_classes,
    gpt2_pattern,
    special_token_pattern,
    split_stream,
    split_text,
)

# every code point Python's Unicode database assigns (surrogates aside: no UTF-8 text can hold them)
ASSIGNED = "".join(chr(code) for code in range(sys.maxunicode + 1) if unicodedata.category(chr(code)) not in ("Cn", "Cs"))
# GPT-2's classes, written as the references write them, and tinylm's names for them
CLASSES = {"letter": r"\p{L}", "number": r"\p{N}", "space": r"\s", "other": r"[^\s\p{L}\p{N}]"}


@functools.cache
def tinylm_class(name: str) -> frozenset[str]:
    return frozenset(re.findall(gpt2_classes()[name], ASSIGNED))


def assert_agree(name: str, theirs: set[str], reference: str) -> None:
    differ = sorted(tinylm_class(name) ^ theirs)
    assert not differ, (
        f"{name}: {len(differ)} code points assigned in Python's Unicode {unicodedata.unidata_version} are in "
        f"one class and not the other ({reference}): {[f'U+{ord(c):04X}' for c in differ[:10]]}"
    )


@pytest.mark.parametrize("name", CLASSES)
def test_classes_agree_with_tiktoken_on_every_assigned_code_point(name):
    tiktoken = pytest.importorskip("tiktoken", reason="tiktoken not installed")
    # tiktoken encodes only what its pattern matches: a pattern of one class gives that class
    probe = tiktoken.Encoding("probe", pat_str=CLASSES[name], mergeable_ranks={bytes([b]): b for b in range(256)}, special_tokens={})
    theirs = set(probe.decode_bytes(probe.encode_ordinary(ASSIGNED)).decode("utf-8"))
    assert_agree(name, theirs, "tiktoken")


@pytest.mark.parametrize("name", CLASSES)
def test_classes_agree_with_hugging_face_tokenizers_on_every_assigned_code_point(name):
    tokenizers = pytest.importorskip("tokenizers", reason="Hugging Face tokenizers not installed")
    kept = tokenizers.pre_tokenizers.Split(tokenizers.Regex(CLASSES[name]), behavior="removed").pre_tokenize_str(ASSIGNED)
    theirs = set(ASSIGNED) - set("".join(piece for piece, _ in kept))
    assert_agree(name, theirs, "tokenizers")


def test_classes_take_their_unicode_from_python():
    categories = {char: unicodedata.category(char) for char in ASSIGNED}
    assert tinylm_class("letter") == {char for char, category in categories.items() if category[0] == "L"}
    assert tinylm_class("number") == {char for char, category in categories.items() if category[0] == "N"}
    # re's own \s also holds U+001C-U+001F; Unicode's White_Space (and tiktoken, tokenizers) does not
    assert set(re.findall(r"\s", ASSIGNED)) - tinylm_class("space") == {"\x1c", "\x1d", "\x1e", "\x1f"}
    assert tinylm_class("other") == set(ASSIGNED) - tinylm_class("letter") - tinylm_class("number") - tinylm_class("space")


@pytest.fixture(scope="module")
def regex():
    return pytest.importorskip("regex", reason="the regex module is not installed")


@settings(max_examples=300, deadline=None)
@given(text=TEXTS)
def test_gpt2_pattern_cuts_as_the_regex_module_does(regex, text):
    assert gpt2_pattern().findall(text) == regex.findall(GPT2_PATTERN, text)


def test_gpt2_pattern_on_known_text():
    pieces = gpt2_pattern().findall("I'm here  and\n\n it's 2026!! 猫坐 ok?  ")
    assert pieces == ["I", "'m", " here", " ", " and", "\n\n", " it", "'s", " 2026", "!!", " 猫坐", " ok", "?", "  "]


@settings(max_examples=200, deadline=None)
@given(TEXTS, st.lists(st.integers(0, 200), max_size=8), st.booleans())
def test_split_stream_gives_the_pieces_of_the_whole_text(text, cuts, with_special):
    special_tokens = SPECIAL_TOKENS if with_special else []
    bounds = sorted({min(cut, len(text)) for cut in cuts})
    chunks = [text[start:end] for start, end in zip([0, *bounds], [*bounds, len(text)])]
    whole = split_text(text, gpt2_pattern(), special_token_pattern(special_tokens))
    assert "".join(piece for piece, _ in whole) == text
    assert list(split_stream(chunks, gpt2_pattern(), special_tokens)) == whole


def test_special_tokens_are_cut_out_whole_across_chunks_and_the_longest_wins():
    chunks = ["a <|endof", "text|><|", "pad|>b<|endoftext|><|endoftext|"]
    pieces = list(split_stream(chunks, gpt2_pattern(), ["<|endoftext|>", "<|pad|>", "<|endoftext|><|pad|>"]))
    assert pieces == [("a", False), (" ", False), ("<|endoftext|><|pad|>", True), ("b", False),
                      ("<|endoftext|>", True), ("<|", False), ("endoftext", False), ("|", False)]


def test_unknown_pattern_is_named():
    with pytest.raises(ValueError, match=r"unknown pre-tokenisation pattern 'cl100k': expected one of \['gpt2', 'words'\]"):
        compiled_pattern("cl100k")
