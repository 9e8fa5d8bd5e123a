"""Text for language models: corpora, tokenizers and batches (``from tinylm import data``)."""
from .batching import ContiguousBatches, random_windows, train_val_split
from .bpe import train_bpe, train_bpe_naive
from .bpe_files import TokenizerFileError
from .corpus import DATASETS, CorpusError, builtin_corpus, cache_dir, download, load_corpus, read_text
from .tokenizers import (
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    WordTokenizer,
    load_tokenizer,
    tokenizer_from_dict,
    train_tokenizer,
)
from .wordpiece import WordPieceTokenizer

__all__ = [
    "BPETokenizer",
    "CharTokenizer",
    "ContiguousBatches",
    "CorpusError",
    "DATASETS",
    "Tokenizer",
    "TokenizerFileError",
    "WordPieceTokenizer",
    "WordTokenizer",
    "builtin_corpus",
    "cache_dir",
    "download",
    "load_corpus",
    "load_tokenizer",
    "random_windows",
    "read_text",
    "tokenizer_from_dict",
    "train_bpe",
    "train_bpe_naive",
    "train_tokenizer",
    "train_val_split",
]
