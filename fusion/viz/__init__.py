"""Pictures of tensors' graphs, models and training runs (graphviz and matplotlib)."""

from .graph import draw_graph

__all__ = ["draw_graph"]
