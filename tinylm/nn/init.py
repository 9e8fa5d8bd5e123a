"""Initial values of parameters, drawn from the generator that ``tl.manual_seed`` seeds.

PyTorch's schemes, so a tinylm layer starts in the same distribution as its PyTorch twin:

* Linear, RNN/LSTM/GRU cells: U(-1/√fan_in, 1/√fan_in) for weights and biases
  (PyTorch's ``kaiming_uniform_(a=√5)`` works out to this bound for the weight);
* Embedding: N(0, 1);
* LayerNorm: weight 1, bias 0.

Values are drawn in float64 and then cast, so one seed gives the same model in float32
and float64 (up to rounding), and the same seed always gives a bit-identical model.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from .module import Parameter


def _parameter_dtype(dtype) -> np.dtype:
    return backend.get_default_dtype() if dtype is None else np.dtype(dtype)


def uniform(shape: tuple[int, ...], bound: float, dtype=None, device: str = "cpu") -> Parameter:
    """A parameter with entries drawn from U(-bound, bound)."""
    values = backend.generator(device).random(shape, dtype=np.float64) * (2 * bound) - bound
    return Parameter(values.astype(_parameter_dtype(dtype)))


def fan_in_uniform(shape: tuple[int, ...], fan_in: int, dtype=None, device: str = "cpu") -> Parameter:
    """U(-1/√fan_in, 1/√fan_in): PyTorch's default for Linear and recurrent layers
    (all zeros when fan_in is 0, as PyTorch)."""
    return uniform(shape, 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0, dtype, device)


def normal(shape: tuple[int, ...], std: float = 1.0, dtype=None, device: str = "cpu") -> Parameter:
    """A parameter with entries drawn from N(0, std²)."""
    values = backend.generator(device).standard_normal(shape, dtype=np.float64) * std
    return Parameter(values.astype(_parameter_dtype(dtype)))


def constant(shape: tuple[int, ...], value: float, dtype=None, device: str = "cpu") -> Parameter:
    """A parameter with every entry equal to ``value``."""
    return Parameter(backend.module_for_device(device).full(shape, value, dtype=_parameter_dtype(dtype)))


def normal_matrices_zero_biases(module, std: float = 0.02) -> None:
    """GPT-2's and BERT's scheme, in place: every matrix of ``module`` (weights and
    embeddings) from N(0, std²), every bias 0; LayerNorm weights (vectors) keep their 1."""
    for name, parameter in module.named_parameters():
        if parameter.ndim == 2:
            parameter.data = normal(parameter.shape, std, parameter.dtype, parameter.device).data
        elif name.endswith("bias"):
            parameter.data[...] = 0
