"""The graded exercises: a forward pass given in NumPy, a backward pass for the student.

Each exercise has
* ``forward(**inputs) -> (output, cache)`` in plain NumPy: what the student reads;
* ``reference(**tensors) -> Tensor``: the same function in tinylm ops, so autograd gives
  the right gradients, independently of any hand-written backward;
* ``grads``: the names of the inputs whose gradients the student returns, in order;
* ``mistakes``: exercise-specific wrong answers the checker recognises and explains.

A student writes ``backward(grad_out, cache)`` returning the gradients in the order of
``grads`` (one array, or a tuple). ``grad_out`` is dL/d(output) — a tuple when the
forward has several outputs (the LSTM cell returns h and c).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import tinylm as tl
import tinylm.functional as F


@dataclass
class Mistake:
    """A classic wrong answer for the gradient of input ``gradient``, and what to say about it.

    ``wrong(right, inputs, right_for)`` returns the gradient that the mistake produces:
    ``right`` is the correct one, ``inputs`` the forward's inputs, and
    ``right_for(changed_inputs)`` the correct gradient of this input at other inputs (a
    mistake such as a flipped kernel is the right formula applied to the wrong weights).
    """

    gradient: str
    wrong: Callable[[np.ndarray, dict, Callable[[dict], np.ndarray]], np.ndarray]
    diagnosis: str


@dataclass
class Exercise:
    number: int
    name: str
    title: str
    make_inputs: Callable[[np.random.Generator], dict]
    forward: Callable
    reference: Callable
    grads: tuple[str, ...]
    hint: str
    time_axis: dict[str, int] = field(default_factory=dict)  # inputs with a time axis (BPTT diagnosis)
    index_input: str | None = None  # integer ids whose repeats must accumulate
    mistakes: tuple[Mistake, ...] = ()


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# ---------------------------------------------------------------- 1, 2: element-wise


def sigmoid_forward(x):
    """s = σ(x) = 1 / (1 + e⁻ˣ), element-wise."""
    s = _sigmoid(x)
    return s, (s,)


def tanh_forward(x):
    """t = tanh(x), element-wise."""
    t = np.tanh(x)
    return t, (t,)


# ---------------------------------------------------------------- 3: matmul with broadcasting


def linear_forward(x, W, b):
    """y = x @ W + b with x (B, N, K), W (K, M), b (M,) -> y (B, N, M).

    W and b are broadcast over the batch axes of x.
    """
    y = x @ W + b
    return y, (x, W)


# ---------------------------------------------------------------- 4: softmax cross-entropy


def softmax_cross_entropy_forward(logits, targets):
    """loss = -(1/N) Σₙ log softmax(logitsₙ)[targetsₙ], logits (N, C), targets (N,) ints."""
    shifted = logits - logits.max(axis=1, keepdims=True)  # stability: softmax ignores shifts
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    n = logits.shape[0]
    loss = -np.log(probs[np.arange(n), targets]).mean()
    return np.asarray(loss), (probs, targets)


def _cross_entropy_reference(logits, targets):
    m = logits.max(axis=1, keepdims=True).detach()
    log_z = (logits - m).exp().sum(axis=1, keepdims=True).log() + m
    picked = logits[np.arange(logits.shape[0]), targets.data]
    return (log_z.reshape(-1) - picked).mean()


# ---------------------------------------------------------------- 5: layer norm


def layer_norm_forward(x, gamma, beta, eps=1e-5):
    """y = (x - μ) / √(σ² + eps) · γ + β over the last axis; x (N, D), γ and β (D,)."""
    mu = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mu) * inv_std
    return x_hat * gamma + beta, (x_hat, inv_std, gamma)


def _layer_norm_reference(x, gamma, beta, eps=1e-5):
    centered = x - x.mean(axis=1, keepdims=True)
    return centered * ((centered * centered).mean(axis=1, keepdims=True) + eps) ** -0.5 * gamma + beta


# ---------------------------------------------------------------- 6: RNN over a sequence


def rnn_forward(x, h0, Wx, Wh, b):
    """hₜ = tanh(xₜ Wx + hₜ₋₁ Wh + b) for t = 1..T; x (B, T, I), h0 (B, H) -> hs (B, T, H).

    Every hₜ is an output, so the gradient of hₜ has two parts: from the loss at step t
    (grad_out[:, t]) and from step t+1 through hₜ₊₁ (backpropagation through time).
    """
    batch, steps, _ = x.shape
    hs = np.zeros((batch, steps, h0.shape[1]))
    h = h0
    for t in range(steps):
        h = np.tanh(x[:, t] @ Wx + h @ Wh + b)
        hs[:, t] = h
    return hs, (x, h0, Wx, Wh, hs)


def _rnn_reference(x, h0, Wx, Wh, b):
    h, outputs = h0, []
    for t in range(x.shape[1]):
        h = (x[:, t] @ Wx + h @ Wh + b).tanh()
        outputs.append(h)
    return tl.stack(outputs, axis=1)


# ---------------------------------------------------------------- 7: LSTM cell


def lstm_cell_forward(x, h, c, W_ih, W_hh, b):
    """One LSTM step, gates in PyTorch's order i, f, g, o:

        [i, f, g, o] = x W_ihᵀ + h W_hhᵀ + b          (B, 4H), then split into four (B, H)
        i, f, o = σ(·),  g = tanh(·)
        c' = f ⊙ c + i ⊙ g,   h' = o ⊙ tanh(c')

    x (B, I), h and c (B, H), W_ih (4H, I), W_hh (4H, H), b (4H,) -> (h', c').
    """
    gates = x @ W_ih.T + h @ W_hh.T + b
    i, f, g, o = np.split(gates, 4, axis=1)
    i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
    c_next = f * c + i * g
    tanh_c = np.tanh(c_next)
    h_next = o * tanh_c
    return (h_next, c_next), (x, h, c, W_ih, W_hh, i, f, g, o, tanh_c)


def _lstm_cell_reference(x, h, c, W_ih, W_hh, b):
    gates = x @ W_ih.T + h @ W_hh.T + b
    size = h.shape[1]
    i, f, g, o = (gates[:, k * size:(k + 1) * size] for k in range(4))
    c_next = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c_next.tanh(), c_next


# ---------------------------------------------------------------- 8: GRU cell


def gru_cell_forward(x, h, W_ih, W_hh, b_ih, b_hh):
    """One GRU step, gates in PyTorch's order r, z, n:

        [a_r, a_z, a_n] = x W_ihᵀ + b_ih,   [u_r, u_z, u_n] = h W_hhᵀ + b_hh
        r = σ(a_r + u_r),  z = σ(a_z + u_z),  n = tanh(a_n + r ⊙ u_n)
        h' = (1 - z) ⊙ n + z ⊙ h

    The reset gate r multiplies u_n, the hidden part only: so dL/du_n = dL/d(pre-n) ⊙ r.
    x (B, I), h (B, H), W_ih (3H, I), W_hh (3H, H), b_ih and b_hh (3H,) -> h'.
    """
    a = x @ W_ih.T + b_ih
    u = h @ W_hh.T + b_hh
    a_r, a_z, a_n = np.split(a, 3, axis=1)
    u_r, u_z, u_n = np.split(u, 3, axis=1)
    r, z = _sigmoid(a_r + u_r), _sigmoid(a_z + u_z)
    n = np.tanh(a_n + r * u_n)
    h_next = (1 - z) * n + z * h
    return h_next, (x, h, W_ih, W_hh, r, z, n, u_n)


def _gru_cell_reference(x, h, W_ih, W_hh, b_ih, b_hh):
    a = x @ W_ih.T + b_ih
    u = h @ W_hh.T + b_hh
    size = h.shape[1]
    a_r, a_z, a_n = (a[:, k * size:(k + 1) * size] for k in range(3))
    u_r, u_z, u_n = (u[:, k * size:(k + 1) * size] for k in range(3))
    r, z = (a_r + u_r).sigmoid(), (a_z + u_z).sigmoid()
    n = (a_n + r * u_n).tanh()
    return (1 - z) * n + z * h


# ---------------------------------------------------------------- 9: causal attention


def causal_attention_forward(q, k, v):
    """out = softmax(q kᵀ / √d + mask) v with a causal mask (query i sees keys j ≤ i).

    q, k, v (B, L, d) -> out (B, L, d). The mask adds -∞ above the diagonal, so those
    weights are exactly 0.
    """
    d = q.shape[-1]
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(d)
    length = q.shape[1]
    future = np.triu(np.ones((length, length), dtype=bool), k=1)
    scores = np.where(future, -np.inf, scores)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ v, (q, k, v, weights)


def _causal_attention_reference(q, k, v):
    d = q.shape[-1]
    scores = q @ k.transpose(0, 2, 1) * (1.0 / np.sqrt(d))
    length = q.shape[1]
    allowed = np.tril(np.ones((length, length), dtype=bool))
    scores = tl.where(allowed, scores, -1e30)
    exp = (scores - scores.max(axis=-1, keepdims=True).detach()).exp()
    return exp / exp.sum(axis=-1, keepdims=True) @ v


# ---------------------------------------------------------------- 10: embedding


def embedding_forward(W, ids):
    """out = W[ids]: row ids[n] of the table W (V, D) for each position n; ids (N,) ints."""
    return W[ids], (ids, W.shape)


# ---------------------------------------------------------------- 11: 1-D convolution


def conv1d_forward(x, W, b):
    """y[n, o, t] = b[o] + Σ_c Σ_k W[o, c, k] · x[n, c, t + k]    (stride 1, no padding)

    x (N, C, L), W (O, C, K), b (O,) -> y (N, O, L - K + 1). Like PyTorch's conv1d this is a
    cross-correlation: the kernel slides along x as it is, without being flipped.
    """
    kernel_size, out_length = W.shape[2], x.shape[2] - W.shape[2] + 1
    y = np.zeros((x.shape[0], W.shape[0], out_length)) + b[:, None]
    for k in range(kernel_size):
        y += np.einsum("oc,nct->not", W[:, :, k], x[:, :, k : k + out_length])
    return y, (x, W)


def _reversed_taps(inputs: dict) -> dict:
    return dict(inputs, W=inputs["W"][:, :, ::-1].copy())


EXERCISES: list[Exercise] = [
    Exercise(
        1, "sigmoid", "The sigmoid", lambda rng: {"x": rng.standard_normal((4, 5))},
        sigmoid_forward, lambda x: x.sigmoid(), ("x",),
        "dσ/dx = σ(x)(1 - σ(x)); the cache holds s = σ(x).",
    ),
    Exercise(
        2, "tanh", "The hyperbolic tangent", lambda rng: {"x": rng.standard_normal((4, 5))},
        tanh_forward, lambda x: x.tanh(), ("x",),
        "d tanh(x)/dx = 1 - tanh²(x); the cache holds t = tanh(x).",
    ),
    Exercise(
        3, "linear", "Matrix multiplication with broadcasting",
        lambda rng: {"x": rng.standard_normal((2, 3, 4)), "W": rng.standard_normal((4, 5)), "b": rng.standard_normal(5)},
        linear_forward, lambda x, W, b: x @ W + b, ("x", "W", "b"),
        "dx = dy Wᵀ; dW = Σ over the batch of xᵀ dy (shape of W); db = dy summed over every axis but the last.",
    ),
    Exercise(
        4, "softmax_cross_entropy", "Softmax cross-entropy",
        lambda rng: {"logits": rng.standard_normal((6, 5)), "targets": rng.integers(0, 5, size=6)},
        softmax_cross_entropy_forward, _cross_entropy_reference, ("logits",),
        "d loss/d logits = (softmax(logits) - onehot(targets)) / N, times the upstream gradient.",
    ),
    Exercise(
        5, "layer_norm", "Layer normalisation",
        lambda rng: {"x": rng.standard_normal((4, 6)), "gamma": rng.standard_normal(6), "beta": rng.standard_normal(6)},
        layer_norm_forward, _layer_norm_reference, ("x", "gamma", "beta"),
        "dβ = Σₙ dy, dγ = Σₙ dy ⊙ x̂; with g = dy ⊙ γ: dx = inv_std · (g - mean(g) - x̂ · mean(g ⊙ x̂)) per row.",
    ),
    Exercise(
        6, "rnn", "A vanilla RNN over a sequence (backpropagation through time)",
        lambda rng: {
            "x": rng.standard_normal((2, 4, 3)), "h0": rng.standard_normal((2, 5)),
            "Wx": rng.standard_normal((3, 5)) * 0.5, "Wh": rng.standard_normal((5, 5)) * 0.5, "b": rng.standard_normal(5),
        },
        rnn_forward, _rnn_reference, ("x", "h0", "Wx", "Wh", "b"),
        "Go backwards in time carrying dh: at step t, dh = grad_out[:, t] + dh_from_t+1; da = dh ⊙ (1 - hₜ²); "
        "dxₜ = da Wxᵀ, dWx += xₜᵀ da, dWh += hₜ₋₁ᵀ da, db += Σ da, and dh_from_t = da Whᵀ.",
        time_axis={"x": 1},
    ),
    Exercise(
        7, "lstm_cell", "The LSTM cell",
        lambda rng: {
            "x": rng.standard_normal((3, 4)), "h": rng.standard_normal((3, 2)), "c": rng.standard_normal((3, 2)),
            "W_ih": rng.standard_normal((8, 4)) * 0.5, "W_hh": rng.standard_normal((8, 2)) * 0.5, "b": rng.standard_normal(8),
        },
        lstm_cell_forward, _lstm_cell_reference, ("x", "h", "c", "W_ih", "W_hh", "b"),
        "dc' collects two paths: dc_total = dc' + dh' ⊙ o ⊙ (1 - tanh²(c')). Then do = dh' ⊙ tanh(c'), "
        "di = dc_total ⊙ g, df = dc_total ⊙ c, dg = dc_total ⊙ i, dc = dc_total ⊙ f; through the nonlinearities "
        "(σ' = σ(1-σ), tanh' = 1 - tanh²) to d(gates), then dx = d(gates) W_ih, dW_ih = d(gates)ᵀ x, ...",
    ),
    Exercise(
        8, "gru_cell", "The GRU cell",
        lambda rng: {
            "x": rng.standard_normal((3, 4)), "h": rng.standard_normal((3, 2)),
            "W_ih": rng.standard_normal((6, 4)) * 0.5, "W_hh": rng.standard_normal((6, 2)) * 0.5,
            "b_ih": rng.standard_normal(6), "b_hh": rng.standard_normal(6),
        },
        gru_cell_forward, _gru_cell_reference, ("x", "h", "W_ih", "W_hh", "b_ih", "b_hh"),
        "dn = dh' ⊙ (1 - z), dz = dh' ⊙ (h - n), dh gets dh' ⊙ z directly. Pre-activations: "
        "dn_pre = dn ⊙ (1 - n²), d(u_n) = dn_pre ⊙ r (the reset gate sits inside the candidate), "
        "dr = dn_pre ⊙ u_n, then σ' for r and z.",
    ),
    Exercise(
        9, "causal_attention", "Scaled dot-product attention with a causal mask",
        lambda rng: {"q": rng.standard_normal((2, 4, 3)), "k": rng.standard_normal((2, 4, 3)), "v": rng.standard_normal((2, 4, 3))},
        causal_attention_forward, _causal_attention_reference, ("q", "k", "v"),
        "dv = weightsᵀ dout; dweights = dout vᵀ; the softmax backward: dscores = weights ⊙ (dweights - Σⱼ dweights ⊙ "
        "weights); masked positions have weight 0 so they get 0; dq = dscores k / √d, dk = dscoresᵀ q / √d.",
    ),
    Exercise(
        10, "embedding", "An embedding lookup",
        lambda rng: {"W": rng.standard_normal((6, 3)), "ids": np.array([1, 4, 1, 0, 4, 1])},
        embedding_forward, lambda W, ids: W[ids.data], ("W",),
        "dW is zero except at the rows that were looked up; an id that occurs k times collects all k upstream rows: "
        "use np.add.at(dW, ids, grad_out), since dW[ids] += grad_out keeps only one of the repeats.",
        index_input="ids",
    ),
    Exercise(
        11, "conv1d", "A 1-D convolution (the text CNN's n-gram detector)",
        lambda rng: {"x": rng.standard_normal((2, 3, 7)), "W": rng.standard_normal((4, 3, 3)), "b": rng.standard_normal(4)},
        conv1d_forward, lambda x, W, b: F.conv1d_composed(x, W, b), ("x", "W", "b"),
        "Tap k links y[:, :, t] with x[:, :, t + k]: dx[:, :, k : k + L_out] += Σ_o W[o, :, k] · dy[:, o, :]; "
        "dW[:, :, k] = Σ over the batch and t of dy[n, :, t] x[n, :, t + k]; db = dy summed over batch and time.",
        mistakes=(
            Mistake(
                "x", lambda right, inputs, right_for: right_for(_reversed_taps(inputs)),
                "kernel flipped: dx is what the right formula gives with the taps of W in reverse order. "
                "The forward reads x[t + k] with W[k] (a cross-correlation), so dx[t + k] gets W[k] · dy[t]: "
                "no flip (a flip is needed only to write it as a convolution of dy)",
            ),
            Mistake(
                "W", lambda right, inputs, right_for: right[:, :, ::-1],
                "kernel taps reversed: dW is the right gradient with its last axis (the taps k) in reverse "
                "order. dW[:, :, k] pairs dy[t] with x[t + k], the input that tap k read",
            ),
        ),
    ),
]

BY_NAME: dict[str, Exercise] = {exercise.name: exercise for exercise in EXERCISES}
