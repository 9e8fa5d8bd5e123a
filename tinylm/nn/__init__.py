"""Layers and models (``from tinylm import nn``)."""
from . import init
from .linear import GELU, Dropout, Embedding, Linear, ReLU, Sigmoid, Tanh
from .module import Module, ModuleList, Parameter, Sequential, StateDictError
from .normalization import LayerNorm
