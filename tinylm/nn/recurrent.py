"""Recurrent layers: the cells RNNCell, LSTMCell, GRUCell and the sequence layers RNN, LSTM, GRU.

Parameters are named and shaped as in PyTorch (``weight_ih_l0``, ``weight_hh_l0``,
``bias_ih_l0``, ``bias_hh_l0`` for layer 0, ...), so a PyTorch state dict loads as is.
Each layer runs in one of two forms that compute the same numbers:

* ``fused=True`` (the default): one hand-differentiated Function per sequence and layer
  (``recurrent_fused.py``) — fast enough to train a character model live;
* ``fused=False``: the cell equations written with tensor ops, one step at a time
  (``recurrent_cells.py``) — the form to read first, and the one ``unroll`` exposes.

Variable-length batches: pass ``lengths`` (one length per sequence, each in 1..T) to
``forward``. At the padded steps of a sequence its state is carried over unchanged and
its output is zero (as PyTorch's packed sequences give), so the final state is the
state after the sequence's last real step and the padding changes nothing else: each
sequence gets the outputs, final state and gradients it would get alone (tested).
Mask the padded positions out of the loss too, e.g. cross_entropy's ``ignore_index``.

Truncated backpropagation through time: split a long sequence into chunks and carry the
state from chunk to chunk with ``detach()``. The forward pass is the full sequence's,
while backward stops at the chunk boundary, so memory and time per step stay bounded::

    state = None
    for inputs, targets in chunks:
        output, state = lstm(inputs, state)
        state = tuple(s.detach() for s in state)   # for RNN and GRU: state.detach()
        loss = F.cross_entropy(head(output), targets)
        ...
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..ops import ShapeError
from ..tensor import Tensor, stack, where
from . import init
from .module import Module
from .recurrent_cells import gru_cell, lstm_cell, rnn_cell
from .recurrent_fused import GRUSequence, LSTMSequence, RNNSequence

State = tuple[Tensor, ...]  # (h,) for RNN and GRU, (h, c) for LSTM


def _weights(gate_count: int, input_size: int, hidden_size: int, bias: bool, dtype, device: str) -> dict:
    """weight_ih (G·H, I), weight_hh (G·H, H) and, with bias, bias_ih, bias_hh (G·H,).

    All drawn from U(-1/√H, 1/√H), as PyTorch does.
    """
    rows = gate_count * hidden_size
    shapes = {"weight_ih": (rows, input_size), "weight_hh": (rows, hidden_size)}
    if bias:
        shapes.update(bias_ih=(rows,), bias_hh=(rows,))
    return {name: init.fan_in_uniform(shape, hidden_size, dtype, device) for name, shape in shapes.items()}


def _weight_list(module: Module, suffix: str = "") -> list:
    """[weight_ih, weight_hh] (+ [bias_ih, bias_hh]), the order the cells and Functions take."""
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if module.bias else [])
    return [getattr(module, name + suffix) for name in names]


def _check_nonlinearity(name: str, nonlinearity: str) -> None:
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"{name}: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


def _state_tuple(name: str, state, state_names: tuple) -> tuple:
    """The state as a tuple (h,) or (h, c), checked to have the right number of tensors."""
    state = (state,) if isinstance(state, Tensor) else tuple(state)
    if len(state) != len(state_names):
        expected = "a pair (h, c)" if len(state_names) == 2 else "one tensor h"
        raise ValueError(f"{name}: the state must be {expected}, got {len(state)} tensors")
    return state


def _check_dtype(name: str, x: Tensor, weight: Tensor) -> None:
    if x.dtype != weight.dtype:
        raise TypeError(
            f"{name}: the input has dtype {x.dtype} but the parameters have {weight.dtype}; "
            f"convert one of them, e.g. x.to(np.{weight.dtype}) or layer.to(np.{x.dtype})"
        )


def _check_state(name: str, state: Tensor, expected: tuple, hint: str = "") -> None:
    if state.shape != expected:
        raise ShapeError(f"{name} has shape {state.shape}, expected {expected}{hint}")


# ---------------------------------------------------------------- the three families


class _RNNFamily:
    """Elman RNN: one state h, one gate block."""

    gate_count = 1
    state_names = ("h",)

    def _step(self, x: Tensor, state: State, weights: list) -> State:
        return (rnn_cell(x, state[0], *weights, nonlinearity=self.nonlinearity),)

    def _sequence(self, x: Tensor, state: State, weights: list, mask) -> tuple[Tensor, State]:
        outputs = RNNSequence.apply(x, state[0], *weights, nonlinearity=self.nonlinearity, mask=mask)
        return outputs, (outputs[-1],)


class _LSTMFamily:
    """LSTM: states h and c, four gate blocks i, f, g, o."""

    gate_count = 4
    state_names = ("h", "c")

    def _step(self, x: Tensor, state: State, weights: list) -> State:
        return lstm_cell(x, state[0], state[1], *weights)

    def _sequence(self, x: Tensor, state: State, weights: list, mask) -> tuple[Tensor, State]:
        size = state[0].shape[-1]
        h_and_c = LSTMSequence.apply(x, state[0], state[1], *weights, mask=mask)  # (T, B, 2H)
        return h_and_c[:, :, :size], (h_and_c[-1, :, :size], h_and_c[-1, :, size:])


class _GRUFamily:
    """GRU: one state h, three gate blocks r, z, n."""

    gate_count = 3
    state_names = ("h",)

    def _step(self, x: Tensor, state: State, weights: list) -> State:
        return (gru_cell(x, state[0], *weights),)

    def _sequence(self, x: Tensor, state: State, weights: list, mask) -> tuple[Tensor, State]:
        outputs = GRUSequence.apply(x, state[0], *weights, mask=mask)
        return outputs, (outputs[-1],)


# ---------------------------------------------------------------- cells


class _Cell(Module):
    """One time step: x (B, I) and the state -> the next state. Shared by the three cells."""

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, *, fused: bool = True, dtype=None, device="cpu"
    ):
        self.input_size, self.hidden_size, self.bias, self.fused = input_size, hidden_size, bias, fused
        for name, parameter in _weights(self.gate_count, input_size, hidden_size, bias, dtype, device).items():
            setattr(self, name, parameter)

    def _run(self, x: Tensor, state) -> State:
        name = type(self).__name__
        if x.ndim != 2:
            hint = f"; for a sequence (B, T, {self.input_size}) use nn.{name[:-4]}" if x.ndim == 3 else ""
            raise ShapeError(
                f"{name} expects a 2-D input (batch, input_size={self.input_size}), got shape {x.shape}{hint}"
            )
        if x.shape[1] != self.input_size:
            raise ShapeError(
                f"{name}: input has {x.shape[1]} features (shape {x.shape}), expected input_size={self.input_size}"
            )
        _check_dtype(name, x, self.weight_ih)
        expected = (x.shape[0], self.hidden_size)
        if state is None:
            xp = backend.array_module(x.data)
            state = tuple(Tensor(xp.zeros(expected, dtype=x.dtype)) for _ in self.state_names)
        state = _state_tuple(name, state, self.state_names)
        for state_name, tensor in zip(self.state_names, state):
            _check_state(f"{name}: the state {state_name}", tensor, expected)
        weights = _weight_list(self)
        if not self.fused:
            return self._step(x, state, weights)
        one_step = x.reshape(1, *x.shape)
        return self._sequence(one_step, state, weights, None)[1]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}, fused={self.fused}"


class RNNCell(_RNNFamily, _Cell):
    """h' = act(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh), act = tanh or relu.

    ``cell(x, h=None) -> h'`` with x (B, I), h (B, H) (zeros when omitted).
    ``fused=False`` runs the composed form (``recurrent_cells.rnn_cell``).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        *,
        fused: bool = True,
        dtype=None,
        device: str = "cpu",
    ):
        _check_nonlinearity("RNNCell", nonlinearity)
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, fused=fused, dtype=dtype, device=device)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        return self._run(x, None if h is None else (h,))[0]


