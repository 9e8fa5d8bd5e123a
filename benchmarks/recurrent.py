"""Recurrent layers against PyTorch: a character-level language-model training step.

Workload (issue 4): vocab 65, embedding 64, one recurrent layer, a linear head,
cross-entropy over every position, backward, an SGD step; float32 on the CPU.
Sizes: hidden 256 / batch 32 / sequence 64 (the lecture demo), and hidden 1024 /
batch 64 / sequence 32 (matmul-bound). For LSTM, GRU and RNN.

Contenders: tinylm fused (the default), tinylm composed (``fused=False``) and PyTorch
``nn.LSTM``/``GRU``/``RNN`` (when installed), all starting from the same weights.

Method (see benchmarks/timing.py): the contenders run interleaved in one process,
with a ~0.3 s pause before every timed call (so the previous contender's BLAS/OpenMP
threads have stopped spinning); reported are the medians and the median of the per-round
ratios. Peak memory: each contender runs 50 steps in its own subprocess, which reports
ru_maxrss after the imports (the baseline) and after steps 1, 10, 25 and 50.

    python benchmarks/recurrent.py            # everything (several minutes)
    python benchmarks/recurrent.py --quick    # a smoke test of every part (seconds)

Timings from a shared machine are noisy: compare ratios, repeat a run before trusting it.
"""
from __future__ import annotations

import argparse
import importlib
import json
import resource
import statistics
import subprocess
import sys

import numpy as np

from timing import interleaved

VOCAB, EMBED = 65, 64
SIZES = {"H256": dict(hidden=256, batch=32, steps=64), "H1024": dict(hidden=1024, batch=64, steps=32)}
FAMILIES = ("LSTM", "GRU", "RNN")
MEMORY_CHECKPOINTS = (1, 10, 25, 50)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def make_batch(size: dict, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, VOCAB, size=(size["batch"], size["steps"] + 1))
    return ids[:, :-1], ids[:, 1:]


def torch_step(family: str, size: dict):
    """A training step of PyTorch's Embedding -> family -> Linear, and its state dict."""
    torch = _torch()
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(VOCAB, EMBED)
    recurrent = getattr(torch.nn, family)(EMBED, size["hidden"], batch_first=True)
    head = torch.nn.Linear(size["hidden"], VOCAB)
    parameters = [*embedding.parameters(), *recurrent.parameters(), *head.parameters()]
    optimizer = torch.optim.SGD(parameters, lr=0.1)
    inputs, targets = (torch.from_numpy(a) for a in make_batch(size))

    def step() -> float:
        optimizer.zero_grad()
        logits = head(recurrent(embedding(inputs))[0])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))
        loss.backward()
        optimizer.step()
        return loss.item()

    state = {"embedding": embedding.state_dict(), "recurrent": recurrent.state_dict(), "head": head.state_dict()}
    return step, state


def tinylm_step(family: str, size: dict, fused: bool, torch_state: dict | None = None):
    """The same training step in tinylm (weights copied from PyTorch's when given)."""
    import tinylm as tl
    import tinylm.functional as F
    from tinylm import nn, optim

    tl.manual_seed(0)
    embedding = nn.Embedding(VOCAB, EMBED)
    recurrent = getattr(nn, family)(EMBED, size["hidden"], fused=fused)
    head = nn.Linear(size["hidden"], VOCAB)
    if torch_state is not None:
        embedding.load_state_dict(torch_state["embedding"])
        recurrent.load_state_dict(torch_state["recurrent"])
        head.load_state_dict(torch_state["head"])
    parameters = embedding.parameters() + recurrent.parameters() + head.parameters()
    optimizer = optim.SGD(parameters, lr=0.1)
    inputs, targets = make_batch(size)

    def step() -> float:
        optimizer.zero_grad()
        logits = head(recurrent(embedding(inputs))[0])
        loss = F.cross_entropy(logits, targets)
        loss.backward()
        bad = [p.grad.dtype for p in parameters if p.grad.dtype != np.float32]
        if bad:
            raise AssertionError(f"gradients were upcast to {bad}: float32 work became float64")
        optimizer.step()
        return loss.item()

    return step


def contenders(family: str, size: dict, with_composed: bool) -> dict:
    torch_state = None
    steps = {}
    if _torch() is not None:
        steps["torch"], torch_state = torch_step(family, size)
    steps["fused"] = tinylm_step(family, size, True, torch_state)
    if with_composed:
        steps["composed"] = tinylm_step(family, size, False, torch_state)
    return steps


