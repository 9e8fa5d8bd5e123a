"""`tinylm grade` on a folder of good, wrong, crashing and looping submissions."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

from tinylm.exercises import EXERCISES
from tinylm.exercises.grade import main

ROOT = Path(__file__).resolve().parent.parent


def test_grader_grades_mixed_submissions(tmp_path, capsys):
    submissions = tmp_path / "submissions"
    good, unfinished, wrong, broken = (submissions / name for name in ("alice", "bob", "carol", "dave"))
    for folder in (good, unfinished, wrong, broken):
        folder.mkdir(parents=True)
    for number in (1, 2):
        shutil.copy(next((ROOT / "instructor" / "solutions").glob(f"ex0{number}_*.ipynb")), good)
    shutil.copy(ROOT / "notebooks" / "exercises" / "ex01_sigmoid.ipynb", unfinished)
    source = (ROOT / "instructor" / "exercises" / "ex02_tanh.py").read_text()
    (wrong / "ex02_tanh.py").write_text(source.replace("return grad_out * (1 - t * t)", "return 2 * grad_out * (1 - t * t)"))
    (broken / "ex03_linear.py").write_text("import time\nwhile True:\n    time.sleep(0.1)\n")
    (broken / "ex04_softmax_cross_entropy.py").write_text("import tinylm\nraise RuntimeError('boom')\n")

    out = tmp_path / "grades"
    assert main([str(submissions), "--out", str(out), "--timeout", "4"]) == 0

    rows = {(r["student"], r["exercise"]): r for r in csv.DictReader(open(out / "grades.csv"))}
    assert len(rows) == 4 * len(EXERCISES)
    assert rows["alice", "sigmoid"]["status"] == rows["alice", "tanh"]["status"] == "passed"
    assert rows["alice", "rnn"]["status"] == "not submitted"
    assert rows["bob", "sigmoid"]["status"] == "failed"
    assert rows["bob", "sigmoid"]["detail"].startswith("not implemented yet")
    assert rows["carol", "tanh"]["status"] == "failed"
    assert rows["carol", "tanh"]["detail"].startswith("off by a constant factor: dx is 2 ×")
    assert rows["dave", "linear"]["status"] == "timeout"
    assert rows["dave", "softmax_cross_entropy"]["status"] == "crashed"
    assert "RuntimeError: boom" in rows["dave", "softmax_cross_entropy"]["detail"]

    summary = (out / "summary.txt").read_text()
    assert summary in capsys.readouterr().out
    assert "alice" in summary and f" 2/{len(EXERCISES)}" in summary and "TIME" in summary and "CRASH" in summary


def test_grader_reports_a_missing_path(tmp_path, capsys):
    assert main([str(tmp_path / "nobody")]) == 2
    assert "no such submission" in capsys.readouterr().err


def test_the_tinylm_command_hands_grade_to_the_grader(tmp_path, capsys):
    from tinylm.cli import main as tinylm

    assert tinylm(["grade", str(tmp_path / "nobody")]) == 2
    assert "no such submission" in capsys.readouterr().err
