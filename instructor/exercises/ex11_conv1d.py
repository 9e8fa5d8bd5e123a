# %% [markdown]
# # Exercise 11: a 1-D convolution
#
# The text CNN of chapter 14 slides filters along a sentence. With stride 1 and no padding,
#
# $$y_{n,o,t} = b_o + \sum_{c} \sum_{k=0}^{K-1} W_{o,c,k}\, x_{n,c,t+k}, \qquad
#   x \in \mathbb{R}^{N \times C \times L},\; W \in \mathbb{R}^{O \times C \times K},\;
#   y \in \mathbb{R}^{N \times O \times (L-K+1)}.$$
#
# Tap $k$ of the kernel connects output position $t$ with input position $t + k$, so each
# input position collects the gradient of every output that read it:
#
# $$\frac{\partial L}{\partial x_{n,c,t+k}} \mathrel{+}= \sum_o W_{o,c,k}\,
#   \frac{\partial L}{\partial y_{n,o,t}}, \qquad
#   \frac{\partial L}{\partial W_{o,c,k}} = \sum_{n,t} \frac{\partial L}{\partial y_{n,o,t}}\, x_{n,c,t+k}, \qquad
#   \frac{\partial L}{\partial b_o} = \sum_{n,t} \frac{\partial L}{\partial y_{n,o,t}}.$$
#
# Careful: the forward is a cross-correlation (the kernel is not flipped), and so is
# nothing in the backward above. One loop over the $K$ taps is enough; `np.einsum` does
# the sums over channels, batch and time. Return `dx, dW, db`.

# %%
import numpy as np

from tinylm.exercises import check, show

show("conv1d")


# %%
def conv1d_backward(grad_out, cache):
    x, W = cache
    # BEGIN SOLUTION
    kernel_size, out_length = W.shape[2], grad_out.shape[2]
    dx, dW = np.zeros_like(x), np.zeros_like(W)
    for k in range(kernel_size):
        dx[:, :, k : k + out_length] += np.einsum("oc,not->nct", W[:, :, k], grad_out)
        dW[:, :, k] = np.einsum("not,nct->oc", grad_out, x[:, :, k : k + out_length])
    return dx, dW, grad_out.sum(axis=(0, 2))
    # END SOLUTION


# %%
check("conv1d", conv1d_backward)
