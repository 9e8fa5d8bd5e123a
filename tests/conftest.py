"""Shared fixtures: the device every test runs on, float64 mode, the optional PyTorch.

``device``: "cpu" always, plus "cuda", which skips (visibly, in the -ra summary) when
CuPy or a GPU is missing. ``TINYLM_TEST_DEVICE`` runs the whole suite on one device:

* ``cuda``: on the GPU only; fails rather than skips when no GPU can be used.
* ``strict``: on "cuda" played by the strict stand-in for CuPy (strict_device.py), whose
  arrays refuse what CuPy's refuse (implicit conversion to NumPy, host arrays mixed into
  device operations): the GPU code path, checked on a machine without a GPU.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import tinylm as tl
from tinylm import backend

REQUESTED = os.environ.get("TINYLM_TEST_DEVICE", "").strip().lower()
if REQUESTED not in ("", "cuda", "strict"):
    raise pytest.UsageError(f"TINYLM_TEST_DEVICE must be cuda or strict (or unset), got {REQUESTED!r}")
if REQUESTED == "strict":
    import strict_device

    backend.use_cuda_array_module(strict_device)
DEVICES = ["cuda"] if REQUESTED else ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    if request.param == "cuda" and not tl.cuda_available():
        if REQUESTED == "cuda":
            pytest.fail("TINYLM_TEST_DEVICE=cuda, but CuPy or an NVIDIA GPU is not usable here")
        pytest.skip("no GPU: CuPy or an NVIDIA GPU is not available (set TINYLM_TEST_DEVICE=cuda on a GPU machine)")
    return request.param


@pytest.fixture(autouse=True)
def _fresh_global_state():
    """Every test starts with float32 defaults and seed 0, whatever the last one changed."""
    tl.set_default_dtype(np.float32)
    tl.manual_seed(0)
    yield
    tl.set_default_dtype(np.float32)


@pytest.fixture
def float64():
    """Make float64 the default dtype for this test (as a gradient check wants)."""
    tl.set_default_dtype(np.float64)
    yield
    tl.set_default_dtype(np.float32)


@pytest.fixture
def torch():
    """PyTorch when installed; the test skips (visibly) otherwise."""
    return pytest.importorskip("torch", reason="PyTorch not installed: cross-checks against it are skipped")
