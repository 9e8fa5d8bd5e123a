"""Fused vs composed: RMSNorm and rotary position embeddings, forward + backward, float32.

    python benchmarks/modern_layers.py            # x (B·T = 4096 rows, D = 512) and q (B8, 8 heads, T256, d64)
    python benchmarks/modern_layers.py --quick    # a small, fast smoke run

1. ``F.rms_norm`` (one Function, hand-derived backward), its composed twin (about six graph
   nodes) and ``torch.nn.functional.rms_norm`` when installed, on x (4096, 512) with a weight.
2. ``F.rotary_embedding`` (one Function; backward = the rotation by -angle), its composed
   twin (indexing, four products, a stack), both computing cos/sin on every call, and
   ``nn.RotaryEmbedding`` (the fused Function on tables computed once), on queries
   (8, 8, 256, 64) at positions 0..255. PyTorch has no rotary embedding of its own.

Method (see BENCHMARKS.md): the contenders run interleaved, round after round, each timed
call after a 0.3 s pause; reported are the medians and the median of the per-round ratios.
Before timing, the contenders are checked to agree and to keep float32 gradients.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

import tinylm as tl
import tinylm.functional as F
from tinylm import nn
from timing import interleaved, median_ms, median_ratio


def tinylm_step(function, inputs: list[tl.Tensor], upstream: tl.Tensor):
    """One forward + backward; returns the gradient of the first input."""
    for t in inputs:
        t.grad = None
    function(*inputs).backward(upstream)
    return inputs[0].grad.numpy()


def agree(steps: dict, names: list[str], rtol: float) -> None:
    """The contenders' input gradients match, in float32, before their times mean anything."""
    first = steps[names[0]]()
    for name in names[1:]:
        other = steps[name]()
        assert first.dtype == other.dtype == np.float32, f"{name}: gradient dtype {other.dtype}"
        np.testing.assert_allclose(first, other, rtol=rtol, atol=1e-5, err_msg=f"{names[0]} vs {name}")


def report(title: str, times: dict[str, list[float]], reference: str) -> None:
    print(f"\n{title}")
    for name, values in times.items():
        print(f"  {name:<12} median {median_ms(values):8.2f} ms   {median_ratio(times, name, reference):5.2f}x {reference}")


def rms_norm_steps(rows: int, features: int, torch) -> dict:
    rng = np.random.default_rng(0)
    x, grad = (rng.standard_normal((rows, features), dtype=np.float32) for _ in range(2))
    weight = (1 + 0.1 * rng.standard_normal(features)).astype(np.float32)
    ours = [tl.tensor(x, requires_grad=True), tl.tensor(weight, requires_grad=True)]
    upstream = tl.tensor(grad)
    steps = {
        "fused": lambda: tinylm_step(lambda x, w: F.rms_norm(x, features, w), ours, upstream),
        "composed": lambda: tinylm_step(lambda x, w: F.rms_norm_composed(x, features, w), ours, upstream),
    }
    if torch is not None:
        theirs = [torch.tensor(x, requires_grad=True), torch.tensor(weight, requires_grad=True)]
        torch_grad = torch.from_numpy(grad)

        def torch_step():
            for t in theirs:
                t.grad = None
            torch.nn.functional.rms_norm(theirs[0], [features], theirs[1], eps=1e-5).backward(torch_grad)
            return theirs[0].grad.numpy()

        steps["pytorch"] = torch_step
    return steps


def rotary_steps(shape: tuple[int, ...]) -> dict:
    rng = np.random.default_rng(0)
    q, grad = (rng.standard_normal(shape, dtype=np.float32) for _ in range(2))
    positions = np.arange(shape[-2])
    ours, upstream = [tl.tensor(q, requires_grad=True)], tl.tensor(grad)
    layer = nn.RotaryEmbedding(shape[-1], max_positions=shape[-2])
    return {
        "fused": lambda: tinylm_step(lambda q: F.rotary_embedding(q, positions), ours, upstream),
        "composed": lambda: tinylm_step(lambda q: F.rotary_embedding_composed(q, positions), ours, upstream),
        "module": lambda: tinylm_step(layer, ours, upstream),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="a smoke run: small shapes, 2 rounds")
    args = parser.parse_args()
    rows, features, q_shape = (256, 128, (2, 2, 32, 16)) if args.quick else (4096, 512, (8, 8, 256, 64))
    rounds = 2 if args.quick else args.rounds
    try:
        import torch
    except ImportError:
        torch = None

    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default"
    print(f"forward + backward, float32, {rounds} rounds, threads: {threads}")
    norm = rms_norm_steps(rows, features, torch)
    agree(norm, list(norm), rtol=1e-4)
    report(f"rms_norm, x ({rows}, {features}) with a weight", interleaved(norm, rounds), "fused")
    rotary = rotary_steps(q_shape)
    agree(rotary, list(rotary), rtol=1e-6)
    report(f"rotary_embedding, q {q_shape}", interleaved(rotary, rounds), "fused")


if __name__ == "__main__":
    main()
