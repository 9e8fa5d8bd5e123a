"""Reading a Hugging Face model folder: its ``config.json`` and its weights, as NumPy arrays.

A folder written by ``save_pretrained`` (or downloaded from the hub) holds

* ``config.json``: the architecture (``"architectures": ["GPT2LMHeadModel"]``) and its sizes;
* the weights: ``model.safetensors`` (or shards listed in ``model.safetensors.index.json``),
  read here with the ``safetensors`` package's NumPy API, which reads raw arrays and runs
  no code; or, in older folders, ``pytorch_model.bin``, a *pickle*: unpickling runs
  whatever code the file names, so it is read only when the caller opts in
  (``allow_pickle=True``), with a warning, and needs PyTorch.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np


class PretrainedError(ValueError):
    """A model folder that tinylm cannot read: a missing file, tensor or setting, a wrong shape."""


def read_config(folder: str | Path) -> dict:
    """The parsed ``config.json`` of a model folder."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise PretrainedError(
            f"{folder} has no config.json: expected a Hugging Face model folder "
            "(config.json plus model.safetensors), as save_pretrained writes it"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise PretrainedError(f"{path} is not valid JSON: {error}") from None


def read_tensors(folder: str | Path, allow_pickle: bool = False) -> dict[str, np.ndarray]:
    """Every weight of a model folder by its Hugging Face name, as a host NumPy array."""
    folder = Path(folder)
    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if single.is_file() or index.is_file():
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise PretrainedError(
                'reading model.safetensors needs the safetensors package: pip install "tinylm[pretrained]"'
            ) from None
        if single.is_file():
            return load_file(single)
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        return {name: array for shard in shards for name, array in load_file(folder / shard).items()}
    pickled = folder / "pytorch_model.bin"
    if pickled.is_file():
        if not allow_pickle:
            raise PretrainedError(
                f"{folder} holds its weights only as pytorch_model.bin, a pickle: loading a pickle runs "
                "any code it contains. Pass allow_pickle=True (tinylm: --allow-pickle) if you trust "
                "the file, or convert it to model.safetensors"
            )
        warnings.warn(f"reading {pickled} with pickle (allow_pickle=True): only do this for files you trust", stacklevel=3)
        try:
            import torch
        except ImportError:
            raise PretrainedError("reading pytorch_model.bin needs PyTorch (pip install torch)") from None
        state = torch.load(pickled, map_location="cpu", weights_only=True)
        return {name: tensor.detach().float().numpy() if tensor.dtype == torch.bfloat16 else tensor.detach().numpy()
                for name, tensor in state.items()}
    raise PretrainedError(f"{folder} has no weights: expected model.safetensors (or pytorch_model.bin)")


def take(tensors: Mapping[str, np.ndarray], name: str, shape: tuple[int, ...]) -> np.ndarray:
    """The weight called ``name``, checked to have ``shape``; a clear error when it is missing or wrong."""
    if name not in tensors:
        nearby = sorted(key for key in tensors if key.split(".")[-1] == name.split(".")[-1])[:3]
        hint = f" (tensors with the same last part: {nearby})" if nearby else ""
        raise PretrainedError(f"the weights have no tensor {name!r}{hint}: is the folder complete, and of this architecture?")
    array = tensors[name]
    if tuple(array.shape) != tuple(shape):
        raise PretrainedError(f"tensor {name!r} has shape {tuple(array.shape)}, but the config asks for {tuple(shape)}")
    return array
