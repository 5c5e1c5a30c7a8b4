"""Drawings of the computation graph that produced a tensor (graphviz)."""

from __future__ import annotations

import numpy as np

from ..core.tensor import Tensor

# Colours follow the conventions people know from drawing autograd graphs.
_LEAF_GRAD = "lightblue"  # leaves that require grad (what an optimizer updates)
_LEAF = "lightgrey"  # constants and inputs
_OUTPUT = "darkolivegreen1"  # the tensor drawn
_OP = "white"


def _summary(t: Tensor) -> str:
    """A few values, enough to recognise a small tensor."""
    values = t.numpy()
    if values.size <= 4:
        return np.array2string(values.reshape(-1), precision=4, separator=", ")
    return f"mean {float(values.astype(np.float64).mean()):.4g}"


def _label(t: Tensor, show_values: bool) -> str:
    shape = "x".join(map(str, t.shape)) or "scalar"
    lines = [t._op or ("parameter" if t.requires_grad else "input"), f"{shape} {t.dtype.name}"]
    if show_values:
        lines.append(f"data {_summary(t)}")
        if t.grad is not None:
            lines.append(f"grad {_summary(t.grad)}")
    return "\n".join(lines)


def draw_graph(tensor: Tensor, show_values: bool = True, rankdir: str = "LR",
               max_nodes: int = 2000):
    """The graph of operations that produced ``tensor`` as a :class:`graphviz.Digraph`.

    One node per tensor, labelled with the op that made it, its shape and dtype (and a summary
    of its values and gradient with ``show_values``). Leaves that require grad are blue, other
    leaves grey, the drawn tensor green. Render with ``.render("graph", format="svg")`` where
    graphviz's ``dot`` program is installed; ``.source`` is the DOT text.

    >>> x = fusion.Tensor([1.0, 2.0], requires_grad=True)
    >>> dot = draw_graph((x * x).sum())
    """
    import graphviz

    dot = graphviz.Digraph("fusion", graph_attr={"rankdir": rankdir},
                           node_attr={"shape": "box", "style": "rounded,filled",
                                      "fontname": "Helvetica", "fontsize": "10"})
    seen: set[int] = set()
    stack = [tensor]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        if len(seen) >= max_nodes:
            raise ValueError(f"the graph has more than {max_nodes} tensors; raise max_nodes "
                             "to draw it anyway")
        seen.add(id(node))
        parents = node._ctx.parents if node._ctx is not None else ()
        if node is tensor:
            colour = _OUTPUT
        elif not parents:
            colour = _LEAF_GRAD if node.requires_grad else _LEAF
        else:
            colour = _OP
        dot.node(str(id(node)), _label(node, show_values), fillcolor=colour)
        for parent in parents:
            dot.edge(str(id(parent)), str(id(node)))
            stack.append(parent)
    return dot
