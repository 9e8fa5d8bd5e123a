"""WordPiece: BERT's tokenizer, text -> ids as Hugging Face's ``BertTokenizer`` gives them.

    tokenizer = WordPieceTokenizer.from_pretrained("path/to/bert-base-uncased")   # vocab.txt
    tokenizer.encode("Hello, world!")      # [101, 7592, 1010, 2088, 999, 102]: [CLS] hello , world ! [SEP]

Four steps, in the order BERT takes them:

1. **Special tokens** ([CLS], [SEP], [PAD], [MASK], [UNK]) written in the text are cut out
   first, exactly as written, and become their own ids.
2. **Normalising** the rest: drop NUL, U+FFFD and control/format characters; every whitespace
   character becomes a space; a space on each side of every CJK ideograph (so each is a
   word); then, for an uncased model (lower-casing), strip the accents (decompose,
   NFD, and drop the combining marks: "é" -> "e") and lower-case each character.
3. **Pre-tokenising**: split at whitespace, and make every punctuation character (Unicode
   category P*, and ASCII symbols such as ``$`` and ``+``) a word of its own.
4. **WordPiece** on each word: greedily take the longest prefix that is in the vocabulary,
   then the longest continuation of the rest, written with ``##`` ("playing" -> "play",
   "##ing"). A word that cannot be covered so, or of more than 100 characters, becomes
   [UNK] as a whole.

``encode`` puts [CLS] in front and [SEP] at the end (``add_special_tokens=False`` leaves
them out). ``decode`` joins the pieces back: ``##`` pieces glue to the previous one,
others get a space (except ``. , ? !``); what normalising removed (case, accents,
spacing) does not come back.
"""
from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Sequence

import numpy as np

from .tokenizers import Tokenizer

