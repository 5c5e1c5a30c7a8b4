"""Pictures of tensors' graphs, models and training runs (graphviz, matplotlib and Bokeh).

matplotlib and Bokeh are imported only when a plot is drawn or a dashboard started.
"""

from .architecture import draw_architecture
from .dashboard import Dashboard, DashboardCallback
from .graph import draw_graph, record_scopes
from .plots import (
    plot_class_histograms,
    plot_confusion_matrix,
    plot_learning_curves,
    plot_pairs,
    plot_scatter,
)
from .schedule import draw_schedule

__all__ = [
    "Dashboard", "DashboardCallback", "draw_architecture", "draw_graph",
    "draw_schedule",
    "plot_class_histograms", "plot_confusion_matrix", "plot_learning_curves", "plot_pairs",
    "plot_scatter", "record_scopes",
]
