r"""Pre-tokenisation: cut text into pieces before byte-pair encoding works inside each one.

A BPE never merges across a piece boundary, so the pieces decide what a token can be.
GPT-2 cuts text with this pattern (tried left to right, first alternative that matches)::

    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+

English contractions; a run of letters, of digits, or of other characters, each with at
most one space in front (so " the" is one piece and "the" another); and runs of
whitespace, where ``\s+(?!\S)`` leaves the last space of a run to the word after it.

Python's ``re`` has no ``\p{L}`` (letter) or ``\p{N}`` (number), so ``gpt2_pattern()``
spells those classes out from ``unicodedata``: every code point whose general category
starts with L (Lu Ll Lt Lm Lo) or N (Nd Nl No). Its ``\s`` is not the references' either:
``re`` counts U+001C-U+001F as whitespace, Unicode's White_Space property (which tiktoken
and Hugging Face's tokenizers follow) does not, so the whitespace class is spelled out too.

Unicode versions: the classes follow the Unicode database of the running Python (14.0
for Python 3.11, 15.0 for 3.12, 15.1 for 3.13). tiktoken 0.14 and tokenizers 0.23 know
Unicode 16.0, the ``regex`` module 17.0. On every code point that Python's database
assigns, the classes agree exactly with tiktoken's and Hugging Face's (the tests check
all of them); a code point assigned since (say U+1C89, a Cyrillic letter of Unicode 16)
is an "other" character to Python 3.11 and a letter to them.

Special tokens (such as ``<|endoftext|>``) are cut out before the pattern runs, so the
pattern never sees them and no piece reaches across one.
"""
from __future__ import annotations

import functools
import re
import sys
import unicodedata
from typing import Iterable, Iterator, Sequence

# Unicode's White_Space property (PropList.txt), unchanged since Unicode 6.3.
WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"

#: GPT-2's pre-tokenisation pattern, as written for the ``regex`` module and tiktoken
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# tinylm's first BPE cut text into runs of whitespace, runs of word characters, and single
# other characters; tokenizers saved before the GPT-2 pattern existed keep using it.
WORDS_PATTERN = r"\s+|\w+|[^\w\s]"


@functools.cache
def _category_initials() -> str:
    """One character per code point: the first letter of its general category ("L", "N", ...)."""
    categories = map(unicodedata.category, map(chr, range(sys.maxunicode + 1)))
    return "".join(category[0] for category in categories)


def category_ranges(initial: str) -> tuple[str, str]:
    """The code points whose Unicode general category starts with ``initial`` ("L" for
    letters, "N" for numbers), as the bodies of two ``re`` classes of ranges first-last:
    those up to U+FFFF (the Basic Multilingual Plane), and those above."""
    below, above = [], []
    for run in re.finditer(f"{initial}+", _category_initials()):  # position in the string = code point
        first, last = run.start(), run.end() - 1
        if first <= 0xFFFF:
            below.append((first, min(last, 0xFFFF)))
        if last > 0xFFFF:
            above.append((max(first, 0x10000), last))
    return tuple("".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges) for ranges in (below, above))


@functools.cache
def gpt2_classes() -> dict[str, str]:
    r"""GPT-2's character classes as ``re`` patterns of one character: "letter" (\p{L}),
    "number" (\p{N}), "space" (\s), "not_space" (\S) and "other" ([^\s\p{L}\p{N}]).

    Each class of code points is split in two, the part above U+FFFF behind a look-ahead
    that lets only such characters try it: ``re`` tests a class of characters up to U+FFFF
    with one table look-up, but walks the ranges above one by one (hundreds of them),
    which made every character 4x slower.
    """
    (letters, high_letters), (numbers, high_numbers) = category_ranges("L"), category_ranges("N")
    high = r"(?=[^\x00-\uffff])"  # the next character is above U+FFFF
    return {
        "letter": f"(?:[{letters}]|{high}[{high_letters}])",
        "number": f"(?:[{numbers}]|{high}[{high_numbers}])",
        "space": f"[{WHITESPACE}]",
        "not_space": f"[^{WHITESPACE}]",
        "other": rf"(?:[^{WHITESPACE}{letters}{numbers}\U00010000-\U0010ffff]|{high}(?![{high_letters}{high_numbers}]).)",
    }


