"""Fused vs composed cross-entropy, forward + backward, at a language model's output size.

    python benchmarks/cross_entropy.py            # logits (B·T = 4096, C = 10,000), float32
    python benchmarks/cross_entropy.py --quick    # a small, fast smoke run

Contenders: ``F.cross_entropy`` (one Function, hand-derived backward), its composed twin
(log_softmax + integer indexing + sum, differentiated op by op by autograd), PyTorch's
``torch.nn.functional.cross_entropy`` when installed, and a floor: one ``exp`` over the
logits, the least work any softmax must do (its time says how far from the limit we are).

Time: the contenders run interleaved, round after round, each timed call after a 0.3 s
pause (see BENCHMARKS.md: BLAS and OpenMP threads keep spinning after a call and slow
whatever runs next). Reported: the median time of each, and the median of the per-round
ratios, which survive the machine's drift.

Memory: the peak of NumPy's allocations (NumPy reports them to ``tracemalloc``) during one
forward + backward, above what was allocated before it (the logits and targets). The new
gradient of the logits is counted: it is an output. PyTorch's allocator does not report
to tracemalloc, so PyTorch gets no memory figure.
"""
from __future__ import annotations

import argparse
import os
import tracemalloc

import numpy as np

import tinylm as tl
import tinylm.functional as F
from tinylm.functional.cross_entropy import cross_entropy_composed
from timing import interleaved, median_ms, median_ratio

MiB = 2**20


def tinylm_step(loss_fn, scores: tl.Tensor, targets: np.ndarray):
    """One forward + backward; returns the gradient of the logits."""
    scores.grad = None
    loss_fn(scores, targets).backward()
    return scores.grad.data


def peak_memory(step) -> int:
    """Bytes NumPy allocates at the peak of ``step()`` above what was allocated before."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        step()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4096, help="B·T, the number of predictions")
    parser.add_argument("--classes", type=int, default=10_000, help="C, the vocabulary size")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 256 x 1,000, 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.classes, args.rounds = 256, 1_000, 2

    rng = np.random.default_rng(0)
    logits = (2 * rng.standard_normal((args.rows, args.classes))).astype(np.float32)
    targets = rng.integers(0, args.classes, size=args.rows)
    scores = tl.tensor(logits, requires_grad=True)
    exp_buffer = np.empty_like(logits)

    steps = {
        "fused": lambda: tinylm_step(F.cross_entropy, scores, targets),
        "composed": lambda: tinylm_step(cross_entropy_composed, scores, targets),
        "floor (one exp)": lambda: np.exp(logits, out=exp_buffer),
    }
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch_logits = torch.from_numpy(logits.copy()).requires_grad_()
        torch_targets = torch.from_numpy(targets)

        def torch_step():
            torch_logits.grad = None
            torch.nn.functional.cross_entropy(torch_logits, torch_targets).backward()
            return torch_logits.grad.numpy()

        steps["pytorch"] = torch_step

    # the contenders must agree, in float32, before their times mean anything
    fused_grad = steps["fused"]()
    for name in ("composed", "pytorch"):
        if name in steps:
            other = steps[name]()
            assert other.dtype == fused_grad.dtype == np.float32, f"{name}: gradient dtype {other.dtype}"
            np.testing.assert_allclose(fused_grad, other, rtol=1e-4, atol=1e-9, err_msg=f"fused vs {name}")

    memory = {name: peak_memory(steps[name]) for name in ("fused", "composed")}
    times = interleaved(steps, args.rounds)

    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default"
    logits_mib = logits.nbytes / MiB
    print(
        f"cross-entropy forward + backward, logits ({args.rows}, {args.classes}) float32 "
        f"({logits_mib:.0f} MiB), reduction='mean', {args.rounds} rounds, threads: {threads}"
    )
    for name in steps:
        line = f"  {name:<16} {median_ms(times[name]):9.1f} ms"
        if name in memory:
            line += f"   peak {memory[name] / MiB:7.1f} MiB ({memory[name] / logits.nbytes:.1f} x the logits)"
        print(line)
    print(f"  composed / fused: {median_ratio(times, 'composed', 'fused'):.2f}x the time (median of per-round ratios), "
          f"{memory['composed'] / memory['fused']:.2f}x the peak memory")
    print(f"  fused / floor:    {median_ratio(times, 'fused', 'floor (one exp)'):.2f}x the time of one exp over the logits")
    if "pytorch" in steps:
        print(f"  fused / pytorch:  {median_ratio(times, 'fused', 'pytorch'):.2f}x the time")


if __name__ == "__main__":
    main()
