"""Recurrent layers: fused == composed, gradient checks, PyTorch parity, TBPTT, padding, errors."""
from __future__ import annotations

import numpy as np
import pytest
from assertions import assert_close

import tinylm as tl
from tinylm import nn
from tinylm.nn.gradient_flow import hidden_gradient_norms
from tinylm.ops import ShapeError

# kind -> (sequence layer, cell, PyTorch name, extra settings); one table drives every test
KINDS = {
    "lstm": (nn.LSTM, nn.LSTMCell, "LSTM", {}),
    "gru": (nn.GRU, nn.GRUCell, "GRU", {}),
    "rnn_tanh": (nn.RNN, nn.RNNCell, "RNN", {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNN, nn.RNNCell, "RNN", {"nonlinearity": "relu"}),
}


def make_layer(kind, input_size=3, hidden_size=4, num_layers=2, device="cpu", **settings):
    layer_class, _, _, extra = KINDS[kind]
    return layer_class(input_size, hidden_size, num_layers, **extra, **settings).to(device)


def random_tensor(shape, device, requires_grad=True, seed=1):
    data = np.random.default_rng(seed).standard_normal(shape)
    return tl.tensor(data, dtype=tl.get_default_dtype(), device=device, requires_grad=requires_grad)


def initial_state(kind, shape, device):
    h0 = random_tensor(shape, device, seed=2)
    return (h0, random_tensor(shape, device, seed=3)) if kind == "lstm" else h0


def as_list(state):
    return list(state) if isinstance(state, tuple) else [state]


def run_and_backward(layer, x, h0, lengths=None):
    """Forward, then backward of a loss that uses the output and every final state."""
    output, final = layer(x, h0, lengths=lengths)
    loss = (output * random_tensor(output.shape, x.device, False, seed=4)).sum()
    for i, state in enumerate(as_list(final)):
        loss = loss + (state * random_tensor(state.shape, x.device, False, seed=5 + i)).sum()
    loss.backward()
    return output, final


# ---------------------------------------------------------------- fused == composed, gradchecks


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lengths", [None, [5, 2, 1]])
def test_fused_equals_composed(kind, bias, lengths, device, float64):
    layer = make_layer(kind, bias=bias, device=device)
    x = random_tensor((3, 5, 3), device)
    h0 = initial_state(kind, (2, 3, 4), device)
    results = {}
    for fused in (True, False):
        layer.fused = fused
        layer.zero_grad()
        for t in [x, *as_list(h0)]:
            t.grad = None
        output, final = run_and_backward(layer, x, h0, lengths)
        results[fused] = {"output": output, "x.grad": x.grad}
        results[fused].update({f"final state {i}": s for i, s in enumerate(as_list(final))})
        results[fused].update({f"initial state {i} grad": s.grad for i, s in enumerate(as_list(h0))})
        results[fused].update({f"{name}.grad": p.grad for name, p in layer.named_parameters()})
    for name, fused_value in results[True].items():
        assert_close(fused_value, results[False][name], rtol=1e-10, atol=1e-12, name=f"fused vs composed: {name}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("lengths", [None, [3, 1]])
def test_sequence_gradcheck(kind, fused, lengths, device, float64):
    layer = make_layer(kind, input_size=2, hidden_size=3, num_layers=2, fused=fused, device=device)
    x = random_tensor((2, 3, 2), device)
    h0 = as_list(initial_state(kind, (2, 2, 3), device))

    def everything(x, *tensors):
        state = tuple(tensors[: len(h0)]) if kind == "lstm" else tensors[0]
        output, final = layer(x, state, lengths=lengths)
        return tl.concat([output.reshape(-1)] + [s.reshape(-1) for s in as_list(final)])

    assert tl.gradcheck(everything, [x, *h0, *layer.parameters()])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fused", [True, False])
def test_cell_gradcheck(kind, fused, device, float64):
    _, cell_class, _, extra = KINDS[kind]
    cell = cell_class(3, 2, **extra, fused=fused).to(device)
    x = random_tensor((2, 3), device)
    state = [random_tensor((2, 2), device, seed=s) for s in (2, 3)][: 1 + (kind == "lstm")]

    def step(x, *tensors):
        out = cell(x, tuple(tensors[: len(state)]) if kind == "lstm" else tensors[0])
        return tl.concat([o.reshape(-1) for o in as_list(out)])

    assert tl.gradcheck(step, [x, *state, *cell.parameters()])


# ---------------------------------------------------------------- PyTorch parity


def torch_layer(torch, kind, layer, batch_first):
    """PyTorch's twin of ``layer``; its weights are loaded into ``layer`` (as a user would)."""
    _, _, torch_name, extra = KINDS[kind]
    twin = getattr(torch.nn, torch_name)(
        layer.input_size, layer.hidden_size, layer.num_layers, bias=layer.bias, batch_first=batch_first, **extra
    ).double()
    layer.load_state_dict(twin.state_dict())
    return twin


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("fused", [True, False])
def test_sequence_matches_torch(kind, bias, batch_first, fused, torch, float64):
    layer = make_layer(kind, bias=bias, batch_first=batch_first, fused=fused)
    twin = torch_layer(torch, kind, layer, batch_first)
    x = random_tensor((3, 5, 3) if batch_first else (5, 3, 3), "cpu")
    h0 = initial_state(kind, (2, 3, 4), "cpu")
    output, final = run_and_backward(layer, x, h0)

    x_t = torch.tensor(x.numpy(), requires_grad=True)
    h0_t = [torch.tensor(t.numpy(), requires_grad=True) for t in as_list(h0)]
    output_t, final_t = twin(x_t, tuple(h0_t) if kind == "lstm" else h0_t[0])
    loss_t = (output_t * torch.tensor(random_tensor(output.shape, "cpu", False, seed=4).numpy())).sum()
    for i, state in enumerate(as_list(final_t)):
        loss_t = loss_t + (state * torch.tensor(random_tensor(state.shape, "cpu", False, seed=5 + i).numpy())).sum()
    loss_t.backward()

    assert_close(output, output_t, 1e-10, 1e-12, "output")
    for i, (ours, theirs) in enumerate(zip(as_list(final), as_list(final_t))):
        assert_close(ours, theirs, 1e-10, 1e-12, f"final state {i}")
    assert_close(x.grad, x_t.grad, 1e-9, 1e-12, "x.grad")
    for i, (ours, theirs) in enumerate(zip(as_list(h0), h0_t)):
        assert_close(ours.grad, theirs.grad, 1e-9, 1e-12, f"initial state {i} grad")
    theirs = dict(twin.named_parameters())
    for name, parameter in layer.named_parameters():
        assert_close(parameter.grad, theirs[name].grad, 1e-9, 1e-12, f"{name}.grad")


@pytest.mark.parametrize("kind", KINDS)
def test_float32_forward_and_backward_match_torch(kind, torch, device):
    layer = make_layer(kind, input_size=8, hidden_size=16, num_layers=1, device=device)
    _, _, torch_name, extra = KINDS[kind]
    twin = getattr(torch.nn, torch_name)(8, 16, batch_first=True, **extra)
    layer.load_state_dict(twin.state_dict())
    x = random_tensor((4, 7, 8), device)
    output, _ = layer(x)
    output.sum().backward()
    x_t = torch.tensor(x.numpy(), requires_grad=True)
    output_t = twin(x_t)[0]
    output_t.sum().backward()
    assert output.dtype == np.float32 and x.grad.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in layer.parameters())
    assert_close(output, output_t, 1e-4, 1e-5, "float32 output")
    assert_close(x.grad, x_t.grad, 1e-3, 1e-5, "float32 x.grad")
    assert_close(layer.weight_hh_l0.grad, twin.weight_hh_l0.grad, 1e-3, 1e-4, "float32 weight_hh grad")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fused", [True, False])
def test_cell_matches_torch(kind, fused, torch, float64):
    _, cell_class, torch_name, extra = KINDS[kind]
    cell = cell_class(3, 4, **extra, fused=fused)
    twin = getattr(torch.nn, torch_name + "Cell")(3, 4, **extra).double()
    cell.load_state_dict(twin.state_dict())
    x = random_tensor((2, 3), "cpu")
    state = [random_tensor((2, 4), "cpu", seed=s) for s in (2, 3)][: 1 + (kind == "lstm")]
    out = as_list(cell(x, tuple(state) if kind == "lstm" else state[0]))
    x_t = torch.tensor(x.numpy(), requires_grad=True)
    state_t = [torch.tensor(s.numpy(), requires_grad=True) for s in state]
    out_t = as_list(twin(x_t, tuple(state_t) if kind == "lstm" else state_t[0]))
    sum(o.sum() * (i + 1) for i, o in enumerate(out)).backward()
    sum(o.sum() * (i + 1) for i, o in enumerate(out_t)).backward()
    for ours, theirs in zip(out, out_t):
        assert_close(ours, theirs, 1e-10, 1e-12, "cell output")
    for ours, theirs in zip([x, *state], [x_t, *state_t]):
        assert_close(ours.grad, theirs.grad, 1e-10, 1e-12, "input/state grad")
    theirs = dict(twin.named_parameters())
    for name, parameter in cell.named_parameters():
        assert_close(parameter.grad, theirs[name].grad, 1e-10, 1e-12, f"{name}.grad")


@pytest.mark.parametrize("kind", KINDS)
def test_padded_batch_matches_torch_packed_sequence(kind, torch, float64):
    layer = make_layer(kind)
    twin = torch_layer(torch, kind, layer, batch_first=True)
    x = random_tensor((3, 5, 3), "cpu", requires_grad=False)
    lengths = [2, 5, 3]
    output, final = layer(x, lengths=lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.tensor(x.numpy()), torch.tensor(lengths), batch_first=True, enforce_sorted=False
    )
    output_t, final_t = twin(packed)
    output_t, _ = torch.nn.utils.rnn.pad_packed_sequence(output_t, batch_first=True, total_length=5)
    assert_close(output, output_t, 1e-10, 1e-12, "padded output")
    for ours, theirs in zip(as_list(final), as_list(final_t)):
        assert_close(ours, theirs, 1e-10, 1e-12, "final state")


# ---------------------------------------------------------------- padding, TBPTT, long sequences


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("fused", [True, False])
def test_padded_steps_change_nothing(kind, fused, device, float64):
    """Each sequence of a padded batch gives what it gives alone, and its padding gets no gradient."""
    layer = make_layer(kind, fused=fused, device=device)
    lengths = [4, 1, 3]
    x = random_tensor((3, 4, 3), device)
    output, final = layer(x, lengths=lengths)
    output.sum().backward()
    batch_grads = [p.grad.numpy() for p in layer.parameters()]
    layer.zero_grad()
    for b, length in enumerate(lengths):
        alone = tl.tensor(x.numpy()[b : b + 1, :length], device=device, requires_grad=True)
        output_alone, final_alone = layer(alone)
        output_alone.sum().backward()
        assert_close(output[b, :length], output_alone[0], 1e-12, 1e-12, f"sequence {b} output")
        assert_close(output[b, length:], np.zeros((4 - length, 4)), name=f"sequence {b} padded output")
        for ours, theirs in zip(as_list(final), as_list(final_alone)):
            assert_close(ours[:, b], theirs[:, 0], 1e-12, 1e-12, f"sequence {b} final state")
        assert_close(x.grad[b, :length], alone.grad[0], 1e-12, 1e-12, f"sequence {b} x.grad")
        assert_close(x.grad[b, length:], np.zeros((4 - length, 3)), name=f"sequence {b} padded x.grad")
    for ours, parameter in zip(batch_grads, layer.parameters()):
        assert_close(ours, parameter.grad, 1e-10, 1e-12, "parameter grad summed over the sequences")


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_truncated_bptt_carries_detached_state(kind, float64):
    """Chunks with the state carried by detach(): the forward is the full sequence's, the
    gradient stops at the chunk boundary (it equals the chunk's gradient from that state)."""
    layer = make_layer(kind)
    x = random_tensor((2, 6, 3), "cpu", requires_grad=False)
    full_output, full_final = layer(x)
    state, outputs = None, []
    for start in (0, 2, 4):
        layer.zero_grad()
        output, state = layer(x[:, start : start + 2], state)
        output.sum().backward()
        outputs.append(output)
        chunk_grads = [p.grad.numpy() for p in layer.parameters()]
        state = tuple(s.detach() for s in state) if kind == "lstm" else state.detach()
    assert_close(tl.concat(outputs, axis=1), full_output, 1e-12, 1e-12, "chunked output")
    for ours, theirs in zip(as_list(state), as_list(full_final)):
        assert_close(ours, theirs, 1e-12, 1e-12, "final state after the chunks")
    previous = tuple(tl.tensor(s.numpy()) for s in as_list(layer(x[:, :4])[1]))
    layer.zero_grad()
    layer(x[:, 4:], previous if kind == "lstm" else previous[0])[0].sum().backward()
    for ours, parameter in zip(chunk_grads, layer.parameters()):
        assert_close(ours, parameter.grad, 1e-12, 1e-12, "last chunk's gradient")


@pytest.mark.parametrize("fused", [True, False])
def test_two_thousand_steps_forward_and_backward(fused):
    layer = nn.LSTM(2, 3, fused=fused)
    x = random_tensor((1, 2000, 2), "cpu")
    output, (h_n, c_n) = layer(x)
    (output.sum() + c_n.sum()).backward()
    assert output.shape == (1, 2000, 3) and x.grad.shape == x.shape
    assert np.isfinite(layer.weight_hh_l0.grad.numpy()).all()


# ---------------------------------------------------------------- layout, parameters, teaching aid


@pytest.mark.parametrize("kind", KINDS)
def test_parameter_names_shapes_and_init_as_torch(kind, torch):
    layer = make_layer(kind, input_size=5, hidden_size=16, num_layers=2)
    twin = getattr(torch.nn, KINDS[kind][2])(5, 16, 2, **KINDS[kind][3])
    theirs = [(name, tuple(p.shape)) for name, p in twin.named_parameters()]
    assert [(name, p.shape) for name, p in layer.named_parameters()] == theirs
    values = np.concatenate([p.numpy().ravel() for p in layer.parameters()])
    assert np.abs(values).max() <= 0.25 and np.abs(values).max() > 0.2  # U(-1/√16, 1/√16)
    assert [n for n, _ in make_layer(kind, bias=False).named_parameters()] == [
        "weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1"
    ]


def test_output_shapes_and_layouts():
    x = random_tensor((3, 5, 2), "cpu", requires_grad=False)
    output, (h_n, c_n) = nn.LSTM(2, 4, num_layers=2)(x)
    assert output.shape == (3, 5, 4) and h_n.shape == c_n.shape == (2, 3, 4)
    output, h_n = nn.GRU(2, 4, batch_first=False)(x)
    assert output.shape == (3, 5, 4) and h_n.shape == (1, 5, 4)
    assert_close(output[-1], h_n[0], name="last output is h_n")


def test_hidden_gradient_norms_are_the_gradients_of_each_state(float64):
    """‖∂L/∂h_t‖ equals the gradient of a run that starts from h_t (a fused, independent path)."""
    layer = nn.RNN(2, 3)
    x = random_tensor((2, 6, 2), "cpu", requires_grad=False)
    norms = hidden_gradient_norms(layer, x, lambda output: output[:, -1].sum())
    assert norms.shape == (1, 6)
    assert norms[0, -1] == pytest.approx(np.sqrt(2 * 3))
    states = layer.unroll(x)[0]
    for t in range(5):
        h_t = tl.tensor(states[t].numpy()[None], requires_grad=True)
        output, _ = layer(x[:, t + 1 :], h_t)
        output[:, -1].sum().backward()
        assert norms[0, t] == pytest.approx(np.linalg.norm(h_t.grad.numpy()), rel=1e-10)


# ---------------------------------------------------------------- errors that teach


def test_errors_name_expected_and_actual():
    lstm = nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(ShapeError, match=r"3-D input \(batch, time, input_size\).*shape \(5, 3\).*nn.LSTMCell"):
        lstm(tl.zeros(5, 3))
    with pytest.raises(ShapeError, match=r"input has 7 features.*expected input_size=3"):
        lstm(tl.zeros(2, 5, 7))
    with pytest.raises(ShapeError, match=r"needs at least one time step, got shape \(2, 0, 3\)"):
        lstm(tl.zeros(2, 0, 3))
    with pytest.raises(ShapeError, match=r"h0 has shape \(1, 2, 4\), expected \(2, 2, 4\)"):
        lstm(tl.zeros(2, 5, 3), (tl.zeros(1, 2, 4), tl.zeros(2, 2, 4)))
    with pytest.raises(ShapeError, match=r"h0 has shape \(2, 5, 4\), expected \(2, 2, 4\).*check batch_first"):
        lstm(tl.zeros(2, 5, 3), (tl.zeros(2, 5, 4), tl.zeros(2, 5, 4)))
    with pytest.raises(ValueError, match=r"LSTM: the state must be a pair \(h, c\), got 1 tensors"):
        lstm(tl.zeros(2, 5, 3), tl.zeros(2, 2, 4))
    with pytest.raises(TypeError, match=r"input has dtype float64 but the parameters have float32"):
        lstm(tl.zeros(2, 5, 3, dtype=np.float64))
    with pytest.raises(ValueError, match=r"lengths must be 2 integers.*shape \(3,\)"):
        lstm(tl.zeros(2, 5, 3), lengths=[1, 2, 3])
    with pytest.raises(ValueError, match=r"every length must lie in 1..5.*got 0..5"):
        lstm(tl.zeros(2, 5, 3), lengths=[0, 5])
    with pytest.raises(ShapeError, match=r"GRUCell expects a 2-D input \(batch, input_size=3\).*\(2, 5, 3\).*nn.GRU"):
        nn.GRUCell(3, 4)(tl.zeros(2, 5, 3))
    with pytest.raises(ShapeError, match=r"the state h has shape \(2, 5\), expected \(2, 4\)"):
        nn.RNNCell(3, 4)(tl.zeros(2, 3), tl.zeros(2, 5))
    with pytest.raises(ValueError, match=r"LSTMCell: the state must be a pair \(h, c\), got 1 tensors"):
        nn.LSTMCell(3, 4)(tl.zeros(2, 3), tl.zeros(2, 4))
    with pytest.raises(ValueError, match=r"nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
