"""tinylm.pretrained.hub against a small stand-in for the Hugging Face hub on 127.0.0.1:
checksums (SHA-256 of LFS files, git blob ids of the others), resuming after a cut, the offline error."""
from __future__ import annotations

import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from tinylm.pretrained import PretrainedError, hub

REPO = "openai-community/gpt2"
FILES = {
    "config.json": b'{"architectures": ["GPT2LMHeadModel"]}',
    "model.safetensors": np.random.default_rng(0).bytes(1_000_000),
    "vocab.json": b'{"a": 0}',
    "merges.txt": b"#version: 0.2\n",
}
LFS = {"model.safetensors"}  # served as the hub does: a redirect to its storage, the SHA-256 in X-Linked-Etag


class FakeHub(BaseHTTPRequestHandler):
    """``/{repo}/resolve/main/{file}`` as the hub answers it; ``/storage/{file}`` holds the LFS bytes.

    ``server.cuts[file]``: how many more GETs of the file break off after ``server.cut_at`` bytes.
    ``server.etags[file]``: a checksum to send instead of the right one.
    """

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self.answer(send_body=False)

    def do_GET(self) -> None:
        self.answer(send_body=True)

    def answer(self, send_body: bool) -> None:
        server = self.server
        server.requests.append((self.command, self.path, self.headers.get("Range")))
        prefix = f"/{REPO}/resolve/main/"
        if self.path.startswith("/renamed/gpt2/"):  # a repository that moved: the hub redirects within itself
            self.send_response(307)
            self.send_header("Location", prefix + self.path.rsplit("/", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        name = self.path.removeprefix(prefix).removeprefix("/storage/")
        if name not in FILES:
            self.send_error(404)
            return
        data = FILES[name]
        if self.path.startswith(prefix) and name in LFS:
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{server.server_port}/storage/{name}")
            self.send_header("X-Linked-Etag", f'"{server.etags.get(name, hashlib.sha256(data).hexdigest())}"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-")) if self.headers.get("Range") and server.ranges else 0
        self.send_response(206 if start else 200)
        if self.path.startswith(prefix):
            git_blob_id = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            self.send_header("ETag", f'"{server.etags.get(name, git_blob_id)}"')
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if not send_body:
            return
        if server.cuts.get(name, 0) > 0:
            server.cuts[name] -= 1
            self.wfile.write(data[start : start + server.cut_at])
            return  # HTTP/1.0: the connection closes, short of Content-Length
        self.wfile.write(data[start:])


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "huggingface"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    server.requests, server.cuts, server.etags, server.cut_at, server.ranges = [], {}, {}, 100_000, True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.endpoint = f"http://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()
    server.server_close()


def test_download_verifies_every_file_and_caches_it(fake_hub, tmp_path):
    folder = hub.download("gpt2", endpoint=fake_hub.endpoint)
    assert folder == tmp_path / "cache" / "models" / "gpt2"
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == FILES  # no .part left over
    assert ("HEAD", f"/{REPO}/resolve/main/model.safetensors", None) in fake_hub.requests
    count = len(fake_hub.requests)
    assert hub.resolve("gpt2", endpoint=fake_hub.endpoint) == folder and len(fake_hub.requests) == count  # from the cache


def test_a_renamed_repository_is_followed(fake_hub):
    folder = hub.download("renamed/gpt2", endpoint=fake_hub.endpoint)
    assert folder.name == "renamed--gpt2" and (folder / "model.safetensors").read_bytes() == FILES["model.safetensors"]


def test_a_cut_download_resumes_where_it_broke_off(fake_hub):
    fake_hub.cuts["model.safetensors"] = 1
    folder = hub.download("gpt2", endpoint=fake_hub.endpoint)
    assert (folder / "model.safetensors").read_bytes() == FILES["model.safetensors"]
    assert ("GET", "/storage/model.safetensors", "bytes=100000-") in fake_hub.requests


def test_a_download_that_keeps_breaking_off_is_resumed_by_the_next_call(fake_hub):
    fake_hub.cuts["model.safetensors"] = hub.ATTEMPTS
    with pytest.raises(PretrainedError, match=r"broke off after 300,000 bytes .*run it again to resume"):
        hub.download("gpt2", endpoint=fake_hub.endpoint)
    part = hub.model_folder("gpt2") / "model.safetensors.part"
    assert part.stat().st_size == hub.ATTEMPTS * 100_000  # each attempt resumed, and added what came before its cut
    folder = hub.download("gpt2", endpoint=fake_hub.endpoint)
    assert (folder / "model.safetensors").read_bytes() == FILES["model.safetensors"] and not part.exists()
    assert ("GET", "/storage/model.safetensors", "bytes=300000-") in fake_hub.requests


def test_a_server_that_ignores_the_range_starts_the_file_over(fake_hub):
    fake_hub.cuts["model.safetensors"], fake_hub.ranges = 1, False
    folder = hub.download("gpt2", endpoint=fake_hub.endpoint)
    assert (folder / "model.safetensors").read_bytes() == FILES["model.safetensors"]


@pytest.mark.parametrize("name, algorithm", [("model.safetensors", "sha256"), ("config.json", "git-sha1")])
def test_a_checksum_mismatch_deletes_the_bytes(fake_hub, name, algorithm):
    fake_hub.etags[name] = "0" * (64 if algorithm == "sha256" else 40)
    with pytest.raises(PretrainedError, match=rf"{name} is corrupt: its {algorithm} is [0-9a-f]+, the hub says 0+. The bytes were deleted"):
        hub.download("gpt2", endpoint=fake_hub.endpoint)
    folder = hub.model_folder("gpt2")
    assert not (folder / name).exists() and not (folder / (name + ".part")).exists()


def test_offline_the_error_says_where_to_put_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "huggingface"))
    with socket.socket() as unused:  # a port nobody listens on: the connection is refused
        unused.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{unused.getsockname()[1]}"
    folder = tmp_path / "cache" / "models" / "gpt2"
    message = (
        rf"could not download 'gpt2' from the Hugging Face hub .*download config.json, model.safetensors, vocab.json, "
        rf"merges.txt from https://huggingface.co/openai-community/gpt2/tree/main by hand and put them in {folder}"
    )
    with pytest.raises(PretrainedError, match=message):
        hub.resolve("gpt2", endpoint=endpoint)


def test_a_missing_file_and_a_bad_name(fake_hub):
    with pytest.raises(PretrainedError, match=r"the hub answered 404 .*is 'openai-community/gpt2' a model there, with a file tokenizer.model\?"):
        hub.download("gpt2", files=("tokenizer.model",), endpoint=fake_hub.endpoint)
    with pytest.raises(PretrainedError, match=r"'no such/folder/x' is neither a model folder nor a hub model name"):
        hub.resolve("no such/folder/x", endpoint=fake_hub.endpoint)


@pytest.mark.parametrize("cached_as", ["models--openai-community--gpt2", "models--gpt2"])
def test_folders_and_hugging_face_s_cache_are_used_as_they_are(tmp_path, monkeypatch, cached_as):
    monkeypatch.setenv("TINYLM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "huggingface"))
    assert hub.resolve(str(tmp_path)) == tmp_path
    snapshot = tmp_path / "huggingface" / cached_as / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    for name, data in FILES.items():
        (snapshot / name).write_bytes(data)
    assert hub.resolve("gpt2", endpoint="http://127.0.0.1:9") == snapshot
