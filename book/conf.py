"""Sphinx configuration of the tinylm book (plain Sphinx + myst-nb; builds offline).

The chapters are the notebooks in ../notebooks, copied into chapters/ at the start of
every build and executed by myst-nb, so the book always shows what the code does now.
"""
import os
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOTEBOOKS = HERE.parent / "notebooks"
CHAPTERS = HERE / "chapters"

# the chapters are generated: copy the current notebooks (not the exercises) in
shutil.rmtree(CHAPTERS, ignore_errors=True)
CHAPTERS.mkdir()
for notebook in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
    shutil.copy(notebook, CHAPTERS / notebook.name)

# the kernels that execute the chapters must draw inline, even where MPLBACKEND=Agg is set
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
# a page cannot redraw a progress bar: it would show every update as a line
os.environ["TINYLM_PROGRESS"] = "0"

project = "tinylm"
author = "The tinylm authors"
copyright = "2026, The tinylm authors"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx-mathjax-offline",
]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
exclude_patterns = ["_build", "jupyter_execute", ".jupyter_cache"]

nb_execution_mode = "force"
nb_execution_timeout = int(os.environ.get("TINYLM_BOOK_TIMEOUT", "900"))
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True

html_theme = "sphinx_book_theme"
html_title = "tinylm: language models from scratch"
html_theme_options = {"show_toc_level": 2}
