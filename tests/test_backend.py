"""The backend: device names and errors, moving data, the default dtype, seeding, scatter_add."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import tinylm as tl
from tinylm import backend

from assertions import assert_close


@pytest.fixture
def no_cupy_loaded(monkeypatch):
    """Forget any CuPy imported earlier, so the next "cuda" request imports it afresh."""
    monkeypatch.setattr(backend, "_cupy", None)


def _fake_cupy(device_count):
    """A stand-in for the cupy module whose CUDA runtime reports ``device_count`` GPUs
    (or raises, when ``device_count`` is an exception)."""

    def get_device_count():
        if isinstance(device_count, Exception):
            raise device_count
        return device_count

    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    return types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime))


# ---------------------------------------------------------------- asking for a device


def test_cuda_without_cupy_says_how_to_install_it(monkeypatch, no_cupy_loaded):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError
    with pytest.raises(tl.DeviceError, match=r'CuPy, which is not installed.*pip install "tinylm\[gpu\]"'):
        tl.zeros(2, device="cuda")
    assert tl.cuda_available() is False


def test_cuda_without_a_reachable_gpu_says_so(monkeypatch, no_cupy_loaded):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(RuntimeError("cudaErrorNoDevice")))
    with pytest.raises(tl.DeviceError, match=r"needs an NVIDIA GPU, but CuPy could not reach one \(cudaErrorNoDevice\)"):
        tl.tensor([1.0], device="cuda")
    assert tl.cuda_available() is False


def test_cuda_with_zero_gpus_says_so(monkeypatch, no_cupy_loaded):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(0))
    with pytest.raises(tl.DeviceError, match='needs an NVIDIA GPU, but none was found. Use device="cpu"'):
        tl.ones(3).to("cuda")


@pytest.mark.parametrize("make", [
    lambda: tl.zeros(2, device="gpu"),
    lambda: tl.randn(2, device="gpu"),
    lambda: tl.arange(3, device="gpu"),
    lambda: tl.tensor([1.0], device="gpu"),
], ids=["zeros", "randn", "arange", "tensor"])
def test_unknown_device_name_lists_the_valid_ones(make):
    with pytest.raises(tl.DeviceError, match=r"unknown device 'gpu': expected one of \('cpu', 'cuda'\)"):
        make()


def test_to_an_unknown_device_says_what_to_pass():
    with pytest.raises(TypeError, match=r"expected a device \('cpu' or 'cuda'\) or a dtype, got 'tpu'"):
        tl.ones(2).to("tpu")


# ---------------------------------------------------------------- mixing devices


def test_mixed_devices_name_both(monkeypatch):
    """Simulated on any machine: a stand-in GPU array makes the second tensor live on "cuda"."""

    class FakeGpuArray:
        shape, ndim, dtype = (2,), 1, np.dtype(np.float32)

    monkeypatch.setattr(backend, "_cupy", types.SimpleNamespace())
    gpu_tensor = tl.Tensor._from_op(FakeGpuArray(), False)
    assert gpu_tensor.device == "cuda"
    with pytest.raises(tl.DeviceError, match=r"Add: all inputs must be on the same device, got \['cpu', 'cuda'\]"):
        tl.ones(2) + gpu_tensor
    with pytest.raises(tl.DeviceError, match=r"Concat: .* got \['cuda', 'cpu', 'cpu'\].*x.to\('cuda'\)"):
        tl.concat([gpu_tensor, tl.ones(2), tl.ones(2)])


@pytest.mark.parametrize("device", [pytest.param("cuda", marks=pytest.mark.gpu)], indirect=True)
def test_mixed_devices_on_a_real_gpu(device):
    with pytest.raises(tl.DeviceError, match=r"MatMul: .* got \['cpu', 'cuda'\]"):
        tl.ones(2, 2) @ tl.ones(2, 2, device="cuda")


# ---------------------------------------------------------------- moving data


def test_to_device_and_back_keeps_values_and_grad(device):
    x = tl.tensor([[1.0, -2.0], [3.5, 4.0]], requires_grad=True)
    (x * x).sum().backward()
    moved = x.to(device)
    assert moved.device == device and moved.requires_grad and moved.is_leaf
    assert moved.grad.device == device
    assert_close(moved.grad, 2 * x.numpy(), name="moved grad")
    back = moved.to("cpu")
    assert isinstance(back.data, np.ndarray)
    np.testing.assert_array_equal(back.numpy(), x.numpy())


def test_array_module_matches_the_data(device):
    x = tl.ones(3, device=device)
    assert backend.array_module(x.data) is backend.module_for_device(device)
    assert backend.device_of(x.data) == device
    assert isinstance(backend.to_numpy(x.data), np.ndarray)


# ---------------------------------------------------------------- the default dtype


def test_default_dtype_is_float32_and_can_be_changed():
    assert tl.get_default_dtype() == np.float32
    tl.set_default_dtype("float64")
    assert tl.get_default_dtype() == np.float64
    for made in (tl.zeros(2), tl.ones(2), tl.randn(2), tl.rand(2), tl.tensor([0.5]), tl.arange(0.0, 1.0, 0.5)):
        assert made.dtype == np.float64


def test_default_dtype_must_be_floating():
    with pytest.raises(TypeError, match="must be a floating dtype .*, got int32"):
        tl.set_default_dtype(np.int32)
    assert tl.get_default_dtype() == np.float32


# ---------------------------------------------------------------- random numbers


@pytest.mark.parametrize("draw", [tl.randn, tl.rand], ids=["randn", "rand"])
def test_manual_seed_repeats_draws_bit_for_bit(device, draw):
    tl.manual_seed(1234)
    first = [draw(3, 4, device=device).numpy() for _ in range(2)]
    tl.manual_seed(1234)
    again = [draw(3, 4, device=device).numpy() for _ in range(2)]
    tl.manual_seed(1235)
    other = draw(3, 4, device=device).numpy()
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1]), "successive draws must differ"
    assert not np.array_equal(first[0], other), "a different seed must give different numbers"


def test_rng_state_resumes_the_stream():
    tl.randn(5)
    state = backend.get_rng_state()
    expected = tl.randn(4).numpy()
    tl.randn(7)
    backend.set_rng_state(state)
    np.testing.assert_array_equal(tl.randn(4).numpy(), expected)


# ---------------------------------------------------------------- scatter_add


def test_scatter_add_accumulates_repeated_indices(device):
    xp = backend.module_for_device(device)
    target = xp.zeros(5)
    backend.scatter_add(target, xp.asarray([0, 3, 0, 0, 3]), xp.asarray([1.0, 2.0, 3.0, 4.0, 5.0]))
    np.testing.assert_array_equal(backend.to_numpy(target), [8.0, 0.0, 0.0, 7.0, 0.0])


def test_scatter_add_rows_of_a_matrix(device):
    xp = backend.module_for_device(device)
    target = xp.ones((3, 2))
    rows = xp.asarray([2, 2, 1])
    backend.scatter_add(target, rows, xp.asarray([[1.0, 2.0], [10.0, 20.0], [5.0, 5.0]]))
    np.testing.assert_array_equal(backend.to_numpy(target), [[1.0, 1.0], [6.0, 6.0], [12.0, 23.0]])
