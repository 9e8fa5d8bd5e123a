"""The chapter notebooks run as tests (nbmake): in fast mode, headless, within a time limit.

nbmake starts a Jupyter kernel per notebook; the kernel inherits this process's
environment, so the defaults set here reach the notebooks. Set them yourself to override,
e.g. ``TINYLM_FAST=0 pytest notebooks`` runs the full chapters.

Each cell is limited by ``--nbmake-timeout`` (setup.cfg); a whole notebook must also
finish within ``NOTEBOOK_TIME_LIMIT_S``, so a chapter that grows slow fails loudly instead
of silently eating the CI budget.
"""
from __future__ import annotations

import os
import time

import pytest

NOTEBOOK_TIME_LIMIT_S = 300

os.environ.setdefault("TINYLM_FAST", "1")  # small data, few steps, no progress bars
os.environ.setdefault("MPLBACKEND", "Agg")  # draw plots without a display, and without showing them


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    start = time.perf_counter()
    result = yield
    elapsed = time.perf_counter() - start
    if item.path.suffix == ".ipynb" and elapsed > NOTEBOOK_TIME_LIMIT_S:
        pytest.fail(
            f"{item.path.name} ran for {elapsed:.0f} s, over the {NOTEBOOK_TIME_LIMIT_S} s limit for a "
            f"notebook (TINYLM_FAST={os.environ.get('TINYLM_FAST')}): shrink its fast mode"
        )
    return result
