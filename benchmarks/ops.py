"""How much does tinylm's graph cost? Per-op overhead and matmul-bound work, side by side.

Two workloads, float32 on the CPU, forward + backward:

* **per-op overhead**: a chain of 1,000 element-wise ops on 16 elements. The arithmetic is
  nothing; what is timed is the Python around it (making tensors, recording the graph,
  walking it back). Reported in µs per op, against PyTorch CPU.
  Goal: within 1.5x of PyTorch.
* **matmul-bound**: two chained 512x512 matmuls and their backward (5 matmuls in all),
  against NumPy doing the same 5 matmuls directly (no graph at all) and against PyTorch.
  Goal: at least 1/1.1 of NumPy's own speed.

Method (see ../shared/BENCHMARKS.md): the contenders run interleaved in one process
(A B C A B C ...), each timed call follows a 0.3 s pause (BLAS and OpenMP threads keep
spinning for ~0.1 s after a call and would slow whoever runs next), and ratios are taken
round by round, then their median reported, because the machine's speed drifts.

    python benchmarks/ops.py            # 15 rounds, about a minute
    python benchmarks/ops.py --quick    # 3 rounds, a smoke test
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/ops.py   # steadiest figures
    python benchmarks/ops.py --baseline main   # also the per-op chain of tinylm as committed
                                               # at a git revision, interleaved: before/after
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

import tinylm as tl
from timing import interleaved, median_ratio

try:
    import torch
except ImportError:
    torch = None

CHAIN_OPS = 1_000        # element-wise ops per chain (4 per step of the loop below)
CHAIN_SIZE = 16          # elements per tensor
CHAINS_PER_CALL = 10     # chains per timed call, so one call lasts tens of milliseconds
MATMUL_SIZE = 512
MATMUL_FLOP = 5 * 2 * MATMUL_SIZE**3  # 2 forward + 3 backward matmuls of n³ multiply-adds


# ---------------------------------------------------------------- the workloads


def elementwise_chain(x, a, b, c) -> None:
    """1,000 ops (mul, add, tanh, sub) and backward; the same code runs on tinylm and torch tensors."""
    y = x
    for _ in range(CHAIN_OPS // 4):
        y = (y * a + b).tanh() - c
    y.sum().backward()


def chain_inputs(library, seed: int = 0):
    """The chain's tensors for ``library``: "torch", or a tinylm package (this one or a baseline)."""
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal(CHAIN_SIZE).astype(np.float32) for _ in range(4)]
    make = torch.tensor if library == "torch" else (tl if library == "tinylm" else library).tensor
    return [make(values[0], requires_grad=True)] + [make(v) for v in values[1:]]


def baseline_package(revision: str):
    """tinylm as committed at ``revision``, imported as the package ``tinylm_baseline``.

    ``git archive`` writes the revision's ``tinylm/`` folder into a temporary directory;
    the package imports its own modules relatively, so it loads beside this one.
    """
    repository = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "archive", revision, "tinylm"], cwd=repository, capture_output=True, check=True)
    folder = Path(tempfile.mkdtemp(prefix="tinylm-baseline-"))
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    spec = importlib.util.spec_from_file_location(
        "tinylm_baseline", folder / "tinylm" / "__init__.py", submodule_search_locations=[str(folder / "tinylm")]
    )
    package = importlib.util.module_from_spec(spec)
    sys.modules["tinylm_baseline"] = package
    spec.loader.exec_module(package)
    return package


def two_matmuls(x, w1, w2) -> None:
    """loss = Σ (x @ w1) @ w2 and its backward; the same code runs on tinylm and torch tensors."""
    ((x @ w1) @ w2).sum().backward()


def two_matmuls_numpy(x, w1, w2) -> tuple[np.ndarray, np.ndarray]:
    """The same by hand: the 5 matmuls alone, no graph. Returns dL/dw1, dL/dw2."""
    h = x @ w1
    out = h @ w2
    grad_out = np.ones_like(out)  # d(Σ out)/d out
    grad_w2 = h.T @ grad_out
    grad_h = grad_out @ w2.T
    grad_w1 = x.T @ grad_h
    return grad_w1, grad_w2


def matmul_inputs(library, seed: int = 0):
    rng = np.random.default_rng(seed)
    scale = MATMUL_SIZE**-0.5
    x, w1, w2 = (rng.standard_normal((MATMUL_SIZE, MATMUL_SIZE)).astype(np.float32) * scale for _ in range(3))
    if library == "numpy":
        return [x, w1, w2]
    if library == "tinylm":
        return [tl.tensor(x), tl.tensor(w1, requires_grad=True), tl.tensor(w2, requires_grad=True)]
    return [torch.tensor(x), torch.tensor(w1, requires_grad=True), torch.tensor(w2, requires_grad=True)]


