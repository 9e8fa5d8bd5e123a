"""Assertions shared by the tests (a module of its own: two conftest.py files cannot share a name)."""
from __future__ import annotations

import numpy as np

import tinylm as tl
from tinylm import nn


def assert_close(actual, expected, rtol: float = 1e-5, atol: float = 1e-6, name: str = "value") -> None:
    """Compare tensors/arrays (any device) and name what differs."""
    actual = actual.numpy() if isinstance(actual, tl.Tensor) else np.asarray(getattr(actual, "get", lambda: actual)())
    if hasattr(expected, "detach"):
        expected = expected.detach().cpu().numpy()
    expected = expected.numpy() if isinstance(expected, tl.Tensor) else np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape}, expected {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=f"{name} differs")


def check_module_gradients(module: nn.Module, x: tl.Tensor) -> None:
    """Gradient-check a module's output with respect to its input and every parameter."""
    tl.gradcheck(lambda x, *parameters: module(x), [x, *module.parameters()])


def assert_matches_torch(torch, ours: nn.Module, theirs, x: np.ndarray, dtype=np.float32, rtol=1e-5, atol=1e-6):
    """Load the PyTorch module's weights into ours, then compare the output and the gradients
    of the input (when it is floating) and of every parameter, for one random upstream gradient."""
    theirs = theirs.to(getattr(torch, np.dtype(dtype).name))
    ours.to(dtype).load_state_dict(theirs.state_dict())
    floating = x.dtype.kind == "f"
    x = x.astype(dtype) if floating else x
    x_ours, x_theirs = tl.tensor(x, requires_grad=floating), torch.tensor(x, requires_grad=floating)
    out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
    assert out_ours.dtype == dtype
    assert_close(out_ours, out_theirs, rtol, atol, name="output")
    upstream = np.random.default_rng(1).standard_normal(out_ours.shape).astype(dtype)
    out_ours.backward(upstream)
    out_theirs.backward(torch.from_numpy(upstream))
    if floating:
        assert_close(x_ours.grad, x_theirs.grad, rtol, atol, name="gradient of the input")
    their_parameters = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        assert_close(parameter.grad, their_parameters[name].grad, rtol, atol, name=f"gradient of {name}")


def assert_twins_agree(fused, composed, inputs: list[tl.Tensor], rtol: float, atol: float, names=None) -> None:
    """A fused function and its composed twin, called as fn(*inputs), give the same output and
    the same gradient of every input (for one random upstream gradient), in the inputs' dtype."""
    names = names or [f"input {i}" for i in range(len(inputs))]
    outputs, gradients = [], []
    for function in (fused, composed):
        for t in inputs:
            t.grad = None
        out = function(*inputs)
        upstream = np.random.default_rng(1).standard_normal(out.shape).astype(out.dtype)
        out.backward(tl.tensor(upstream, device=out.device))
        outputs.append(out)
        gradients.append([t.grad for t in inputs])
    assert outputs[0].dtype == outputs[1].dtype == inputs[0].dtype
    assert_close(outputs[0], outputs[1], rtol, atol, name="output")
    for name, t, fused_grad, composed_grad in zip(names, inputs, *gradients):
        assert fused_grad.dtype == composed_grad.dtype == t.dtype, f"gradient of {name}: dtype {fused_grad.dtype}"
        assert_close(fused_grad, composed_grad, rtol, atol, name=f"gradient of {name}")
