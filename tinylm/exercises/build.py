"""Build the student notebooks and the solution notebooks from one source.

Each exercise is written once, with its solution, as a jupytext "percent" script in
``instructor/exercises/``. The solution sits between two marker lines:

    # BEGIN SOLUTION
    return grad_out * s * (1 - s)
    # END SOLUTION

This step writes

* ``notebooks/exercises/NAME.ipynb``: the student version, the solution replaced by
  ``raise NotImplementedError("exercise N: ...")``;
* ``instructor/solutions/NAME.ipynb``: the same notebook with the solution, markers removed.

So the two cannot drift. ``python -m tinylm.exercises.build --check`` only verifies that
the notebooks are up to date (the tests run it).

Usage: python -m tinylm.exercises.build [--check] [--root DIR]
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
SOURCE_DIR, STUDENT_DIR, SOLUTION_DIR = "instructor/exercises", "notebooks/exercises", "instructor/solutions"


def split_solution(source: str, number: int) -> tuple[str, str]:
    """(student text, solution text) from a source with solution markers."""
    student, solution, inside = [], [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"exercise {number}: '{BEGIN}' twice without '{END}' between")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            student.append(f'{indent}raise NotImplementedError("exercise {number}: write this backward pass")')
            continue
        if stripped == END:
            if not inside:
                raise ValueError(f"exercise {number}: '{END}' without a '{BEGIN}' before it")
            inside = False
            continue
        solution.append(line)
        if not inside:
            student.append(line)
    if inside:
        raise ValueError(f"exercise {number}: '{BEGIN}' is never closed by '{END}'")
    return "\n".join(student) + "\n", "\n".join(solution) + "\n"


def _notebook_json(text: str) -> str:
    import jupytext  # a development dependency (the "dev" and "notebooks" extras)

    notebook = jupytext.reads(text, fmt="py:percent")
    notebook.metadata.pop("jupytext", None)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for number, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{number}"  # fixed ids: rebuilding gives the same bytes
    return jupytext.writes(notebook, fmt="ipynb")


def build(root: Path, check_only: bool = False) -> list[Path]:
    """Write (or, with ``check_only``, compare) every generated notebook; the stale ones are returned."""
    stale = []
    sources = sorted((root / SOURCE_DIR).glob("ex*.py"))
    if not sources:
        raise FileNotFoundError(f"no exercise sources in {root / SOURCE_DIR}")
    for source in sources:
        number = int(re.match(r"ex(\d+)", source.stem).group(1))
        student, solution = split_solution(source.read_text(encoding="utf-8"), number)
        for folder, text in ((STUDENT_DIR, student), (SOLUTION_DIR, solution)):
            target = root / folder / f"{source.stem}.ipynb"
            content = _notebook_json(text)
            if target.exists() and target.read_text(encoding="utf-8") == content:
                continue
            stale.append(target)
            if not check_only:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content, encoding="utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report notebooks that are out of date")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository root (default: here)")
    args = parser.parse_args(argv)
    stale = build(args.root, check_only=args.check)
    for path in stale:
        print(("out of date: " if args.check else "wrote ") + str(path))
    if args.check and stale:
        print("run `python -m tinylm.exercises.build` to regenerate them")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
