"""A drawing of the kernels that realising a tensor would run (graphviz).

One box per kernel, its ops listed inside, the loop shape and the kind of view each input is
read through; grey boxes are buffers already in memory; an edge runs from each kernel or
buffer to the kernels that read it. Drawing computes nothing: the tensors stay lazy.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..core.schedule import schedule
from ..core.tensor import Tensor


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) or "scalar"


def draw_schedule(tensor: Tensor | Sequence[Tensor], rankdir: str = "TB"):
    """The kernels that ``fusion.realize(tensor)`` would run, as a :class:`graphviz.Digraph`.

    On a backend that runs eagerly (``lazy = False``, or under ``fusion.eager()``) values are
    computed as soon as they are asked for, so there is nothing left to schedule: the drawing
    then holds the realised tensors alone.

    >>> with fusion.use_backend("numba"):
    ...     x = fusion.randn(8, 4)
    ...     dot = draw_schedule(x.softmax(-1))
    >>> dot.render("schedule", format="svg")  # doctest: +SKIP
    """
    import graphviz

    tensors = [tensor] if isinstance(tensor, Tensor) else list(tensor)
    buffers = [t.data for t in tensors]
    dot = graphviz.Digraph("schedule", graph_attr={"rankdir": rankdir},
                           node_attr={"shape": "box", "fontname": "monospace",
                                      "fontsize": "10"})
    pending = [b for b in buffers if not b.realized]
    backend = pending[0].backend if pending else None
    fuse = backend is not None and "fuse" in backend.capabilities
    rows = fuse and getattr(backend, "row_reductions", False)
    items = schedule(pending, recompute=fuse, rows=rows) if pending else []
    ids: dict[int, str] = {}
    for b in buffers:
        if b.realized:
            ids[id(b)] = f"b{len(ids)}"
            dot.node(ids[id(b)], f"realised\n{_shape(b.shape)} {b.dtype.name}",
                     style="filled", fillcolor="darkolivegreen1")
    for k, item in enumerate(items):
        name = f"k{k}"
        if item.kernel is None:
            label = f"{item.output.op.value}\n{_shape(item.output.shape)} (view / fill)"
        else:
            ops = [op.value for op in item.kernel.ops] or ["copy"]
            views = ", ".join(item.kernel.views) or "no inputs"
            label = "\n".join([item.kernel.name, f"loop {_shape(item.shape)}", *ops,
                               f"reads: {views}",
                               f"out {_shape(item.output.shape)} {item.output.dtype.name}"])
        final = any(item.output is b for b in buffers)
        dot.node(name, label, style="filled",
                 fillcolor="darkolivegreen1" if final else "white")
        sources = item.inputs if item.kernel is not None else [
            s for n in item.nodes for s in n.srcs if s.realized or id(s) in ids]
        for source in sources:
            if id(source) not in ids:
                ids[id(source)] = f"b{len(ids)}"
                dot.node(ids[id(source)], f"buffer\n{_shape(source.shape)} {source.dtype.name}",
                         style="filled", fillcolor="lightgrey")
            dot.edge(ids[id(source)], name)
        ids[id(item.output)] = name
    return dot
