"""Models from the Hugging Face hub, downloaded once: cached, checksummed, resumable.

    folder = hub.resolve("gpt2")               # ~/.cache/tinylm/models/gpt2, downloaded if not there
    model, config = tinylm.pretrained.load(folder)

Each file comes from ``{endpoint}/{repo}/resolve/{revision}/{file}`` (endpoint
https://huggingface.co, or ``$HF_ENDPOINT``) into ``cache_dir()/models/NAME``
(``$TINYLM_CACHE_DIR``, else ``~/.cache/tinylm``, as the corpora). How it stays safe:

* **Checksummed.** A HEAD request (redirects not followed) says which file to expect.
  The hub keeps large files in Git LFS and sends their SHA-256 in ``X-Linked-Etag``;
  small files live in git itself and their ``ETag`` is their git blob id, the SHA-1 of
  ``b"blob {size}\\0" + content``. The downloaded bytes are hashed the same way and a
  mismatch is an error (the bytes are deleted).
* **Resumable.** The bytes go to ``FILE.part``. When a download breaks off, the next
  attempt asks only for the rest (``Range: bytes=N-``; the server answers
  ``206 Partial Content``). A server that ignores the range answers 200 with the whole
  file, and the ``.part`` starts over.
* **Atomic.** Only a complete, verified ``.part`` is renamed to the file's name
  (``os.replace``), so a file in the cache is always whole.
* **Offline**, the error names the folder to put the files in, and the files.

A folder that Hugging Face's own cache holds (``~/.cache/huggingface/hub``, filled by
``transformers``) is used as it is.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..data.corpus import cache_dir
from ..progress import progress_bar
from .files import PretrainedError

ENDPOINT = "https://huggingface.co"
# the files tinylm reads of a GPT-2: settings, weights, and the tokenizer's vocabulary and merges
GPT2_FILES = ("config.json", "model.safetensors", "vocab.json", "merges.txt")
# short names -> hub repositories (any "owner/name" works as well)
MODELS = {
    "gpt2": "openai-community/gpt2",
    "gpt2-medium": "openai-community/gpt2-medium",
    "gpt2-large": "openai-community/gpt2-large",
    "gpt2-xl": "openai-community/gpt2-xl",
    "distilgpt2": "distilbert/distilgpt2",
}
TIMEOUT_S = 60  # a network that never answers fails, not hangs
ATTEMPTS = 3  # tries per file; each resumes where the last broke off
CHUNK = 1 << 20


def model_folder(name: str) -> Path:
    """Where tinylm keeps the model called ``name``: ``cache_dir()/models/NAME`` ("/" becomes "--")."""
    return cache_dir() / "models" / name.replace("/", "--")


def huggingface_folder(name: str, files: tuple[str, ...] = GPT2_FILES) -> Path | None:
    """A snapshot of the model in Hugging Face's own cache that has every one of ``files``, if any."""
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
    hub_cache = os.environ.get("HF_HUB_CACHE") or Path(home) / "hub"  # where huggingface_hub puts it
    for repo in dict.fromkeys([MODELS.get(name, name), name]):  # from_pretrained("gpt2") caches it under "gpt2"
        snapshots = Path(hub_cache) / ("models--" + repo.replace("/", "--")) / "snapshots"
        for folder in sorted(snapshots.glob("*")):
            if all((folder / file).is_file() for file in files):
                return folder
    return None


def cached(name: str, files: tuple[str, ...] = GPT2_FILES) -> Path | None:
    """The folder of the model ``name`` if a cache already holds all its ``files``: tinylm's, else Hugging Face's."""
    folder = model_folder(name)
    if all((folder / file).is_file() for file in files):
        return folder
    return huggingface_folder(name, files)


def resolve(name_or_folder: str, files: tuple[str, ...] = GPT2_FILES, endpoint: str | None = None) -> Path:
    """The folder of a model: a local folder as it is; a name ("gpt2" or "owner/name") from
    a cache (``cached``), else downloaded (``download``)."""
    if Path(name_or_folder).is_dir():
        return Path(name_or_folder)
    return cached(name_or_folder, files) or download(name_or_folder, files=files, endpoint=endpoint)


