# %% [markdown]
# # Exercise 8: the GRU cell
#
# Gates in PyTorch's order $r, z, n$:
#
# $$[a_r, a_z, a_n] = x W_{ih}^\top + b_{ih},\qquad [u_r, u_z, u_n] = h W_{hh}^\top + b_{hh}$$
# $$r = \sigma(a_r + u_r),\; z = \sigma(a_z + u_z),\; n = \tanh(a_n + r\odot u_n),\qquad
#   h' = (1 - z)\odot n + z \odot h$$
#
# Mind the reset gate: it multiplies $u_n$ (the hidden part) *inside* the candidate, so
# $\partial L/\partial u_n = \delta_n \odot r$ while $\partial L/\partial a_n = \delta_n$, where
# $\delta_n = \partial L/\partial n \odot (1 - n^2)$. Return `dx, dh, dW_ih, dW_hh, db_ih, db_hh`.

# %%
import numpy as np

from tinylm.exercises import check, show

show("gru_cell")


# %%
def gru_cell_backward(grad_out, cache):
    x, h, W_ih, W_hh, r, z, n, u_n = cache
    # BEGIN SOLUTION
    dn = grad_out * (1 - z)
    dz = grad_out * (h - n)
    delta_n = dn * (1 - n**2)
    delta_r = delta_n * u_n * r * (1 - r)
    delta_z = dz * z * (1 - z)
    da = np.concatenate([delta_r, delta_z, delta_n], axis=1)
    du = np.concatenate([delta_r, delta_z, delta_n * r], axis=1)
    dh = grad_out * z + du @ W_hh
    return da @ W_ih, dh, da.T @ x, du.T @ h, da.sum(axis=0), du.sum(axis=0)
    # END SOLUTION


# %%
check("gru_cell", gru_cell_backward)
