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
# # Chapter 17 — Running on a GPU with CuPy
#
# Everything so far ran on NumPy arrays on the CPU. [CuPy](https://cupy.dev) is NumPy's
# API on an NVIDIA GPU: `cupy.exp`, `cupy.matmul`, `a.sum(axis=1)` and friends, running
# thousands of threads at once. tinylm never calls `numpy` on data that might live on
# the GPU; it asks the array which module it belongs to, so **the same code** runs on
# both devices. This chapter moves tensors and models with `.to(device)`, checks that
# the results agree, and measures what the GPU buys.
#
# To run it on a GPU: an NVIDIA GPU with CUDA 12 and `pip install -e ".[gpu]"` (the
# `cupy-cuda12x` wheel). **Without a GPU the notebook says so and runs everything on the
# CPU**: every cell still works, the timing compares whatever devices exist.
#
# `TINYLM_FAST=1` times fewer sizes and fewer repeats. The full run takes well under a minute.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import tinylm as tl
import tinylm.functional as F
from tinylm import backend, models, optim

FAST = os.environ.get("TINYLM_FAST") == "1"
tl.manual_seed(0)

DEVICES = ["cpu", "cuda"] if tl.cuda_available() else ["cpu"]
DEVICE = DEVICES[-1]
if DEVICE == "cuda":
    print("A GPU is available: this notebook runs on device='cuda' and compares it with the CPU.")
else:
    print(
        "No GPU here (CuPy is not installed, or it finds no NVIDIA GPU): this notebook runs on "
        "device='cpu'. On a machine with a GPU, `pip install -e \".[gpu]\"` and run it again."
    )

# %% [markdown]
# ## 1. One code path: ask the array for its module
#
# Every op in tinylm starts the same way: `xp = backend.array_module(data)` gives `numpy`
# for a NumPy array and `cupy` for a CuPy array, and the op is written with `xp.exp`,
# `xp.where` and so on. For example, a numerically stable softmax ([chapter 3](03_softmax_cross_entropy_perplexity.ipynb)) that works
# on either device:

# %%
def softmax_any_device(a):
    xp = backend.array_module(a)
    e = xp.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


for device in DEVICES:
    x = tl.randn(2, 5, device=device)
    print(f"{device}: data is a {type(x.data).__module__}.{type(x.data).__name__}, computed with {backend.array_module(x.data).__name__}")
    assert np.allclose(backend.to_numpy(softmax_any_device(x.data)), F.softmax(x).numpy(), atol=1e-6)

# %% [markdown]
# ## 2. Moving data: `.to(device)`
#
# Data moves only when you say so. `tensor.to(device)` returns a copy on that device;
# `module.to(device)` moves every parameter of a model in place (and returns the model);
# `tensor.numpy()` always gives a host NumPy array (copying from the GPU if needed).
# Creating functions take `device=` directly. Asking for a device that is not there is a
# clear error, not a crash deep inside:

# %%
x = tl.randn(3, 4)
y = x.to(DEVICE)
print("x on", x.device, "| y on", y.device, "| y.numpy() is a", type(y.numpy()).__name__)

model = models.build_model("lstm", vocab_size=50, embed_dim=16, hidden_size=32).to(DEVICE)
print("the model's parameters live on:", {p.device for p in model.parameters()})

try:
    tl.zeros((2, 2), device="cuda")
    print("tl.zeros(..., device='cuda') works here")
except tl.DeviceError as error:
    print("tl.DeviceError:", error)

# %% [markdown]
# Mixing devices in one operation is an error too (copying silently between CPU and GPU
# is the classic hidden slowdown, so tinylm refuses and says which devices it got):

# %%
if "cuda" in DEVICES:
    try:
        tl.randn(2, device="cpu") + tl.randn(2, device="cuda")
    except tl.DeviceError as error:
        print("tl.DeviceError:", error)
else:
    print("(only one device here: nothing to mix)")