class LSTMCell(_LSTMFamily, _Cell):
    """One LSTM step (gates i, f, g, o; equations in ``recurrent_cells.lstm_cell``).

    ``cell(x, (h, c)=None) -> (h', c')`` with x (B, I), h and c (B, H) (zeros when omitted).
    """

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        return self._run(x, state)


class GRUCell(_GRUFamily, _Cell):
    """One GRU step (gates r, z, n; equations in ``recurrent_cells.gru_cell``).

    ``cell(x, h=None) -> h'`` with x (B, I), h (B, H) (zeros when omitted).
    """

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        return self._run(x, None if h is None else (h,))[0]


# ---------------------------------------------------------------- sequence layers


class _Recurrent(Module):
    """A stack of ``num_layers`` recurrent layers over whole sequences.

    Layer k reads the outputs of layer k-1 (layer 0 reads x) and has its own parameters
    ``weight_ih_l{k}`` (G·H, I or H), ``weight_hh_l{k}`` (G·H, H), ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` (G·H,).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = True,
        *,
        fused: bool = True,
        dtype=None,
        device: str = "cpu",
    ):
        if num_layers < 1:
            raise ValueError(f"{type(self).__name__}: num_layers must be at least 1, got {num_layers}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.fused = bias, batch_first, fused
        for k in range(num_layers):
            layer_input = input_size if k == 0 else hidden_size
            for name, parameter in _weights(self.gate_count, layer_input, hidden_size, bias, dtype, device).items():
                setattr(self, f"{name}_l{k}", parameter)

    # ------------------------------------------------------------ checking and preparing inputs
    def _time_major(self, x: Tensor) -> Tensor:
        """Check x and return it as (T, B, I)."""
        name = type(self).__name__
        layout = "(batch, time, input_size)" if self.batch_first else "(time, batch, input_size)"
        if x.ndim != 3:
            hint = f"; for one step use nn.{name}Cell, or add the missing axis with x.reshape" if x.ndim == 2 else ""
            raise ShapeError(
                f"{name} expects a 3-D input {layout} with batch_first={self.batch_first}, "
                f"got a {x.ndim}-D tensor of shape {x.shape}{hint}"
            )
        if x.shape[2] != self.input_size:
            raise ShapeError(
                f"{name}: input has {x.shape[2]} features (shape {x.shape}, layout {layout}), "
                f"expected input_size={self.input_size}"
            )
        _check_dtype(name, x, self.weight_ih_l0)
        time_major = x.transpose(1, 0, 2) if self.batch_first else x
        if time_major.shape[0] == 0:
            raise ShapeError(f"{name} needs at least one time step, got shape {x.shape} (layout {layout})")
        return time_major

    def _initial_states(self, x: Tensor, initial) -> list[State]:
        """One state tuple per layer, from h0 (or (h0, c0)) of shape (num_layers, B, H), or zeros."""
        steps, batch = x.shape[0], x.shape[1]
        expected = (self.num_layers, batch, self.hidden_size)
        if initial is None:
            xp = backend.array_module(x.data)
            zeros = Tensor(xp.zeros(expected[1:], dtype=x.dtype))
            return [(zeros,) * len(self.state_names) for _ in range(self.num_layers)]
        initial = _state_tuple(type(self).__name__, initial, self.state_names)
        hint = ""
        swapped = (self.num_layers, steps, self.hidden_size)
        if steps != batch and any(t.shape == swapped for t in initial):
            hint = (
                f"; it fits the input's time axis ({steps}) instead of its batch axis ({batch}): "
                f"check batch_first (it is {self.batch_first}; batch_first=True means (batch, time, features))"
            )
        for name, tensor in zip(self.state_names, initial):
            _check_state(f"{type(self).__name__}: {name}0", tensor, expected, hint)
        return [tuple(t[k] for t in initial) for k in range(self.num_layers)]

    def _mask(self, x: Tensor, lengths):
        """(T, B, 1) bool, True at the real steps of each sequence; None without lengths."""
        if lengths is None:
            return None
        steps, batch = x.shape[0], x.shape[1]
        lengths = np.asarray(lengths.numpy() if isinstance(lengths, Tensor) else lengths)
        if lengths.shape != (batch,) or lengths.dtype.kind not in "iu":
            raise ValueError(
                f"{type(self).__name__}: lengths must be {batch} integers (one per sequence), "
                f"got shape {lengths.shape} and dtype {lengths.dtype}"
            )
        if lengths.size and (lengths.min() < 1 or lengths.max() > steps):
            raise ValueError(
                f"{type(self).__name__}: every length must lie in 1..{steps} (the time axis), "
                f"got {lengths.min()}..{lengths.max()}"
            )
        mask = np.arange(steps)[:, None, None] < lengths[None, :, None]
        return backend.array_module(x.data).asarray(mask)

    def _finish(self, outputs: Tensor, finals: list[State], mask):
        """Zero the padded outputs, stack the final states, go back to the caller's layout."""
        if mask is not None:
            outputs = where(mask, outputs, 0.0)
        if self.batch_first:
            outputs = outputs.transpose(1, 0, 2)
        stacked = tuple(stack([state[i] for state in finals]) for i in range(len(self.state_names)))
        return outputs, (stacked if len(stacked) == 2 else stacked[0])

    # ------------------------------------------------------------ running
    def forward(self, x: Tensor, h0=None, lengths=None):
        """Run the layers over x; returns (output, h_n), for the LSTM (output, (h_n, c_n)).

        x (B, T, I) when batch_first (the default here; PyTorch's default is False), else
        (T, B, I). h0 (num_layers, B, H), for the LSTM a pair (h0, c0); zeros when omitted.
        lengths: optional (B,) integers for a padded batch (see the module docstring).
        output (B, T, H) or (T, B, H): the last layer's h_t at every step.
        """
        if not self.fused:
            steps, mask, finals = self._unroll(x, h0, lengths)
            return self._finish(stack(steps[-1]), finals, mask)
        layer_input = self._time_major(x)
        states = self._initial_states(layer_input, h0)
        mask = self._mask(layer_input, lengths)
        finals = []
        for k in range(self.num_layers):
            layer_input, final = self._sequence(layer_input, states[k], _weight_list(self, f"_l{k}"), mask)
            finals.append(final)
        return self._finish(layer_input, finals, mask)

    def unroll(self, x: Tensor, h0=None, lengths=None) -> list[list[Tensor]]:
        """The composed form, one step at a time: every layer's h_t as its own tensor.

        Returns ``steps`` with steps[k][t] the hidden state (B, H) of layer k after step t,
        so a plot can call ``retain_grad()`` on each and look at ‖∂L/∂h_t‖
        (see ``tinylm.nn.gradient_flow``). The layer's output is ``tl.stack(steps[-1])``.
        """
        return self._unroll(x, h0, lengths)[0]

    def _unroll(self, x: Tensor, h0, lengths) -> tuple[list[list[Tensor]], object, list[State]]:
        layer_input = self._time_major(x)
        states = self._initial_states(layer_input, h0)
        mask = self._mask(layer_input, lengths)
        steps, finals = [], []
        inputs = [layer_input[t] for t in range(layer_input.shape[0])]
        for k in range(self.num_layers):
            state, weights, hidden = states[k], _weight_list(self, f"_l{k}"), []
            for t, x_t in enumerate(inputs):
                new_state = self._step(x_t, state, weights)
                if mask is not None:
                    new_state = tuple(where(mask[t], new, old) for new, old in zip(new_state, state))
                state = new_state
                hidden.append(state[0])
            steps.append(hidden)
            finals.append(state)
            inputs = hidden
        return steps, mask, finals

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, bias={self.bias}, "
            f"batch_first={self.batch_first}, fused={self.fused}"
        )


