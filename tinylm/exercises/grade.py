"""Grade submitted exercise notebooks: ``tinylm grade PATH... [--out DIR] [--timeout S]``.

Each PATH is one student's submission: a folder (every .ipynb and .py in it) or a single
file; a folder that holds only folders stands for one student per sub-folder. Every file
runs in a fresh Python process with a time limit; the ``check(...)`` calls inside it
append their results to a report file (``TINYLM_GRADE_REPORT``), which the grader reads.
A file that crashes or runs out of time gets a clear entry, and grading goes on.

Writes ``grades.csv`` (student, exercise, status, detail) and ``summary.txt`` (one row
per student, one column per exercise) into ``--out``, and prints the summary.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .check import REPORT_ENV
from .definitions import EXERCISES

SUBMISSION_SUFFIXES = (".ipynb", ".py")


@dataclass
class Entry:
    student: str
    exercise: str
    status: str  # passed | failed | crashed | timeout | not submitted
    detail: str = ""


def notebook_to_script(path: Path) -> str:
    """The code cells of a notebook as one script (IPython magics and shell lines dropped)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    lines = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        lines += [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        lines.append("")
    return "\n".join(lines)


def run_file(path: Path, timeout: float) -> tuple[list[dict], str | None, str]:
    """Run one submission file; (check results, 'crashed'/'timeout'/None, last error line)."""
    with tempfile.TemporaryDirectory() as workdir:
        script = Path(workdir) / "submission.py"
        script.write_text(notebook_to_script(path) if path.suffix == ".ipynb" else path.read_text(encoding="utf-8"))
        report = Path(workdir) / "report.jsonl"
        env = dict(os.environ, **{REPORT_ENV: str(report), "MPLBACKEND": "Agg", "TINYLM_FAST": "1"})
        try:
            process = subprocess.run(
                [sys.executable, str(script)], cwd=path.parent, env=env, capture_output=True, text=True, timeout=timeout
            )
            failure = None if process.returncode == 0 else "crashed"
            error = (process.stderr.strip().splitlines() or [""])[-1]
        except subprocess.TimeoutExpired:
            failure, error = "timeout", f"no result within {timeout:g} s"
        results = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    return results, failure, error


def students(paths: list[Path]) -> dict[str, list[Path]]:
    """Student name -> the files to run."""
    found: dict[str, list[Path]] = {}
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"no such submission: {path}")
        if path.is_file():
            found[path.stem] = [path]
            continue
        entries = sorted(path.iterdir())
        files = [p for p in entries if p.suffix in SUBMISSION_SUFFIXES]
        folders = [p for p in entries if p.is_dir() and not p.name.startswith(".")]
        if files:
            found[path.name] = files
        else:
            for folder in folders:
                found.update(students([folder]))
    return found


def grade(paths: list[Path], timeout: float = 120.0) -> list[Entry]:
    """One entry per student and exercise."""
    entries = []
    for student, files in students(paths).items():
        outcome: dict[str, Entry] = {}
        for path in files:
            results, failure, error = run_file(path, timeout)
            for result in results:
                status = "passed" if result["passed"] else "failed"
                detail = "; ".join(result["diagnoses"].values())
                outcome[result["exercise"]] = Entry(student, result["exercise"], status, detail)
            if failure:
                stem_exercise = next((e.name for e in EXERCISES if e.name in path.stem), None)
                if stem_exercise and stem_exercise not in outcome:
                    outcome[stem_exercise] = Entry(student, stem_exercise, failure, f"{path.name}: {error}")
        for exercise in EXERCISES:
            entries.append(outcome.get(exercise.name, Entry(student, exercise.name, "not submitted")))
    return entries


SYMBOLS = {"passed": "ok", "failed": "FAIL", "crashed": "CRASH", "timeout": "TIME", "not submitted": "-"}


def summary(entries: list[Entry]) -> str:
    names = [e.name for e in EXERCISES]
    table: dict[str, dict[str, Entry]] = {}
    for entry in entries:
        table.setdefault(entry.student, {})[entry.exercise] = entry
    width = max([len("student")] + [len(s) for s in table])
    header = f"{'student':<{width}}  " + "  ".join(f"{i + 1:>5}" for i in range(len(names))) + "  passed"
    lines = [header, "-" * len(header)]
    for student, row in table.items():
        cells = "  ".join(f"{SYMBOLS[row[n].status]:>5}" for n in names)
        lines.append(f"{student:<{width}}  {cells}  {sum(r.status == 'passed' for r in row.values()):>3}/{len(names)}")
    lines.append("")
    lines += [f"{i + 1:>2} = {n}" for i, n in enumerate(names)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tinylm grade", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, help="submission folders or files, one per student")
    parser.add_argument("--out", type=Path, default=Path("grades"), help="folder for grades.csv and summary.txt (default: grades)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds each file may run (default: 120)")
    args = parser.parse_args(argv)
    try:
        entries = grade(args.paths, args.timeout)
    except FileNotFoundError as error:
        print(f"tinylm grade: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "grades.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["student", "exercise", "status", "detail"])
        writer.writerows([e.student, e.exercise, e.status, e.detail] for e in entries)
    text = summary(entries)
    (args.out / "summary.txt").write_text(text + "\n", encoding="utf-8")
    print(text)
    print(f"\nwrote {args.out / 'grades.csv'} and {args.out / 'summary.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
