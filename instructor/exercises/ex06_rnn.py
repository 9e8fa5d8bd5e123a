# %% [markdown]
# # Exercise 6: backpropagation through time in a vanilla RNN
#
# $$h_t = \tanh(x_t W_x + h_{t-1} W_h + b), \qquad t = 1, \dots, T$$
#
# Every $h_t$ is an output (`grad_out[:, t]` is $\partial L/\partial h_t$ from the loss at
# step $t$), and $h_t$ also feeds $h_{t+1}$. Walk backwards in time carrying `dh_next`:
#
# $$\delta_t = \bigl(\text{grad\_out}_t + \text{dh\_next}\bigr) \odot (1 - h_t^2), \qquad
#   \text{dh\_next} \leftarrow \delta_t W_h^\top$$
#
# $$\frac{\partial L}{\partial x_t} = \delta_t W_x^\top, \quad
#   \frac{\partial L}{\partial W_x} \mathrel{+}= x_t^\top \delta_t, \quad
#   \frac{\partial L}{\partial W_h} \mathrel{+}= h_{t-1}^\top \delta_t, \quad
#   \frac{\partial L}{\partial b} \mathrel{+}= \textstyle\sum_{\text{batch}} \delta_t$$
#
# and $\partial L/\partial h_0$ is the `dh_next` left after step 1. Return `dx, dh0, dWx, dWh, db`.

# %%
import numpy as np

from tinylm.exercises import check, show

show("rnn")


# %%
def rnn_backward(grad_out, cache):
    x, h0, Wx, Wh, hs = cache
    # BEGIN SOLUTION
    dx = np.zeros_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(Wx.shape[1])
    dh_next = np.zeros_like(h0)
    for t in reversed(range(x.shape[1])):
        h_prev = hs[:, t - 1] if t > 0 else h0
        delta = (grad_out[:, t] + dh_next) * (1 - hs[:, t] ** 2)
        dx[:, t] = delta @ Wx.T
        dWx += x[:, t].T @ delta
        dWh += h_prev.T @ delta
        db += delta.sum(axis=0)
        dh_next = delta @ Wh.T
    return dx, dh_next, dWx, dWh, db
    # END SOLUTION


# %%
check("rnn", rnn_backward)
