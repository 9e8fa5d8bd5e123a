# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 14 — Pretraining and fine-tuning
#
# Labels are expensive and text is cheap. A classifier trained on a few dozen labelled
# examples has to learn the language and the task at once, from almost nothing. The idea
# behind BERT (Devlin et al., 2019) and GPT: first train a Transformer on raw text alone,
# with a task the text sets itself — **pretraining** — then put a small classification
# head on it and train the whole network on the few labels — **fine-tuning**.
#
# You will:
# 1. build a labelled task from the built-in corpus and keep only 8 labels per class;
# 2. write down the masked-language-model objective and BERT's 80/10/10 corruption;
# 3. write the masking and the masked-LM loss from scratch and check them against
#    `tinylm.pretraining`;
# 4. pretrain a bidirectional Transformer encoder on the corpus and let it fill in blanks;
# 5. fine-tune it with few labels against the same network trained from scratch and
#    against a text CNN, and plot the learning curves and the accuracy as labels grow;
# 6. open a real BERT from a Hugging Face folder, with its WordPiece tokenizer: fill in
#    blanks, look at its attention, and fine-tune it on the same few labels.
#
# `TINYLM_FAST=1` pretrains for 30 steps instead of 300 and fine-tunes on shorter runs:
# the curves are noisy and pretraining has barely begun to help. The full run (two to three
# minutes on a laptop CPU, more with the real BERT of section 8) shows what
# `benchmarks/pretraining.py` measures: with
# 8 labels per class the pretrained encoder is about 0.1 more accurate than the same
# encoder trained from scratch (0.61 against 0.49 after 40 fine-tuning steps; the
# benchmark's mean over four draws of the labels is +0.13), and it stays ahead at every
# number of labels tried.

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import tinylm as tl
import tinylm.functional as F
import tinylm.pretrained.hub  # tl.pretrained: models from Hugging Face folders, and their cache (section 8)
from tinylm import data, metrics, nn, optim, pretraining, viz
from tinylm.pretrained.bert import bert_options, hugging_face_names
from tinylm.pretraining import IGNORE, MASK
from tinylm.text_cnn import TextCNN
from tinylm.word2vec import corpus_words

FAST = os.environ.get("TINYLM_FAST") == "1"
tl.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The task, and how few labels we keep
#
# The built-in corpus is the Python reference documentation, topic after topic. The
# labelled task: **which of four sections a passage of 32 consecutive words comes from**
# — `compound` (compound statements: `if`, `while`, `try`, `with`, ...), `debugger`
# (pdb), `formatstrings` (the format mini-language) or `specialnames` (special method
# names). The words are lower-cased runs of letters; the 1,000 most frequent form the
# vocabulary, after `[UNK]` (every other word) and `[MASK]`.

# %%
text = data.builtin_corpus()
words = corpus_words(text)
vocabulary = pretraining.word_vocabulary(words, max_words=1000)
stream = pretraining.encode_words(vocabulary, words)  # the whole corpus as word ids: the pretraining text
passages, labels = pretraining.topic_passages(vocabulary, length=32)
topics = pretraining.DEFAULT_TOPICS
V, num_classes = len(vocabulary), len(topics)
print(f"{len(words):,} words in the corpus, vocabulary {V}; {len(passages)} labelled passages:",
      dict(zip(topics, np.bincount(labels))))
print("a passage of 'debugger':", " ".join(vocabulary.words[i] for i in passages[labels == 1][3]))

# %% [markdown]
# We keep **8 labelled passages per class** to learn from (32 in all) and test on all
# the others. The most frequent class alone would score 0.41. The encoder is pretrained
# on the whole corpus, these passages included, without their labels: a model
# pretrained on a large corpus may well have read the text of a later task, just not its
# labels.

# %%
per_class = 8
train_index, test_index = pretraining.few_labels_split(labels, per_class, seed=0)
if FAST:
    test_index = test_index[rng.permutation(len(test_index))[:200]]
print(f"{len(train_index)} passages to learn from, {len(test_index)} to test on; "
      f"the most frequent class alone scores {np.bincount(labels[test_index]).max() / len(test_index):.2f}")

