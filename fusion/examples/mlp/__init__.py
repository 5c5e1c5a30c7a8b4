"""The 42 school's "multilayer-perceptron": breast cancer diagnosis with a Fusion MLP.

Five subcommands of ``fusion-mlp`` (or ``python -m fusion.examples.mlp``), each usable alone::

    fusion-mlp dataset data.csv                      # the data, from scikit-learn's copy
    fusion-mlp split data.csv --valid 0.2 --seed 42  # data_train.csv, data_valid.csv
    fusion-mlp train --train data_train.csv --valid data_valid.csv --layer 24 24 \\
        --epochs 200 --batch_size 32 --learning_rate 0.001 --optimizer adam
    fusion-mlp predict --model saved_model --data data_valid.csv
    fusion-mlp plot run1.json run2.json -o compare.png

:mod:`.data` reads and checks the school's CSV format, :mod:`.model` builds, saves and loads
the network, :mod:`.cli` is the command line.
"""

from .cli import main

__all__ = ["main"]