def time_interleaved(steps: dict, rounds: int, pause: float) -> dict[str, list[float]]:
    """Seconds per call for each contender, after checking that they start at the same loss."""
    losses = {name: step() for name, step in steps.items()}
    if "torch" in losses:
        for name, loss in losses.items():
            if abs(loss - losses["torch"]) > 1e-3 * abs(losses["torch"]):
                raise AssertionError(f"{name} starts at loss {loss:.6f}, PyTorch at {losses['torch']:.6f}")
    return interleaved(steps, rounds, pause)


def report_times(label: str, times: dict[str, list[float]]) -> None:
    medians = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    parts = [f"{name} {ms:8.1f} ms" for name, ms in medians.items()]
    ratios = []
    if "torch" in times:
        ratios.append(("fused/torch", times["fused"], times["torch"]))
    if "composed" in times:
        ratios.append(("composed/fused", times["composed"], times["fused"]))
    for name, a, b in ratios:
        per_round = [x / y for x, y in zip(a, b)]
        parts.append(f"{name} {statistics.median(per_round):5.2f}x (rounds {min(per_round):.2f}-{max(per_round):.2f})")
    print(f"{label:<14}" + "  ".join(parts), flush=True)


# ---------------------------------------------------------------- peak memory, one subprocess each


def _max_rss_mib() -> float:
    """The peak resident memory of this process, MiB.

    Linux: VmHWM from /proc/self/status. ru_maxrss would do, except that it keeps the
    parent's peak across fork + exec, so a child of a process that imported PyTorch
    would start at PyTorch's size.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _reset_peak_rss() -> bool:
    """Restart the peak count from the current RSS (Linux: clear_refs 5), so a peak
    reached while importing (PyTorch's import peaks above its resting size) is forgotten."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def memory_child(family: str, size_name: str, contender: str, steps: int) -> None:
    """Run ``steps`` training steps and print the peak-RSS growth over the after-import baseline."""
    size = SIZES[size_name]
    for module in ["torch"] if contender == "torch" else ["tinylm.nn", "tinylm.functional", "tinylm.optim"]:
        importlib.import_module(module)
    peak_was_reset = _reset_peak_rss()
    baseline = _max_rss_mib()
    if contender == "torch":
        step = torch_step(family, size)[0]
    else:
        step = tinylm_step(family, size, contender == "fused")
    growth = {}
    for i in range(1, steps + 1):
        step()
        if i in MEMORY_CHECKPOINTS or i == steps:
            growth[i] = round(_max_rss_mib() - baseline, 1)
    print(json.dumps({"baseline_mib": round(baseline, 1), "growth_mib": growth, "peak_reset": peak_was_reset}))


def measure_memory(family: str, size_name: str, contender: str, steps: int) -> dict:
    command = [sys.executable, __file__, "--memory-child", family, size_name, contender, str(steps)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few rounds of the small size: checks that it all runs")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--memory-child", nargs=4, help=argparse.SUPPRESS)  # FAMILY SIZE CONTENDER STEPS
    args = parser.parse_args()
    if args.memory_child:
        family, size_name, contender, steps = args.memory_child
        memory_child(family, size_name, contender, int(steps))
        return

    rounds = 2 if args.quick else args.rounds
    sizes = ["H256"] if args.quick else args.sizes
    pause = 0.05 if args.quick else 0.3
    torch = _torch()
    versions = f"torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else "no torch"
    print(f"numpy {np.__version__}, {versions}")
    print("median time per training step (embedding -> recurrent -> linear -> cross-entropy -> backward -> SGD)")
    for family in args.families:
        for size_name in sizes:
            # the composed form is slow at H1024 and only needed for the fused/composed ratio
            steps = contenders(family, SIZES[size_name], with_composed=size_name == "H256")
            report_times(f"{family} {size_name}", time_interleaved(steps, rounds, pause))

    if args.no_memory:
        return
    memory_steps = 5 if args.quick else 50
    print(f"\npeak RSS growth over the after-import baseline, MiB, after steps {MEMORY_CHECKPOINTS} (H256)")
    for family in args.families:
        growth = {}
        for contender in (["torch"] if torch else []) + ["fused"]:
            result = measure_memory(family, "H256", contender, memory_steps)
            growth[contender] = result["growth_mib"][str(memory_steps)]
            baseline = result["baseline_mib"]
            print(f"{family:<5} {contender:<6} after-import baseline {baseline:6.1f}  growth {result['growth_mib']}")
        if torch:
            print(f"{family:<5} fused/torch peak growth {growth['fused'] / growth['torch']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
