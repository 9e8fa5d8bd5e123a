# %% [markdown]
# # Exercise 7: the LSTM cell
#
# Gates in PyTorch's order $i, f, g, o$, from one matmul:
#
# $$[a_i, a_f, a_g, a_o] = x W_{ih}^\top + h W_{hh}^\top + b$$
# $$i = \sigma(a_i),\; f = \sigma(a_f),\; g = \tanh(a_g),\; o = \sigma(a_o),\qquad
#   c' = f\odot c + i\odot g,\qquad h' = o \odot \tanh(c')$$
#
# The cell state has two gradients to add: the one arriving for $c'$ and the one through
# $h'$: $\;\delta c = \partial L/\partial c' + \partial L/\partial h' \odot o \odot (1 - \tanh^2 c')$.
# Then $\partial L/\partial c = \delta c \odot f$ — the "gradient highway": no squashing
# nonlinearity on this path. `grad_out` is the pair `(dh_next, dc_next)`.
# Return `dx, dh, dc, dW_ih, dW_hh, db`.

# %%
import numpy as np

from tinylm.exercises import check, show

show("lstm_cell")


# %%
def lstm_cell_backward(grad_out, cache):
    dh_next, dc_next = grad_out
    x, h, c, W_ih, W_hh, i, f, g, o, tanh_c = cache
    # BEGIN SOLUTION
    dc_total = dc_next + dh_next * o * (1 - tanh_c**2)
    da_i = dc_total * g * i * (1 - i)
    da_f = dc_total * c * f * (1 - f)
    da_g = dc_total * i * (1 - g**2)
    da_o = dh_next * tanh_c * o * (1 - o)
    da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)
    return da @ W_ih, da @ W_hh, dc_total * f, da.T @ x, da.T @ h, da.sum(axis=0)
    # END SOLUTION


# %%
check("lstm_cell", lstm_cell_backward)
