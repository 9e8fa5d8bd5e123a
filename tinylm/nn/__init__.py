"""Layers and models (``from tinylm import nn``)."""
from . import init
from .linear import GELU, Dropout, Embedding, Linear, ReLU, Sigmoid, SiLU, Tanh
from .module import Module, ModuleList, Parameter, Sequential, StateDictError
from .normalization import LayerNorm, RMSNorm
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .attention import AdditiveAttention, LearnedPositionalEncoding, MultiheadAttention, SinusoidalPositionalEncoding
from .rotary import RotaryEmbedding
from .feedforward import SwiGLU
from .kv_cache import KVCache, LayerCache
from .transformer import GPT, TransformerBlock
from .seq2seq import Seq2Seq
from .conv import Conv1d, MaxPool1d
from .bert import BertForMaskedLM, BertForSequenceClassification, BertLayer, BertModel