class RNN(_RNNFamily, _Recurrent):
    """Multi-layer Elman RNN: h_t = act(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh), act = tanh or relu.

    ``RNN(input_size, hidden_size, num_layers=1, bias=True, batch_first=True, nonlinearity="tanh")``.
    Note: batch_first defaults to True here (inputs (B, T, I)); PyTorch's default is False.
    ``forward(x, h0=None, lengths=None) -> (output, h_n)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = True,
        nonlinearity: str = "tanh",
        *,
        fused: bool = True,
        dtype=None,
        device: str = "cpu",
    ):
        _check_nonlinearity("RNN", nonlinearity)
        self.nonlinearity = nonlinearity
        super().__init__(
            input_size, hidden_size, num_layers, bias, batch_first, fused=fused, dtype=dtype, device=device
        )


class LSTM(_LSTMFamily, _Recurrent):
    """Multi-layer LSTM (gates i, f, g, o; equations in ``recurrent_cells.lstm_cell``).

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=True)``.
    Note: batch_first defaults to True here (inputs (B, T, I)); PyTorch's default is False.
    ``forward(x, (h0, c0)=None, lengths=None) -> (output, (h_n, c_n))``.
    """


class GRU(_GRUFamily, _Recurrent):
    """Multi-layer GRU (gates r, z, n; equations in ``recurrent_cells.gru_cell``).

    ``GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=True)``.
    Note: batch_first defaults to True here (inputs (B, T, I)); PyTorch's default is False.
    ``forward(x, h0=None, lengths=None) -> (output, h_n)``.
    """
