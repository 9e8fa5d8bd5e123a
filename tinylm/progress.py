"""Progress bars that appear only when a person is watching."""
from __future__ import annotations

import os
import sys
from typing import Iterable

from tqdm import tqdm


def show_progress_default() -> bool:
    """Progress bars by default only for a person watching: a terminal or a notebook.

    ``TINYLM_PROGRESS=0`` or ``1`` decides outright (the book sets 0: a printed page cannot
    redraw a bar, it would show every update); ``TINYLM_FAST=1`` switches bars off (tqdm
    ignores ``TQDM_DISABLE`` inside notebooks, so tinylm decides itself).
    """
    choice = os.environ.get("TINYLM_PROGRESS")
    if choice in ("0", "1"):
        return choice == "1"
    if os.environ.get("TINYLM_FAST") == "1":
        return False
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def progress_bar(iterable: Iterable | None = None, show: bool | None = None, **tqdm_options) -> tqdm:
    """``tqdm(iterable, ...)``, shown when ``show`` is True (by default: ``show_progress_default()``)."""
    show = show_progress_default() if show is None else show
    return tqdm(iterable, disable=not show, dynamic_ncols=True, **tqdm_options)
