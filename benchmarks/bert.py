"""Speed of the exact GELU and of a BERT fine-tuning step, against PyTorch on the CPU.

1. GELU forward + backward on a BERT-base MLP activation of 8 sequences of 128 tokens,
   (1024, 3072) float32: tinylm's exact (erf) GELU, its tanh GELU, and PyTorch's exact
   ``F.gelu``. The erf is the cost: NumPy has none, so tinylm evaluates W. J. Cody's
   rational approximations (about 60 array passes), where the tanh GELU takes about 10
   and NumPy's tanh is one vectorised kernel. No goal of its own: what counts is the
   share of a training step (item 2), where the matrix products dominate.
2. One fine-tuning step (forward, cross-entropy, backward, AdamW) of a small BERT
   classifier (4 layers, width 256, 4 heads, MLP 1024, batch 16 of 128 tokens with
   padding) against Hugging Face's ``BertForSequenceClassification`` with the same
   weights (when transformers is installed). Goal: ≤ 2x PyTorch.

Method (see BENCHMARKS.md): interleaved rounds after a 0.3 s pause, medians and the
median of the per-round ratios.

    python benchmarks/bert.py            # the full run
    python benchmarks/bert.py --quick    # a smoke test: two rounds
"""
from __future__ import annotations

import argparse
import tempfile

import numpy as np

import tinylm as tl
import tinylm.functional as F
import tinylm.pretrained
from tinylm import optim
from timing import interleaved, report



def gelu_contenders(torch) -> dict:
    rng = np.random.default_rng(0)
    x, grad = (rng.standard_normal((1024, 3072), dtype=np.float32) for _ in range(2))
    ours = tl.tensor(x, requires_grad=True)

    def tinylm_step(approximate):
        def step():
            ours.grad = None
            F.gelu(ours, approximate).backward(tl.tensor(grad))
            assert ours.grad.dtype == np.float32, f"gradient upcast to {ours.grad.dtype}"

        return step

    contenders = {"tinylm exact (erf)": tinylm_step("none"), "tinylm tanh": tinylm_step("tanh")}
    if torch is not None:
        theirs, their_grad = torch.tensor(x, requires_grad=True), torch.tensor(grad)

        def torch_step():
            theirs.grad = None
            torch.nn.functional.gelu(theirs).backward(their_grad)

        contenders["PyTorch exact"] = torch_step
    return contenders


def fine_tuning_contenders(torch, transformers, folder) -> dict:
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 1000, (16, 128))
    mask = (np.arange(128) < rng.integers(32, 129, (16, 1))).astype(np.int64)
    ids *= mask
    labels = rng.integers(0, 2, 16)
    ours, _ = tinylm.pretrained.load(folder)
    ours.train()
    optimizer = optim.AdamW(ours.parameters(), lr=2e-5)

    def tinylm_step():
        optimizer.zero_grad()
        F.cross_entropy(ours(ids, attention_mask=mask), labels).backward()
        optimizer.step()

    contenders = {"tinylm": tinylm_step}
    if transformers is not None:
        theirs = transformers.BertForSequenceClassification.from_pretrained(folder).train()
        their_optimizer = torch.optim.AdamW(theirs.parameters(), lr=2e-5)
        their_ids, their_mask, their_labels = (torch.tensor(a) for a in (ids, mask, labels))

        def torch_step():
            their_optimizer.zero_grad()
            theirs(input_ids=their_ids, attention_mask=their_mask, labels=their_labels).loss.backward()
            their_optimizer.step()

        contenders["Hugging Face (PyTorch)"] = torch_step
    return contenders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two rounds, to see that it runs")
    args = parser.parse_args()
    rounds = 2 if args.quick else 10
    try:
        import torch
    except ImportError:
        torch = None
    try:
        import transformers
    except ImportError:
        transformers = None
    report("GELU forward + backward, (1024, 3072) float32", interleaved(gelu_contenders(torch), rounds), "tinylm tanh", width=26)
    if transformers is None:
        print("\n(transformers not installed: the fine-tuning step is not measured)")
        return
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=1000, hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024, num_labels=2
    )
    with tempfile.TemporaryDirectory() as folder:
        transformers.BertForSequenceClassification(config).save_pretrained(folder)
        times = interleaved(fine_tuning_contenders(torch, transformers, folder), rounds)
    report("BERT fine-tuning step: 4 layers, width 256, batch 16 x 128 tokens", times, "Hugging Face (PyTorch)", width=26)


if __name__ == "__main__":
    main()
