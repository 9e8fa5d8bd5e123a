"""Tokenizers: text -> a list of integer ids -> text again.

Three ways to cut text into tokens, from the simplest to the one GPT-2 uses:

* ``CharTokenizer``: one token per character (Unicode code point). The vocabulary is the
  set of characters in the training text; a few dozen for English, thousands for Chinese.
* ``WordTokenizer``: words, numbers, punctuation marks and runs of whitespace. Words seen
  fewer than ``min_frequency`` times become the unknown token ``<unk>``.
* ``BPETokenizer``: byte-level byte-pair encoding. Start from the 256 byte values of the
  UTF-8 text (so every string can be encoded) and repeatedly merge the most frequent
  adjacent pair into a new token, ``num_merges`` times.

Each one is lossless on the text it was built from: ``decode(encode(text)) == text``
(the word tokenizer as long as no word fell below ``min_frequency``; the byte-level BPE
on every string). Each saves its vocabulary as JSON and loads it back.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from typing import Sequence

# Runs of whitespace, of word characters, or single other characters: every character
# of a text falls in exactly one piece, so joining the pieces gives the text back.
_PIECES = re.compile(r"\s+|\w+|[^\w\s]")


class Tokenizer:
    """Base class: ``encode``, ``decode``, ``vocab_size`` and JSON save/load."""

    kind = ""

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict:
        """The vocabulary as plain JSON data (with a "type" entry naming the tokenizer)."""
        raise NotImplementedError

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "w", encoding="utf-8") as file:
            json.dump(self.to_dict(), file, ensure_ascii=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


class CharTokenizer(Tokenizer):
    """One id per character; the characters of the training text, sorted."""

    kind = "char"

    def __init__(self, chars: Sequence[str]):
        self.chars = list(chars)
        self.ids = {char: i for i, char in enumerate(self.chars)}

    @classmethod
    def train(cls, text: str) -> "CharTokenizer":
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.ids[char] for char in text]
        except KeyError as error:
            raise ValueError(
                f"the character {error.args[0]!r} is not in this tokenizer's vocabulary of "
                f"{self.vocab_size} characters (it never occurred in the training text)"
            ) from None

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def to_dict(self) -> dict:
        return {"type": self.kind, "chars": self.chars}

    @classmethod
    def from_dict(cls, data: dict) -> "CharTokenizer":
        return cls(data["chars"])


class WordTokenizer(Tokenizer):
    """Words, numbers, punctuation and whitespace runs; rare words become ``<unk>`` (id 0)."""

    kind = "word"
    unknown = "<unk>"  # never a piece itself: "<" and ">" are pieces of their own

    def __init__(self, tokens: Sequence[str]):
        self.tokens = [self.unknown] + [token for token in tokens if token != self.unknown]
        self.ids = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def train(cls, text: str, min_frequency: int = 1) -> "WordTokenizer":
        """Keep the pieces seen at least ``min_frequency`` times, most frequent first."""
        if min_frequency < 1:
            raise ValueError(f"min_frequency must be at least 1, got {min_frequency}")
        counts = Counter(_PIECES.findall(text))
        ranked = sorted(counts, key=lambda token: (-counts[token], token))
        return cls([token for token in ranked if counts[token] >= min_frequency])

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        return [self.ids.get(piece, 0) for piece in _PIECES.findall(text)]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.tokens[i] for i in ids)

    def to_dict(self) -> dict:
        return {"type": self.kind, "tokens": self.tokens[1:]}

    @classmethod
    def from_dict(cls, data: dict) -> "WordTokenizer":
        return cls(data["tokens"])


class BPETokenizer(Tokenizer):
    """Byte-level byte-pair encoding: ids 0-255 are bytes, id 256 + k is the k-th merge.

    Training counts adjacent pairs inside each piece of the text (merges never cross a
    piece boundary, so "the " and "the," share the token for "the"), weighted by how often
    the piece occurs; the most frequent pair becomes a new token and is replaced
    everywhere, and so on. Encoding replays the merges in the order they were learned.
    """

    kind = "bpe"

    def __init__(self, merges: Sequence[tuple[int, int]]):
        self.merges = [tuple(pair) for pair in merges]
        self.ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self.token_bytes = [bytes([b]) for b in range(256)]
        for left, right in self.merges:
            self.token_bytes.append(self.token_bytes[left] + self.token_bytes[right])
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def train(cls, text: str, num_merges: int = 256) -> "BPETokenizer":
        words = Counter(_PIECES.findall(text))
        sequences = [(list(word.encode("utf-8")), count) for word, count in words.items()]
        merges = []
        for new_id in range(256, 256 + num_merges):
            pairs: Counter = Counter()
            for sequence, count in sequences:
                for pair in zip(sequence, sequence[1:]):
                    pairs[pair] += count
            if not pairs:
                break
            best = max(pairs, key=lambda pair: (pairs[pair], -pair[0], -pair[1]))
            merges.append(best)
            sequences = [(_merge(sequence, best, new_id), count) for sequence, count in sequences]
        return cls(merges)

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.merges)

    def _encode_piece(self, piece: str) -> list[int]:
        if piece not in self._cache:
            sequence = list(piece.encode("utf-8"))
            while len(sequence) > 1:
                pair = min(zip(sequence, sequence[1:]), key=lambda p: self.ranks.get(p, len(self.ranks)))
                if pair not in self.ranks:
                    break
                sequence = _merge(sequence, pair, 256 + self.ranks[pair])
            self._cache[piece] = sequence
        return self._cache[piece]

    def encode(self, text: str) -> list[int]:
        return [token for piece in _PIECES.findall(text) for token in self._encode_piece(piece)]

    def decode(self, ids: Sequence[int]) -> str:
        """The text of the ids; a byte sequence that is not valid UTF-8 (which a sampled
        sequence can be) shows as U+FFFD rather than failing."""
        return b"".join(self.token_bytes[i] for i in ids).decode("utf-8", errors="replace")

    def to_dict(self) -> dict:
        return {"type": self.kind, "merges": [list(pair) for pair in self.merges]}

    @classmethod
    def from_dict(cls, data: dict) -> "BPETokenizer":
        return cls(data["merges"])


def _merge(sequence: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """``sequence`` with every non-overlapping occurrence of ``pair`` (left to right) replaced by ``new_id``."""
    merged, i = [], 0
    while i < len(sequence):
        if i + 1 < len(sequence) and (sequence[i], sequence[i + 1]) == pair:
            merged.append(new_id)
            i += 2
        else:
            merged.append(sequence[i])
            i += 1
    return merged


TOKENIZERS = {cls.kind: cls for cls in (CharTokenizer, WordTokenizer, BPETokenizer)}


def train_tokenizer(kind: str, text: str, **options) -> Tokenizer:
    """Build the tokenizer named ``kind`` ("char", "word" or "bpe") from ``text``."""
    if kind not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {kind!r}: expected one of {sorted(TOKENIZERS)}")
    return TOKENIZERS[kind].train(text, **options)


def tokenizer_from_dict(data: dict) -> Tokenizer:
    kind = data.get("type")
    if kind not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer type {kind!r} in the vocabulary: expected one of {sorted(TOKENIZERS)}")
    return TOKENIZERS[kind].from_dict(data)


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """A tokenizer from a vocabulary JSON file written by ``Tokenizer.save``."""
    with open(path, encoding="utf-8") as file:
        return tokenizer_from_dict(json.load(file))
