"""How far gradients reach back in time: ‖∂L/∂h_t‖ for every step of a recurrent layer.

In a vanilla RNN, ∂L/∂h_t is a product of one Jacobian per later step,
diag(1 - h²) W_hh, so its norm shrinks (or grows) geometrically with the distance from
the loss: the vanishing-gradient problem. The LSTM's additive cell update
c_t = f ⊙ c_{t-1} + i ⊙ g gives the gradient a path that is only scaled by the forget
gate, so it reaches much further back. Plot the rows this function returns for an RNN,
an LSTM and a GRU trained on the same task to see the difference.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..tensor import Tensor, stack


def hidden_gradient_norms(layer, x: Tensor, loss_fn: Callable[[Tensor], Tensor], h0=None) -> np.ndarray:
    """‖∂L/∂h_t‖ for every layer k and step t of ``layer`` (an nn.RNN, nn.LSTM or nn.GRU).

    Runs the layer in its composed form one step at a time (``layer.unroll``), keeps the
    gradient of every hidden state h_t (``retain_grad``), computes L = loss_fn(output)
    from the layer's output (laid out as ``layer(x)`` gives it) and runs backward once.
    ∂L/∂h_t is the total derivative: through the output at step t and through every
    later step. The norm is taken over the whole batch (the Frobenius norm of (B, H)).

    Returns a (num_layers, T) array; row k is layer k, column t the step t (0-based).
    The parameters' ``.grad`` receive this backward's gradients, as after any backward.
    """
    steps = layer.unroll(x, h0)
    for layer_steps in steps:
        for h in layer_steps:
            h.retain_grad()
    output = stack(steps[-1], axis=1 if layer.batch_first else 0)
    loss_fn(output).backward()
    def norm(h: Tensor) -> float:
        return 0.0 if h.grad is None else float(np.linalg.norm(h.grad.numpy()))

    return np.array([[norm(h) for h in layer_steps] for layer_steps in steps])
