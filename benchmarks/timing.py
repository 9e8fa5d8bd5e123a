"""Timing shared by the benchmarks: interleaved rounds, medians, per-round ratios.

The method (see BENCHMARKS.md): run the contenders in turn, A B C A B C …, in one
process, and compare them round by round, since the machine's speed drifts; rest
``pause`` seconds before every timed call, because BLAS and OpenMP worker threads keep
spinning for ~0.1 s after a call and would slow down whatever runs next.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

PAUSE_S = 0.3


def interleaved(contenders: dict[str, Callable[[], object]], rounds: int, pause: float = PAUSE_S) -> dict[str, list[float]]:
    """Seconds per call of each contender, ``rounds`` times each, after one warm-up call each."""
    for run in contenders.values():  # first calls allocate, import and start thread pools
        run()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            time.sleep(pause)
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def median_ratio(times: dict[str, list[float]], numerator: str, denominator: str) -> float:
    """The median over rounds of time(numerator) / time(denominator)."""
    return statistics.median(a / b for a, b in zip(times[numerator], times[denominator]))


def median_ms(values: list[float]) -> float:
    return 1e3 * statistics.median(values)


def report(title: str, times: dict[str, list[float]], reference: str, width: int = 22) -> None:
    """Print each contender's median time and its median ratio to ``reference``."""
    print(f"\n{title}")
    for name, values in times.items():
        print(f"  {name:<{width}} median {median_ms(values):8.1f} ms   {median_ratio(times, name, reference):5.2f}x {reference}")