def check_float32_gradients() -> None:
    """Python numbers can silently upcast float32 work to float64: make sure they do not."""
    x, *rest = chain_inputs("tinylm")
    elementwise_chain(x, *rest)
    _, w1, w2 = inputs = matmul_inputs("tinylm")
    two_matmuls(*inputs)
    for name, grad in (("chain", x.grad), ("w1", w1.grad), ("w2", w2.grad)):
        assert grad.dtype == np.float32, f"{name}: gradient is {grad.dtype}, expected float32"
    expected_w1, _ = two_matmuls_numpy(*matmul_inputs("numpy"))
    np.testing.assert_allclose(w1.grad.numpy(), expected_w1, rtol=1e-4, atol=1e-4)


def per_op_overhead(rounds: int, pause: float, baseline: str | None = None) -> list[str]:
    def repeat(library):
        inputs = chain_inputs(library)

        def run():
            for _ in range(CHAINS_PER_CALL):
                inputs[0].grad = None
                elementwise_chain(*inputs)

        return run

    contenders = {"tinylm": repeat("tinylm")}
    if torch is not None:
        contenders["PyTorch"] = repeat("torch")
    if baseline is not None:
        contenders["baseline"] = repeat(baseline_package(baseline))
    times = interleaved(contenders, rounds, pause)
    per_op = {name: 1e6 * statistics.median(t) / (CHAINS_PER_CALL * CHAIN_OPS) for name, t in times.items()}
    row = f"{'per-op overhead, µs/op':<34}{per_op['tinylm']:>10.2f}"
    if torch is None:
        lines = [row + f"{'-':>10}{'-':>10}   (PyTorch not installed)"]
    else:
        ratio = median_ratio(times, "tinylm", "PyTorch")
        lines = [row + f"{per_op['PyTorch']:>10.2f}{'-':>10}   tinylm/PyTorch {ratio:.2f}x (goal <= 1.5x)"]
    if baseline is not None:
        lines.append(
            f"{f'  tinylm at {baseline}, µs/op':<34}{per_op['baseline']:>10.2f}{'':>20}"
            f"   this tree / {baseline} {median_ratio(times, 'tinylm', 'baseline'):.3f}x"
        )
        if torch is not None:
            lines[-1] += f", {baseline}/PyTorch {median_ratio(times, 'baseline', 'PyTorch'):.2f}x"
    return lines


def matmul_bound(rounds: int, pause: float) -> list[str]:
    def run_with(library, fn):
        inputs = matmul_inputs(library)
        weights = [] if library == "numpy" else inputs[1:]

        def run():
            for weight in weights:
                weight.grad = None
            fn(*inputs)

        return run

    contenders = {"tinylm": run_with("tinylm", two_matmuls), "NumPy": run_with("numpy", two_matmuls_numpy)}
    if torch is not None:
        contenders["PyTorch"] = run_with("torch", two_matmuls)
    times = interleaved(contenders, rounds, pause)
    ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    fraction = median_ratio(times, "NumPy", "tinylm")
    gflops = MATMUL_FLOP / statistics.median(times["NumPy"]) / 1e9
    torch_ms = f"{ms['PyTorch']:>10.2f}" if torch is not None else f"{'-':>10}"
    lines = [
        f"{f'matmul {MATMUL_SIZE}², fwd+bwd, ms':<34}{ms['tinylm']:>10.2f}{torch_ms}{ms['NumPy']:>10.2f}"
        f"   tinylm runs at {fraction:.2f} of NumPy's speed (goal >= {1 / 1.1:.2f})",
    ]
    if torch is not None:
        lines.append(f"{'':<64}   tinylm/PyTorch {median_ratio(times, 'tinylm', 'PyTorch'):.2f}x")
    lines.append(f"{'':<64}   NumPy alone: {gflops:.0f} GFLOP/s")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds: check that it runs, not a measurement")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    parser.add_argument("--pause", type=float, default=0.3, help="seconds of rest before each timed call")
    parser.add_argument("--baseline", metavar="REVISION", help="also time the per-op chain of tinylm at this git revision")
    args = parser.parse_args()
    rounds = 3 if args.quick else args.rounds

    check_float32_gradients()
    threads = {name: os.environ.get(name, "unset") for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    versions = f"numpy {np.__version__}" + (f", torch {torch.__version__}" if torch is not None else ", no torch")
    print(f"tinylm {tl.__version__}, {versions}; float32, CPU; {rounds} interleaved rounds; threads: {threads}")
    print(f"{'workload':<34}{'tinylm':>10}{'PyTorch':>10}{'NumPy':>10}   median of per-round ratios")
    for line in per_op_overhead(rounds, args.pause, args.baseline) + matmul_bound(rounds, args.pause):
        print(line)


if __name__ == "__main__":
    main()
