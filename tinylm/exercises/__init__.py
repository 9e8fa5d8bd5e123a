"""Graded gradient-check exercises: write a backward pass, let the checker say what is wrong.

    from tinylm.exercises import check, show
    show("sigmoid")                        # the math, the forward pass, a hint
    check("sigmoid", my_sigmoid_backward)  # "passed" or a diagnosis
"""
import inspect

from .check import CheckResult, check, diagnose
from .definitions import BY_NAME, EXERCISES, Exercise


def show(name: str) -> None:
    """Print the exercise's forward pass (source), the gradients to return and a hint."""
    exercise = BY_NAME[name]
    print(f"Exercise {exercise.number}: {exercise.title}\n")
    print(inspect.getsource(exercise.forward))
    print(f"Return, in this order: d{', d'.join(exercise.grads)}")


__all__ = ["BY_NAME", "EXERCISES", "CheckResult", "Exercise", "check", "diagnose", "show"]
