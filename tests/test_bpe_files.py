"""GPT-2's and tiktoken's files: tinylm's BPETokenizer encodes byte for byte as
``transformers.GPT2Tokenizer`` and ``tiktoken`` do on the same files; bad files get one
clear error each. Skips cleanly when transformers / tiktoken are missing."""
from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from text_strategies import SPECIAL_TOKENS, TEXTS, trained_bpe
from tinylm.data import BPETokenizer, TokenizerFileError, load_corpus
from tinylm.data.bpe_files import byte_characters
from tinylm.data.pretokenize import GPT2_PATTERN

TOKENIZER = trained_bpe()


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2")
    TOKENIZER.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiktoken_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiktoken") / "trained.tiktoken"
    TOKENIZER.save_tiktoken(path)
    return path


@pytest.fixture(scope="module")
def hugging_face(gpt2_folder):
    transformers = pytest.importorskip("transformers", reason="transformers not installed")
    return transformers.GPT2Tokenizer.from_pretrained(gpt2_folder)


@pytest.fixture(scope="module")
def hugging_face_specials_as_text(gpt2_folder):
    transformers = pytest.importorskip("transformers", reason="transformers not installed")
    return transformers.GPT2Tokenizer.from_pretrained(gpt2_folder, split_special_tokens=True)


@pytest.fixture(scope="module")
def tiktoken_encoding(tiktoken_file):
    tiktoken = pytest.importorskip("tiktoken", reason="tiktoken not installed")
    from tiktoken.load import load_tiktoken_bpe

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKEN_CACHE_DIR", "")  # a local file: read as it is, no cached copy
        ranks = load_tiktoken_bpe(str(tiktoken_file))
    return tiktoken.Encoding("trained", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=TOKENIZER.special_tokens)


@pytest.fixture(scope="module")
def ours_from_gpt2_files(gpt2_folder):
    return BPETokenizer.from_pretrained(gpt2_folder)


@pytest.fixture(scope="module")
def ours_from_tiktoken(tiktoken_file):
    return BPETokenizer.from_tiktoken(tiktoken_file, special_tokens=TOKENIZER.special_tokens)


# ------------------------------------------------------------ Hugging Face


def test_the_trained_tokenizer_is_a_realistic_one():
    assert TOKENIZER.vocab_size == 256 + 400 + 2
    text = "The return value of a function is None unless it says otherwise.\n"
    assert len(TOKENIZER.encode(text)) < len(text) / 2


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_encodes_as_hugging_faces_gpt2_tokenizer(hugging_face, hugging_face_specials_as_text, ours_from_gpt2_files, text):
    assert ours_from_gpt2_files.encode(text, special="allow") == hugging_face.encode(text)
    assert ours_from_gpt2_files.encode(text, special="text") == hugging_face_specials_as_text.encode(text)


def test_encodes_the_whole_corpus_as_hugging_face(hugging_face, ours_from_gpt2_files):
    corpus = load_corpus("builtin")
    assert ours_from_gpt2_files.encode(corpus) == hugging_face.encode(corpus)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, TOKENIZER.vocab_size - 1), max_size=20))
def test_decodes_as_hugging_face_even_broken_utf8(hugging_face, ids):
    assert TOKENIZER.decode(ids) == hugging_face.decode(ids)


def test_reads_what_hugging_face_reads(hugging_face, ours_from_gpt2_files):
    ours = ours_from_gpt2_files
    assert ours.vocab == TOKENIZER.vocab and ours.merges == TOKENIZER.merges
    assert ours.special_tokens == TOKENIZER.special_tokens == {"<|endoftext|>": 656, "<|pad|>": 657}
    assert ours.eos_token_id == hugging_face.eos_token_id == 656
    assert ours.vocab_size == len(hugging_face)


