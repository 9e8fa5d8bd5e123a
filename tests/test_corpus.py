"""Corpora: the built-in text, the user's files and folders, and downloads (never the network)."""
from __future__ import annotations

import hashlib
import io
import urllib.error

import pytest

from tinylm.data import corpus
from tinylm.data.corpus import CorpusError, Dataset, builtin_corpus, cache_dir, download, load_corpus, read_text


def test_builtin_corpus_is_cpythons_documentation_and_the_same_every_time():
    text = builtin_corpus()
    assert len(text) > 400_000
    assert "The \"for\" statement" in text
    assert builtin_corpus() == text
    assert load_corpus("builtin") == text


def test_read_text_reads_utf8_including_chinese(tmp_path):
    path = tmp_path / "poem.txt"
    path.write_text("床前明月光，疑是地上霜。\nmoonlight", encoding="utf-8")
    assert read_text(path) == "床前明月光，疑是地上霜。\nmoonlight"
    assert load_corpus(str(path)) == read_text(path)


def test_a_folder_is_read_file_by_file_in_sorted_order(tmp_path):
    (tmp_path / "b.txt").write_text("second", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_text("third", encoding="utf-8")
    (tmp_path / "a.txt").write_text("first", encoding="utf-8")
    (tmp_path / ".hidden").write_text("skipped", encoding="utf-8")
    assert read_text(tmp_path) == "first\nsecond\nthird"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.txt", "no such file or folder"),
        (lambda p: (p / "empty.txt").write_text(" \n", encoding="utf-8") and p / "empty.txt", "is empty"),
        (lambda p: (p / "latin1.txt").write_bytes("café".encode("latin-1")) and p / "latin1.txt", "is not UTF-8"),
        (lambda p: (p / "nothing").mkdir() or p / "nothing", "holds no files"),
    ],
)
def test_unreadable_corpora_are_explained(tmp_path, make, message):
    with pytest.raises(CorpusError, match=message):
        read_text(make(tmp_path))


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("TINYLM_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "tinylm"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "tinylm"
    monkeypatch.setenv("TINYLM_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


@pytest.fixture
def local_dataset(monkeypatch, tmp_path):
    """A registered corpus whose 'download' is a local file:// URL, cached under tmp_path."""
    source = tmp_path / "source.txt"
    source.write_text("To be, or not to be: that is the question.\n", encoding="utf-8")
    dataset = Dataset(source.as_uri(), "tiny.txt", hashlib.sha256(source.read_bytes()).hexdigest(), "a tiny test corpus")
    monkeypatch.setitem(corpus.DATASETS, "tiny", dataset)
    monkeypatch.setenv("TINYLM_CACHE_DIR", str(tmp_path / "cache"))
    return source


def test_download_fetches_once_checks_and_caches(local_dataset, tmp_path):
    path = download("tiny")
    assert path == tmp_path / "cache" / "tiny.txt"
    assert path.read_bytes() == local_dataset.read_bytes()
    assert [p.name for p in path.parent.iterdir()] == ["tiny.txt"]  # no temporary file left behind

    def offline(url):
        raise AssertionError("a cached corpus must not be downloaded again")

    assert download("tiny", opener=offline) == path
    assert load_corpus("tiny", opener=offline) == local_dataset.read_text(encoding="utf-8")


def test_a_corrupt_download_is_refused_and_not_cached(local_dataset, tmp_path):
    def tampered(url):
        return io.BytesIO(b"something else entirely")

    with pytest.raises(CorpusError, match="is corrupt: its SHA-256 is"):
        download("tiny", opener=tampered)
    assert not (tmp_path / "cache" / "tiny.txt").exists()


def test_offline_the_error_says_what_to_do(local_dataset, tmp_path):
    def no_network(url):
        raise urllib.error.URLError("Temporary failure in name resolution")

    expected = str(tmp_path / "cache" / "tiny.txt")
    with pytest.raises(CorpusError, match=rf"Download that file by hand to {expected}, or use --data builtin"):
        download("tiny", opener=no_network)


def test_the_shakespeare_entry_is_pinned_by_checksum():
    shakespeare = corpus.DATASETS["shakespeare"]
    assert len(shakespeare.sha256) == 64 and shakespeare.url.startswith("https://")


def test_unknown_corpus_name():
    with pytest.raises(CorpusError, match="unknown corpus 'nope': expected one of"):
        download("nope")
