"""Recurrent cells written with primitive tensor ops: the form to read first.

One time step of each cell, written exactly as its equations, so autograd derives the
backward pass. Shapes: x (B, I), h and c (B, H); weight_ih (G·H, I), weight_hh (G·H, H),
bias_ih and bias_hh (G·H,), where the G gate blocks are stacked as in PyTorch:
RNN G = 1; LSTM G = 4 in the order i, f, g, o; GRU G = 3 in the order r, z, n.

The fused twins in ``recurrent_fused.py`` compute the same numbers for a whole sequence
at once, with the backward pass worked out by hand; the tests hold the two equal.
"""
from __future__ import annotations

from .. import functional as F
from ..tensor import Tensor


def rnn_cell(
    x: Tensor,
    h: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
    nonlinearity: str = "tanh",
) -> Tensor:
    """Elman RNN:  h' = act(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh),  act = tanh or relu."""
    pre_activation = F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh)
    return pre_activation.tanh() if nonlinearity == "tanh" else pre_activation.relu()


def lstm_cell(
    x: Tensor,
    h: Tensor,
    c: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Long short-term memory:

        [a_i, a_f, a_g, a_o] = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh     (four blocks of H)
        i = σ(a_i)     input gate: how much of the candidate to write
        f = σ(a_f)     forget gate: how much of the old cell to keep
        g = tanh(a_g)  candidate values
        o = σ(a_o)     output gate: how much of the cell to show
        c' = f ⊙ c + i ⊙ g
        h' = o ⊙ tanh(c')

    Returns (h', c').
    """
    gates = F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh)
    size = h.shape[-1]
    input_gate = gates[..., :size].sigmoid()
    forget_gate = gates[..., size : 2 * size].sigmoid()
    candidate = gates[..., 2 * size : 3 * size].tanh()
    output_gate = gates[..., 3 * size :].sigmoid()
    c_next = forget_gate * c + input_gate * candidate
    return output_gate * c_next.tanh(), c_next


def gru_cell(
    x: Tensor,
    h: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
) -> Tensor:
    """Gated recurrent unit (as PyTorch: the reset gate multiplies W_hn h + b_hn):

        r = σ(W_ir x + b_ir + W_hr h + b_hr)            reset gate
        z = σ(W_iz x + b_iz + W_hz h + b_hz)            update gate
        n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))   candidate
        h' = (1 - z) ⊙ n + z ⊙ h
    """
    from_input = F.linear(x, weight_ih, bias_ih)
    from_hidden = F.linear(h, weight_hh, bias_hh)
    size = h.shape[-1]
    reset = (from_input[..., :size] + from_hidden[..., :size]).sigmoid()
    update = (from_input[..., size : 2 * size] + from_hidden[..., size : 2 * size]).sigmoid()
    candidate = (from_input[..., 2 * size :] + reset * from_hidden[..., 2 * size :]).tanh()
    return (1 - update) * candidate + update * h
