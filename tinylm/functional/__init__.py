"""Functions on tensors that layers and losses are made of (``import tinylm.functional as F``)."""
from .layers import dropout, embedding, linear

__all__ = ["dropout", "embedding", "linear"]