CONTINUATION = "##"
# The CJK ideograph blocks BERT puts spaces around (its own list, kept as it is).
CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)
# What Hugging Face's WordPiece decoder does to each piece with its space in front.
DECODE_CLEANUP = (
    (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
    (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
)


def _is_control(char: str) -> bool:
    """Control, format, private-use or surrogate (Unicode Cc, Cf, Co, Cs), except tab and
    newlines. Unassigned code points (Cn) are kept, as Hugging Face's tokenizer keeps them."""
    return char not in "\t\n\r" and unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs")


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in CJK_RANGES)


def _is_punctuation(char: str) -> bool:
    """Unicode punctuation (P*), and every ASCII character that is neither a letter, a digit nor a space."""
    code = ord(char)
    return 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126 or unicodedata.category(char).startswith("P")


class WordPieceTokenizer(Tokenizer):
    """BERT's WordPiece over ``vocab`` (the lines of vocab.txt; a token's id is its line number).

    ``lowercase``: an uncased model's setting (tokenizer_config.json's ``do_lower_case``).
    ``strip_accents``: None follows ``lowercase`` (as BERT). ``split_cjk``: spaces around CJK
    ideographs (``tokenize_chinese_chars``). The five special tokens must be in ``vocab``.
    """

    kind = "wordpiece"

    def __init__(
        self,
        vocab: Sequence[str],
        lowercase: bool = True,
        strip_accents: bool | None = None,
        split_cjk: bool = True,
        unknown: str = "[UNK]",
        cls: str = "[CLS]",
        sep: str = "[SEP]",
        pad: str = "[PAD]",
        mask: str = "[MASK]",
        max_chars_per_word: int = 100,
    ):
        self.tokens = list(vocab)
        self.ids = {token: i for i, token in enumerate(self.tokens)}
        self.lowercase, self.split_cjk, self.max_chars_per_word = lowercase, split_cjk, max_chars_per_word
        self.strip_accents = lowercase if strip_accents is None else strip_accents
        self.special_tokens = {"unknown": unknown, "cls": cls, "sep": sep, "pad": pad, "mask": mask}
        missing = [token for token in self.special_tokens.values() if token not in self.ids]
        if missing:
            raise ValueError(f"WordPieceTokenizer: the vocabulary lacks the special tokens {missing}")
        self.unknown_id, self.cls_id, self.sep_id, self.pad_id, self.mask_id = (self.ids[t] for t in self.special_tokens.values())
        self.special_ids = sorted(self.ids[token] for token in self.special_tokens.values())
        # longest first, so that one special token inside another is not cut out of it
        specials = sorted(self.special_tokens.values(), key=len, reverse=True)
        self._special_pattern = re.compile("(" + "|".join(map(re.escape, specials)) + ")")

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "WordPieceTokenizer":
        """The tokenizer of a Hugging Face BERT folder: ``vocab.txt`` and, when there is one,
        ``tokenizer_config.json`` (``do_lower_case``, ``strip_accents``, ``tokenize_chinese_chars``,
        the special tokens' names)."""
        folder = Path(folder)
        vocab_path, config_path = folder / "vocab.txt", folder / "tokenizer_config.json"
        if not vocab_path.is_file():
            raise FileNotFoundError(f"{folder} has no vocab.txt: a BERT tokenizer reads its vocabulary from it, one token a line")
        vocab = vocab_path.read_text(encoding="utf-8").split("\n")
        if vocab and vocab[-1] == "":
            vocab.pop()  # the newline that ends the last line
        config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
        names = dict(unknown="unk_token", cls="cls_token", sep="sep_token", pad="pad_token", mask="mask_token")
        specials = {ours: _token_name(config[theirs]) for ours, theirs in names.items() if theirs in config}
        return cls(
            vocab,
            lowercase=config.get("do_lower_case", True),
            strip_accents=config.get("strip_accents"),
            split_cjk=config.get("tokenize_chinese_chars", True),
            **specials,
        )

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    # ------------------------------------------------------------ the four steps
    def normalize(self, text: str) -> str:
        """Step 2: clean, space out CJK ideographs, strip accents, lower-case (as configured)."""
        text = "".join(" " if char in "\t\n\r" or char.isspace() else char for char in text
                       if not (char in "\x00\ufffd" or _is_control(char)))
        if self.split_cjk:
            text = "".join(f" {char} " if _is_cjk(char) else char for char in text)
        if self.strip_accents:
            text = "".join(char for char in unicodedata.normalize("NFD", text) if unicodedata.category(char) != "Mn")
        if self.lowercase:
            text = "".join(char.lower() for char in text)  # one character at a time, as BERT (no final-sigma rule)
        return text

    @staticmethod
    def pre_tokenize(text: str) -> list[str]:
        """Step 3: words at whitespace, every punctuation character a word of its own."""
        words = []
        for chunk in text.split():
            word = ""
            for char in chunk:
                if _is_punctuation(char):
                    words += [word, char] if word else [char]
                    word = ""
                else:
                    word += char
            if word:
                words.append(word)
        return words

    def wordpiece(self, word: str) -> list[str]:
        """Step 4: greedy longest-match pieces of one word, or [UNK] for the whole word."""
        if len(word) > self.max_chars_per_word:
            return [self.special_tokens["unknown"]]
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else CONTINUATION + word[start:end]
                if piece in self.ids:
                    break
            else:
                return [self.special_tokens["unknown"]]
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` (steps 1 to 4), without [CLS] and [SEP]."""
        tokens = []
        for i, part in enumerate(self._special_pattern.split(text)):
            if i % 2:  # the pattern's group: a special token, as written
                tokens.append(part)
            else:
                tokens += [piece for word in self.pre_tokenize(self.normalize(part)) for piece in self.wordpiece(word)]
        return tokens

    # ------------------------------------------------------------ ids
    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Ids of ``text``: [CLS] tokens… [SEP] (or the tokens alone)."""
        ids = [self.ids[token] for token in self.tokenize(text)]
        return [self.cls_id, *ids, self.sep_id] if add_special_tokens else ids

    def encode_batch(self, texts: Sequence[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, attention_mask), both (len(texts), max_length) int64: each text encoded with
        [CLS] and [SEP], cut to ``max_length`` (its last tokens dropped, [SEP] kept) and padded
        with [PAD]; the mask is 1 for the real tokens and 0 for the padding (the inputs of
        ``nn.BertModel``), as Hugging Face's ``padding="max_length", truncation=True``."""
        if max_length < 2:
            raise ValueError(f"encode_batch: max_length must leave room for [CLS] and [SEP] (at least 2), got {max_length}")
        ids = np.full((len(texts), max_length), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(texts), max_length), dtype=np.int64)
        for row, text in enumerate(texts):
            tokens = self.encode(text, add_special_tokens=False)[: max_length - 2]
            ids[row, : len(tokens) + 2] = [self.cls_id, *tokens, self.sep_id]
            mask[row, : len(tokens) + 2] = 1
        return ids, mask

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """The text of ``ids``: ``##`` pieces glued to the one before, others spaced."""
        special = set(self.special_ids) if skip_special_tokens else set()
        tokens = [self.tokens[i] for i in ids if i not in special]
        pieces = []
        for i, token in enumerate(tokens):
            if i > 0:
                token = token[len(CONTINUATION):] if token.startswith(CONTINUATION) else " " + token
            for old, new in DECODE_CLEANUP:
                token = token.replace(old, new)
            pieces.append(token)
        return "".join(pieces)

    # ------------------------------------------------------------ saving
    def to_dict(self) -> dict:
        return {
            "type": self.kind,
            "vocab": self.tokens,
            "lowercase": self.lowercase,
            "strip_accents": self.strip_accents,
            "split_cjk": self.split_cjk,
            "max_chars_per_word": self.max_chars_per_word,
            **self.special_tokens,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "WordPieceTokenizer":
        return cls(**{key: value for key, value in data.items() if key != "type"})


def _token_name(entry) -> str:
    """A special token's name in tokenizer_config.json: a string, or an AddedToken's dict."""
    return entry["content"] if isinstance(entry, dict) else entry
