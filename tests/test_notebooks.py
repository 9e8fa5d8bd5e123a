"""The chapter notebooks as committed: outputs stripped, each .ipynb in sync with its .py twin.

Running them is nbmake's job (setup.cfg adds ``--nbmake`` and the notebooks folder to
every ``pytest`` run; notebooks/conftest.py sets fast mode and the time limit).
"""
from __future__ import annotations

import difflib
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat not installed (pip install -e '.[dev]')")
jupytext = pytest.importorskip("jupytext", reason="jupytext not installed (pip install -e '.[dev]')")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
TWINS = sorted(p for p in NOTEBOOK_DIR.glob("*.py") if p.name != "conftest.py")


def test_every_chapter_has_a_notebook_and_a_text_twin():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"
    assert [p.stem for p in NOTEBOOKS] == [p.stem for p in TWINS], (
        "each notebooks/NN_topic.ipynb needs its notebooks/NN_topic.py twin and vice versa; "
        "make the missing one with `jupytext --to ipynb NN_topic.py` (or `--to py:percent`)"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_are_stripped(notebook: Path):
    cells = nbformat.read(notebook, as_version=4).cells
    for index, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [] and cell.execution_count is None, (
            f"{notebook.name}, cell {index}, has outputs or an execution count: strip them "
            f"(`jupytext --to ipynb {notebook.stem}.py` regenerates the notebook without outputs)"
        )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_on_the_default_python3_kernel(notebook: Path):
    """nbmake starts the kernel the notebook names; "python3" is the one of the Python running pytest."""
    kernelspec = nbformat.read(notebook, as_version=4).metadata.get("kernelspec", {})
    assert kernelspec.get("name") == "python3", f"{notebook.name} asks for kernel {kernelspec.get('name')!r}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_matches_its_text_twin(notebook: Path):
    twin = notebook.with_suffix(".py")
    from_twin = [(cell.cell_type, cell.source) for cell in jupytext.read(twin).cells]
    from_notebook = [(cell.cell_type, cell.source) for cell in nbformat.read(notebook, as_version=4).cells]
    if from_twin != from_notebook:
        diff = difflib.unified_diff(
            [f"{kind}: {source}" for kind, source in from_notebook],
            [f"{kind}: {source}" for kind, source in from_twin],
            notebook.name,
            twin.name,
            lineterm="",
            n=0,
        )
        pytest.fail(
            f"{notebook.name} and {twin.name} differ; edit the .py twin and run "
            f"`jupytext --sync {twin.name}` (or `jupytext --to ipynb {twin.name}`):\n" + "\n".join(list(diff)[:40])
        )
