"""tinylm.viz: DOT text of the autograd graph, drawing it, and the plot helpers."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

import tinylm as tl
from tinylm import viz

matplotlib = pytest.importorskip("matplotlib", reason="matplotlib not installed: drawing is skipped")
from matplotlib.figure import Figure  # noqa: E402


def small_graph():
    """loss = sum(a * b + 2 * (a * b)) with a (2,), b a scalar; the product reused twice."""
    a = tl.tensor([1.0, 2.0], requires_grad=True)
    a.name = "a"
    b = tl.tensor(3.0, requires_grad=True)
    b.name = "b"
    product = a * b
    product.retain_grad()
    loss = (product + product * 2.0).sum()
    return a, b, product, loss


def node_lines(dot: str) -> dict[str, str]:
    """{node id: its label} for every node statement of a DOT text."""
    return dict(re.findall(r'^\s*(n\d+) \[label="([^"]*)"', dot, flags=re.MULTILINE))


def edge_pairs(dot: str) -> list[tuple[str, str]]:
    return re.findall(r"^\s*(n\d+) -> (n\d+);", dot, flags=re.MULTILINE)


def test_to_dot_has_a_node_per_tensor_and_an_edge_per_input():
    *_, loss = small_graph()
    dot = viz.to_dot(loss)
    assert dot.startswith("digraph autograd {") and dot.rstrip().endswith("}")
    labels = node_lines(dot)
    # a, b, a*b, the constant 2, (a*b)*2, the sum of the two, the total
    assert len(labels) == 7
    titles = sorted(label.split("\\n")[0] for label in labels.values())
    assert titles == ["Add", "Mul", "Mul", "Sum", "a", "b", "constant"]
    assert len(edge_pairs(dot)) == 7
    by_title = {label.split("\\n")[0]: node for node, label in labels.items()}
    assert (by_title["a"], by_title["Add"]) not in edge_pairs(dot)
    assert (by_title["Add"], by_title["Sum"]) in edge_pairs(dot)


def test_to_dot_labels_show_shape_value_and_gradient():
    a, b, product, loss = small_graph()
    before = node_lines(viz.to_dot(loss))
    assert not any("grad" in label for label in before.values())
    loss.backward(retain_graph=True)
    labels = list(node_lines(viz.to_dot(loss)).values())
    a_label = next(label for label in labels if label.startswith("a\\n"))
    assert "shape (2,)" in a_label
    assert f"‖grad‖ {np.linalg.norm(a.grad.numpy()):.4g}" in a_label
    b_label = next(label for label in labels if label.startswith("b\\n"))
    assert "shape ()" in b_label and "value 3" in b_label and f"grad {b.grad.item():.4g}" in b_label
    with_grad = [label for label in labels if "grad" in label]
    assert len(with_grad) == 3  # a, b and the product that called retain_grad()
    total = next(label for label in labels if label.startswith("Sum"))
    assert f"value {loss.item():.4g}" in total


def test_to_dot_marks_a_graph_freed_by_backward():
    *_, loss = small_graph()
    loss.backward()
    dot = viz.to_dot(loss)
    assert len(node_lines(dot)) == 1
    assert "(inputs freed by backward)" in dot
    assert edge_pairs(dot) == []


def test_to_dot_escapes_quotes_in_names():
    x = tl.tensor([1.0], requires_grad=True)
    x.name = 'say "hi"'
    dot = viz.to_dot(x * x)
    assert 'label="say \\"hi\\"' in dot
    assert len(edge_pairs(dot)) == 2  # x is used twice by the same Mul


def test_layer_positions_put_an_op_after_its_deepest_input_and_a_leaf_before_its_first_user():
    *_, loss = small_graph()
    w = tl.tensor([0.5, -1.0], requires_grad=True)
    reused = ((w * 3.0).tanh() * w).sum()  # w feeds a depth-1 and a depth-3 product
    for root in (loss, reused):
        nodes, edges = viz.graph_of(root)
        positions = viz.layer_positions(nodes, edges)
        for i, j in edges:
            assert positions[i][0] < positions[j][0], f"edge {i}->{j} goes backwards"
        for leaf, t in enumerate(nodes):
            if viz.node_kind(t) != "op":
                first_user = min(positions[j][0] for i, j in edges if i == leaf)
                assert first_user - positions[leaf][0] == 1


def test_draw_graph_without_graphviz_falls_back_to_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda program: None)
    *_, loss = small_graph()
    loss.backward(retain_graph=True)
    path = tmp_path / "graph.png"
    figure = viz.draw_graph(loss, path)
    assert isinstance(figure, Figure)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    texts = [text.get_text() for text in figure.axes[0].texts if text.get_text()]  # arrows are empty texts
    assert len(texts) == 7 and any(text.startswith("a\n") and "‖grad‖" in text for text in texts)


def test_draw_graph_engine_dot_without_graphviz_says_what_to_install(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda program: None)
    *_, loss = small_graph()
    with pytest.raises(RuntimeError, match="Graphviz's `dot` program is not installed"):
        viz.draw_graph(loss, engine="dot")
    with pytest.raises(ValueError, match="engine must be 'auto', 'dot' or 'matplotlib', got 'neato'"):
        viz.draw_graph(loss, engine="neato")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_draw_graph_with_graphviz_writes_svg(tmp_path):
    *_, loss = small_graph()
    path = tmp_path / "graph.svg"
    figure = viz.draw_graph(loss, path, engine="dot")
    assert isinstance(figure, Figure)
    assert "<svg" in path.read_text()


def test_plot_loss_draws_one_curve_or_one_per_label_with_smoothing():
    figure = viz.plot_loss([3.0, 2.0, 1.5, 1.0])
    assert isinstance(figure, Figure)
    (line,) = figure.axes[0].lines
    np.testing.assert_allclose(line.get_ydata(), [3.0, 2.0, 1.5, 1.0])
    figure = viz.plot_loss({"rnn": [4.0, 2.0, 2.0], "lstm": tl.tensor([3.0, 1.0, 1.0])}, smooth=2)
    lines = figure.axes[0].lines
    assert len(lines) == 4  # raw and averaged, per label
    np.testing.assert_allclose(lines[1].get_ydata(), [3.0, 2.0])
    assert [t.get_text() for t in figure.axes[0].get_legend().get_texts()] == ["rnn", "lstm"]
    with pytest.raises(ValueError, match="smooth is a number of steps"):
        viz.plot_loss([1.0], smooth=0)


def test_plot_gradient_norms_uses_a_log_scale_over_time():
    figure = viz.plot_gradient_norms({"RNN": [1.0, 0.1, 0.01], "LSTM": [1.0, 0.9, 0.8]})
    axes = figure.axes[0]
    assert isinstance(figure, Figure)
    assert axes.get_yscale() == "log"
    assert len(axes.lines) == 2
    np.testing.assert_allclose(axes.lines[0].get_xdata(), [0, 1, 2])


def test_plot_attention_labels_queries_and_keys(device):
    weights = tl.tensor([[0.25, 0.75], [0.5, 0.5], [1.0, 0.0]], device=device)
    figure = viz.plot_attention(weights, x_labels=["k1", "k2"], y_labels=["q1", "q2", "q3"])
    axes = figure.axes[0]
    assert isinstance(figure, Figure)
    np.testing.assert_allclose(axes.images[0].get_array(), weights.numpy())
    assert [t.get_text() for t in axes.get_xticklabels()] == ["k1", "k2"]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["q1", "q2", "q3"]
    with pytest.raises(ValueError, match=r"expected weights of shape \(queries, keys\), got shape \(3,\)"):
        viz.plot_attention([0.1, 0.2, 0.7])
    with pytest.raises(ValueError, match="x_labels has 3 labels for 2 keys"):
        viz.plot_attention(weights, x_labels=["a", "b", "c"])


def test_figures_show_as_png_in_a_notebook():
    figure = viz.plot_loss([2.0, 1.0])
    assert figure._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
