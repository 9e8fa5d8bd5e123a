"""tl.save / tl.load: exact round trips, no pickle, clear errors, atomic writes."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import OrderedDict

import numpy as np
import pytest

import tinylm as tl
import tinylm.io as checkpoint_io
from tinylm import nn


def _assert_identical(actual, expected, where: str = "state") -> None:
    """Same types, same dtypes, same bits, all the way down."""
    if isinstance(expected, dict):
        assert type(actual) is dict, f"{where}: {type(actual).__name__}, expected a dict"
        assert list(actual) == list(expected), f"{where}: keys {list(actual)}, expected {list(expected)}"
        for key in expected:
            _assert_identical(actual[key], expected[key], f"{where}[{key!r}]")
        return
    expected_type = tl.Tensor if isinstance(expected, tl.Tensor) else type(expected)
    assert type(actual) is expected_type, f"{where}: {type(actual).__name__}, expected {expected_type.__name__}"
    if isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), f"{where}: length {len(actual)}, expected {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            _assert_identical(a, e, f"{where}[{i}]")
    elif isinstance(expected, tl.Tensor):
        assert actual.requires_grad == expected.requires_grad, f"{where}: requires_grad"
        assert actual.device == "cpu", f"{where}: a loaded tensor lives on the CPU"
        _assert_identical(actual.data, expected.numpy(), where)
    elif isinstance(expected, (np.ndarray, np.generic)):
        assert (actual.dtype, actual.shape) == (expected.dtype, expected.shape), f"{where}: dtype/shape"
        assert actual.tobytes() == expected.tobytes(), f"{where}: values differ"
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(actual), f"{where}: {actual}, expected nan"
    else:
        assert actual == expected, f"{where}: {actual!r}, expected {expected!r}"


def _nested_state() -> dict:
    rng = np.random.default_rng(0)
    return {
        "float32": rng.standard_normal((3, 4)).astype(np.float32),
        "float64": rng.standard_normal(5),
        "int": np.arange(6, dtype=np.int32).reshape(2, 3),
        "bool": np.array([True, False]),
        "zero_d": np.array(2.5),
        "empty_array": np.zeros((0, 3), dtype=np.float16),
        "strings_array": np.array(["a", "bc"]),
        "numpy_scalars": (np.float32(1.5), np.int64(-7), np.bool_(True)),
        "numbers": [0, -3, 2**100, 0.1, float("inf"), float("nan"), True, False],
        "text": "héllo",
        "nothing": None,
        "empty_dict": {},
        "empty_list": [],
        "keys/with/slashes and 100%": {"a.b": 1, "": 2},
        "tensor": tl.tensor([1.0, 2.0], requires_grad=True),
        "frozen_tensor": tl.tensor([[3]]),
        "deep": {"list": [{"x": np.ones(2, dtype=np.uint8)}, ({"y": (None,)},)]},
    }


def test_nested_state_round_trips_exactly(tmp_path):
    state = _nested_state()
    tl.save(state, tmp_path / "state.npz")
    _assert_identical(tl.load(tmp_path / "state.npz"), state)


@pytest.mark.parametrize("state", [np.arange(3.0), 7, "only a string", None, [], (1, [2.0])])
def test_state_that_is_not_a_dict_round_trips(tmp_path, state):
    tl.save(state, tmp_path / "state.npz")
    _assert_identical(tl.load(tmp_path / "state.npz"), state)


def test_arrays_get_stable_readable_entry_names(tmp_path):
    tl.save({"model": OrderedDict([("0.weight", np.ones(2)), ("a/b", np.ones(1))]), "step": 3}, tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["state/model/0.weight", "state/model/a%2Fb", "tinylm_manifest"]


def test_device_arrays_come_back_as_host_arrays(tmp_path, device):
    x = tl.tensor([[1.0, 2.0]], device=device)
    tl.save({"tensor": x, "array": x.data}, tmp_path / "c.npz")
    loaded = tl.load(tmp_path / "c.npz")
    assert type(loaded["array"]) is np.ndarray and loaded["tensor"].device == "cpu"
    np.testing.assert_array_equal(loaded["array"], x.numpy())
    np.testing.assert_array_equal(loaded["tensor"].numpy(), x.numpy())


def test_rng_state_round_trips_and_resumes_the_stream(tmp_path):
    tl.manual_seed(3)
    tl.randn(4)
    tl.save({"rng": tl.backend.get_rng_state()}, tmp_path / "c.npz")
    expected = tl.randn(5).numpy()
    tl.manual_seed(99)
    tl.backend.set_rng_state(tl.load(tmp_path / "c.npz")["rng"])
    np.testing.assert_array_equal(tl.randn(5).numpy(), expected)


def test_model_state_dict_round_trips_into_a_fresh_model(tmp_path):
    def model():
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))

    tl.manual_seed(0)
    trained = model()
    tl.save({"model": trained.state_dict(), "step": 10}, tmp_path / "model.npz")
    tl.manual_seed(1)
    fresh = model()
    x = tl.randn(5, 4)
    assert not np.array_equal(fresh(x).numpy(), trained(x).numpy())
    fresh.load_state_dict(tl.load(tmp_path / "model.npz")["model"])
    np.testing.assert_array_equal(fresh(x).numpy(), trained(x).numpy())


# ------------------------------------------------------------ what cannot be saved


def test_unsupported_values_are_refused_with_their_place():
    with pytest.raises(TypeError, match=r"cannot store set \(at 'state/a/0'\)"):
        tl.save({"a": [{1, 2}]}, "never-written.npz")
    with pytest.raises(TypeError, match=r"the dict at 'state/b' has the key 3 \(int\); keys must be strings"):
        tl.save({"b": {3: np.ones(1)}}, "never-written.npz")
    with pytest.raises(TypeError, match=r"the array at 'state/c' holds Python objects \(dtype object\)"):
        tl.save({"c": np.array([{}, None], dtype=object)}, "never-written.npz")
    assert not os.path.exists("never-written.npz")


def test_loading_never_unpickles(tmp_path):
    """A file whose manifest points at a pickled object array is refused, and the pickle never runs."""
    marker = tmp_path / "the-pickle-ran"

    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(marker),)

    manifest = {"format": "tinylm-checkpoint", "version": 1, "root": {"type": "array"}}
    path = tmp_path / "evil.npz"
    np.savez(path, state=np.array([Payload()], dtype=object),
             tinylm_manifest=np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8))
    with pytest.raises(tl.CheckpointError, match=r"evil.npz could not be read .*allow_pickle"):
        tl.load(path)
    assert not marker.exists()


# ------------------------------------------------------------ damaged and foreign files


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_file_gives_a_clear_error(tmp_path, fraction):
    tl.save(_nested_state(), tmp_path / "full.npz")
    content = (tmp_path / "full.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(content[: int(len(content) * fraction)])
    with pytest.raises(tl.CheckpointError, match=r"cut.npz could not be read as a tinylm checkpoint.*truncated"):
        tl.load(tmp_path / "cut.npz")


def test_foreign_files_give_clear_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    with pytest.raises(tl.CheckpointError, match="notes.txt could not be read as a tinylm checkpoint"):
        tl.load(tmp_path / "notes.txt")
    np.savez(tmp_path / "plain.npz", weights=np.ones(3))
    with pytest.raises(tl.CheckpointError, match=r"plain.npz is an .npz file without tinylm's manifest.*holds: weights"):
        tl.load(tmp_path / "plain.npz")
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(tl.CheckpointError, match="single.npy holds a single .npy array"):
        tl.load(tmp_path / "single.npy")
    future = {"format": "tinylm-checkpoint", "version": 99, "root": {"type": "None", "value": None}}
    np.savez(tmp_path / "future.npz", tinylm_manifest=np.frombuffer(json.dumps(future).encode(), dtype=np.uint8))
    with pytest.raises(tl.CheckpointError, match="future.npz is a checkpoint of format 'tinylm-checkpoint' version 99;"):
        tl.load(tmp_path / "future.npz")
    with pytest.raises(FileNotFoundError):
        tl.load(tmp_path / "missing.npz")


# ------------------------------------------------------------ atomic writes


def test_a_failed_write_keeps_the_previous_checkpoint_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    tl.save({"step": 1, "w": np.ones(4)}, path)

    def crash_halfway(file, **arrays):
        file.write(b"PK\x03\x04 half a zip file")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_io.np, "savez", crash_halfway)
    with pytest.raises(OSError, match="disk full"):
        tl.save({"step": 2, "w": np.zeros(4)}, path)
    monkeypatch.undo()
    _assert_identical(tl.load(path), {"step": 1, "w": np.ones(4)})
    assert os.listdir(tmp_path) == ["ckpt.npz"]


WRITER = """
import sys
import numpy as np
import tinylm as tl
path = sys.argv[1]
print("writing", flush=True)
for step in range(10**6):
    tl.save({"step": step, "w": np.full(2_000_000, step, dtype=np.float32)}, path)
"""


def test_killing_a_writer_mid_write_keeps_a_complete_checkpoint(tmp_path):
    """SIGKILL a process that saves 8 MB checkpoints in a loop: the file is always whole."""
    path = tmp_path / "ckpt.npz"
    tl.save({"step": -1, "w": np.full(2_000_000, -1, dtype=np.float32)}, path)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"
        time.sleep(0.3)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
    state = tl.load(path)
    assert state["w"].shape == (2_000_000,) and state["w"].dtype == np.float32
    assert np.all(state["w"] == state["step"]), "the checkpoint mixes two writes"
    tl.save({"step": 0}, path)  # a leftover temporary file from the killed writer is no obstacle
    assert tl.load(path) == {"step": 0}