# %% [markdown]
# ## 3. The same numbers on every device
#
# The same float64 computation on each device must agree to rounding, and the gradient
# check of [chapter 2](02_gradient_checking.ipynb) must pass on each. Here: a whole LSTM language model's loss and one
# parameter's gradient, and the gradient check of the LSTM with respect to its initial
# state $(h_0, c_0)$.

# %%
tl.set_default_dtype(np.float64)
ids = np.random.default_rng(0).integers(0, 50, size=(4, 12))
tl.manual_seed(0)
reference = models.build_model("lstm", vocab_size=50, embed_dim=16, hidden_size=32)
weights = reference.state_dict()
results = {}
for device in DEVICES:
    model = models.build_model("lstm", vocab_size=50, embed_dim=16, hidden_size=32).to(device)
    model.load_state_dict(weights)
    inputs, targets = tl.tensor(ids[:, :-1], device=device), tl.tensor(ids[:, 1:], device=device)
    logits, _ = model(inputs)
    loss = F.cross_entropy(logits, targets)
    loss.backward()
    results[device] = (loss.item(), model.rnn.weight_hh_l0.grad.numpy())
    print(f"{device}: loss {loss.item():.12f}")

    h0, c0 = (tl.randn(1, 4, 32, device=device, requires_grad=True) for _ in range(2))
    embedded = model.embedding(inputs).detach()
    tl.gradcheck(lambda h, c: model.rnn(embedded, (h, c))[0], [h0, c0], verbose=True)
if len(DEVICES) == 2:
    difference = np.abs(results["cpu"][1] - results["cuda"][1]).max()
    print(f"largest gradient difference between the CPU and the GPU: {difference:.1e}")
tl.set_default_dtype(np.float32)

# %% [markdown]
# ## 4. What the GPU buys: timing
#
# A product of two $n \times n$ matrices takes $n^3$ multiplications and $n^3$ additions,
# $2n^3$ floating-point operations (FLOPs). Dividing by the time gives the throughput,
#
# $$\text{GFLOP/s} = \frac{2 n^3}{10^9 \cdot t},$$
#
# which we compare with what each device could do at best. A laptop CPU core reaches tens
# of GFLOP/s in float32; a data-centre GPU tens of thousands. Small matrices keep the GPU
# idle (launching a kernel costs a few microseconds whatever its size), so its advantage
# appears only as $n$ grows.
#
# **Timing a GPU honestly**: a GPU call returns *before* the work is done (it is queued),
# so we synchronise before reading the clock, and we run once untimed first (the first
# call compiles and caches kernels). Of several runs we keep the fastest: the slower ones
# were held up by whatever else the machine was doing.

# %%
def synchronize(device):
    if device == "cuda":
        backend.module_for_device("cuda").cuda.Device().synchronize()


def seconds_per_call(function, device, repeats):
    function()
    synchronize(device)
    fastest = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        synchronize(device)
        fastest = min(fastest, time.perf_counter() - started)
    return fastest


sizes = [64, 128, 256, 512] if FAST else [64, 128, 256, 512, 1024, 2048]
throughput = {}
for device in DEVICES:
    throughput[device] = []
    for n in sizes:
        a, b = tl.randn(n, n, device=device), tl.randn(n, n, device=device)
        seconds = seconds_per_call(lambda: a @ b, device, repeats=3 if FAST else 10)
        throughput[device].append(2 * n**3 / seconds / 1e9)
    print(device, " ".join(f"n={n}: {g:,.1f} GFLOP/s" for n, g in zip(sizes, throughput[device])))

fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
for device, values in throughput.items():
    ax.plot(sizes, values, "o-", label=device)
ax.set_xscale("log", base=2)
ax.set_yscale("log")
ax.set_xlabel("matrix size n  (n × n @ n × n, float32)")
ax.set_ylabel("GFLOP/s")
ax.set_title("matrix multiplication throughput")
ax.grid(alpha=0.3, which="both")
ax.legend()
plt.show()

# %% [markdown]
# Language models are more than one big matmul: an LSTM takes many small steps one after
# the other, which a GPU cannot run in parallel. One training step (forward, backward,
# Adam) of the [chapter 10](10_char_language_model.ipynb) LSTM and the [chapter 13](13_transformer.ipynb) GPT on each device:

# %%
vocab_size, batch_size, seq_len = 96, 32, 64
step_ids = np.random.default_rng(0).integers(0, vocab_size, size=(batch_size, seq_len + 1))
print(f"{'model':<6}" + "".join(f"{device + ' (ms/step)':>18}" for device in DEVICES))
for name, settings in [("lstm", {"embed_dim": 64, "hidden_size": 128}), ("gpt", {"context_length": seq_len, "embed_dim": 64, "num_layers": 2})]:
    row = f"{name:<6}"
    for device in DEVICES:
        tl.manual_seed(0)
        model = models.build_model(name, vocab_size, **settings).to(device)
        optimizer = optim.Adam(model.parameters())
        inputs, targets = tl.tensor(step_ids[:, :-1], device=device), tl.tensor(step_ids[:, 1:], device=device)

        def training_step():
            logits, _ = model(inputs)
            loss = F.cross_entropy(logits, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        row += f"{seconds_per_call(training_step, device, repeats=2 if FAST else 5) * 1000:>18.1f}"
    print(row)

# %% [markdown]
# ## 5. The test suite on the GPU: `TINYLM_TEST_DEVICE=cuda`
#
# Every test of an op or a layer takes a `device` argument, a pytest fixture in
# `tests/conftest.py`:
#
# ```python
# REQUESTED = os.environ.get("TINYLM_TEST_DEVICE", "").strip().lower()
# DEVICES = ["cuda"] if REQUESTED == "cuda" else ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]
#
# @pytest.fixture(params=DEVICES)
# def device(request) -> str:
#     if request.param == "cuda" and not tl.cuda_available():
#         if REQUESTED == "cuda":
#             pytest.fail("TINYLM_TEST_DEVICE=cuda, but CuPy or an NVIDIA GPU is not usable here")
#         pytest.skip("no GPU: ...")
#     return request.param
# ```
#
# * `make test` (no variable): each such test runs twice, on `"cpu"` and on `"cuda"`; on
#   a machine without a GPU the `"cuda"` half is **skipped visibly** (listed in pytest's
#   summary), so you know it did not run.
# * `TINYLM_TEST_DEVICE=cuda make test`: every such test runs on the GPU **only**, and a
#   missing GPU is a **failure**, not a skip, so a broken CUDA set-up cannot pass
#   unnoticed. Gradient checks, the comparisons between fused and composed twins, and the
#   comparisons with PyTorch all run on the GPU.
# * `pytest -m gpu` selects the GPU half alone.
#
# A test written this way reads like this (the `float64` fixture makes float64 the
# default for a gradient check):
#
# ```python
# def test_tanh_gradcheck(device, float64):
#     x = tl.randn(3, 4, device=device, requires_grad=True)
#     assert tl.gradcheck(lambda x: x.tanh(), [x])
# ```

# %%
print(f"tl.cuda_available() = {tl.cuda_available()}:", "the 'cuda' tests run here" if "cuda" in DEVICES else "here the 'cuda' tests are skipped (and TINYLM_TEST_DEVICE=cuda would fail them)")

# %% [markdown]
# ## Exercises
#
# 1. Write `relu_any_device(a)` with `xp = backend.array_module(a)` and check it against
#    `tl.tensor(...).relu()` on every device in `DEVICES`.
# 2. Remove the calls to `synchronize` in `seconds_per_call` and time the matmuls on the
#    GPU again. Why do the numbers become impossibly good?
# 3. Time the matmul in float64 (`tl.randn(n, n, dtype="float64", device=device)`). How
#    much slower is it on the CPU, and on the GPU? (Consumer GPUs run float64 up to 64
#    times slower than float32.)
# 4. For the LSTM training step, at which batch size does the GPU overtake the CPU on
#    your machine? Plot ms per step against the batch size for each device.
# 5. Train the [chapter 10](10_char_language_model.ipynb) language model with `lm.TrainConfig(device="cuda")` and compare
#    the tokens per second in the progress bar with the CPU's.
