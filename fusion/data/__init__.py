"""Data pipelines: datasets, samplers, loaders, splitting and scaling.

>>> import numpy as np
>>> from fusion.data import DataLoader, TensorDataset
>>> loader = DataLoader(TensorDataset(np.zeros((10, 3)), np.arange(10)), batch_size=4)
>>> len(loader)
3
"""

from .dataset import Dataset, TensorDataset, default_collate
from .describe import Description, describe  # noqa: F401  (public: fusion.data.describe)
from .loader import DataLoader
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler
from .scaler import StandardScaler
from .split import train_test_split

__all__ = [
    "BatchSampler", "DataLoader", "Dataset", "RandomSampler", "Sampler", "SequentialSampler",
    "StandardScaler", "TensorDataset", "default_collate", "train_test_split",
]
