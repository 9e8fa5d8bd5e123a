"""Hypothesis strategies for tokenizer tests: awkward text, and a BPE trained to meet it.

Unicode versions: Python 3.11's ``unicodedata`` is Unicode 14.0, tiktoken's and Hugging
Face tokenizers' regex engines know 16.0, the ``regex`` module 17.0. A code point assigned
since 14.0 is a letter to them and an unassigned "other" character to Python (see
``tinylm.data.pretokenize``), so the drawn text keeps to the code points Python's database
assigns (``test_pretokenize`` checks that the classes agree on every one of those). Lone
surrogates are left out too: they cannot be written as UTF-8 at all.
"""
from __future__ import annotations

import functools

from hypothesis import strategies as st

from tinylm.data import BPETokenizer, load_corpus

SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>"]
ASSIGNED = st.characters(exclude_categories=("Cs", "Cn"))

# pieces GPT-2's pattern treats specially, and text the trained merges below know
AWKWARD = [
    "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "don't", "it's", "'", "''",
    " the", "the", " The", "ing", " and", "\n", "\n\n", "  ", "   ", "\t", " \n ", "\r\n", "\x0b", "\x0c",
    "\x85", "\xa0", "\u2028", "\u3000", "\x1c", "\x1f", "123", " 4567", "2026", "①", "Ⅻ", "٣",
    "猫坐在垫子上", "é", "e\u0301", "déjà", "Ünïcödé", "🙂", "👩‍💻", "𝔘𝔫𝔦", "<", "|>", "<|endof", "text|>",
    *SPECIAL_TOKENS,
]
PARTS = st.one_of(
    st.text(ASSIGNED, max_size=6),
    st.sampled_from(AWKWARD),
    st.text(" \t\n\r", min_size=1, max_size=4),
    st.integers(0, 10**7).map(str),
)
TEXTS = st.lists(PARTS, max_size=14).map("".join)

# a training text with English, code, digits, whitespace runs and several scripts
TRAINING_TEXT = (
    load_corpus("builtin")[:60_000]
    + "".join(AWKWARD) * 20
    + "猫坐在垫子上。Ünïcödé déjà vu, naïve café 🙂🙂 1234567890 ١٢٣ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢\n" * 20
)


@functools.cache
def trained_bpe(num_merges: int = 400) -> BPETokenizer:
    """A BPE trained once per test session (do not change it: it is shared)."""
    return BPETokenizer.train(TRAINING_TEXT, num_merges=num_merges, special_tokens=SPECIAL_TOKENS)