# %% [markdown]
# ## 2. The math: a task the text sets itself
#
# **Masked language model.** Choose 15% of the positions of a passage $x_1 \dots x_T$ at
# random, the set $M$. Corrupt the input at those positions: 80% of them become
# `[MASK]`, 10% a random word, 10% stay as they are. A **bidirectional** encoder (no
# causal mask: every position sees the whole passage, left and right) reads the corrupted
# passage $\tilde x$ and predicts the original word at each chosen position:
#
# $$\mathcal{L}_{\text{MLM}} = -\frac{1}{|M|} \sum_{i \in M} \log p_\theta(x_i \mid \tilde x).$$
#
# Why not always `[MASK]`? Then the model would learn that only `[MASK]` positions
# matter, and `[MASK]` never occurs in the fine-tuning data. With 10% random and 10%
# unchanged words it cannot tell which positions it will be asked about, and must keep a
# good representation of every word.
#
# **Fine-tuning.** Average the encoder's output vectors over the passage ("mean
# pooling"), $z = \frac{1}{T} \sum_t \text{enc}(x)_t$, and add a linear head,
# $p(\text{class} \mid x) = \operatorname{softmax}(W z + b)$. Train *everything*, encoder
# and head, on the labelled passages with the cross-entropy. The pretrained weights are
# only the starting point; from scratch, the same network starts from random weights.
#
# ## 3. From scratch: masking and the masked-LM loss
#
# The corruption in NumPy, and its statistics:


