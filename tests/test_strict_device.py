"""The strict stand-in for CuPy refuses what CuPy refuses and allows what CuPy allows.

These run on every machine: they hold strict_device.py to the behaviour of CuPy's arrays
(cupy/_core/core.pyx and _routines_indexing.pyx), so the TINYLM_TEST_DEVICE=strict run
means something on a machine without a GPU.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import strict_device as xp
import tinylm as tl
from tinylm import backend


@pytest.fixture
def strict_cuda(monkeypatch):
    """ "cuda" played by the strict device for this test only."""
    monkeypatch.setattr(backend, "_cupy", backend._cupy)  # put back after the test
    backend.use_cuda_array_module(xp)


def device_array(values, dtype=np.float32):
    return xp.asarray(np.asarray(values, dtype=dtype))


# ---------------------------------------------------------------- refused, as by CuPy


@pytest.mark.parametrize("convert", [np.asarray, np.array, np.ascontiguousarray, lambda a: np.testing.assert_allclose(a, 0)],
                         ids=["asarray", "array", "ascontiguousarray", "assert_allclose"])
def test_implicit_conversion_to_numpy_raises(convert):
    with pytest.raises(TypeError, match=r"Implicit conversion to a NumPy array is not allowed. Please use `.get\(\)`"):
        convert(device_array([1.0, 2.0]))


@pytest.mark.parametrize("mix", [
    lambda d, h: d + h,
    lambda d, h: h + d,
    lambda d, h: d * np.float32(2.0) + h[0:1],
    lambda d, h: xp.exp(h),
    lambda d, h: xp.maximum(d, np.asarray(0.0)),  # a 0-d host array is still a host array
    lambda d, h: xp.where(h > 0, d, d),
    lambda d, h: xp.concatenate([d, h]),
    lambda d, h: xp.matmul(d, h),
    lambda d, h: d @ h,
    lambda d, h: xp.stack([d, d, h]),
    lambda d, h: xp.multiply(d, [1.0, 2.0]),
], ids=["device+host", "host+device", "host slice", "exp(host)", "0-d host", "where", "concatenate", "matmul", "@",
        "stack", "list operand"])
def test_a_host_array_in_a_device_operation_raises(mix):
    with pytest.raises(TypeError, match=r"Unsupported type <class '(numpy.ndarray|list)'>"):
        mix(device_array([1.0, 2.0]), np.array([3.0, 4.0], dtype=np.float32))


def test_a_host_array_through_a_basic_index_raises():
    target = device_array([0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        target[1:3] = np.array([1.0, 2.0])


def test_a_0d_array_is_not_an_index():
    count = device_array(3, dtype=np.int64)
    with pytest.raises(TypeError):
        range(count)
    with pytest.raises(TypeError):
        [1, 2, 3, 4][count]


def test_names_cupy_lacks_do_not_exist():
    with pytest.raises(AttributeError, match="module 'cupy' has no attribute 'errstate'"):
        xp.errstate
    with pytest.raises(AttributeError, match="no attribute 'choice'"):
        xp.random.default_rng(0).choice


def test_add_at_refuses_int64_targets_as_cupy_13_does():
    with pytest.raises(TypeError, match="cupy.add.at only supports int32, float16, float32, float64"):
        xp.add.at(xp.zeros(3, dtype=np.int64), xp.asarray([0, 0]), 1)


# ---------------------------------------------------------------- allowed, as by CuPy


def test_explicit_copies_to_the_host_work():
    values = device_array([[1.5, 2.0]])
    host = values.get()
    assert isinstance(host, np.ndarray) and not isinstance(values, np.ndarray)
    host[0, 0] = 9.0  # a copy: the device array keeps its values
    assert values.tolist() == [[1.5, 2.0]]
    assert float(values[0, 1]) == 2.0 and values[0, 0].item() == 1.5 and bool(values[0, 0]) and int(values[0, 1]) == 2
    assert isinstance(xp.asnumpy(values), np.ndarray)
    assert f"{values.sum():.2f}" == "3.50" and pickle.loads(pickle.dumps(values)).tolist() == [[1.5, 2.0]]


def test_asarray_copies_a_host_array_to_the_device():
    host = np.array([1.0, 2.0])
    on_device = xp.asarray(host)
    host[0] = 7.0
    assert isinstance(on_device, xp.ndarray) and on_device.tolist() == [1.0, 2.0]
    assert xp.asarray(on_device) is on_device and on_device.astype(on_device.dtype, copy=False) is on_device
    assert xp.asarray([on_device, on_device]).shape == (2, 2)
    with pytest.raises(TypeError, match="Implicit conversion"):  # a list mixing device arrays with numbers
        xp.asarray([on_device[0], 3.0])


def test_scalars_mix_with_device_arrays():
    values = device_array([1.0, 2.0])
    for result in (values * 2.0, 2 + values, values * np.float32(3.0), xp.maximum(values, 0), values / values.sum()):
        assert isinstance(result, xp.ndarray)


def test_reductions_and_elements_are_0d_device_arrays():
    values = device_array([[1.0, 2.0], [3.0, 4.0]])
    for result in (values.sum(), values.max(), values[1, 1], xp.mean(values), values.argmax()):
        assert isinstance(result, xp.ndarray) and result.shape == ()


def test_a_view_names_the_array_that_owns_its_memory_as_cupy_does():
    owner = device_array([[1.0, 2.0], [3.0, 4.0]])
    assert owner.base is None
    for view in (owner.T, owner[0], owner.reshape(4), owner.transpose(1, 0)[1:]):
        assert view.base is owner
    assert owner.copy().base is None and (owner + 1).base is None


def test_host_index_arrays_are_copied_to_the_device():
    table = device_array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    rows = np.array([2, 0])
    assert table[rows].tolist() == [[4.0, 5.0], [0.0, 1.0]]
    assert xp.take(table, rows, axis=0).tolist() == [[4.0, 5.0], [0.0, 1.0]]
    table[rows] = np.array([[9.0, 9.0], [8.0, 8.0]], dtype=np.float32)  # advanced: CuPy copies the values too
    assert table.tolist() == [[8.0, 8.0], [2.0, 3.0], [9.0, 9.0]]
    table[1:2] = 0.5
    assert table[1].tolist() == [0.5, 0.5]
    split = xp.split(xp.arange(6), np.array([2, 5]))  # split points are host values in CuPy too
    assert [part.tolist() for part in split] == [[0, 1], [2, 3, 4], [5]]


def test_add_at_accumulates_repeated_indices():
    target = xp.zeros(4, dtype=np.float32)
    xp.add.at(target, np.array([1, 1, 3]), device_array([1.0, 2.0, 5.0]))
    assert target.tolist() == [0.0, 3.0, 0.0, 5.0]


def test_numpy_functions_dispatch_to_the_device():
    values = device_array([0.0, 1.0])
    assert isinstance(np.exp(values), xp.ndarray) and isinstance(np.concatenate([values, values]), xp.ndarray)
    values += 1.0
    np.add(values, values, out=values)
    assert values.tolist() == [2.0, 4.0]


def test_the_random_stream_is_not_numpys():
    drawn = xp.random.default_rng(0).standard_normal(4, dtype=np.float32)
    assert isinstance(drawn, xp.ndarray) and drawn.dtype == np.float32
    assert not np.allclose(drawn.get(), np.random.default_rng(0).standard_normal(4, dtype=np.float32))
    assert xp.random.default_rng(0).standard_normal(4, dtype=np.float32).tolist() == drawn.tolist()


# ---------------------------------------------------------------- tinylm on the strict device


def test_tensors_live_on_the_strict_device(strict_cuda):
    x = tl.tensor([[1.0, 2.0]], device="cuda", requires_grad=True)
    assert isinstance(x.data, xp.ndarray) and x.device == "cuda" and tl.cuda_available()
    (x * x).sum().backward()
    assert x.grad.device == "cuda" and x.grad.numpy().tolist() == [[2.0, 4.0]]
    assert np.asarray(x).tolist() == [[1.0, 2.0]]  # a Tensor converts explicitly (.numpy() copies)
    with pytest.raises(tl.DeviceError, match=r"Add: all inputs must be on the same device, got \['cpu', 'cuda'\]"):
        tl.ones(2) + x


def test_numpy_scalars_stay_on_the_host_when_a_gpu_module_is_loaded(strict_cuda):
    # NumPy arithmetic on 0-d host arrays returns NumPy scalars: they belong to NumPy, not the GPU
    assert backend.array_module(np.float64(0.5)) is np and backend.array_module(np.asarray(0.5) * 2) is np
    assert backend.array_module(device_array(0.5)) is xp
