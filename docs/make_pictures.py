"""Draw the pictures the README shows (docs/images/): run ``python docs/make_pictures.py``.

Needs the ``examples`` extra (scikit-learn, matplotlib) and graphviz's ``dot`` program.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import fusion
from fusion import nn, optim
from fusion.data import DataLoader, StandardScaler, TensorDataset, train_test_split
from fusion.train import fit
from fusion.viz import (
    draw_architecture,
    draw_graph,
    plot_confusion_matrix,
    plot_learning_curves,
    record_scopes,
)

HERE = Path(__file__).parent / "images"


def main() -> None:
    HERE.mkdir(exist_ok=True)
    fusion.manual_seed(0)
    X, y = fusion.datasets.digits()
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.25, seed=0, stratify=y)
    scaler = StandardScaler().fit(X_train)
    X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)
    runs = {}
    for name, lr in (("Adam lr 1e-3", 1e-3), ("SGD lr 0.05", None)):
        fusion.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
        optimizer = (optim.Adam(model.parameters(), lr=lr) if lr else
                     optim.SGD(model.parameters(), lr=0.05))
        runs[name] = fit(model, nn.CrossEntropyLoss(), optimizer,
                         DataLoader(TensorDataset(X_train, y_train), batch_size=32, shuffle=True,
                                    seed=0),
                         DataLoader(TensorDataset(X_val, y_val), batch_size=512), epochs=15,
                         verbose=False)
    plot_learning_curves(runs, save=HERE / "learning_curves.png")
    predicted = model(fusion.Tensor(X_val)).numpy().argmax(axis=1)
    plot_confusion_matrix(y_val, predicted, save=HERE / "confusion_matrix.png")

    draw_architecture(model, (32, 64), title="digits MLP").render(
        outfile=HERE / "architecture.svg", format="svg", cleanup=True)
    small = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with record_scopes(small) as scopes:
        loss = nn.CrossEntropyLoss()(small(fusion.randn(5, 3)), fusion.Tensor([0, 1, 1, 0, 1]))
    draw_graph(loss, show_values=False, params=dict(small.named_parameters()),
               scopes=scopes, collapse=1).render(outfile=HERE / "graph.svg", format="svg",
                                                 cleanup=True)


if __name__ == "__main__":
    main()
