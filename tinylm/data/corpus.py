"""Where the text comes from: the built-in corpus, your own files, or a downloaded corpus.

* ``"builtin"``: the Python reference documentation that ships with CPython
  (``pydoc_data.topics``, about 465,000 characters). Every Python has it, so the demo,
  the notebooks and the tests run offline on any machine.
* a path: a UTF-8 text file, or a folder whose files are read in sorted order (any
  language: Chinese works as well as English, since the tokenizers work on characters
  or bytes).
* a name from ``DATASETS`` (``"shakespeare"``): downloaded once, checked against its
  SHA-256, and cached under ``cache_dir()``. Offline, the error says where to put the
  file by hand.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

BUILTIN = "builtin"
CACHE_ENV_VAR = "TINYLM_CACHE_DIR"


class CorpusError(ValueError):
    """A corpus that cannot be read: missing, empty, not UTF-8, or not downloadable."""


@dataclass(frozen=True)
class Dataset:
    """A text corpus that can be downloaded: where from, its file name and its SHA-256."""

    url: str
    filename: str
    sha256: str
    description: str


DATASETS = {
    "shakespeare": Dataset(
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        filename="tinyshakespeare.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        description="tiny Shakespeare (1,115,394 characters of plays, as in char-rnn)",
    ),
}


def builtin_corpus() -> str:
    """The Python reference documentation that ships with CPython, topic after topic."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name].strip() for name in sorted(topics))


def read_text(path: str | os.PathLike) -> str:
    """The UTF-8 text of a file, or of every file in a folder (sorted by path, joined by newlines)."""
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"no such file or folder: {path}")
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")) if path.is_dir() else [path]
    if not files:
        raise CorpusError(f"the folder {path} holds no files to read")
    texts = []
    for file in files:
        try:
            texts.append(file.read_text(encoding="utf-8"))
        except UnicodeDecodeError as error:
            raise CorpusError(f"{file} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    text = "\n".join(texts)
    if not text.strip():
        raise CorpusError(f"the corpus {path} is empty: it holds no text to learn from")
    return text


def cache_dir() -> Path:
    """Where downloaded corpora are kept: $TINYLM_CACHE_DIR, else $XDG_CACHE_HOME/tinylm, else ~/.cache/tinylm."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tinylm"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _open_url(url: str):
    return urllib.request.urlopen(url, timeout=60)  # a network that never answers fails, not hangs


def download(name: str, opener: Callable = _open_url) -> Path:
    """The cached file of the named corpus, downloaded and checked first if it is not there yet.

    ``opener(url)`` returns a file-like response (``urllib.request.urlopen`` with a timeout
    by default; tests pass their own, so they never touch the network).
    """
    if name not in DATASETS:
        raise CorpusError(f"unknown corpus {name!r}: expected one of {sorted(DATASETS)}, {BUILTIN!r} or a path")
    dataset = DATASETS[name]
    path = cache_dir() / dataset.filename
    if path.exists() and _sha256(path.read_bytes()) == dataset.sha256:
        return path
    try:
        with opener(dataset.url) as response:
            data = response.read()
    except OSError as error:  # URLError, timeouts and refused connections are all OSErrors
        raise CorpusError(
            f"could not download {dataset.description} from {dataset.url} ({error}). "
            f"Download that file by hand to {path}, or use --data {BUILTIN} or --data PATH_TO_YOUR_TEXT"
        ) from None
    if _sha256(data) != dataset.sha256:
        raise CorpusError(
            f"the download of {name!r} from {dataset.url} is corrupt: its SHA-256 is {_sha256(data)}, "
            f"expected {dataset.sha256}. Try again, or put the right file at {path} by hand"
        )
    _write_atomically(path, data)
    return path


def load_corpus(source: str, opener: Callable = _open_url) -> str:
    """The text named by ``source``: "builtin", a name from DATASETS, or a file or folder path."""
    if source == BUILTIN:
        return builtin_corpus()
    if source in DATASETS:
        return read_text(download(source, opener))
    return read_text(source)
