"""Speed of attention and of a GPT training step, against PyTorch on the CPU.

1. Causal scaled dot-product attention, forward + backward, float32:
   B8, 4 heads, L256, head dim 64. tinylm's fused Function, its composed twin and
   ``torch.nn.functional.scaled_dot_product_attention``. Goals: fused ≤ 1.5x PyTorch,
   and fused faster than composed.
2. One training step (forward, cross-entropy, backward, Adam) of a GPT with 4 layers,
   width 128, 4 heads, context 128, batch 32, vocabulary 65, against the same model
   built from PyTorch's pre-norm ``TransformerEncoderLayer``. Goal: ≤ 1.5x PyTorch.

Method (see BENCHMARKS.md): the contenders run interleaved, one call each per round,
after a 0.3 s pause (BLAS and OpenMP threads keep spinning after a call and would slow
the next one); we report medians and the median of the per-round ratios.

    python benchmarks/attention.py            # the full run
    python benchmarks/attention.py --quick    # a smoke test: two rounds
"""
from __future__ import annotations

import argparse

import numpy as np

import tinylm as tl
import tinylm.functional as F
from tinylm import nn, optim
from timing import interleaved, report



# ---------------------------------------------------------------- attention


def attention_contenders(torch) -> dict:
    shape = (8, 4, 256, 64)
    rng = np.random.default_rng(0)
    q, k, v, grad = (rng.standard_normal(shape, dtype=np.float32) for _ in range(4))
    ours = [tl.tensor(a, requires_grad=True) for a in (q, k, v)]

    def tinylm_step(attention):
        def step():
            for x in ours:
                x.grad = None
            attention(*ours, is_causal=True).backward(tl.tensor(grad))
            assert ours[0].grad.dtype == np.float32, f"gradient upcast to {ours[0].grad.dtype}"

        return step

    contenders = {
        "tinylm fused": tinylm_step(F.scaled_dot_product_attention),
        "tinylm composed": tinylm_step(F.scaled_dot_product_attention_composed),
    }
    if torch is not None:
        theirs = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
        torch_grad = torch.tensor(grad)

        def torch_step():
            for x in theirs:
                x.grad = None
            torch.nn.functional.scaled_dot_product_attention(*theirs, is_causal=True).backward(torch_grad)

        contenders["torch SDPA"] = torch_step
    return contenders


# ---------------------------------------------------------------- GPT training step

VOCAB, CONTEXT, WIDTH, HEADS, LAYERS, BATCH = 65, 128, 128, 4, 4, 32


def tinylm_gpt_step(ids: np.ndarray, targets: np.ndarray):
    model = nn.GPT(VOCAB, CONTEXT, embed_dim=WIDTH, num_heads=HEADS, num_layers=LAYERS)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(ids), targets)
        loss.backward()
        optimizer.step()
        assert model.head.weight.grad.dtype == np.float32, "gradient upcast from float32"

    return step


def torch_gpt_step(torch, ids: np.ndarray, targets: np.ndarray):
    """The same GPT from PyTorch parts: pre-norm blocks, tanh-GELU, causal self-attention."""
    tnn = torch.nn

    class TorchGPT(tnn.Module):
        def __init__(self):
            super().__init__()
            self.token_embedding = tnn.Embedding(VOCAB, WIDTH)
            self.position_embedding = tnn.Parameter(torch.randn(CONTEXT, WIDTH) * 0.02)
            layer = tnn.TransformerEncoderLayer(
                WIDTH, HEADS, 4 * WIDTH, dropout=0.0, batch_first=True, norm_first=True,
                activation=lambda x: tnn.functional.gelu(x, approximate="tanh"),
            )
            self.blocks = tnn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
            self.final_norm = tnn.LayerNorm(WIDTH)
            self.head = tnn.Linear(WIDTH, VOCAB, bias=False)

        def forward(self, x):
            T = x.shape[1]
            mask = tnn.Transformer.generate_square_subsequent_mask(T)
            h = self.token_embedding(x) + self.position_embedding[:T]
            return self.head(self.final_norm(self.blocks(h, mask=mask, is_causal=True)))

    model = TorchGPT()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    ids, targets = torch.tensor(ids), torch.tensor(targets)

    def step():
        optimizer.zero_grad()
        loss = tnn.functional.cross_entropy(model(ids).reshape(-1, VOCAB), targets.reshape(-1))
        loss.backward()
        optimizer.step()

    return step


def gpt_contenders(torch) -> dict:
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, (BATCH, CONTEXT))
    targets = rng.integers(0, VOCAB, (BATCH, CONTEXT))
    contenders = {"tinylm GPT step": tinylm_gpt_step(ids, targets)}
    if torch is not None:
        contenders["torch GPT step"] = torch_gpt_step(torch, ids, targets)
    return contenders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="two rounds only (a smoke test)")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch is not installed: tinylm only, no ratios against it")

    attention = interleaved(attention_contenders(torch), rounds)
    report("causal attention fwd+bwd, B8 H4 L256 D64, float32", attention, "torch SDPA" if torch else "tinylm fused")
    gpt = interleaved(gpt_contenders(torch), max(rounds // 2, 1))
    report(f"GPT train step, {LAYERS} layers, width {WIDTH}, context {CONTEXT}, batch {BATCH}, vocab {VOCAB}", gpt,
           "torch GPT step" if torch else "tinylm GPT step")


if __name__ == "__main__":
    main()
