"""A byte-level BPE in other tools' files: Hugging Face's GPT-2 folder and tiktoken's ranks.

**Hugging Face** (``transformers.GPT2Tokenizer``; the folder of ``openai-community/gpt2``):

* ``vocab.json``: ``{token: id}``. Each byte of a token is written as one character by
  GPT-2's byte-to-unicode table (``byte_characters``): the 188 printable bytes (``!``-``~``,
  ``¡``-``¬``, ``®``-``ÿ``) stand for themselves, the other 68 (controls, the space, ...)
  take the characters from U+0100 on, in byte order. So the space is ``Ġ``, the newline
  ``Ċ``, and the token " the" is written ``Ġthe``. Special tokens are written as they are.
* ``merges.txt``: an optional ``#version`` line, then one merge a line in rank order, its
  two tokens (written as in vocab.json) separated by one space.
* special tokens: ``added_tokens`` of ``tokenizer.json``, ``added_tokens_decoder`` and the
  named ones (``eos_token``, ``bos_token``, ``unk_token``, ``pad_token``) of
  ``tokenizer_config.json`` and ``special_tokens_map.json``. Without a named end-of-text
  token, GPT2Tokenizer's default: ``<|endoftext|>`` (added after the vocabulary if absent).
* Or ``tokenizer.json`` alone (transformers 5 saves only that): the same vocabulary and
  merges inside its ``"model"``.

**tiktoken** (a ``.tiktoken`` file): one token a line, the base64 of its bytes, a space, its
rank; the rank is the token's id. There are no merges: tiktoken merges, again and again,
the adjacent pair whose concatenation has the lowest rank. ``merges_from_ranks`` turns the
ranks into merges, as transformers converts tiktoken files: each token, in rank order, is
encoded with the merges of the tokens before it, which must leave exactly two parts.
Special tokens are not in the file: give them with their ids.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from .bpe import apply_merges

Pair = tuple[bytes, bytes]
END_OF_TEXT = "<|endoftext|>"
NAMED_SPECIAL_TOKENS = ("eos_token", "bos_token", "unk_token", "pad_token")


class TokenizerFileError(ValueError):
    """A tokenizer file that cannot be read: malformed, or not a byte-level BPE."""


def byte_characters() -> list[str]:
    """GPT-2's byte-to-unicode table: the character that stands for each byte 0-255 in its files."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    characters, next_free = [], 256
    for byte in range(256):
        if byte in printable:
            characters.append(chr(byte))
        else:
            characters.append(chr(next_free))
            next_free += 1
    return characters


# ------------------------------------------------------------ Hugging Face


def read_gpt2_folder(folder: str | os.PathLike) -> tuple[dict[int, bytes], list[Pair], list[str], str | None]:
    """``(vocab, merges, special_tokens, eos_token)`` from a Hugging Face GPT-2 tokenizer folder."""
    folder = Path(folder)
    vocab_file, merges_file, tokenizer_file = folder / "vocab.json", folder / "merges.txt", folder / "tokenizer.json"
    if not folder.is_dir():
        raise FileNotFoundError(f"no tokenizer folder at {folder}: expected a folder with vocab.json and merges.txt")
    if vocab_file.exists() and merges_file.exists():
        source, written_vocab, written_merges = vocab_file.name, _read_json(vocab_file, dict), _merge_lines(merges_file)
    elif tokenizer_file.exists():
        source, (written_vocab, written_merges) = tokenizer_file.name, _model_of_tokenizer_json(tokenizer_file)
    else:
        missing = " and ".join(path.name for path in (vocab_file, merges_file) if not path.exists())
        raise FileNotFoundError(f"{folder} has no {missing}: a GPT-2 tokenizer folder has vocab.json and merges.txt (or tokenizer.json)")
    config = _read_json(folder / "tokenizer_config.json", dict) if (folder / "tokenizer_config.json").exists() else {}
    if config.get("add_prefix_space"):
        raise TokenizerFileError(f"{folder / 'tokenizer_config.json'}: add_prefix_space=true is not supported (GPT-2 adds no space)")
    special_ids, eos_token = _special_tokens(folder, config)

    characters = {character: byte for byte, character in enumerate(byte_characters())}

    def token_bytes(token: str, where: str) -> bytes:
        if token in special_ids:
            return token.encode("utf-8")
        try:
            return bytes(characters[character] for character in token)
        except KeyError as error:
            raise TokenizerFileError(
                f"{where}: the token {token!r} has the character {error.args[0]!r} (U+{ord(error.args[0]):04X}), "
                "which is not one of GPT-2's 256 byte characters"
            ) from None

    vocab: dict[int, bytes] = {}
    for token, token_id in written_vocab.items():
        if not isinstance(token_id, int) or token_id < 0:
            raise TokenizerFileError(f"{source}: the id of {token!r} must be a non-negative integer, got {token_id!r}")
        vocab[token_id] = token_bytes(token, source)
    for token, token_id in special_ids.items():  # HF adds special tokens the vocabulary lacks after it
        if token in written_vocab:
            continue
        if token_id in vocab:
            raise TokenizerFileError(f"{folder}: the special token {token!r} has id {token_id}, which {source} gives to {vocab[token_id]!r}")
        vocab[token_id if token_id is not None else max(vocab, default=-1) + 1] = token.encode("utf-8")

    merges = []
    for where, (left, right) in written_merges:
        for part in (left, right):
            if part not in written_vocab:
                raise TokenizerFileError(f"{where}: {part!r} of the merge {left!r} {right!r} is not in the vocabulary")
        if left + right not in written_vocab:
            raise TokenizerFileError(f"{where}: the merge {left!r} {right!r} makes {left + right!r}, which is not in the vocabulary")
        merges.append((token_bytes(left, where), token_bytes(right, where)))
    return vocab, merges, list(special_ids), eos_token


