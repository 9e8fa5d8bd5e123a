"""Save and load checkpoints: nested state in one ``.npz`` file, without pickle::

    tl.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "step": 1000, "rng": tl.backend.get_rng_state()}, "run/checkpoint.npz")
    state = tl.load("run/checkpoint.npz")
    model.load_state_dict(state["model"])

The state may nest dicts (with string keys), lists and tuples of arrays, tensors, NumPy
scalars, Python numbers (ints of any size), strings, booleans and None. ``save`` walks it
and writes

* every array as its own entry, named by its path (``state/model/0.weight``), and
* a JSON manifest (entry ``tinylm_manifest``) that records the shape of the nest, every
  small value and every type, so ``load`` rebuilds exactly what was saved: the same
  types, the same dtypes, the same bits.

Arrays come back as host NumPy arrays, wherever they were (CuPy arrays are copied to
the host on saving); tensors come back as CPU tensors with their ``requires_grad``
(``nn.Parameter`` as a plain tensor); dict subclasses such as ``OrderedDict`` come back
as dicts, in the same order. Move things to the GPU after loading (``load_state_dict``
does it for models and optimizers).

Why not pickle: unpickling a file can run any code in it, so a checkpoint downloaded
from someone else could do anything. ``.npz`` with ``allow_pickle=False`` holds only
data. And why the temporary file: the checkpoint is first written next to its final
place, flushed to disk, and only then renamed over the old one (``os.replace`` is
atomic), so a crash or a kill while saving leaves the previous checkpoint intact. (A
process killed mid-write leaves its hidden ``.NAME.*.tmp`` file behind; it is safe to
delete.)
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from typing import Any

import numpy as np

from . import backend
from .tensor import Tensor

MANIFEST = "tinylm_manifest"
FORMAT = "tinylm-checkpoint"
VERSION = 1

SUPPORTED = "dicts with string keys, lists, tuples, arrays, tensors, numbers, strings, booleans and None"


class CheckpointError(ValueError):
    """A file that is not a readable tinylm checkpoint, or state that cannot be saved."""


# ------------------------------------------------------------ save


def save(state: Any, path: str | os.PathLike) -> None:
    """Write ``state`` to ``path`` (one ``.npz`` file), atomically.

    The file name is used as given (no ``.npz`` is appended). Raises ``TypeError``
    naming the place in the state of anything that cannot be stored without pickle.
    """
    arrays: dict[str, np.ndarray] = {}
    manifest = {"format": FORMAT, "version": VERSION, "root": _describe(state, "state", arrays)}
    arrays[MANIFEST] = np.frombuffer(json.dumps(manifest).encode("utf-8"), dtype=np.uint8)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    _sync_folder(folder)


def _sync_folder(folder: str) -> None:
    """Flush the folder entry too, so the rename itself survives a power cut (POSIX only)."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _escape(key: str) -> str:
    """Make a dict key safe as one part of an entry name ('/' separates the parts)."""
    return key.replace("%", "%25").replace("/", "%2F")


def _describe(value: Any, path: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The manifest node for ``value``; its arrays are added to ``arrays`` under ``path``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        # bool before int: True is an int in Python, but must come back as True
        return {"type": type(value).__name__ if value is not None else "None", "value": value}
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(
                    f"tl.save: the dict at {path!r} has the key {key!r} ({type(key).__name__}); keys must be strings"
                )
        items = [[key, _describe(item, f"{path}/{_escape(key)}", arrays)] for key, item in value.items()]
        return {"type": "dict", "items": items}
    if isinstance(value, (list, tuple)):
        items = [_describe(item, f"{path}/{i}", arrays) for i, item in enumerate(value)]
        return {"type": type(value).__name__, "items": items}
    if isinstance(value, Tensor):
        _add_array(value.numpy(), path, arrays)
        return {"type": "tensor", "requires_grad": value.requires_grad}
    if isinstance(value, np.generic):
        _add_array(np.asarray(value), path, arrays)
        return {"type": "numpy_scalar"}
    if isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__"):
        _add_array(backend.to_numpy(value), path, arrays)
        return {"type": "array"}
    raise TypeError(f"tl.save cannot store {type(value).__name__} (at {path!r}); it stores {SUPPORTED}")


def _add_array(array: np.ndarray, path: str, arrays: dict[str, np.ndarray]) -> None:
    if array.dtype.hasobject:
        raise TypeError(
            f"tl.save: the array at {path!r} holds Python objects (dtype object), which only pickle could store"
        )
    arrays[path] = array


# ------------------------------------------------------------ load


def load(path: str | os.PathLike) -> Any:
    """Read a checkpoint written by ``tl.save`` and rebuild the state exactly.

    Raises ``FileNotFoundError`` for a missing file and ``CheckpointError`` (naming the
    file) for one that is truncated, damaged or not a tinylm checkpoint.
    """
    path = os.fspath(path)
    try:
        contents = np.load(path, allow_pickle=False)
        if not isinstance(contents, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{path} holds a single .npy array, not a tinylm checkpoint; read it with np.load")
        with contents as npz:
            return _read(npz, path)
    except (FileNotFoundError, CheckpointError):
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise CheckpointError(
            f"{path} could not be read as a tinylm checkpoint ({type(error).__name__}: {error}). "
            "It may be truncated (a copy or download that did not finish) or not a file that "
            "tl.save wrote; save it again, or use an earlier checkpoint"
        ) from error


def _read(npz: np.lib.npyio.NpzFile, path: str) -> Any:
    if MANIFEST not in npz.files:
        raise CheckpointError(
            f"{path} is an .npz file without tinylm's manifest, so it was not written by tl.save; "
            f"read it with np.load (it holds: {', '.join(npz.files[:5])}{', ...' if len(npz.files) > 5 else ''})"
        )
    manifest = json.loads(npz[MANIFEST].tobytes().decode("utf-8"))
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise CheckpointError(
            f"{path} is a checkpoint of format {manifest.get('format')!r} version {manifest.get('version')!r}; "
            f"this tinylm reads {FORMAT!r} version {VERSION}"
        )
    return _rebuild(manifest["root"], "state", npz)


def _rebuild(node: dict[str, Any], path: str, npz) -> Any:
    kind = node["type"]
    if kind in ("None", "bool", "int", "float", "str"):
        return node["value"]
    if kind == "dict":
        return {key: _rebuild(item, f"{path}/{_escape(key)}", npz) for key, item in node["items"]}
    if kind in ("list", "tuple"):
        items = [_rebuild(item, f"{path}/{i}", npz) for i, item in enumerate(node["items"])]
        return items if kind == "list" else tuple(items)
    if kind == "tensor":
        return Tensor(npz[path], requires_grad=node["requires_grad"])
    if kind == "numpy_scalar":
        return npz[path][()]
    if kind == "array":
        return npz[path]
    raise CheckpointError(f"unknown entry type {kind!r} at {path!r} in the manifest")
