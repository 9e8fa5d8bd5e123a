"""nn.Module: registration, names, state dicts, modes, devices, dtypes, repr, seeding."""
from __future__ import annotations

import re

import numpy as np
import pytest

import tinylm as tl
from tinylm import nn
from tinylm.nn.module import IncompatibleKeys

from assertions import assert_close

VOCAB, DIM = 11, 4


class Block(nn.Module):
    def __init__(self, dim: int):
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(0.5), nn.Linear(2 * dim, dim))

    def forward(self, h):
        return h + self.mlp(self.norm(h))


class TinyModel(nn.Module):
    """Embedding, a plain list of blocks, a bias-free head and a loose parameter."""

    def __init__(self):
        self.embed = nn.Embedding(VOCAB, DIM)
        self.blocks = [Block(DIM) for _ in range(2)]
        self.head = nn.Linear(DIM, VOCAB, bias=False)
        self.scale = nn.Parameter(tl.ones(DIM))

    def forward(self, ids):
        h = self.embed(ids) * self.scale
        for block in self.blocks:
            h = block(h)
        return self.head(h)


def torch_twin(torch):
    """The same architecture in PyTorch (a ModuleList where tinylm takes a plain list)."""

    class TorchBlock(torch.nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.norm = torch.nn.LayerNorm(dim)
            self.mlp = torch.nn.Sequential(
                torch.nn.Linear(dim, 2 * dim),
                torch.nn.GELU(approximate="tanh"),
                torch.nn.Dropout(0.5),
                torch.nn.Linear(2 * dim, dim),
            )

        def forward(self, h):
            return h + self.mlp(self.norm(h))

    class TorchModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(VOCAB, DIM)
            self.blocks = torch.nn.ModuleList(TorchBlock(DIM) for _ in range(2))
            self.head = torch.nn.Linear(DIM, VOCAB, bias=False)
            self.scale = torch.nn.Parameter(torch.randn(DIM))

        def forward(self, ids):
            h = self.embed(ids) * self.scale
            for block in self.blocks:
                h = block(h)
            return self.head(h)

    torch.manual_seed(0)
    return TorchModel()


class Tied(nn.Module):
    """Output layer sharing the embedding's weight, and a module reachable by two names."""

    def __init__(self):
        self.embed = nn.Embedding(5, 3)
        self.out = nn.Linear(3, 5, bias=False)
        self.out.weight = self.embed.weight
        self.again = self.out


def _values(model: nn.Module) -> dict[str, np.ndarray]:
    return {name: p.numpy().copy() for name, p in model.named_parameters()}


# ---------------------------------------------------------------- registration and names


def test_parameter_wraps_a_tensor_or_an_array():
    values = tl.randn(2, 3)
    parameter = nn.Parameter(values)
    assert parameter.requires_grad and parameter.is_leaf and parameter.data is values.data
    assert repr(parameter).startswith("Parameter containing:\ntensor(")
    assert not nn.Parameter(np.zeros(2), requires_grad=False).requires_grad
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients.*int64"):
        nn.Parameter(np.zeros(2, dtype=np.int64))


def test_parameters_register_by_attribute_and_inside_lists():
    class Holder(nn.Module):
        def __init__(self):
            self.gain = nn.Parameter(tl.ones(2))
            self.layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
            self.pair = (nn.Parameter(tl.zeros(1)), nn.Parameter(tl.zeros(2)))
            self.not_a_parameter = tl.ones(5, requires_grad=True)
            self.settings = {"hidden": nn.Linear(2, 2)}  # dicts are not searched

    names = [name for name, _ in Holder().named_parameters()]
    assert names == ["gain", "pair.0", "pair.1", "layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"]
    assert [name for name, _ in Holder().named_children()] == ["layers.0", "layers.1", "layers.2"]


def test_named_parameters_match_pytorch(torch):
    ours = [(name, p.shape) for name, p in TinyModel().named_parameters()]
    theirs = [(name, tuple(p.shape)) for name, p in torch_twin(torch).named_parameters()]
    assert ours == theirs


def test_shared_parameters_and_modules_are_counted_once():
    model = Tied()
    assert [name for name, _ in model.named_parameters()] == ["embed.weight"]
    assert len(model.parameters()) == 1 and model.num_parameters() == 15
    assert [name for name, _ in model.named_modules()] == ["", "embed", "out"]
    assert [name for name, _ in model.named_modules(remove_duplicate=False)] == ["", "embed", "out", "again"]


def test_tied_state_dict_keys_match_pytorch(torch):
    class TorchTied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(5, 3)
            self.out = torch.nn.Linear(3, 5, bias=False)
            self.out.weight = self.embed.weight
            self.again = self.out

    twin = TorchTied()
    assert list(Tied().state_dict()) == list(twin.state_dict()) == ["embed.weight", "out.weight", "again.weight"]
    model = Tied()
    model.load_state_dict(twin.state_dict())
    assert model.out.weight is model.embed.weight
    assert_close(model.embed.weight, twin.embed.weight, name="tied weight")


def test_a_child_pointing_back_to_its_parent_does_not_loop():
    class Child(nn.Module):
        def __init__(self, parent):
            self.parent = parent
            self.linear = nn.Linear(2, 2)

    class Parent(nn.Module):
        def __init__(self):
            self.child = Child(self)

    model = Parent()
    assert [name for name, _ in model.named_modules()] == ["", "child", "child.linear"]
    assert list(model.state_dict()) == ["child.linear.weight", "child.linear.bias"]


def test_forward_must_be_defined():
    with pytest.raises(NotImplementedError, match="Tied must define forward"):
        Tied()(tl.tensor([1]))


# ---------------------------------------------------------------- Sequential and ModuleList


def test_sequential_runs_in_order_and_names_layers_like_pytorch():
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
    x = tl.randn(4, 3)
    expected = model[2](model[1](model[0](x)))
    assert_close(model(x), expected, name="Sequential output")
    assert len(model) == 3
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    head = model[:2]
    assert isinstance(head, nn.Sequential) and head[0] is model[0] and len(head) == 2


def test_module_list_append_slice_and_iterate():
    blocks = nn.ModuleList([nn.Linear(2, 2)])
    blocks.append(nn.Linear(2, 3))
    assert [name for name, _ in blocks.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert [b.out_features for b in blocks] == [2, 3]
    assert isinstance(blocks[1:], nn.ModuleList) and blocks[1:][0] is blocks[1]


@pytest.mark.parametrize("build", [lambda: nn.Sequential(nn.ReLU(), np.tanh), lambda: nn.ModuleList([np.tanh])])
def test_containers_reject_non_modules(build):
    with pytest.raises(TypeError, match=r"item \d must be an nn.Module, got ufunc"):
        build()


def test_module_list_append_rejects_non_modules():
    with pytest.raises(TypeError, match="ModuleList.append: item 0 must be an nn.Module, got int"):
        nn.ModuleList().append(3)


# ---------------------------------------------------------------- state dicts


def test_state_dict_holds_copies_under_dotted_names():
    model = TinyModel()
    state = model.state_dict()
    assert list(state) == [name for name, _ in model.named_parameters()]
    model.head.weight.data += 1.0
    assert not np.array_equal(state["head.weight"], model.head.weight.numpy())


def test_load_state_dict_round_trip_without_sharing_memory():
    source, target = TinyModel(), TinyModel()
    assert not np.array_equal(source.head.weight.numpy(), target.head.weight.numpy())
    state = source.state_dict()
    assert target.load_state_dict(state) == IncompatibleKeys([], [])
    for name, value in _values(source).items():
        assert np.array_equal(value, _values(target)[name]), name
    assert all(p.version == 1 for p in target.parameters()), "loading writes every parameter: a new version"
    state["head.weight"] += 1.0  # neither the state dict nor the other model may reach in
    assert np.array_equal(target.head.weight.numpy(), source.head.weight.numpy())


def test_load_accepts_tensors_and_parameters():
    source, target = TinyModel(), TinyModel()
    target.load_state_dict({name: tl.tensor(p.numpy()) for name, p in source.named_parameters()})
    assert np.array_equal(target.embed.weight.numpy(), source.embed.weight.numpy())
    parameters = dict(TinyModel().named_parameters())
    target.load_state_dict(parameters)
    assert np.array_equal(target.head.weight.numpy(), parameters["head.weight"].numpy())


def test_strict_load_reports_missing_unexpected_and_misshapen_keys_at_once():
    model = TinyModel()
    before = _values(model)
    state = TinyModel().state_dict()
    del state["head.weight"], state["scale"]
    state["extra.bias"] = np.zeros(3)
    state["embed.weight"] = np.zeros((5, DIM))
    state["blocks.1.norm.bias"] = np.zeros((DIM, 1))
    with pytest.raises(nn.StateDictError) as caught:
        model.load_state_dict(state)
    message = str(caught.value)
    assert message.startswith("load_state_dict for TinyModel failed")
    assert re.search(r"missing keys: scale \(4,\), head\.weight \(11, 4\)", message), message
    assert re.search(r"unexpected keys: extra\.bias \(3,\)", message), message
    assert "embed.weight: model has (11, 4), state dict has (5, 4)" in message
    assert "blocks.1.norm.bias: model has (4,), state dict has (4, 1)" in message
    for name, value in _values(model).items():  # nothing was loaded
        assert np.array_equal(value, before[name]), name


def test_non_strict_load_skips_missing_and_unexpected_but_not_wrong_shapes():
    source, target = TinyModel(), TinyModel()
    state = source.state_dict()
    del state["head.weight"]
    state["extra.bias"] = np.zeros(3)
    head_before = target.head.weight.numpy().copy()
    result = target.load_state_dict(state, strict=False)
    assert result.missing_keys == ["head.weight"] and result.unexpected_keys == ["extra.bias"]
    assert np.array_equal(target.embed.weight.numpy(), source.embed.weight.numpy())
    assert np.array_equal(target.head.weight.numpy(), head_before)
    state["scale"] = np.zeros(3)
    with pytest.raises(nn.StateDictError, match=r"scale: model has \(4,\), state dict has \(3,\)"):
        target.load_state_dict(state, strict=False)


def test_load_keeps_each_parameters_dtype():
    state = TinyModel().state_dict()  # float32
    model = TinyModel().to(np.float64)
    parameters = model.parameters()
    model.load_state_dict(state)
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert all(a is b for a, b in zip(parameters, model.parameters()))  # same objects, new values
    assert np.array_equal(model.embed.weight.numpy(), state["embed.weight"].astype(np.float64))


def test_load_keeps_each_parameters_device(device):
    state = TinyModel().state_dict()  # host arrays
    model = TinyModel().to(device)
    model.load_state_dict(state)
    assert all(p.device == device for p in model.parameters())
    assert_close(model.head.weight, state["head.weight"], rtol=0, atol=0, name="head.weight")
    back = TinyModel()
    back.load_state_dict(model.state_dict())  # device arrays into a host model
    assert back.head.weight.device == "cpu"
    assert np.array_equal(back.head.weight.numpy(), state["head.weight"])


def test_load_a_pytorch_state_dict_directly(torch):
    twin = torch_twin(torch).eval()
    model = TinyModel().eval()
    model.load_state_dict(twin.state_dict())
    for name, p in twin.named_parameters():
        assert_close(dict(model.named_parameters())[name], p, rtol=0, atol=0, name=name)
    ids = np.array([[1, 4, 4, 10], [0, 2, 3, 7]])
    assert_close(model(ids), twin(torch.from_numpy(ids)), rtol=1e-5, atol=1e-5, name="model output")


# ---------------------------------------------------------------- modes, gradients, devices, dtypes


def test_train_and_eval_reach_every_module():
    model = TinyModel()
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    ids = np.array([[1, 2, 3]])
    assert np.array_equal(model(ids).numpy(), model(ids).numpy())  # dropout is off
    assert model.train() is model
    assert all(m.training for m in model.modules())
    assert not np.array_equal(model(ids).numpy(), model(ids).numpy())  # dropout draws new masks
    model.train(False)
    assert not model.blocks[1].mlp[2].training


def test_zero_grad_clears_every_gradient():
    model = TinyModel()
    model(np.array([[1, 2, 3]])).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("dtype", [np.float64, "float64"])
def test_to_dtype_casts_parameters_and_gradients_in_place(dtype):
    model = TinyModel()
    model(np.array([[1, 2]])).sum().backward()
    parameters = model.parameters()
    assert model.to(dtype) is model
    assert all(a is b for a, b in zip(parameters, model.parameters()))
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in model.parameters())
    assert model(np.array([[1, 2]])).dtype == np.float64


def test_to_device_moves_parameters_gradients_and_forward(device):
    model = TinyModel()
    model(np.array([[1, 2]])).sum().backward()
    assert model.to(device) is model
    assert all(p.device == device and p.grad.device == device for p in model.parameters())
    ids = tl.tensor([[1, 2, 3]], device=device)
    assert model(ids).device == device


def test_to_calls_the_hook_that_moves_buffers(device):
    class WithBuffer(nn.Module):
        def __init__(self):
            self.linear = nn.Linear(2, 2)
            self.table = np.ones(3, dtype=np.float32)  # not a parameter: moved by the hook

        def _moved(self, target):
            self.table = tl.tensor(self.table).to(target).data

    model = WithBuffer().to("float64")  # the hook gets a dtype, also for a dtype's name
    assert model.table.dtype == np.float64 and model.linear.weight.dtype == np.float64
    assert tl.Tensor(model.to(device).table).device == device


def test_to_rejects_bad_targets():
    with pytest.raises(TypeError, match=r"expected a device \('cpu' or 'cuda'\) or a dtype, got 'tpu'"):
        TinyModel().to("tpu")
    with pytest.raises(TypeError, match=r"TinyModel.to\(\): parameters need a floating dtype, got int64"):
        TinyModel().to(np.int64)


# ---------------------------------------------------------------- repr and seeding


def test_repr_prints_the_tree_with_shapes_and_counts():
    model = TinyModel()
    model.embed = nn.Embedding(300, DIM)  # past a thousand parameters, to see the separator
    text = repr(model)
    lines = text.splitlines()
    total = sum(p.numel() for p in model.parameters())
    assert lines[0] == f"TinyModel()  # scale (4,): {total:,} parameters" and total > 1000
    assert "  (embed): Embedding(300, 4)  # weight (300, 4): 1,200 parameters" in lines
    assert "  (blocks.0): Block()  # 84 parameters" in lines
    norm = "LayerNorm((4,), eps=1e-05, elementwise_affine=True)  # weight (4,), bias (4,): 8 parameters"
    assert f"    (norm): {norm}" in lines
    assert "    (mlp): Sequential()  # 76 parameters" in lines
    linear = "Linear(in_features=4, out_features=8, bias=True)  # weight (8, 4), bias (8,): 40 parameters"
    assert f"      (0): {linear}" in lines
    assert "      (1): GELU(approximate='tanh')" in lines
    assert "      (2): Dropout(p=0.5)" in lines
    assert "  (head): Linear(in_features=4, out_features=11, bias=False)  # weight (11, 4): 44 parameters" in lines
    assert repr(nn.Linear(1, 1)).endswith("# weight (1, 1), bias (1,): 2 parameters")
    assert repr(nn.Linear(1, 1, bias=False)).endswith("# weight (1, 1): 1 parameter")


def test_same_seed_gives_bit_identical_models():
    tl.manual_seed(7)
    first = _values(TinyModel())
    tl.manual_seed(7)
    second = _values(TinyModel())
    tl.manual_seed(8)
    third = _values(TinyModel())
    for name in first:
        assert first[name].tobytes() == second[name].tobytes(), name
    assert not np.array_equal(first["embed.weight"], third["embed.weight"])
    assert not np.array_equal(first["head.weight"], third["head.weight"])
