"""Pictures of what tinylm computes: the autograd graph, loss curves, gradient flow, attention.

The graph of a tensor is read from the tensor itself: ``t._ctx`` is the Function that made
``t`` and ``t._ctx.inputs`` are the tensors it was made from. ``to_dot`` turns that graph
into Graphviz's DOT text (pure Python, so it can be printed, tested and pasted into any
Graphviz viewer); ``draw_graph`` turns it into a picture, with Graphviz's ``dot`` program
when it is installed and with a plain matplotlib layout when it is not.

Each node is one tensor, labelled with the operation that made it (or its name, for a
leaf), its shape, and, once ``backward()`` has filled it in (leaves, and tensors that
called ``retain_grad()``), the norm of its gradient; a one-element tensor shows its value
and its gradient instead.
``backward()`` frees the graph unless given ``retain_graph=True``; a node whose inputs were
freed says so.

Every drawing function returns a ``matplotlib.figure.Figure``: shown as an image when it
is the last expression of a notebook cell, saved with ``fig.savefig(path)``. The figures
are made without pyplot, so none is shown twice or kept alive after you drop it.
matplotlib is imported only when a picture is drawn, so ``import tinylm`` stays light.
"""
from __future__ import annotations

import functools
import io
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from . import backend
from .tensor import Tensor, inputs_first

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Edge = tuple[int, int]

# the fill colour of each kind of node (see node_kind), in the DOT text and the matplotlib drawing
NODE_COLOURS = {"op": "#fff2cc", "leaf": "#cfe2f3", "constant": "white"}


# ------------------------------------------------------------------ the graph


def graph_of(root: Tensor) -> tuple[list[Tensor], list[Edge]]:
    """Every tensor ``root`` was computed from, inputs before outputs, and the edges.

    Returns ``(nodes, edges)``: ``nodes[0]`` is a leaf and ``nodes[-1]`` is ``root``; an edge
    ``(i, j)`` says that ``nodes[i]`` is an input of the operation that made ``nodes[j]``.
    Constants (Python numbers in an expression such as ``2 * x``) are nodes too.
    """
    order = inputs_first(root, _inputs_of)
    position = {id(node): i for i, node in enumerate(order)}
    edges = [(position[id(t)], position[id(node)]) for node in order for t in _inputs_of(node)]
    return order, edges


def _inputs_of(t: Tensor) -> tuple[Tensor, ...]:
    function = t._ctx
    return () if function is None or function.inputs is None else tuple(function.inputs)


def node_kind(t: Tensor) -> str:
    """"op" (made by an operation), "leaf" (made by you, requires grad) or "constant" (neither)."""
    if t._ctx is not None:
        return "op"
    return "leaf" if t.requires_grad else "constant"


def node_label(t: Tensor) -> list[str]:
    """The lines written in a tensor's node: what made it, its shape, value and gradient (norm)."""
    if t._ctx is None:
        title = t.name or ("leaf" if t.requires_grad else "constant" if t.data.size == 1 else "data")
    else:
        op = type(t._ctx).__name__
        title = f"{t.name} = {op}" if t.name else op
    lines = [title, f"shape {tuple(t.shape)}"]
    if t.data.size == 1:
        lines.append(f"value {t.item():.4g}")
    if t.grad is not None:
        lines.append(f"grad {t.grad.item():.4g}" if t.data.size == 1 else f"‖grad‖ {_norm(t.grad):.4g}")
    if t._ctx is not None and t._ctx.inputs is None:
        lines.append("(inputs freed by backward)")
    return lines


def _norm(t: Tensor) -> float:
    return float(np.linalg.norm(t.numpy().astype(np.float64)))


def _dot_style(t: Tensor) -> str:
    kind = node_kind(t)
    style = {"op": "rounded,filled", "leaf": "filled", "constant": "dashed"}[kind]
    return f'shape=box, style="{style}", fillcolor="{NODE_COLOURS[kind]}"'


