"""Tokenizers: text -> a list of integer ids -> text again.

Three ways to cut text into tokens, from the simplest to the one GPT-2 uses:

* ``CharTokenizer``: one token per character (Unicode code point). The vocabulary is the
  set of characters in the training text; a few dozen for English, thousands for Chinese.
* ``WordTokenizer``: words, numbers, punctuation marks and runs of whitespace. Words seen
  fewer than ``min_frequency`` times become the unknown token ``<unk>``.
* ``BPETokenizer``: byte-level byte-pair encoding. Start from the 256 byte values of the
  UTF-8 text (so every string can be encoded) and repeatedly merge the most frequent
  adjacent pair into a new token (``tinylm.data.bpe``). The same class reads GPT-2's files
  from Hugging Face and tiktoken's (``tinylm.data.bpe_files``).

Each one is lossless on the text it was built from: ``decode(encode(text)) == text``
(the word tokenizer as long as no word fell below ``min_frequency``; the byte-level BPE
on every string). Each saves its vocabulary as JSON and loads it back.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from typing import Iterable, Iterator, Mapping, Sequence

from .bpe import apply_merges, train_bpe
from .bpe_files import END_OF_TEXT, merges_from_ranks, read_gpt2_folder, read_tiktoken, write_gpt2_folder, write_tiktoken
from .pretokenize import compiled_pattern, split_stream

class Tokenizer:
    """Base class: ``encode``, ``decode``, ``vocab_size`` and JSON save/load.

    Every subclass is listed in ``Tokenizer.kinds`` under its ``kind``, so a saved
    vocabulary names the class that reads it back (``tokenizer_from_dict``).
    """

    kind = ""
    kinds: dict[str, type["Tokenizer"]] = {}

    def __init_subclass__(cls, **options) -> None:
        super().__init_subclass__(**options)
        Tokenizer.kinds[cls.kind] = cls

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    @property
    def eos_token_id(self) -> int | None:
        """The id of the token that ends a text (where generation stops), or None if there is none."""
        return None

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
    """Words, numbers, punctuation and whitespace runs (the "words" pattern of
    ``tinylm.data.pretokenize``); rare words become ``<unk>`` (id 0)."""

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
        counts = Counter(compiled_pattern("words").findall(text))
        ranked = sorted(counts, key=lambda token: (-counts[token], token))
        return cls([token for token in ranked if counts[token] >= min_frequency])

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        return [self.ids.get(piece, 0) for piece in compiled_pattern("words").findall(text)]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.tokens[i] for i in ids)

    def to_dict(self) -> dict:
        return {"type": self.kind, "tokens": self.tokens[1:]}

    @classmethod
    def from_dict(cls, data: dict) -> "WordTokenizer":
        return cls(data["tokens"])


class BPETokenizer(Tokenizer):
    """Byte-level byte-pair encoding, as GPT-2 does it (and tiktoken, and ``train_bpe``).

    The text is cut into pieces (``pattern``: GPT-2's pre-tokenisation, see
    ``tinylm.data.pretokenize``); each piece becomes its UTF-8 bytes, one token each; then
    the learned merges are replayed inside the piece, the one of lowest rank first
    (``tinylm.data.bpe.apply_merges``). Every string can be encoded, since every byte is a
    token; ``decode(encode(text)) == text`` for every text.

    ``vocab`` maps ids to bytes, ``merges`` lists the merged pairs of bytes in rank order,
    ``special_tokens`` are strings such as ``<|endoftext|>`` that stand for one id each and
    are never cut or merged (they get the next free ids when ``vocab`` lacks them).

    Built by ``train`` / ``train_bpe``, ``from_pretrained`` (a Hugging Face GPT-2 folder),
    ``from_tiktoken`` (a ``.tiktoken`` rank file) or ``from_dict`` (a checkpoint).

    Special tokens in the text to encode (``encode(text, special=...)``): Hugging Face's
    GPT2Tokenizer always turns ``<|endoftext|>`` written in the text into its id; tiktoken's
    ``encode`` raises an error unless told (``allowed_special`` / ``disallowed_special``).
    tinylm follows tiktoken, since text from a user or a file should not slip control tokens
    into a model unnoticed:

    * ``special="raise"`` (default): a special token in the text is an error that says what to do;
    * ``special="allow"``: it becomes its id (Hugging Face's behaviour; tiktoken's ``allowed_special="all"``);
    * ``special="text"``: it is ordinary text, encoded byte by byte (tiktoken's ``encode_ordinary``).
    """

    kind = "bpe"
    CACHE_SIZE = 100_000  # pieces whose ids are remembered; the cache starts afresh when full

    def __init__(
        self,
        vocab: Mapping[int, bytes],
        merges: Sequence[tuple[bytes, bytes]],
        special_tokens: Iterable[str] = (),
        pattern: str = "gpt2",
        eos_token: str | None = END_OF_TEXT,
    ):
        self.vocab = {int(token_id): bytes(token) for token_id, token in vocab.items()}
        self.merges = [(bytes(left), bytes(right)) for left, right in merges]
        self.pattern = pattern
        self._pattern = compiled_pattern(pattern)
        ids = {token: token_id for token_id, token in self.vocab.items()}
        if len(ids) != len(self.vocab):
            twice = next(token for token, count in Counter(self.vocab.values()).items() if count > 1)
            raise ValueError(f"the vocabulary gives the token {twice!r} more than one id")
        missing = [byte for byte in range(256) if bytes([byte]) not in ids]
        if missing:
            raise ValueError(
                f"a byte-level BPE needs all 256 bytes as tokens; {bytes([missing[0]])!r} "
                f"and {len(missing) - 1} more are missing from the vocabulary"
            )
        self.special_tokens: dict[str, int] = {}
        for token in special_tokens:
            encoded = token.encode("utf-8")
            if encoded not in ids:
                ids[encoded] = self.vocab_size
                self.vocab[ids[encoded]] = encoded
            self.special_tokens[token] = ids[encoded]
        if eos_token not in self.special_tokens and eos_token not in (None, END_OF_TEXT):
            raise ValueError(f"eos_token {eos_token!r} must be one of the special tokens {list(self.special_tokens)}")
        self.eos_token = eos_token if eos_token in self.special_tokens else None
        self._byte_ids = [ids[bytes([byte])] for byte in range(256)]
        self._ranks: dict[tuple[int, int], int] = {}
        self._merged: dict[tuple[int, int], int] = {}
        for rank, (left, right) in enumerate(self.merges):
            for part in (left, right, left + right):
                if part not in ids:
                    raise ValueError(f"merge {rank} ({left!r}, {right!r}): {part!r} is not in the vocabulary")
            pair = (ids[left], ids[right])
            if pair in self._ranks:
                raise ValueError(f"merge {rank} ({left!r}, {right!r}) is already merge {self._ranks[pair]}")
            self._ranks[pair], self._merged[pair] = rank, ids[left + right]
        self._cache: dict[str, tuple[int, ...]] = {}

    @classmethod
    def train(cls, text: str, num_merges: int = 256, special_tokens: Sequence[str] = ()) -> "BPETokenizer":
        """Learn ``num_merges`` merges from ``text`` with ``train_bpe`` (GPT-2's way)."""
        vocab, merges = train_bpe(text, 256 + num_merges + len(special_tokens), special_tokens)
        return cls(vocab, merges, special_tokens)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> "BPETokenizer":
        """GPT-2's tokenizer from a Hugging Face folder (vocab.json and merges.txt, or
        tokenizer.json; see ``tinylm.data.bpe_files``). Encodes as ``GPT2Tokenizer`` does."""
        vocab, merges, special_tokens, eos_token = read_gpt2_folder(folder)
        return cls(vocab, merges, special_tokens, eos_token=eos_token)

    @classmethod
    def from_tiktoken(cls, path: str | os.PathLike, special_tokens: Mapping[str, int] | None = None) -> "BPETokenizer":
        """A tokenizer from a ``.tiktoken`` rank file of a GPT-2-pattern encoding (gpt2,
        r50k_base, p50k_base) and the special tokens with their ids, e.g.
        ``{"<|endoftext|>": 50256}``. Encodes as ``tiktoken.Encoding(name, pat_str=GPT2_PATTERN,
        mergeable_ranks=..., special_tokens=...)`` does: tiktoken merges the pair whose
        concatenation has the lowest rank, the merges derived here (``merges_from_ranks``)
        make the same choices on a vocabulary BPE training made (the tests check it)."""
        ranks = read_tiktoken(path)
        special_tokens = dict(special_tokens or {})
        vocab = {rank: token for token, rank in ranks.items()}
        for token, token_id in special_tokens.items():
            if token_id in vocab:
                raise ValueError(f"the special token {token!r} has id {token_id}, which {path} gives to {vocab[token_id]!r}")
            vocab[token_id] = token.encode("utf-8")
        return cls(vocab, merges_from_ranks(ranks), special_tokens)

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """Write the Hugging Face files (vocab.json, merges.txt, tokenizer_config.json) that
        ``transformers.GPT2Tokenizer.from_pretrained(folder)`` reads."""
        write_gpt2_folder(folder, self.vocab, self.merges, self.special_tokens, self.eos_token)

    def save_tiktoken(self, path: str | os.PathLike) -> None:
        """Write the ranks of the ordinary tokens as a ``.tiktoken`` file (special tokens are not part of it)."""
        specials = set(self.special_tokens.values())
        write_tiktoken(path, {token: token_id for token_id, token in self.vocab.items() if token_id not in specials})

    @property
    def vocab_size(self) -> int:
        """One more than the largest id (ids a file leaves unused count too, as in tiktoken's ``n_vocab``)."""
        return max(self.vocab) + 1

    @property
    def eos_token_id(self) -> int | None:
        """The id of the end-of-text token (``<|endoftext|>`` for GPT-2), or None if there is none."""
        return self.special_tokens.get(self.eos_token) if self.eos_token is not None else None

    def encode(self, text: str, special: str = "raise") -> list[int]:
        """The ids of ``text``. ``special``: what a special token in the text becomes ("raise",
        "allow" or "text"; see the class docstring)."""
        return list(self.encode_iterable([text], special))

    def encode_iterable(self, chunks: Iterable[str], special: str = "raise") -> Iterator[int]:
        """The ids of the concatenated ``chunks`` (e.g. an open file: its lines), one at a time,
        in bounded memory: the same ids as ``encode("".join(chunks))``."""
        if special not in ("raise", "allow", "text"):
            raise ValueError(f"special must be 'raise', 'allow' or 'text', got {special!r}")
        specials = self.special_tokens if special != "text" else ()
        for piece, is_special in split_stream(chunks, self._pattern, list(specials)):
            if not is_special:
                yield from self._cache.get(piece) or self._encode_piece(piece)
            elif special == "allow":
                yield self.special_tokens[piece]
            else:
                raise ValueError(
                    f"the text holds the special token {piece!r}: pass special='allow' to encode it as "
                    f"its id {self.special_tokens[piece]}, or special='text' to encode it as ordinary text"
                )

    def _encode_piece(self, piece: str) -> tuple[int, ...]:
        """The ids of one piece, remembered for the next time it comes."""
        ids = apply_merges([self._byte_ids[byte] for byte in piece.encode("utf-8")], self._ranks, self._merged)
        if len(self._cache) >= self.CACHE_SIZE:  # memory stays bounded on any stream
            self._cache.clear()
        self._cache[piece] = ids
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """The text of the ids; a byte sequence that is not valid UTF-8 (which a sampled
        sequence can be) shows as U+FFFD rather than failing, as in tiktoken and transformers."""
        try:
            data = b"".join(self.vocab[token_id] for token_id in ids)
        except KeyError as error:
            raise ValueError(f"the id {error.args[0]} is not in the vocabulary (ids below {self.vocab_size})") from None
        return data.decode("utf-8", errors="replace")

    def to_dict(self) -> dict:
        """The tokenizer as JSON data: each token's bytes as a Latin-1 string (one character a
        byte; null for an unused id), the merges as pairs of ids, the special tokens, the pattern."""
        ids = {token: token_id for token_id, token in self.vocab.items()}
        return {
            "type": self.kind,
            "pattern": self.pattern,
            "tokens": [self.vocab[i].decode("latin-1") if i in self.vocab else None for i in range(self.vocab_size)],
            "merges": [[ids[left], ids[right]] for left, right in self.merges],
            "special_tokens": list(self.special_tokens),
            "eos_token": self.eos_token,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "BPETokenizer":
        """Also reads what tinylm's first BPE saved, ``{"type": "bpe", "merges": [[left id,
        right id], ...]}``: ids 0-255 the bytes, 256 + k the k-th merge, the "words" pattern."""
        if "tokens" not in data:
            tokens = [bytes([byte]) for byte in range(256)]
            for left, right in data["merges"]:
                tokens.append(tokens[left] + tokens[right])
            vocab = dict(enumerate(tokens))
        else:
            vocab = {i: token.encode("latin-1") for i, token in enumerate(data["tokens"]) if token is not None}
        merges = [(vocab[left], vocab[right]) for left, right in data["merges"]]
        return cls(vocab, merges, data.get("special_tokens", ()), data.get("pattern", "words"), data.get("eos_token"))


# The tokenizers that learn their vocabulary from a text (``train``); others, such as
# BERT's WordPiece, come with a vocabulary made elsewhere.
TOKENIZERS = {cls.kind: cls for cls in (CharTokenizer, WordTokenizer, BPETokenizer)}


def train_tokenizer(kind: str, text: str, **options) -> Tokenizer:
    """Build the tokenizer named ``kind`` ("char", "word" or "bpe") from ``text``."""
    if kind not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {kind!r}: expected one of {sorted(TOKENIZERS)}")
    return TOKENIZERS[kind].train(text, **options)


def tokenizer_from_dict(data: dict) -> Tokenizer:
    kind = data.get("type")
    if kind not in Tokenizer.kinds:
        raise ValueError(f"unknown tokenizer type {kind!r} in the vocabulary: expected one of {sorted(Tokenizer.kinds)}")
    return Tokenizer.kinds[kind].from_dict(data)


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """A tokenizer from a vocabulary JSON file written by ``Tokenizer.save``."""
    with open(path, encoding="utf-8") as file:
        return tokenizer_from_dict(json.load(file))
