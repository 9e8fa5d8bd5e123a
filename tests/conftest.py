"""Shared fixtures: the device every test runs on, float64 mode, the optional PyTorch.

``device``: "cpu" always, plus "cuda", which skips (visibly, in the -ra summary) when
CuPy or a GPU is missing. ``TINYLM_TEST_DEVICE=cuda`` runs the whole suite on the GPU
only, and fails rather than skips when no GPU can be used.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import tinylm as tl

REQUESTED = os.environ.get("TINYLM_TEST_DEVICE", "").strip().lower()
DEVICES = ["cuda"] if REQUESTED == "cuda" else ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


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