def write_gpt2_folder(
    folder: str | os.PathLike, vocab: Mapping[int, bytes], merges: Sequence[Pair], special_tokens: Mapping[str, int], eos_token: str | None
) -> None:
    """Write vocab.json, merges.txt and tokenizer_config.json (the special tokens) for transformers."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    characters = byte_characters()

    def written(token: bytes) -> str:
        return "".join(characters[byte] for byte in token)

    specials_by_id = {token_id: token for token, token_id in special_tokens.items()}
    written_vocab = {specials_by_id.get(i) or written(token): i for i, token in sorted(vocab.items())}
    (folder / "vocab.json").write_text(json.dumps(written_vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{written(left)} {written(right)}" for left, right in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config: dict[str, Any] = {
        "tokenizer_class": "GPT2Tokenizer",
        "add_prefix_space": False,
        "added_tokens_decoder": {
            str(token_id): {"content": token, "special": True, "lstrip": False, "rstrip": False, "single_word": False, "normalized": False}
            for token, token_id in special_tokens.items()
        },
    }
    config.update({name: eos_token for name in ("eos_token", "bos_token", "unk_token")})
    (folder / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")


def _read_json(path: Path, expected: type) -> Any:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise TokenizerFileError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, expected):
        raise TokenizerFileError(f"{path} must hold a JSON {'object' if expected is dict else 'array'}, got {type(data).__name__}")
    return data


def _merge_lines(path: Path) -> list[tuple[str, tuple[str, str]]]:
    """The merges of merges.txt, each with where it is ("merges.txt line 2", counted from 1 as editors do)."""
    merges = []
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("#version"):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise TokenizerFileError(f"{path} line {line_number}: expected two tokens separated by one space, got {line!r}")
        merges.append((f"{path.name} line {line_number}", (parts[0], parts[1])))
    return merges


def _model_of_tokenizer_json(path: Path) -> tuple[dict, list[tuple[str, tuple[str, str]]]]:
    data = _read_json(path, dict)
    model = data.get("model") or {}
    if model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise TokenizerFileError(f"{path}: expected a BPE model with a vocabulary, got a {model.get('type')!r} model")
    gpt2_pre_tokenizer = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
    pre_tokenizer = data.get("pre_tokenizer") or {}
    if data.get("normalizer") or model.get("ignore_merges") or any(pre_tokenizer.get(key) != value for key, value in gpt2_pre_tokenizer.items()):
        raise TokenizerFileError(
            f"{path}: not GPT-2's byte-level BPE: expected no normalizer, the pre-tokenizer {gpt2_pre_tokenizer} "
            f"and merges that are not skipped, got {data.get('normalizer')}, {pre_tokenizer}, ignore_merges={model.get('ignore_merges')}"
        )
    merges = []
    for number, merge in enumerate(model.get("merges", []), start=1):
        parts = merge.split(" ") if isinstance(merge, str) else merge
        if not isinstance(parts, list) or len(parts) != 2 or not all(isinstance(part, str) and part for part in parts):
            raise TokenizerFileError(f"{path}: merge {number} must be two tokens, got {merge!r}")
        merges.append((f"{path.name} merge {number}", (parts[0], parts[1])))
    return model["vocab"], merges


def _special_tokens(folder: Path, config: dict) -> tuple[dict[str, int | None], str | None]:
    """The special tokens named anywhere in the folder (with their id where it is given), and the end-of-text token."""
    special: dict[str, int | None] = {}
    added = []
    if (folder / "tokenizer.json").exists():
        added += _read_json(folder / "tokenizer.json", dict).get("added_tokens") or []
    added += [{"id": int(token_id), **entry} for token_id, entry in (config.get("added_tokens_decoder") or {}).items()]
    for entry in added:
        if not entry.get("special", False) or any(entry.get(flag) for flag in ("lstrip", "rstrip", "single_word")):
            raise TokenizerFileError(
                f"{folder}: the added token {entry.get('content')!r} is not a plain special token "
                "(non-special added tokens and lstrip/rstrip/single_word are not supported)"
            )
        special[entry["content"]] = entry["id"]
    named = dict(config)
    if (folder / "special_tokens_map.json").exists():
        named.update(_read_json(folder / "special_tokens_map.json", dict))
    for name in NAMED_SPECIAL_TOKENS:
        token = named.get(name, END_OF_TEXT if name != "pad_token" else None)  # GPT2Tokenizer's defaults
        token = token.get("content") if isinstance(token, dict) else token
        if token is not None:
            special.setdefault(token, None)
    eos = named.get("eos_token", END_OF_TEXT)
    return special, eos.get("content") if isinstance(eos, dict) else eos


# ------------------------------------------------------------ tiktoken


def read_tiktoken(path: str | os.PathLike) -> dict[bytes, int]:
    """The ranks of a ``.tiktoken`` file: token bytes -> rank."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no tiktoken file at {path}: expected lines of 'base64-token rank'")
    ranks: dict[bytes, int] = {}
    for line_number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line:
            continue
        parts = line.split()
        try:
            if len(parts) != 2 or int(parts[1]) < 0:
                raise ValueError
            token, rank = base64.b64decode(parts[0], validate=True), int(parts[1])
        except (ValueError, binascii.Error):
            raise TokenizerFileError(
                f"{path} line {line_number}: expected a base64 token, a space and a rank, got {line[:80]!r}"
            ) from None
        if token in ranks:
            raise TokenizerFileError(f"{path} line {line_number}: the token {token!r} appears twice")
        ranks[token] = rank
    return ranks


