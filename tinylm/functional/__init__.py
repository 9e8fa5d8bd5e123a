"""Functions on tensors that layers and losses are made of (``import tinylm.functional as F``)."""
from .layers import dropout, embedding, linear
from .softmax import log_softmax, softmax
from .cross_entropy import cross_entropy, cross_entropy_composed
from .attention import masked_softmax, scaled_dot_product_attention, scaled_dot_product_attention_composed
from .conv import conv1d, conv1d_composed, max_pool1d
from .normalization import layer_norm, layer_norm_composed, rms_norm, rms_norm_composed
from .activations import gelu, gelu_composed, silu, silu_composed
from .rotary import rotary_embedding, rotary_embedding_composed
from .erf import erf

__all__ = [
    "conv1d",
    "conv1d_composed",
    "cross_entropy",
    "cross_entropy_composed",
    "dropout",
    "embedding",
    "erf",
    "gelu",
    "gelu_composed",
    "layer_norm",
    "layer_norm_composed",
    "linear",
    "log_softmax",
    "masked_softmax",
    "max_pool1d",
    "rms_norm",
    "rms_norm_composed",
    "rotary_embedding",
    "rotary_embedding_composed",
    "scaled_dot_product_attention",
    "scaled_dot_product_attention_composed",
    "silu",
    "silu_composed",
    "softmax",
]
