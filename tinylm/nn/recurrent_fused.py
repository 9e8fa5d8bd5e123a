"""Fused recurrent layers: one Function per sequence, with the backward pass derived by hand.

The composed cells (``recurrent_cells.py``) record about a dozen graph nodes per time
step. These Functions run a whole sequence (T, B, I) in one node and are built for speed:

* the input projections of all T steps are ONE matmul, x W_ihᵀ (T·B, I) @ (I, G·H);
  inside the time loop only h W_hhᵀ remains (one matmul for all gates);
* gates and states live in arrays allocated once, updated in place (``out=``); one tanh
  call per step activates all the gates (see ``_halving_rows``);
* backward runs the time loop in reverse, keeping only the per-step work there (the
  gradient into h_{t-1}); the weight gradients are then ONE matmul over all steps:
  dW_hh = Σ_t da_tᵀ h_{t-1} = (da as (T·B, G·H))ᵀ @ (h_{0..T-1} as (T·B, H)).

Notation: a = the pre-activations of the gates, da = dL/da; dh and dc carry dL/dh_t and
dL/dc_t backwards through time (the loss sees h_t both through the output at step t and
through every later step). σ'(a) = σ(1 - σ) and tanh'(a) = 1 - tanh², so each gate's
derivative is written with the gate value saved in forward.

Variable lengths: ``mask`` (T, B, 1) bool, True at real steps. At a padded step the
state is carried over unchanged, so the final state is the state after the last real
step; in backward the gradient of a carried state passes straight to the previous step.
"""
from __future__ import annotations

from .. import backend
from ..ops import Function


def _halving_rows(xp, dtype, size: int, sigmoid_blocks: tuple, block_count: int):
    """A (block_count·H,) vector: ½ on the rows of the sigmoid gates, 1 elsewhere.

    σ(a) = ½·tanh(a/2) + ½ (the same function, and it cannot overflow). Halving the
    sigmoid rows of the weights and biases once per sequence gives a/2 directly, so one
    tanh call per step activates the sigmoid and the tanh gates together.
    """
    half = xp.ones(block_count * size, dtype=dtype)
    for block in sigmoid_blocks:
        half[block * size : (block + 1) * size] = 0.5
    return half


def _halved(biases: list, half) -> list:
    return [None if bias is None else bias * half for bias in biases]


def _input_projection(x, weight_ih, *biases):
    """x W_ihᵀ + Σ biases for every time step in one matmul: (T, B, I) -> (T, B, G·H)."""
    steps, batch, features = x.shape
    projected = (x.reshape(steps * batch, features) @ weight_ih.T).reshape(steps, batch, -1)
    for bias in biases:
        if bias is not None:
            projected += bias
    return projected


def _linear_backward(d_pre, inputs, weight, need_input_grad: bool):
    """Gradients of pre = inputs Wᵀ + b over all steps at once.

    d_pre (T, B, G·H), inputs (T, B, K), weight (G·H, K) ->
    (d_inputs = d_pre W or None, dW = d_preᵀ inputs, db = Σ d_pre).
    """
    steps, batch, _ = d_pre.shape
    flat = d_pre.reshape(steps * batch, -1)
    d_inputs = (flat @ weight).reshape(inputs.shape) if need_input_grad else None
    d_weight = flat.T @ inputs.reshape(steps * batch, -1)
    return d_inputs, d_weight, flat.sum(axis=0)


def _carry_split(d_state, keep):
    """At a padded step the state was copied: split its gradient into (this step's, carried).

    keep (B, 1) bool is True where the step is real. Returns the carried part and leaves
    the real part in ``d_state``.
    """
    xp = backend.array_module(d_state)
    carried = xp.where(keep, 0, d_state)
    d_state *= keep
    return carried


def _gradient_tuple(function: Function, grads: list) -> tuple:
    """One gradient per input given to apply() (the biases are left out when absent)."""
    return tuple(grads[: len(function.inputs)])