@functools.cache
def gpt2_pattern() -> re.Pattern:
    """``GPT2_PATTERN`` for ``re``, its classes spelled out (built once, on first use: ~0.3 s)."""
    letter, number, space, not_space, other = (gpt2_classes()[name] for name in ("letter", "number", "space", "not_space", "other"))
    return re.compile(f"'s|'t|'re|'ve|'m|'ll|'d| ?{letter}+| ?{number}+| ?{other}+|{space}+(?!{not_space})|{space}+")


PATTERNS = {"gpt2": gpt2_pattern, "words": functools.cache(lambda: re.compile(WORDS_PATTERN))}


def compiled_pattern(name: str) -> re.Pattern:
    """The pre-tokenisation pattern called ``name``: "gpt2" or "words"."""
    if name not in PATTERNS:
        raise ValueError(f"unknown pre-tokenisation pattern {name!r}: expected one of {sorted(PATTERNS)}")
    return PATTERNS[name]()


def special_token_pattern(special_tokens: Iterable[str]) -> re.Pattern | None:
    """A pattern finding any of the special tokens (the longest first where one starts
    another, as tiktoken and Hugging Face do), or None when there are none."""
    tokens = sorted(set(special_tokens), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, tokens))) if tokens else None


def split_text(text: str, pattern: re.Pattern, special: re.Pattern | None) -> list[tuple[str, bool]]:
    """The pieces of ``text`` in order, each as (piece, is_special_token); joined, they give
    ``text`` back. Text between special tokens goes to the pattern on its own."""
    pieces, start = [], 0
    if special is not None:
        for match in special.finditer(text):
            pieces += [(piece, False) for piece in pattern.findall(text, start, match.start())]  # as if the text ended there
            pieces.append((match.group(), True))
            start = match.end()
    pieces += [(piece, False) for piece in pattern.findall(text, start)]
    return pieces


def split_stream(chunks: Iterable[str], pattern: re.Pattern, special_tokens: Sequence[str] = ()) -> Iterator[tuple[str, bool]]:
    """``split_text`` of the concatenation of ``chunks`` (e.g. the lines of an open file),
    piece by piece, holding only about ``STREAM_BUFFER`` characters at a time.

    Exactly the pieces of the whole text: the last piece of what has arrived may still grow
    (``" wor" + "ld"``), and so may its end if it is the start of a special token
    (``"<|endof" + "text|>"``), so both wait for more text. Every other piece is final: the patterns look at
    most one character past a piece, which is the start of the next one. (One piece longer
    than the buffer, say a 50 MB line without a space, is held whole.) Short chunks, such as
    lines, are joined into longer ones first, since each costs a call of the pattern.
    """
    special = special_token_pattern(special_tokens)
    partial_special = _partial_special_token_pattern(special_tokens)
    longest = max(map(len, special_tokens), default=0)
    held = ""
    for chunk in _joined(chunks, STREAM_BUFFER):
        text = held + chunk
        end = len(text)
        if partial_special is not None and (match := partial_special.search(text, max(0, end - longest))):
            end = match.start()
        pieces = split_text(text[:end], pattern, special)
        if pieces and not pieces[-1][1]:
            held = pieces.pop()[0] + text[end:]
        else:
            held = text[end:]
        yield from pieces
    yield from split_text(held, pattern, special)


STREAM_BUFFER = 1 << 16  # characters


def _joined(chunks: Iterable[str], size: int) -> Iterator[str]:
    """The chunks, consecutive ones joined until they are at least ``size`` characters long."""
    batch, length = [], 0
    for chunk in chunks:
        batch.append(chunk)
        length += len(chunk)
        if length >= size:
            yield "".join(batch)
            batch, length = [], 0
    if batch:
        yield "".join(batch)


def _partial_special_token_pattern(special_tokens: Sequence[str]) -> re.Pattern | None:
    """A pattern for a beginning of a special token (not the whole of it) at the end of a text."""
    beginnings = sorted({token[:length] for token in special_tokens for length in range(1, len(token))}, key=len, reverse=True)
    return re.compile(f"(?:{'|'.join(map(re.escape, beginnings))})\\Z") if beginnings else None