def to_dot(root: Tensor) -> str:
    """Graphviz DOT text of the graph that computed ``root``, drawn left to right.

    Leaves that require grad are blue, results of operations yellow, constants dashed.
    Render it with ``dot -Tsvg``, or with ``draw_graph``.
    """
    nodes, edges = graph_of(root)
    lines = ["digraph autograd {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=11];']
    for i, t in enumerate(nodes):
        label = "\\n".join(_escape(line) for line in node_label(t))
        lines.append(f'  n{i} [label="{label}", {_dot_style(t)}];')
    lines.extend(f"  n{i} -> n{j};" for i, j in edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


# ------------------------------------------------------------------ figures


@functools.cache
def _figure_class() -> type:
    from matplotlib.figure import Figure

    class NotebookFigure(Figure):
        """A Figure that Jupyter shows as a PNG image (a Figure made without pyplot shows as text)."""

        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", bbox_inches="tight")
            return buffer.getvalue()

    return NotebookFigure


# ------------------------------------------------------------------ drawing the graph


def draw_graph(root: Tensor, path: str | Path | None = None, engine: str = "auto") -> "Figure":
    """Draw the graph that computed ``root`` and return it as a matplotlib Figure.

    Args:
        root: usually a loss; call ``backward(retain_graph=True)`` first to see gradients.
        path: also save the picture there; the suffix (.svg, .png, .pdf) picks the format.
        engine: "dot" (Graphviz, the tidier layout), "matplotlib" (layers by depth, no
            extra software) or "auto": "dot" when the program is installed, else "matplotlib".
    """
    if engine not in ("auto", "dot", "matplotlib"):
        raise ValueError(f"draw_graph: engine must be 'auto', 'dot' or 'matplotlib', got {engine!r}")
    dot_program = shutil.which("dot")
    if engine == "dot" and dot_program is None:
        raise RuntimeError(
            "draw_graph(engine='dot'): Graphviz's `dot` program is not installed "
            "(e.g. `apt install graphviz` or `brew install graphviz`); engine='matplotlib' needs nothing extra"
        )
    if engine == "matplotlib" or dot_program is None:
        figure = _draw_layered(root)
        if path is not None:
            figure.savefig(path, bbox_inches="tight")
        return figure
    return _draw_with_dot(dot_program, to_dot(root), path)


def _run_dot(dot_program: str, dot_text: str, output_format: str, *options: str) -> bytes:
    result = subprocess.run(
        [dot_program, f"-T{output_format}", *options], input=dot_text.encode(), capture_output=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"Graphviz `dot -T{output_format}` failed: {result.stderr.decode(errors='replace')}")
    return result.stdout


def _draw_with_dot(dot_program: str, dot_text: str, path: str | Path | None) -> "Figure":
    from matplotlib.image import imread

    if path is not None:
        Path(path).write_bytes(_run_dot(dot_program, dot_text, Path(path).suffix.lstrip(".") or "svg"))
    dpi = 100
    image = imread(io.BytesIO(_run_dot(dot_program, dot_text, "png", f"-Gdpi={dpi}")))
    height, width = image.shape[:2]
    figure = _figure_class()(figsize=(width / dpi, height / dpi), dpi=dpi)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.imshow(image)
    axes.set_axis_off()
    return figure


def layer_positions(nodes: Sequence[Tensor], edges: Sequence[Edge]) -> list[tuple[float, float]]:
    """(x, y) for every node: x is its depth, y spreads the nodes of one depth apart.

    An operation's depth is one more than its deepest input's; a leaf sits one step before
    the shallowest operation that uses it. ``nodes`` come inputs first (as ``graph_of``
    returns them), so one pass over the edges in that order sets every operation's depth.
    """
    depth = [0] * len(nodes)
    for i, j in sorted(edges, key=lambda edge: edge[1]):
        depth[j] = max(depth[j], depth[i] + 1)
    first_use: dict[int, int] = {}
    for i, j in edges:
        if node_kind(nodes[i]) != "op":
            first_use[i] = min(first_use.get(i, depth[j]), depth[j])
    for i, use in first_use.items():
        depth[i] = use - 1
    layers: dict[int, list[int]] = {}
    for index, d in enumerate(depth):
        layers.setdefault(d, []).append(index)
    positions = [(0.0, 0.0)] * len(nodes)
    for d, members in layers.items():
        for rank, index in enumerate(members):
            positions[index] = (float(d), (len(members) - 1) / 2 - rank)
    return positions


def _draw_layered(root: Tensor) -> "Figure":
    nodes, edges = graph_of(root)
    positions = layer_positions(nodes, edges)
    columns = 1 + max(x for x, _ in positions) - min(x for x, _ in positions)
    rows = 1 + max(abs(y) for _, y in positions) * 2
    # capped: a long chain (an RNN unrolled over 100 steps) must still fit a PNG's size limit
    figure = _figure_class()(figsize=(min(2.2 * columns + 0.4, 60), min(1.0 * rows + 0.6, 60)))
    axes = figure.add_subplot()
    boxes = []
    for t, (x, y) in zip(nodes, positions):
        kind = node_kind(t)
        boxes.append(axes.text(
            x, y, "\n".join(node_label(t)), ha="center", va="center", fontsize=8,
            bbox={"boxstyle": "round,pad=0.4", "facecolor": NODE_COLOURS[kind], "edgecolor": "0.3",
                  "linestyle": "--" if kind == "constant" else "-"},
        ))
    for i, j in edges:
        # an edge that skips a layer bends, so it does not run through the nodes in between
        bend = 0.0 if positions[j][0] - positions[i][0] <= 1 else -0.35
        axes.annotate(
            "", xy=(0, 0.5), xycoords=boxes[j], xytext=(1, 0.5), textcoords=boxes[i],
            arrowprops={"arrowstyle": "-|>", "color": "0.4", "shrinkA": 6, "shrinkB": 6,
                        "connectionstyle": f"arc3,rad={bend}"},
        )
    axes.set_xlim(min(x for x, _ in positions) - 0.6, max(x for x, _ in positions) + 0.6)
    axes.set_ylim(-rows / 2, rows / 2)
    axes.set_axis_off()
    return figure


# ------------------------------------------------------------------ plots


def _host(values) -> np.ndarray:
    if isinstance(values, Tensor):
        return values.numpy()
    if hasattr(values, "__cuda_array_interface__"):
        return backend.to_numpy(values)
    return np.asarray(values, dtype=np.float64)


def _new_axes(ax: "Axes | None", figsize: tuple[float, float]) -> tuple["Figure", "Axes"]:
    if ax is not None:
        return ax.figure, ax
    figure = _figure_class()(figsize=figsize, layout="constrained")
    return figure, figure.add_subplot()


def plot_loss(
    history: Sequence[float] | Mapping[str, Sequence[float]],
    ax: "Axes | None" = None,
    smooth: int = 1,
    ylabel: str = "loss",
    log_scale: bool = False,
) -> "Figure":
    """Loss per step: one curve, or one per label when given ``{label: losses}``.

    ``smooth > 1`` also draws the moving average over that many steps (the raw curve
    fades behind it), which makes the trend of a noisy mini-batch loss readable.
    """
    if smooth < 1:
        raise ValueError(f"plot_loss: smooth is a number of steps (>= 1), got {smooth}")
    curves = history if isinstance(history, Mapping) else {None: history}
    figure, ax = _new_axes(ax, (6, 3.5))
    for label, values in curves.items():
        values = _host(values)
        line, = ax.plot(np.arange(len(values)), values, label=label, alpha=0.35 if smooth > 1 else 1.0)
        if smooth > 1 and len(values) >= smooth:
            averaged = np.convolve(values, np.ones(smooth) / smooth, mode="valid")
            ax.plot(np.arange(smooth - 1, len(values)), averaged, color=line.get_color())
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if log_scale:
        ax.set_yscale("log")
    if isinstance(history, Mapping):
        ax.legend()
    ax.grid(alpha=0.3)
    return figure


def plot_gradient_norms(norms_by_label: Mapping[str, Sequence[float]], ax: "Axes | None" = None) -> "Figure":
    """‖∂L/∂h_t‖ against the time step t, one curve per label, on a log scale.

    A straight falling line is a gradient that vanishes geometrically as it flows back
    through time; a rising one explodes.
    """
    figure, ax = _new_axes(ax, (6, 3.5))
    for label, norms in norms_by_label.items():
        norms = _host(norms)
        ax.plot(np.arange(len(norms)), norms, marker=".", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("time step t")
    ax.set_ylabel(r"$\|\partial L / \partial h_t\|$")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    return figure


def plot_attention(
    weights,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    ax: "Axes | None" = None,
) -> "Figure":
    """A heat map of attention weights (L, S): row i is how query i spreads over the keys.

    ``x_labels`` name the keys (columns), ``y_labels`` the queries (rows).
    """
    weights = _host(weights)
    if weights.ndim != 2:
        raise ValueError(f"plot_attention: expected weights of shape (queries, keys), got shape {weights.shape}")
    for name, labels, size in (("x_labels", x_labels, weights.shape[1]), ("y_labels", y_labels, weights.shape[0])):
        if labels is not None and len(labels) != size:
            what = "keys" if name == "x_labels" else "queries"
            raise ValueError(f"plot_attention: {name} has {len(labels)} labels for {size} {what}")
    height, width = weights.shape
    figure, ax = _new_axes(ax, (min(1 + 0.45 * width, 12), min(1 + 0.4 * height, 10)))
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, aspect="auto")
    figure.colorbar(image, ax=ax, label="weight")
    if x_labels is not None:
        ax.set_xticks(range(width), labels=list(x_labels), rotation=90)
    if y_labels is not None:
        ax.set_yticks(range(height), labels=list(y_labels))
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    return figure
