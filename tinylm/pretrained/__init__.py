"""Real pretrained models in tinylm: open a Hugging Face model folder as a tinylm model.

    model, config = tinylm.pretrained.load("path/to/gpt2")     # config.json + model.safetensors
    model, config = tinylm.pretrained.load("path/to/llama")    # a LlamaForCausalLM folder

``config.json`` names the architecture; ``ARCHITECTURES`` maps that name to the function
that builds the matching tinylm model from the config and fills in its weights
(converting Hugging Face's names and layouts to tinylm's). Weights are read as NumPy
arrays (``files.read_tensors``): safetensors by default, a pickle only on request.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from .. import backend
from ..nn import Module
from .files import PretrainedError, read_config, read_tensors, take

# Hugging Face architecture name -> builder(config, tensors) -> the tinylm model, weights loaded.
Builder = Callable[[dict, Mapping[str, np.ndarray]], Module]
ARCHITECTURES: dict[str, Builder] = {}


def load(folder: str | Path, allow_pickle: bool = False, dtype=None, device: str = "cpu") -> tuple[Module, dict]:
    """The tinylm model saved in a Hugging Face model folder, and the folder's config.

    Args:
        folder: holds ``config.json`` and ``model.safetensors`` (or ``pytorch_model.bin``);
            ``tinylm.pretrained.hub.download("gpt2")`` makes one from the hub.
        allow_pickle: read a ``pytorch_model.bin`` (a pickle, which can run code) when there
            is no safetensors file.
        dtype: the parameters' dtype (default: tinylm's default dtype, float32 unless
            ``tl.set_default_dtype`` changed it); the file's arrays are cast to it.
        device: where the model's parameters live.
    """
    if not Path(folder).is_dir():
        raise PretrainedError(
            f"no model folder at {folder}: expected a folder with config.json and model.safetensors "
            "(tinylm.pretrained.hub.download('gpt2') fetches GPT-2's into the cache and returns its folder)"
        )
    config = read_config(folder)
    architecture = (config.get("architectures") or [None])[0]
    if architecture not in ARCHITECTURES:
        raise PretrainedError(
            f"{folder}: architecture {architecture!r} is not one tinylm can build; "
            f"it knows {sorted(ARCHITECTURES)}"
        )
    tensors = read_tensors(folder, allow_pickle)
    # builders make their parameters in the default dtype: set it for the build, so that
    # float64 weights are not rounded through float32 on the way in
    default = backend.get_default_dtype()
    backend.set_default_dtype(default if dtype is None else dtype)
    try:
        model = ARCHITECTURES[architecture](config, tensors)
    finally:
        backend.set_default_dtype(default)
    return model.to(device), config


from . import bert  # noqa: E402  registers BertModel, BertForMaskedLM, BertForSequenceClassification
from . import gpt2  # noqa: E402,F401  registers GPT2LMHeadModel
from . import llama  # noqa: E402,F401  registers LlamaForCausalLM

__all__ = ["ARCHITECTURES", "PretrainedError", "load", "read_config", "read_tensors", "take"]