def test_a_folder_written_by_hand_in_gpt2s_format(tmp_path):
    """Written here without tinylm: the byte characters of GPT-2's files, ids in another order."""
    # "Ġ" is the space, "Ċ" the newline; the bytes get the ids GPT-2 gives them (printable ones first)
    vocab = {character: i for i, character in enumerate(byte_characters_of_gpt2())}
    vocab.update({"Ġt": 256, "he": 257, "Ġthe": 258, "ĊĊ": 259, "<|endoftext|>": 260})
    (tmp_path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (tmp_path / "merges.txt").write_text("#version: 0.2\nĠ t\nh e\nĠt he\nĊ Ċ\n", encoding="utf-8")
    ours = BPETokenizer.from_pretrained(tmp_path)
    text = "the then\n\n\n the<|endoftext|>"
    expected = [vocab["t"], 257, 258, vocab["n"], 259, vocab["Ċ"], 258, 260]  # t he | Ġthe n | ĊĊ Ċ | Ġthe | <|endoftext|>
    assert ours.encode(text, special="allow") == expected
    assert ours.decode(expected) == text and ours.eos_token_id == 260
    transformers = pytest.importorskip("transformers", reason="transformers not installed")
    assert transformers.GPT2Tokenizer.from_pretrained(tmp_path).encode(text) == expected


def byte_characters_of_gpt2() -> list[str]:
    """GPT-2's encoder.py order: the printable bytes first, then the rest from U+0100 on."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    others = [byte for byte in range(256) if byte not in printable]
    return [chr(byte) for byte in printable] + [chr(256 + i) for i in range(len(others))]


def test_byte_characters_are_gpt2s():
    characters = byte_characters()
    assert characters[ord(" ")] == "Ġ" and characters[ord("\n")] == "Ċ" and characters[ord("a")] == "a"
    convert = pytest.importorskip("transformers.convert_slow_tokenizer", reason="transformers not installed")
    assert dict(enumerate(characters)) == convert.bytes_to_unicode()


def test_reads_tokenizer_json_alone_as_transformers_5_saves_it(hugging_face, tmp_path):
    hugging_face.save_pretrained(tmp_path)
    assert not (tmp_path / "vocab.json").exists()
    ours = BPETokenizer.from_pretrained(tmp_path)
    assert ours.vocab == TOKENIZER.vocab and ours.merges == TOKENIZER.merges
    assert ours.special_tokens == TOKENIZER.special_tokens and ours.eos_token_id == 656


# ------------------------------------------------------------ tiktoken


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_encodes_as_tiktoken(tiktoken_encoding, ours_from_tiktoken, text):
    ours = ours_from_tiktoken
    assert ours.encode(text, special="allow") == tiktoken_encoding.encode(text, allowed_special="all")
    assert ours.encode(text, special="text") == tiktoken_encoding.encode_ordinary(text)
    if any(token in text for token in SPECIAL_TOKENS):
        with pytest.raises(ValueError, match="special token"):
            tiktoken_encoding.encode(text)
        with pytest.raises(ValueError, match="the text holds the special token"):
            ours.encode(text)
    else:
        assert ours.encode(text) == tiktoken_encoding.encode(text)


def test_encodes_the_whole_corpus_as_tiktoken(tiktoken_encoding, ours_from_tiktoken):
    corpus = load_corpus("builtin")
    assert ours_from_tiktoken.encode(corpus) == tiktoken_encoding.encode(corpus)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, TOKENIZER.vocab_size - 1), max_size=20))
def test_decodes_as_tiktoken_even_broken_utf8(tiktoken_encoding, ids):
    assert TOKENIZER.decode(ids) == tiktoken_encoding.decode(ids)


def test_merges_come_back_from_the_ranks(ours_from_tiktoken):
    ours = ours_from_tiktoken
    assert ours.merges == TOKENIZER.merges and ours.vocab == TOKENIZER.vocab
    assert ours.eos_token_id == 656 and ours.vocab_size == 658


# ------------------------------------------------------------ bad files


def write_folder(folder, vocab: dict, merges: str):
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text(merges, encoding="utf-8")
    return folder


BYTES = {character: i for i, character in enumerate(byte_characters())}


@pytest.mark.parametrize(
    "vocab, merges, error, message",
    [
        ({**BYTES, "Ġt": 256}, "#version: 0.2\nĠ t\nĠt he\n", TokenizerFileError, r"merges.txt line 3: 'he' of the merge 'Ġt' 'he' is not in the vocabulary"),
        (BYTES, "#version: 0.2\nĠ t h\n", TokenizerFileError, r"merges.txt line 2: expected two tokens separated by one space, got 'Ġ t h'"),
        (BYTES, "Ġ t\n", TokenizerFileError, r"merges.txt line 1: the merge 'Ġ' 't' makes 'Ġt', which is not in the vocabulary"),
        ({**BYTES, "a b": 256}, "", TokenizerFileError, r"the token 'a b' has the character ' ' \(U\+0020\), which is not one of GPT-2's 256 byte characters"),
        ({**BYTES, "ab": "x"}, "", TokenizerFileError, r"the id of 'ab' must be a non-negative integer, got 'x'"),
        ({c: i for c, i in BYTES.items() if c != "Ċ"}, "", ValueError, r"a byte-level BPE needs all 256 bytes as tokens; b'\\n' and 0 more are missing"),
    ],
    ids=["merge-part-missing", "malformed-line", "merged-token-missing", "not-a-byte-character", "bad-id", "missing-byte"],
)
def test_bad_gpt2_files_get_one_clear_error(tmp_path, vocab, merges, error, message):
    with pytest.raises(error, match=message):
        BPETokenizer.from_pretrained(write_folder(tmp_path, vocab, merges))


def test_missing_gpt2_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no tokenizer folder at .*nowhere: expected a folder with vocab.json and merges.txt"):
        BPETokenizer.from_pretrained(tmp_path / "nowhere")
    (tmp_path / "vocab.json").write_text("{}", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match=r"has no merges.txt: a GPT-2 tokenizer folder has vocab.json and merges.txt \(or tokenizer.json\)"):
        BPETokenizer.from_pretrained(tmp_path)
    (tmp_path / "merges.txt").write_text("", encoding="utf-8")
    (tmp_path / "vocab.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(TokenizerFileError, match="vocab.json is not valid JSON"):
        BPETokenizer.from_pretrained(tmp_path)


def test_unsupported_hugging_face_options_are_refused(tmp_path):
    write_folder(tmp_path, BYTES, "")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"add_prefix_space": True}), encoding="utf-8")
    with pytest.raises(TokenizerFileError, match="add_prefix_space=true is not supported"):
        BPETokenizer.from_pretrained(tmp_path)
    added = {"256": {"content": "<mask>", "special": True, "lstrip": True}}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"added_tokens_decoder": added}), encoding="utf-8")
    with pytest.raises(TokenizerFileError, match="the added token '<mask>' is not a plain special token"):
        BPETokenizer.from_pretrained(tmp_path)


def tiktoken_line(token: bytes, rank: int) -> str:
    return f"{base64.b64encode(token).decode()} {rank}"


BYTE_LINES = [tiktoken_line(bytes([b]), b) for b in range(256)]


@pytest.mark.parametrize(
    "lines, message",
    [
        (BYTE_LINES + ["YWI="], r"line 257: expected a base64 token, a space and a rank, got b'YWI='"),
        (BYTE_LINES + ["!!! 256"], r"line 257: expected a base64 token, a space and a rank, got b'!!! 256'"),
        (BYTE_LINES + [tiktoken_line(b"a", 256)], r"line 257: the token b'a' appears twice"),
        (BYTE_LINES[1:] + [tiktoken_line(b"ab", 256)], r"the ranks lack 1 of the 256 single bytes \(the first: b'\\x00'\)"),
        (BYTE_LINES + [tiktoken_line(b"abc", 256)], r"the token b'abc' \(rank 256\) is not two tokens of lower rank joined"),
        (BYTE_LINES + [tiktoken_line(b"ab", 255)], r"two tokens have the same rank"),
    ],
    ids=["no-rank", "bad-base64", "twice", "missing-byte", "not-a-merge", "same-rank"],
)
def test_bad_tiktoken_files_get_one_clear_error(tmp_path, lines, message):
    path = tmp_path / "bad.tiktoken"
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    with pytest.raises(TokenizerFileError, match=message):
        BPETokenizer.from_tiktoken(path)


def test_tiktoken_errors_about_the_file_and_its_special_tokens(tmp_path):
    with pytest.raises(FileNotFoundError, match="no tiktoken file at .*missing.tiktoken"):
        BPETokenizer.from_tiktoken(tmp_path / "missing.tiktoken")
    path = tmp_path / "bytes.tiktoken"
    path.write_text("\n".join(BYTE_LINES) + "\n", encoding="ascii")
    with pytest.raises(ValueError, match=r"the special token '<\|endoftext\|>' has id 10, which .* gives to b'\\n'"):
        BPETokenizer.from_tiktoken(path, special_tokens={"<|endoftext|>": 10})
    assert BPETokenizer.from_tiktoken(path, special_tokens={"<|endoftext|>": 300}).vocab_size == 301
