"""tinylm: a from-scratch, readable framework for learning how language models work.

    import tinylm as tl
    x = tl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    x.grad            # tensor([2., 4., 6.])
"""
from . import backend
from .backend import DeviceError, cuda_available, get_default_dtype, manual_seed, set_default_dtype
from .tensor import (
    Tensor,
    arange,
    concat,
    full,
    no_grad,
    ones,
    ones_like,
    rand,
    randn,
    stack,
    tensor,
    where,
    zeros,
    zeros_like,
)
from .ops import Function, ShapeError
from .gradcheck import GradcheckError, gradcheck, numerical_grad
from .io import CheckpointError, load, save
from . import optim

__version__ = "0.1.0"
