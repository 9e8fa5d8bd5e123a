"""Does pretraining help with few labels? Masked-LM encoder and GPT, pretrained vs from scratch.

The task (``tinylm.pretraining``): which of four sections of the Python reference a
32-word passage comes from, with 8 labelled passages per section to learn from and the
other ~650 passages to test on. Both a bidirectional encoder (masked LM, mean-pooled
features) and a GPT (causal LM, last-position features), width 64, 2 layers, 4 heads,
are pretrained for 300 steps (batch 32) on the built-in corpus, then fine-tuned for 40
steps; the same recipe from a fresh initialisation is the baseline. Four label draws.

Claim: pretraining helps with few labels: each pretrained model beats its from-scratch
twin in mean accuracy over the four draws. Measured (2 cores, 49 s for the whole run):

    model    start       accuracy (per draw)         mean   macro-F1
    encoder  pretrained  0.609 0.514 0.515 0.632     0.568  0.523
    encoder  scratch     0.498 0.428 0.428 0.398     0.438  0.423
    gpt      pretrained  0.686 0.568 0.623 0.582     0.615  0.556
    gpt      scratch     0.529 0.502 0.380 0.472     0.471  0.451

+0.13 (encoder) and +0.14 (GPT) in mean accuracy, ahead on every draw; the most
frequent class alone scores 0.41.

    python benchmarks/pretraining.py            # the full run (under a minute on 2 cores)
    python benchmarks/pretraining.py --quick    # a smoke test: a few steps, one draw
"""
from __future__ import annotations

import argparse
import statistics

import tinylm as tl
from tinylm.data import builtin_corpus
from tinylm.pretraining import few_labels_comparison


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few steps and one draw, to check that it runs")
    args = parser.parse_args()
    tl.manual_seed(0)
    settings = dict(pretrain_steps=3, fine_tune_steps=2, seeds=(0,)) if args.quick else {}
    rows = few_labels_comparison(builtin_corpus(), **settings)
    print(f"{'model':<8} {'start':<11} {'accuracy (per draw)':<36} {'mean':>6} {'macro-F1':>9}")
    for model in ("encoder", "gpt"):
        for pretrained in (True, False):
            chosen = [r for r in rows if r["model"] == model and r["pretrained"] == pretrained]
            accuracies = " ".join(f"{r['accuracy']:.3f}" for r in chosen)
            print(
                f"{model:<8} {'pretrained' if pretrained else 'scratch':<11} {accuracies:<36} "
                f"{statistics.mean(r['accuracy'] for r in chosen):6.3f} {statistics.mean(r['macro_f1'] for r in chosen):9.3f}"
            )


if __name__ == "__main__":
    main()