def download(name: str, revision: str = "main", files: tuple[str, ...] = GPT2_FILES, endpoint: str | None = None) -> Path:
    """Download the model's ``files`` from the hub into ``model_folder(name)`` (those there
    already are kept); returns the folder."""
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?", name):
        raise PretrainedError(f"{name!r} is neither a model folder nor a hub model name (like 'gpt2' or 'owner/name')")
    repo = MODELS.get(name, name)
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or ENDPOINT).rstrip("/")
    folder = model_folder(name)
    for file in files:
        path = folder / file
        if not path.is_file():
            url = f"{endpoint}/{repo}/resolve/{revision}/{file}"
            try:
                fetch(url, path)
            except urllib.error.HTTPError as error:
                raise PretrainedError(f"{url}: the hub answered {error.code} {error.reason}: is {repo!r} a model there, with a file {file}?") from None
            except (OSError, http.client.HTTPException) as error:
                raise PretrainedError(_offline_message(name, repo, folder, files, error)) from None
    return folder


def _offline_message(name: str, repo: str, folder: Path, files: tuple[str, ...], error: Exception) -> str:
    return (
        f"could not download {name!r} from the Hugging Face hub ({error}). On a machine with internet, "
        f"`tinylm.pretrained.hub.download({name!r})` fetches it; or download {', '.join(files)} from "
        f"{ENDPOINT}/{repo}/tree/main by hand and put them in {folder} "
        f"(or in any folder, and pass its path instead of {name!r})"
    )


# ------------------------------------------------------------------ one file


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Make a redirect an HTTPError, whose headers can then be read (the hub sends the
    checksum with the redirect to its file storage, not with the file)."""

    def redirect_request(self, *args, **kwargs):
        return None


def expected_checksum(url: str) -> tuple[str, str]:
    """(algorithm, hex digest) of the file at ``url``, from the hub's headers:
    ("sha256", …) for a Git LFS file, ("git-sha1", …) for a file kept in git."""
    opener = urllib.request.build_opener(_NoRedirects)
    for _ in range(5):  # the hub redirects renamed repositories within itself (gpt2 -> openai-community/gpt2)
        try:
            headers = opener.open(urllib.request.Request(url, method="HEAD"), timeout=TIMEOUT_S).headers
        except urllib.error.HTTPError as answer:
            if answer.code not in (301, 302, 303, 307, 308):
                raise
            headers = answer.headers
            if headers.get("Location", "").startswith("/") and not headers.get("X-Linked-Etag"):
                url = urllib.parse.urljoin(url, headers["Location"])
                continue
        etag = (headers.get("X-Linked-Etag") or headers.get("ETag") or "").removeprefix("W/").strip('"')
        if re.fullmatch(r"[0-9a-f]{64}", etag):
            return "sha256", etag
        if re.fullmatch(r"[0-9a-f]{40}", etag):
            return "git-sha1", etag
        raise PretrainedError(f"{url}: the server sent no checksum (ETag {etag!r}), so the download could not be verified")
    raise PretrainedError(f"{url}: too many redirects")


def checksum(path: Path, algorithm: str) -> str:
    """The hex digest of a file: SHA-256 of its bytes, or its git blob id (SHA-1 of a header and the bytes)."""
    digest = hashlib.sha256() if algorithm == "sha256" else hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, path: Path, attempts: int = ATTEMPTS) -> Path:
    """Download ``url`` to ``path``: checksummed, resumed from ``path.part``, renamed into place."""
    algorithm, expected = expected_checksum(url)
    part = path.with_name(path.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, attempts + 1):
        try:
            _download_rest(url, part, path.name)
            break
        except urllib.error.HTTPError:
            raise  # an answer (404, 403, …), not a broken transfer: trying again would not help
        except (OSError, http.client.HTTPException) as error:
            if attempt == attempts:
                have = part.stat().st_size if part.exists() else 0
                raise OSError(f"the download of {url} broke off after {have:,} bytes ({error!r}); run it again to resume") from None
    actual = checksum(part, algorithm)
    if actual != expected:
        part.unlink()
        raise PretrainedError(
            f"the download of {url} is corrupt: its {algorithm} is {actual}, the hub says {expected}. "
            "The bytes were deleted; try again"
        )
    os.replace(part, path)
    return path


def _download_rest(url: str, part: Path, name: str) -> None:
    """Append to ``part`` the bytes of ``url`` it does not have yet (all of them if the server ignores ranges)."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        if error.code == 416:  # "range not satisfiable": the .part already has every byte
            return
        raise
    with response:
        resumed = response.status == 206
        length = int(response.headers.get("Content-Length", -1))
        bar = progress_bar(total=(have if resumed else 0) + length if length >= 0 else None, initial=have if resumed else 0,
                           unit="B", unit_scale=True, desc=name, leave=False)
        received = 0
        with open(part, "ab" if resumed else "wb") as file, bar:
            while chunk := response.read(CHUNK):
                file.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if received < length:  # urllib ends a cut transfer quietly: the count tells
        raise ConnectionError(f"the connection closed after {received:,} of {length:,} bytes")