# %%
def mask_from_scratch(ids: np.ndarray, probability: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    chosen = rng.random(ids.shape) < probability
    action = rng.random(ids.shape)
    inputs = np.where(chosen & (action < 0.8), MASK, ids)
    random_words = rng.integers(len(pretraining.SPECIAL_TOKENS), V, size=ids.shape)
    inputs = np.where(chosen & (action >= 0.8) & (action < 0.9), random_words, inputs)
    return inputs, np.where(chosen, ids, IGNORE)


windows, _ = data.random_windows(stream, 2_000, 32)
for name, corrupt in (("from scratch", mask_from_scratch), ("pretraining.mask_tokens", lambda w: pretraining.mask_tokens(w, V))):
    inputs, targets = corrupt(windows)
    chosen = targets != IGNORE
    shares = [np.mean(inputs[chosen] == MASK), np.mean((inputs[chosen] != MASK) & (inputs[chosen] != windows[chosen])),
              np.mean(inputs[chosen] == windows[chosen])]
    print(f"{name:>24}: {chosen.mean():.3f} of the positions chosen; of those [MASK] {shares[0]:.3f}, "
          f"random {shares[1]:.3f}, unchanged {shares[2]:.3f}; elsewhere unchanged: {np.all(inputs[~chosen] == windows[~chosen])}")
    assert abs(chosen.mean() - 0.15) < 0.005 and abs(shares[0] - 0.8) < 0.01 and np.all(inputs[~chosen] == windows[~chosen])

# %% [markdown]
# (A "random" word is sometimes the original word by chance, so "unchanged" is a little
# above 10% and "random" a little below.)
#
# The loss: the encoder's logits at every position, their log-softmax, the
# log-probability of the original word at the chosen positions only, averaged.
# `MaskedLanguageModel(positions)` computes the head only at the chosen positions (the
# head is the costliest product, $E \cdot V$ per position), and the cross-entropy over
# all positions with `ignore_index` skips the others; all three must agree.

# %%
encoder = pretraining.TransformerEncoder(V, context_length=32, embed_dim=64, num_heads=4, num_layers=2, dropout=0.0)
untrained_lm = pretraining.MaskedLanguageModel(encoder)
inputs, targets = pretraining.mask_tokens(windows[:16], V)
logits = untrained_lm(tl.tensor(inputs))  # (B, T, V)
log_p = F.log_softmax(logits, axis=-1).numpy()
batch_index, time_index = np.nonzero(targets != IGNORE)
from_scratch = -log_p[batch_index, time_index, targets[batch_index, time_index]].mean()
positions = np.flatnonzero(targets != IGNORE)
only_chosen = F.cross_entropy(untrained_lm(tl.tensor(inputs), positions), targets.reshape(-1)[positions]).item()
ignoring = F.cross_entropy(logits, targets).item()  # ignore_index = -100 = IGNORE
print(f"masked-LM loss: from scratch {from_scratch:.6f}, head at the chosen positions {only_chosen:.6f}, "
      f"ignore_index {ignoring:.6f}; ln V = {np.log(V):.3f}")
assert np.allclose([only_chosen, ignoring], from_scratch, rtol=1e-5)

# %% [markdown]
# ## 4. Check it
#
# The gradient check in float64, of the masked-LM loss of a small encoder with respect
# to every parameter (dropout off, so the function is deterministic), and of the text
# CNN's building block of section 6: a 1-D convolution followed by the maximum over time.
# The convolution is a fused operation (an im2col matrix product with a hand-derived
# backward): it must also equal its composed twin, and PyTorch's `conv1d`.

# %%
tl.set_default_dtype(np.float64)
tiny = pretraining.MaskedLanguageModel(pretraining.TransformerEncoder(12, context_length=5, embed_dim=8, num_heads=2, num_layers=1, dropout=0.0))
tiny_ids = np.array([[2, 5, 1, 7, 3], [4, 1, 1, 9, 2]])
tiny_targets = np.array([[IGNORE, 6, 8, IGNORE, IGNORE], [IGNORE, 3, 11, IGNORE, 5]])
tl.gradcheck(lambda *parameters: F.cross_entropy(tiny(tl.tensor(tiny_ids)), tiny_targets), tiny.parameters(), verbose=True)

x, weight, bias = tl.randn(2, 6, 9, requires_grad=True), tl.randn(4, 6, 3, requires_grad=True), tl.randn(4, requires_grad=True)
for conv in (F.conv1d, F.conv1d_composed):
    tl.gradcheck(lambda x, w, b: conv(x, w, b).relu().max(axis=-1), [x, weight, bias], verbose=True)
fused, composed = F.conv1d(x, weight, bias), F.conv1d_composed(x, weight, bias)
print("fused == composed:", np.allclose(fused.numpy(), composed.numpy()))
# the maximum over time is max-pooling with a window as long as the sequence
pooled = nn.MaxPool1d(kernel_size=fused.shape[-1])(fused)
print("max-pooling over the whole time axis == max over time:", np.allclose(pooled.numpy()[..., 0], fused.max(axis=-1).numpy()))

try:
    import torch
except ImportError:
    torch = None
    print("PyTorch is not installed: skipping the comparison")
if torch is not None:
    theirs = torch.nn.functional.conv1d(*(torch.tensor(t.numpy()) for t in (x, weight, bias)))
    print(f"conv1d: tinylm vs PyTorch, largest difference {np.abs(fused.numpy() - theirs.numpy()).max():.1e}")
    assert np.allclose(fused.numpy(), theirs.numpy())
tl.set_default_dtype(np.float32)

# %% [markdown]
# ## 5. Pretraining the encoder
#
# `pretraining.pretrain_masked_lm(model, ids, steps)` does the loop: random windows of
# 32 words from the whole corpus, `mask_tokens`, the loss at the chosen positions,
# AdamW. The encoder: width 64, 2 layers of 4 heads, the pre-norm blocks of
# [chapter 13](13_transformer.ipynb) without the causal mask. The loss starts at about
# $\ln V = 6.9$ (a uniform guess over the vocabulary).

# %%
tl.manual_seed(0)
pretrained = pretraining.TransformerEncoder(V, context_length=32, embed_dim=64, num_heads=4, num_layers=2)
masked_lm = pretraining.MaskedLanguageModel(pretrained)
pretrain_losses = pretraining.pretrain_masked_lm(masked_lm, stream, steps=30 if FAST else 300)
print(f"masked-LM loss: {np.mean(pretrain_losses[:5]):.2f} at the start, {np.mean(pretrain_losses[-10:]):.2f} at the end")

# %% [markdown]
# How much has it learned? A model that knew only how frequent each word is (and
# nothing of its context) would score the entropy of the word frequencies; the masked LM
# has to beat that. Then hide a few words of a passage behind `[MASK]` and ask for the
# three most likely words at each.

# %%
frequencies = np.bincount(stream, minlength=V) / len(stream)
frequencies = frequencies[frequencies > 0]
print(f"word frequencies alone: {-(frequencies * np.log(frequencies)).sum():.2f} nats; "
      f"the masked LM after pretraining: {np.mean(pretrain_losses[-20:]):.2f} nats")

# %% [markdown]
# The full run ends about a quarter of a nat below the frequencies: a small model after
# 300 steps on 64,000 words has learned only a little of the context, and its guesses for
# the blanks are still mostly the frequent words ([UNK], "a", "the") — BERT read billions
# of words for a million steps. Yet section 6 shows that these features already carry
# what the topic classifier needs.


# %%
@tl.no_grad()
def fill_in(passage: np.ndarray, hidden: list[int]) -> None:
    corrupted = passage.copy()
    corrupted[hidden] = MASK
    masked_lm.eval()
    probabilities = F.softmax(masked_lm(tl.tensor(corrupted[None])), axis=-1).numpy()[0]
    print(" ".join("[____]" if t in hidden else vocabulary.words[i] for t, i in enumerate(passage)))
    for t in hidden:
        guesses = ", ".join(f"{vocabulary.words[i]} {probabilities[t, i]:.2f}" for i in np.argsort(-probabilities[t])[:3])
        print(f"   position {t:>2}: the word was {vocabulary.words[passage[t]]!r:<12} guesses: {guesses}")


fill_in(passages[labels == 0][5], [3, 9, 15, 22, 28])

# %% [markdown]
# ## 6. Fine-tuning with 8 labels per class
#
# Three classifiers learn from the same 32 labelled passages:
#
# * the **pretrained** encoder with a mean-pooling head (`pretraining.SequenceClassifier`);
# * the **same** network from a random initialisation (**from scratch**);
# * a **text CNN** (Kim, 2014; `tinylm.text_cnn.TextCNN`) from scratch: embeddings,
#   convolutions of widths 3, 4 and 5 over the passage (each filter an n-gram detector),
#   the maximum over time of each filter, a linear head. Small, fast, and before
#   pretraining the standard baseline for sentence classification.
#
# The loop is `pretraining.fine_tune`'s, written out so that we can measure the test
# accuracy every few steps (the **learning curve**): AdamW at $10^{-3}$, batches of 16
# drawn from the labelled passages, dropout on while training.


# %%
def new_classifier(kind: str) -> nn.Module:
    if kind == "text CNN":
        return TextCNN(V, embed_dim=64, num_classes=num_classes, kernel_sizes=(3, 4, 5), num_filters=50)
    backbone = pretraining.TransformerEncoder(V, context_length=32, embed_dim=64, num_heads=4, num_layers=2)
    if kind == "pretrained":
        backbone.load_state_dict(pretrained.state_dict())
    return pretraining.SequenceClassifier(backbone, 64, num_classes, pooling="mean")


def learning_curve(kind: str, train: np.ndarray, test: np.ndarray, steps: int, every: int):
    classifier = new_classifier(kind)
    optimizer = optim.AdamW(classifier.parameters(), lr=1e-3)
    generator = np.random.default_rng(1)
    curve = [(0, metrics.accuracy(labels[test], pretraining.predict(classifier, passages[test])))]
    for step in range(1, steps + 1):
        classifier.train()
        batch = generator.choice(train, size=16)
        loss = F.cross_entropy(classifier(tl.tensor(passages[batch])), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % every == 0:
            curve.append((step, metrics.accuracy(labels[test], pretraining.predict(classifier, passages[test]))))
    return classifier, curve


kinds = ("pretrained", "from scratch", "text CNN")
steps, every = (20, 5) if FAST else (200, 20)
curves, classifiers = {}, {}
for kind in kinds:
    tl.manual_seed(0)
    classifiers[kind], curves[kind] = learning_curve(kind, train_index, test_index, steps, every)
    recipe = min(40, steps)  # the fine-tuning steps of benchmarks/pretraining.py
    print(f"{kind:>13}: test accuracy {dict(curves[kind])[recipe]:.3f} after {recipe} steps, {curves[kind][-1][1]:.3f} after {steps}")

# %% [markdown]
# ## See it: learning curves
#
# Left: the masked-LM loss during pretraining (on the corpus, no labels). Right: the test
# accuracy of the three classifiers along fine-tuning on the 32 labelled passages. The
# pretrained encoder starts from features that already separate the topics: in the full
# run it is ahead after 20 steps and levels off near 0.6 by step 40. The same network
# from scratch has to learn the words from 32 passages; it climbs more slowly and levels
# off lower, since 32 passages hold little more to learn. The text CNN, with the same
# small learning rate, learns slowest of the three and is the noisiest.

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
left.plot(pretrain_losses, alpha=0.3, color="tab:purple")
window = max(1, len(pretrain_losses) // 20)
left.plot(np.arange(window - 1, len(pretrain_losses)), np.convolve(pretrain_losses, np.ones(window) / window, "valid"), color="tab:purple")
left.axhline(np.log(V), color="gray", linestyle=":", label=f"uniform guess, ln {V}")
left.set_xlabel("pretraining step")
left.set_ylabel("masked-LM loss (nats)")
left.set_title("pretraining: no labels")
left.legend()
for kind, color in zip(kinds, ("tab:green", "tab:red", "tab:blue")):
    right.plot(*zip(*curves[kind]), "o-", color=color, label=kind)
right.axhline(np.bincount(labels[test_index]).max() / len(test_index), color="gray", linestyle=":", label="most frequent class")
right.set_xlabel("fine-tuning step (batches of 16 from 32 labelled passages)")
right.set_ylabel("test accuracy")
right.set_title(f"fine-tuning: {per_class} labels per class")
right.legend()
for ax in (left, right):
    ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# Which topics get confused? The confusion matrix of the pretrained classifier at the
# end, rows normalised (the diagonal is each topic's recall):

# %%
predicted = pretraining.predict(classifiers["pretrained"], passages[test_index])
matrix = metrics.confusion_matrix(labels[test_index], predicted, num_classes)
print(f"accuracy {metrics.accuracy(labels[test_index], predicted):.3f}, "
      f"macro-F1 {metrics.f1_score(labels[test_index], predicted, num_classes):.3f}")
metrics.plot_confusion_matrix(matrix, class_names=list(topics), normalize=True)

# %% [markdown]
# ## 7. How many labels does pretraining save?
#
# The recipe of `benchmarks/pretraining.py` (40 fine-tuning steps), for more and fewer
# labels per class, two draws of the labels each. Read the plot across: in the full run
# the pretrained encoder with 16 labels per class is about as accurate as the same
# network from scratch with 64 — pretraining is worth four times the labels here. With
# a budget of only 40 steps, the networks from scratch cannot make much of more labels
# (they have the words to learn too); given many more steps they would gain more.
# (`pretraining.few_labels_comparison` runs the whole comparison of the benchmark, with a
# GPT pretrained as a causal LM beside the encoder, in one call.)

# %%
label_counts = (4, 16) if FAST else (4, 16, 64)
draws = (0,) if FAST else (0, 1)
sweep = {kind: [] for kind in kinds}
for count in label_counts:
    for kind in kinds:
        scores = []
        for draw in draws:
            train, test = pretraining.few_labels_split(labels, count, seed=draw)
            tl.manual_seed(draw)
            classifier = new_classifier(kind)
            pretraining.fine_tune(classifier, passages[train], labels[train], steps=10 if FAST else 40)
            scores.append(metrics.accuracy(labels[test], pretraining.predict(classifier, passages[test])))
        sweep[kind].append(np.mean(scores))
    print(f"{count:>3} labels per class: " + ", ".join(f"{kind} {sweep[kind][-1]:.3f}" for kind in kinds))

fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
for kind, color in zip(kinds, ("tab:green", "tab:red", "tab:blue")):
    ax.plot(label_counts, sweep[kind], "o-", color=color, label=kind)
ax.set_xscale("log", base=2)
ax.set_xticks(label_counts, [str(c) for c in label_counts])
ax.set_xlabel("labelled passages per class")
ax.set_ylabel("test accuracy (40 fine-tuning steps)")
ax.set_title("pretraining matters most when labels are few")
ax.legend()
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# ## 8. Starting from a real BERT
#
# The encoder of section 5 is a toy BERT. The real one, BERT-base (Devlin et al., 2019),
# is the same idea at scale: 12 layers of width 768 with 12 heads, 110 million parameters,
# a vocabulary of 30,522 WordPiece tokens, pretrained as a masked LM on 3.3 billion words
# (books and English Wikipedia). `nn.BertModel` is BERT layer for layer, so the weights
# that Hugging Face publishes load into it (`tinylm.pretrained.load`), and
# `data.WordPieceTokenizer` cuts text into BERT's tokens. Three differences from our
# encoder show in its code (`tinylm/nn/bert.py`):
#
# * **post-norm**: each LayerNorm comes after its residual sum,
#   $x \leftarrow \operatorname{LN}(x + \operatorname{Attn}(x))$, as in the original
#   Transformer; ours (and GPT-2) normalise before, $x \leftarrow x + \operatorname{Attn}(\operatorname{LN}(x))$;
# * **[CLS] and [SEP]**: every text starts with [CLS] and ends with [SEP], and the
#   classifier reads the [CLS] vector through a "pooler", $\tanh(W_p h_{\text{[CLS]}} + b_p)$,
#   instead of the mean over the passage;
# * the **exact GELU**, $x\,\Phi(x)$ with $\Phi$ the normal distribution function (written
#   with the error function, `F.erf`), where GPT-2 uses the tanh approximation.
#
# **Which BERT.** The real `bert-base-uncased` (a 440 MB download) when its folder is on
# this machine and `TINYLM_FAST` is not set: `hub.cached` looks in tinylm's cache
# (`~/.cache/tinylm/models/bert-base-uncased`, or under `$TINYLM_CACHE_DIR`) and in
# Hugging Face's (`~/.cache/huggingface/hub`, which `transformers` fills). The environment
# variable `TINYLM_BERT_FOLDER` names any other BERT folder with its masked-LM head
# (`config.json` saying `BertForMaskedLM`, `model.safetensors`, `vocab.txt`). To get
# `bert-base-uncased`, run once on a machine with internet
# `python -c "from tinylm.pretrained import hub; hub.download('bert-base-uncased', files=('config.json', 'model.safetensors', 'vocab.txt'))"`.
#
# Otherwise, and always in fast mode, a **tiny BERT with random weights**: 2 layers of
# width 64, its vocabulary this chapter's 1,000 words and the letters to spell any other
# word. With `transformers` installed we make its folder as Hugging Face makes every BERT
# folder (`save_pretrained`) and load it like the real one; without, it is built directly
# in tinylm. Everything below runs the same, but a random model's guesses and attention
# maps mean nothing, and fine-tuning it is training from scratch. The real BERT is
# slower: each of its fine-tuning steps costs a few hundred billion floating-point
# operations, and the section then takes several minutes on a laptop CPU.

# %%
BERT_FILES = ("config.json", "model.safetensors", "vocab.txt")
real_folder = os.environ.get("TINYLM_BERT_FOLDER") or tl.pretrained.hub.cached("bert-base-uncased", BERT_FILES)
REAL_BERT = not FAST and real_folder is not None
try:
    import transformers

    transformers.logging.disable_progress_bar()  # no bars for saving and loading a folder
except ImportError:
    transformers = None

if REAL_BERT:
    bert_folder = Path(real_folder)
else:
    bert_folder = Path(tempfile.mkdtemp(prefix="tiny_bert_"))
    letters = [chr(code) for code in range(ord("a"), ord("z") + 1)]
    words_and_letters = vocabulary.words[len(pretraining.SPECIAL_TOKENS):] + letters + ["##" + letter for letter in letters]
    bert_vocab = list(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + words_and_letters))  # "a" is a word and a letter: once
    (bert_folder / "vocab.txt").write_text("\n".join(bert_vocab) + "\n", encoding="utf-8")  # one token a line: id = line number
    tiny_config = dict(vocab_size=len(bert_vocab), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=256, max_position_embeddings=64)
    if transformers is not None:
        transformers.set_seed(0)
        transformers.BertForMaskedLM(transformers.BertConfig(**tiny_config)).save_pretrained(bert_folder)

tl.manual_seed(0)
if REAL_BERT or transformers is not None:
    bert_lm, bert_config = tl.pretrained.load(bert_folder)
else:
    bert_lm, bert_config = nn.BertForMaskedLM(nn.BertModel(**bert_options(tiny_config))).eval(), tiny_config
if not isinstance(bert_lm, nn.BertForMaskedLM):
    raise ValueError(f"{bert_folder} holds a {type(bert_lm).__name__}; this section needs a BERT with its masked-LM head (BertForMaskedLM)")
tokenizer = data.WordPieceTokenizer.from_pretrained(bert_folder)
print("the real BERT" if REAL_BERT else "a tiny BERT with random weights", "| transformers:", transformers is not None,
      "| files:", sorted(path.name for path in bert_folder.iterdir()))
print(f"{bert_lm.num_parameters():,} parameters: {bert_config['num_hidden_layers']} layers, "
      f"width {bert_config['hidden_size']}, {bert_config['num_attention_heads']} heads, vocabulary {tokenizer.vocab_size:,}")
print("tinylm's bert.layers.0.attention.in_proj_weight stacks Hugging Face's",
      *hugging_face_names(bert_lm)["bert.layers.0.attention.in_proj_weight"], sep="\n   ")

# %% [markdown]
# BERT's tokens: the text is lower-cased and cut at spaces and punctuation, then each
# word into the longest pieces in the vocabulary, from the left; a piece that continues a
# word is written with `##`. Special tokens written in the text, such as [MASK], stay whole.

# %%
sentence = "The [MASK] statement is used for conditional execution."
print(tokenizer.tokenize(sentence))
print(tokenizer.encode(sentence), "<- [CLS] first, [SEP] last")

# %% [markdown]
# ### Check it: the same logits as `transformers`
#
# Hugging Face's own `BertForMaskedLM` reads the same folder; on the same ids the two
# must agree up to float32 rounding (the tests check tiny models to 1e-10 in float64,
# every weight's gradient too, and the tokenizer against Hugging Face's).

# %%
sentence_ids = np.array([tokenizer.encode(sentence)])
with tl.no_grad():
    bert_lm.eval()
    logits = bert_lm(sentence_ids).numpy()
if transformers is not None and torch is not None and (bert_folder / "model.safetensors").is_file():
    reference = transformers.BertForMaskedLM.from_pretrained(bert_folder).eval()
    with torch.no_grad():
        expected = reference(torch.tensor(sentence_ids)).logits.numpy()
    print(f"max |tinylm - transformers| over {expected.size:,} logits: {np.abs(logits - expected).max():.1e}")
    assert np.allclose(logits, expected, atol=1e-3)

# %% [markdown]
# ### Fill in the blank
#
# BERT was pretrained exactly for this: its masked-LM head scores every word of the
# vocabulary at the [MASK] position. A pretrained BERT proposes words that fit both sides
# of the blank; the tiny random one proposes arbitrary words with nearly equal
# probabilities.


# %%
@tl.no_grad()
def bert_fill_in(text: str) -> None:
    ids = np.array([tokenizer.encode(text)])
    bert_lm.eval()
    probabilities = F.softmax(bert_lm(ids), axis=-1).numpy()[0]
    for position in np.flatnonzero(ids[0] == tokenizer.mask_id):
        best = np.argsort(-probabilities[position])[:5]
        print(f"{text!r}: " + ", ".join(f"{tokenizer.tokens[i]} {probabilities[position, i]:.3f}" for i in best))


for text in (sentence, "A [MASK] can be used as the key of a dictionary.", "The debugger stops at a [MASK] point."):
    bert_fill_in(text)

# %% [markdown]
# ### See it: the attention of one layer
#
# `bert_lm.bert(ids, return_attention=True)` also returns every layer's attention weights,
# (batch, heads, queries, keys). Below, four heads of the middle layer. Clark et al.
# (2019, "What does BERT look at?") found heads in BERT that attend to the next or the
# previous token, and in the middle and upper layers many heads that put most of their
# weight on [SEP] (a place to look when a head has nothing to do); the tiny random BERT's
# heads spread their weight almost evenly.

# %%
with tl.no_grad():
    _, attention = bert_lm.bert(sentence_ids, return_attention=True)
layer = len(attention) // 2
tokens = [tokenizer.tokens[i] for i in sentence_ids[0]]
fig, axes = plt.subplots(1, 4, figsize=(16, 4.4), layout="constrained")
for head, ax in enumerate(axes):
    viz.plot_attention(attention[layer].numpy()[0, head], tokens, tokens, ax=ax)
    ax.set_title(f"layer {layer}, head {head}")
plt.show()

# %% [markdown]
# ### Fine-tuning BERT with 8 labels per class
#
# The same 32 labelled passages as section 6, as text (the words outside this chapter's
# vocabulary are [UNK] here too, so every classifier reads the same passages), padded to
# one length: `encode_batch` returns the ids and the attention mask (1 for a real token,
# 0 for padding, which no token attends to). `nn.BertForSequenceClassification` puts the
# pooler and a linear layer on the encoder, which it shares with the masked LM, and
# `pretraining.fine_tune` trains all of it. A pretrained BERT is fine-tuned with a small
# learning rate, $3 \cdot 10^{-5}$ (the BERT paper tried 2 to 5 $\cdot 10^{-5}$): larger
# steps would wreck what pretraining put in the weights. The tiny random BERT has nothing
# to keep, and learns at our encoders' $10^{-3}$. (The [PAD] row of the word embedding
# starts at zero and gets no gradient, `nn.Embedding(..., padding_idx=0)` as in PyTorch:
# padding never moves it.)

# %%
texts = [" ".join(vocabulary.words[i] for i in passage) for passage in passages]
max_length = min(64, max(len(tokenizer.encode(text)) for text in texts))
bert_ids, bert_mask = tokenizer.encode_batch(texts, max_length=max_length)
print(f"passages of {max_length} tokens at most; the first:", tokenizer.decode(bert_ids[0][bert_mask[0] == 1])[:120], "...")

tl.manual_seed(0)
bert_classifier = nn.BertForSequenceClassification(bert_lm.bert, num_labels=num_classes)
bert_steps = 5 if FAST else 20
bert_losses = pretraining.fine_tune(bert_classifier, bert_ids[train_index], labels[train_index], steps=bert_steps,
                                    batch_size=16, lr=3e-5 if REAL_BERT else 1e-3, attention_mask=bert_mask[train_index])
bert_test = test_index[np.random.default_rng(0).permutation(len(test_index))[:200]] if REAL_BERT else test_index
bert_predicted = pretraining.predict(bert_classifier, bert_ids[bert_test], batch_size=32, attention_mask=bert_mask[bert_test])
print(f"fine-tuning loss {np.mean(bert_losses[:3]):.2f} -> {np.mean(bert_losses[-3:]):.2f} in {bert_steps} steps; "
      f"test accuracy {metrics.accuracy(labels[bert_test], bert_predicted):.3f} on {len(bert_test)} passages "
      f"(section 6 after {bert_steps} steps: our pretrained encoder {dict(curves['pretrained'])[bert_steps]:.3f}, "
      f"from scratch {dict(curves['from scratch'])[bert_steps]:.3f})")

# %% [markdown]
# The tiny random BERT shows what a BERT trained from scratch on 32 passages gets: in the
# full run its loss is still near $\ln 4 = 1.39$ after 20 steps and it scores 0.33 on the
# 650 test passages, below the most frequent class (0.42). Its classifier reads a single
# vector, [CLS], which has yet to learn to gather the passage, where the mean of our
# encoders' outputs gathers it from the first step (exercise 8 gives it some
# pretraining). With the real BERT, compare its accuracy with section 6's: the same 32
# labels, the same number of steps, and all that pretraining on 3.3 billion words.

# %% [markdown]
# ## Exercises
#
# 1. Pretrain with `[MASK]` only (no random or unchanged words: write your own corruption
#    and training loop from section 3). Does fine-tuning suffer? Why might it?
# 2. Freeze the pretrained encoder (train only the head: pass only
#    `classifier.head.parameters()` to the optimizer). How close does it come to full
#    fine-tuning with 8 labels per class, and with 64?
# 3. Start the text CNN from the pretrained encoder's word embeddings
#    (`pretrained.token_embedding.weight`). How much of the gain of pretraining do the
#    embeddings alone bring?
# 4. Pool with the first position instead of the mean (`pooling="first"`). BERT
#    classifies from a special first token, `[CLS]`: why does that work for BERT, and why
#    not for our encoder, which has no such token?
# 5. Pretrain for 100, 300 and 1,000 steps and fine-tune each with 8 labels per class.
#    Plot the accuracy against the pretraining loss.
# 6. Do it GPT's way: pretrain an `nn.GPT` as a causal language model
#    (`pretraining.pretrain_causal_lm`), wrap it as a backbone (`pretraining.GPTBackbone`)
#    and fine-tune a `SequenceClassifier(..., pooling="last")`. Why must a GPT classify
#    from its *last* position? (`benchmarks/pretraining.py` measures +0.14 accuracy for the
#    pretrained GPT, +0.13 for the encoder.)
# 7. With the real BERT, fine-tune at $10^{-3}$ instead of $3 \cdot 10^{-5}$. What happens
#    to the accuracy, and to the guesses of `bert_fill_in` afterwards (the classifier shares
#    the masked LM's encoder)?
# 8. Give the tiny BERT some of what the real one had: pretrain it as a masked LM on the
#    corpus in its own tokens, `pretraining.pretrain_masked_lm(bert_lm, stream_of_ids,
#    steps=300, mask_id=tokenizer.mask_id, first_word_id=5, window=32)`, the ids from
#    `tokenizer.encode(text, add_special_tokens=False)` (ids 0 to 4 are the special tokens,
#    which random replacements skip), then fine-tune it as in section 8. Does it catch up
#    with our pretrained encoder?
