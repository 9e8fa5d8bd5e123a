"""Assertions shared by the tests (a module of its own: two conftest.py files cannot share a name)."""
from __future__ import annotations

import numpy as np

import tinylm as tl


def assert_close(actual, expected, rtol: float = 1e-5, atol: float = 1e-6, name: str = "value") -> None:
    """Compare tensors/arrays (any device) and name what differs."""
    actual = actual.numpy() if isinstance(actual, tl.Tensor) else np.asarray(getattr(actual, "get", lambda: actual)())
    if hasattr(expected, "detach"):
        expected = expected.detach().cpu().numpy()
    expected = expected.numpy() if isinstance(expected, tl.Tensor) else np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape}, expected {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=f"{name} differs")