class RNNSequence(Function):
    """Elman RNN over a sequence:  h_t = act(a_t),  a_t = x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh.

    Inputs x (T, B, I), h0 (B, H), weight_ih (H, I), weight_hh (H, H), [bias_ih, bias_hh (H,)];
    output h_1..h_T (T, B, H).

    Backward, for t = T..1::

        dh_t  = dL/dh_t from the output + dh carried from step t+1
        da_t  = dh_t ⊙ (1 - h_t²)   (tanh)   or   dh_t ⊙ [h_t > 0]   (relu)
        dh_{t-1} (carried) = da_t W_hh

    then dx = da W_ih, dW_ih = Σ da_tᵀ x_t, dW_hh = Σ da_tᵀ h_{t-1}, db_ih = db_hh = Σ da_t.
    """

    def forward(self, x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh", mask=None):
        xp = backend.array_module(x)
        steps = x.shape[0]
        states = xp.empty((steps + 1,) + h0.shape, dtype=x.dtype)  # h_0..h_T
        states[0] = h0
        pre = _input_projection(x, weight_ih, bias_ih, bias_hh)
        weight_hh_t = weight_hh.T
        for t in range(steps):
            h = states[t + 1]
            xp.matmul(states[t], weight_hh_t, out=h)
            h += pre[t]
            if nonlinearity == "tanh":
                xp.tanh(h, out=h)
            else:
                xp.maximum(h, 0, out=h)
            if mask is not None:
                xp.copyto(h, states[t], where=~mask[t])
        self.x, self.states, self.nonlinearity, self.mask = x, states, nonlinearity, mask
        self.weight_ih, self.weight_hh = weight_ih, weight_hh
        return states[1:]

    def backward(self, grad):
        xp = backend.array_module(grad)
        states, steps = self.states, grad.shape[0]
        d_pre = xp.empty_like(grad)
        d_h = xp.zeros_like(grad[0])
        for t in reversed(range(steps)):
            d_h += grad[t]
            carried = _carry_split(d_h, self.mask[t]) if self.mask is not None else None
            h = states[t + 1]
            if self.nonlinearity == "tanh":
                xp.multiply(h, h, out=d_pre[t])
                xp.subtract(1, d_pre[t], out=d_pre[t])
                d_pre[t] *= d_h
            else:
                xp.multiply(d_h, h > 0, out=d_pre[t])
            xp.matmul(d_pre[t], self.weight_hh, out=d_h)
            if carried is not None:
                d_h += carried
        d_x, d_weight_ih, d_bias = _linear_backward(d_pre, self.x, self.weight_ih, self.needs_grad(0))
        _, d_weight_hh, _ = _linear_backward(d_pre, states[:-1], self.weight_hh, False)
        return _gradient_tuple(self, [d_x, d_h, d_weight_ih, d_weight_hh, d_bias, d_bias])


class LSTMSequence(Function):
    """LSTM over a sequence (gates i, f, g, o as PyTorch; see ``recurrent_cells.lstm_cell``).

    Inputs x (T, B, I), h0 (B, H), c0 (B, H), weight_ih (4H, I), weight_hh (4H, H),
    [bias_ih, bias_hh (4H,)]; output the state [h_t, c_t] of every step, (T, B, 2H):
    h_t in [..., :H], c_t in [..., H:], so h_n and c_n are the last row.

    Backward, for t = T..1 (dh_t, dc_t: dL/dh_t, dL/dc_t from the output plus what was
    carried from step t+1)::

        h_t = o ⊙ tanh(c_t):         do = dh_t ⊙ tanh(c_t)
                                     dc_t += dh_t ⊙ o ⊙ (1 - tanh²(c_t))
        c_t = f ⊙ c_{t-1} + i ⊙ g:   di = dc_t ⊙ g,  df = dc_t ⊙ c_{t-1},  dg = dc_t ⊙ i
                                     dc_{t-1} (carried) = dc_t ⊙ f
        through the activations:     da_i = di ⊙ i(1 - i),  da_f = df ⊙ f(1 - f),
                                     da_g = dg ⊙ (1 - g²),  da_o = do ⊙ o(1 - o)
        dh_{t-1} (carried) = da_t W_hh   with da_t = [da_i, da_f, da_g, da_o]

    then dx = da W_ih, dW_ih = Σ da_tᵀ x_t, dW_hh = Σ da_tᵀ h_{t-1}, db_ih = db_hh = Σ da_t.
    """

    def forward(self, x, h0, c0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, mask=None):
        xp = backend.array_module(x)
        steps, batch, size = x.shape[0], h0.shape[0], h0.shape[1]
        states = xp.empty((steps + 1, batch, 2 * size), dtype=x.dtype)  # [h_t, c_t], t = 0..T
        states[0, :, :size], states[0, :, size:] = h0, c0
        half = _halving_rows(xp, x.dtype, size, sigmoid_blocks=(0, 1, 3), block_count=4)
        gates = _input_projection(x, weight_ih * half[:, None], *_halved([bias_ih, bias_hh], half))
        weight_hh_t = (weight_hh * half[:, None]).T
        tanh_c = xp.empty((steps, batch, size), dtype=x.dtype)
        recurrent = xp.empty((batch, 4 * size), dtype=x.dtype)
        for t in range(steps):
            xp.matmul(states[t, :, :size], weight_hh_t, out=recurrent)
            a = gates[t]
            a += recurrent
            xp.tanh(a, out=a)  # g = tanh(a_g); i, f, o are tanh(a/2) until the next lines
            for sigmoid_gates in (a[:, : 2 * size], a[:, 3 * size :]):
                sigmoid_gates *= 0.5
                sigmoid_gates += 0.5
            i, f, g, o = a[:, :size], a[:, size : 2 * size], a[:, 2 * size : 3 * size], a[:, 3 * size :]
            c = states[t + 1, :, size:]
            xp.multiply(f, states[t, :, size:], out=c)
            c += xp.multiply(i, g, out=recurrent[:, :size])
            xp.tanh(c, out=tanh_c[t])
            xp.multiply(o, tanh_c[t], out=states[t + 1, :, :size])
            if mask is not None:
                xp.copyto(states[t + 1], states[t], where=~mask[t])
        self.x, self.states, self.gates, self.tanh_c, self.mask = x, states, gates, tanh_c, mask
        self.weight_ih, self.weight_hh = weight_ih, weight_hh
        return states[1:]

    def backward(self, grad):
        xp = backend.array_module(grad)
        states, gates, tanh_c = self.states, self.gates, self.tanh_c
        steps, size = grad.shape[0], grad.shape[2] // 2
        d_gates = xp.empty_like(gates)
        d_h = xp.zeros_like(grad[0, :, :size])
        d_c = xp.zeros_like(d_h)
        for t in reversed(range(steps)):
            d_h += grad[t, :, :size]
            d_c += grad[t, :, size:]
            if self.mask is not None:
                carried_h, carried_c = _carry_split(d_h, self.mask[t]), _carry_split(d_c, self.mask[t])
            a, da = gates[t], d_gates[t]
            i, f, g, o = a[:, :size], a[:, size : 2 * size], a[:, 2 * size : 3 * size], a[:, 3 * size :]
            d_c += d_h * o * (1 - tanh_c[t] * tanh_c[t])
            xp.multiply(d_h * tanh_c[t], o * (1 - o), out=da[:, 3 * size :])
            xp.multiply(d_c * g, i * (1 - i), out=da[:, :size])
            xp.multiply(d_c * states[t, :, size:], f * (1 - f), out=da[:, size : 2 * size])
            xp.multiply(d_c * i, 1 - g * g, out=da[:, 2 * size : 3 * size])
            d_c *= f
            xp.matmul(da, self.weight_hh, out=d_h)
            if self.mask is not None:
                d_h += carried_h
                d_c += carried_c
        d_x, d_weight_ih, d_bias = _linear_backward(d_gates, self.x, self.weight_ih, self.needs_grad(0))
        _, d_weight_hh, _ = _linear_backward(d_gates, states[:-1, :, :size], self.weight_hh, False)
        return _gradient_tuple(self, [d_x, d_h, d_c, d_weight_ih, d_weight_hh, d_bias, d_bias])


class GRUSequence(Function):
    """GRU over a sequence (gates r, z, n as PyTorch; see ``recurrent_cells.gru_cell``).

    Inputs x (T, B, I), h0 (B, H), weight_ih (3H, I), weight_hh (3H, H), [bias_ih,
    bias_hh (3H,)]; output h_1..h_T (T, B, H). Write p = x W_ihᵀ + b_ih and
    q = h_{t-1} W_hhᵀ + b_hh (each three blocks r, z, n); then r = σ(p_r + q_r),
    z = σ(p_z + q_z), n = tanh(p_n + r ⊙ q_n), h_t = n + z ⊙ (h_{t-1} - n).

    Backward, for t = T..1 (dh_t from the output plus what was carried from step t+1)::

        dn = dh_t ⊙ (1 - z),  dz = dh_t ⊙ (h_{t-1} - n)
        da_n = dn ⊙ (1 - n²)              (the pre-activation of n, p_n + r ⊙ q_n)
        dr = da_n ⊙ q_n                    (the reset gate acts inside the candidate)
        da_r = dr ⊙ r(1 - r),  da_z = dz ⊙ z(1 - z)
        dp = [da_r, da_z, da_n],   dq = [da_r, da_z, da_n ⊙ r]
        dh_{t-1} (carried) = dh_t ⊙ z + dq W_hh

    then dx = dp W_ih, dW_ih = Σ dpᵀ x_t, db_ih = Σ dp, dW_hh = Σ dqᵀ h_{t-1}, db_hh = Σ dq.
    """

    def forward(self, x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, mask=None):
        xp = backend.array_module(x)
        steps, batch, size = x.shape[0], h0.shape[0], h0.shape[1]
        states = xp.empty((steps + 1, batch, size), dtype=x.dtype)  # h_0..h_T
        states[0] = h0
        half = _halving_rows(xp, x.dtype, size, sigmoid_blocks=(0, 1), block_count=3)
        gates = _input_projection(x, weight_ih * half[:, None], *_halved([bias_ih], half))  # p, then r, z, n
        (bias_hh,) = _halved([bias_hh], half)
        weight_hh_t = (weight_hh * half[:, None]).T
        hidden_n = xp.empty((steps, batch, size), dtype=x.dtype)  # q_n for every step
        from_hidden = xp.empty((batch, 3 * size), dtype=x.dtype)
        for t in range(steps):
            h_prev, h = states[t], states[t + 1]
            xp.matmul(h_prev, weight_hh_t, out=from_hidden)
            if bias_hh is not None:
                from_hidden += bias_hh
            a = gates[t]
            r_and_z = a[:, : 2 * size]
            r_and_z += from_hidden[:, : 2 * size]
            xp.tanh(r_and_z, out=r_and_z)
            r_and_z *= 0.5
            r_and_z += 0.5
            r, z, n = a[:, :size], a[:, size : 2 * size], a[:, 2 * size :]
            hidden_n[t] = from_hidden[:, 2 * size :]
            n += xp.multiply(r, hidden_n[t], out=from_hidden[:, :size])
            xp.tanh(n, out=n)
            xp.subtract(h_prev, n, out=h)
            h *= z
            h += n
            if mask is not None:
                xp.copyto(h, h_prev, where=~mask[t])
        self.x, self.states, self.gates, self.hidden_n, self.mask = x, states, gates, hidden_n, mask
        self.weight_ih, self.weight_hh = weight_ih, weight_hh
        return states[1:]

    def backward(self, grad):
        xp = backend.array_module(grad)
        states, gates, hidden_n = self.states, self.gates, self.hidden_n
        steps, size = grad.shape[0], grad.shape[2]
        d_input_side = xp.empty_like(gates)  # dp
        d_hidden_side = xp.empty_like(gates)  # dq
        d_h = xp.zeros_like(grad[0])
        for t in reversed(range(steps)):
            d_h += grad[t]
            carried = _carry_split(d_h, self.mask[t]) if self.mask is not None else None
            a, dp, dq = gates[t], d_input_side[t], d_hidden_side[t]
            r, z, n = a[:, :size], a[:, size : 2 * size], a[:, 2 * size :]
            d_n = dp[:, 2 * size :]
            xp.multiply(d_h * (1 - z), 1 - n * n, out=d_n)
            xp.multiply(d_h * (states[t] - n), z * (1 - z), out=dp[:, size : 2 * size])
            xp.multiply(d_n * hidden_n[t], r * (1 - r), out=dp[:, :size])
            dq[:, : 2 * size] = dp[:, : 2 * size]
            xp.multiply(d_n, r, out=dq[:, 2 * size :])
            d_h *= z
            d_h += dq @ self.weight_hh
            if carried is not None:
                d_h += carried
        d_x, d_weight_ih, d_bias_ih = _linear_backward(d_input_side, self.x, self.weight_ih, self.needs_grad(0))
        _, d_weight_hh, d_bias_hh = _linear_backward(d_hidden_side, states[:-1], self.weight_hh, False)
        return _gradient_tuple(self, [d_x, d_h, d_weight_ih, d_weight_hh, d_bias_ih, d_bias_hh])
