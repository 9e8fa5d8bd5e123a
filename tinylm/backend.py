"""The array backend: NumPy on the CPU, CuPy on an NVIDIA GPU.

Every other file in tinylm asks this one for the array module (``xp``) that matches
its data, so the same code runs on both devices:

    xp = array_module(x)      # numpy for a numpy.ndarray, cupy for a cupy.ndarray
    y = xp.exp(x)

CuPy is imported lazily, only when a tensor is put on ``"cuda"``; a machine without
CuPy or without a GPU never pays for it and gets a clear error when it asks for one.

This file also keeps the two pieces of global state the public API names:
the default floating dtype (``set_default_dtype``) and the random generators
(``manual_seed`` seeds the CPU and the GPU generator together).
"""
from __future__ import annotations

from typing import Any

import numpy as np

DEVICES = ("cpu", "cuda")

_cupy: Any = None  # the cupy module once it has been imported successfully


class DeviceError(RuntimeError):
    """A device was asked for that this machine cannot provide, or devices were mixed."""


def _import_cupy():
    global _cupy
    if _cupy is None:
        try:
            import cupy
        except ImportError as error:
            raise DeviceError(
                'device="cuda" needs CuPy, which is not installed. Install it with '
                '`pip install "tinylm[gpu]"` (the cupy-cuda12x wheel, for CUDA 12), '
                'or use device="cpu".'
            ) from error
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as error:  # the CUDA driver raises its own error types
            raise DeviceError(
                f'device="cuda" needs an NVIDIA GPU, but CuPy could not reach one ({error}). '
                'Check `nvidia-smi`, or use device="cpu".'
            ) from error
        if count == 0:
            raise DeviceError('device="cuda" needs an NVIDIA GPU, but none was found. Use device="cpu".')
        _cupy = cupy
    return _cupy


def use_cuda_array_module(module) -> None:
    """Test-only: let ``module`` stand in for CuPy as the array module of ``"cuda"``.

    The test suite uses it to run the GPU code path on a machine without a GPU
    (``TINYLM_TEST_DEVICE=strict`` and tests/strict_device.py, whose arrays refuse what
    CuPy's refuse). ``module`` offers what tinylm uses of CuPy: its ``ndarray`` type, the
    NumPy-like functions and ufuncs, and ``random.default_rng``. Not for use outside tests.
    """
    global _cupy
    _cupy = module


def cuda_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    try:
        _import_cupy()
    except DeviceError:
        return False
    return True


def check_device(device: str) -> str:
    """Return the device name, or raise an error that lists the valid ones."""
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}: expected one of {DEVICES}")
    return device


def module_for_device(device: str):
    """The array module (numpy or cupy) that holds data on ``device``."""
    if check_device(device) == "cpu":
        return np
    return _import_cupy()


def array_module(array):
    """The array module of ``array``: numpy for host arrays (and NumPy scalars, which NumPy
    arithmetic on 0-d arrays returns), cupy for GPU arrays."""
    if isinstance(array, (np.ndarray, np.generic)) or _cupy is None:
        return np
    return _cupy


def device_of(array) -> str:
    """'cpu' for a numpy array, 'cuda' for a cupy array."""
    return "cpu" if array_module(array) is np else "cuda"


def to_device(array, device: str):
    """Copy ``array`` to ``device`` (no copy when it is already there)."""
    if device_of(array) == check_device(device):
        return array
    if device == "cpu":
        return array.get()
    return module_for_device("cuda").asarray(array)


def to_numpy(array) -> np.ndarray:
    """A host numpy array with the same values."""
    return array if isinstance(array, np.ndarray) else np.asarray(array.get())


def scatter_add(target, indices, values) -> None:
    """``target[indices] += values`` where repeated indices accumulate (in place).

    Plain ``target[indices] += values`` would keep only one of the repeated updates.
    NumPy and CuPy (since version 12) both have ``add.at`` for this; CuPy's needs a
    float or int32 ``target`` (its GPU atomics; CuPy 13 has no int64 ``add.at``).
    """
    array_module(target).add.at(target, indices, values)


# ---------------------------------------------------------------- dtypes

_default_dtype = np.dtype(np.float32)


def set_default_dtype(dtype) -> None:
    """Set the dtype that new floating tensors get (float32 unless changed).

    ``tl.set_default_dtype(np.float64)`` is the usual first line of a gradient check.
    """
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"the default dtype must be a floating dtype (float16/32/64), got {dtype}")
    _default_dtype = dtype


def get_default_dtype() -> np.dtype:
    return _default_dtype


# ---------------------------------------------------------------- random numbers

_generators: dict[str, Any] = {"cpu": np.random.default_rng(0)}
_seed = 0


def manual_seed(seed: int) -> None:
    """Seed the random generators of every device, so runs repeat bit for bit."""
    global _seed
    _seed = int(seed)
    _generators.clear()
    _generators["cpu"] = np.random.default_rng(_seed)


def generator(device: str = "cpu"):
    """The random generator of ``device`` (created from the last ``manual_seed``)."""
    if device not in _generators:
        _generators[device] = module_for_device(device).random.default_rng(_seed)
    return _generators[device]


def get_rng_state() -> dict:
    """The CPU generator's state, so a checkpoint can resume the same random stream.

    Only the CPU's: CuPy's generators keep their state in cuRAND on the device, with no way
    to read it back. So a resumed run repeats the uninterrupted one bit for bit on the CPU,
    and on a GPU too unless it draws on the GPU (dropout > 0 does: it then gets other masks).
    """
    return _generators["cpu"].bit_generator.state


def set_rng_state(state: dict) -> None:
    _generators["cpu"].bit_generator.state = state
