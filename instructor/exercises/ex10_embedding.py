# %% [markdown]
# # Exercise 10: an embedding lookup
#
# $$\text{out}_n = W_{\text{ids}_n}, \qquad W \in \mathbb{R}^{V \times D}$$
#
# Row $v$ of $W$ receives the upstream gradient of every position $n$ with $\text{ids}_n = v$:
#
# $$\frac{\partial L}{\partial W_v} = \sum_{n:\,\text{ids}_n = v} \frac{\partial L}{\partial \text{out}_n}$$
#
# Careful: with repeated ids, `dW[ids] += grad_out` keeps only one of the repeats
# (NumPy's buffered indexing). Return `dW`.

# %%
import numpy as np

from tinylm.exercises import check, show

show("embedding")


# %%
def embedding_backward(grad_out, cache):
    ids, weight_shape = cache
    # BEGIN SOLUTION
    dW = np.zeros(weight_shape)
    np.add.at(dW, ids, grad_out)
    return dW
    # END SOLUTION


# %%
check("embedding", embedding_backward)