def write_tiktoken(path: str | os.PathLike, ranks: Mapping[bytes, int]) -> None:
    lines = [f"{base64.b64encode(token).decode('ascii')} {rank}" for token, rank in sorted(ranks.items(), key=lambda item: item[1])]
    Path(path).write_text("\n".join(lines) + "\n", encoding="ascii")


def merges_from_ranks(ranks: Mapping[bytes, int]) -> list[Pair]:
    """The merges that build each token of ``ranks`` from two of lower rank, in rank order."""
    if len(set(ranks.values())) != len(ranks):
        raise TokenizerFileError("two tokens have the same rank")
    missing = [byte for byte in range(256) if bytes([byte]) not in ranks]
    if missing:
        raise TokenizerFileError(f"the ranks lack {len(missing)} of the 256 single bytes (the first: {bytes([missing[0]])!r})")
    token_of = {rank: token for token, rank in ranks.items()}
    merge_ranks: dict[tuple[int, int], int] = {}
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) == 1:
            continue
        parts = apply_merges([ranks[bytes([byte])] for byte in token], merge_ranks, merge_ranks)
        if len(parts) != 2:
            raise TokenizerFileError(
                f"the token {token!r} (rank {rank}) is not two tokens of lower rank joined: the merges before it "
                f"make {[token_of[part] for part in parts]}"
            )
        merge_ranks[parts[0], parts[1]] = rank
        merges.append((token_of[parts[0]], token_of[parts[1]]))
    return merges
