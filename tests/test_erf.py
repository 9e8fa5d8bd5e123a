"""F.erf and the host erf behind it (Cody's rational approximations): accuracy against
``math.erf`` in float64 and float32, special values, the gradient, PyTorch, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinylm as tl
import tinylm.functional as F
from tinylm.functional.erf import erf_values

from assertions import assert_close

math_erf = np.vectorize(math.erf, otypes=[np.float64])


def float64_grid() -> np.ndarray:
    """Dense points across every interval and both signs, tiny and huge magnitudes, the boundaries."""
    magnitudes = np.concatenate(
        [
            np.linspace(0, 7, 200_001),
            np.logspace(-300, 1.5, 20_001),
            [0.46875, 4.0, 26.543, 27.0, 1e10, 1e300],
            np.nextafter([0.46875, 4.0], [0, 0]),
            np.nextafter([0.46875, 4.0], [10, 10]),
        ]
    )
    return np.concatenate([magnitudes, -magnitudes])


def test_erf_is_accurate_to_a_few_units_in_the_last_place_in_float64():
    x = float64_grid()
    ours, reference = erf_values(x), math_erf(x)
    nonzero = reference != 0
    relative = np.abs(ours[nonzero] - reference[nonzero]) / np.abs(reference[nonzero])
    assert relative.max() < 1e-15, f"worst relative error {relative.max():.3g} at x = {x[nonzero][relative.argmax()]!r}"
    assert np.array_equal(ours[~nonzero], reference[~nonzero])  # erf(±0) = ±0


def test_erf_keeps_float32_and_is_accurate_to_float32_precision():
    x = np.linspace(-6, 6, 100_001, dtype=np.float32)
    ours = erf_values(x)
    assert ours.dtype == np.float32
    assert_close(ours, math_erf(x.astype(np.float64)), rtol=3e-7, atol=1e-7, name="float32 erf")


def test_erf_special_values():
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 5e-324])
    ours = erf_values(x)
    assert ours[0] == 1 and ours[1] == -1 and np.isnan(ours[2])
    assert ours[3] == 0 and not np.signbit(ours[3]) and np.signbit(ours[4])
    assert ours[5] == math.erf(5e-324)
    assert erf_values(np.asarray(0.5)) == math.erf(0.5) and erf_values(np.zeros((0, 3))).shape == (0, 3)


def test_erf_of_a_large_array_is_computed_block_by_block_without_seams():
    x = np.linspace(-5, 5, 7 * 28_091).reshape(7, -1)  # 196,637 values: three blocks and a part
    assert_close(erf_values(x), math_erf(x), 1e-15, 1e-15, name="erf over several blocks")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_erf_matches_pytorch(torch, dtype):
    x = (np.random.default_rng(0).standard_normal((5, 40)) * 3).astype(dtype)
    ours, theirs = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_ours, out_theirs = F.erf(ours), torch.erf(theirs)
    assert out_ours.dtype == dtype
    tolerance = 1e-15 if dtype == np.float64 else 1e-6
    assert_close(out_ours, out_theirs, tolerance, tolerance, name="erf")
    upstream = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    out_ours.backward(upstream)
    out_theirs.backward(torch.from_numpy(upstream))
    assert_close(ours.grad, theirs.grad, tolerance, tolerance, name="gradient of erf")


def test_erf_gradcheck(device, float64):
    x = np.random.default_rng(0).standard_normal((4, 6)) * 2
    tl.gradcheck(F.erf, [tl.tensor(x, device=device, requires_grad=True)])


def test_erf_on_the_device_equals_the_host(device):
    x = np.random.default_rng(0).standard_normal((3, 50)) * 3
    assert_close(F.erf(tl.tensor(x, dtype=np.float64, device=device)), math_erf(x), 1e-15, 1e-15, name="erf on " + device)


def test_erf_rejects_integers():
    with pytest.raises(TypeError, match="erf needs a floating-point input, got dtype int64"):
        F.erf(tl.tensor(np.arange(3)))
