"""Neural-network building blocks: modules, layers, losses, initialisation, save and load.

>>> model = fusion.nn.Sequential(
...     fusion.nn.Linear(4, 16), fusion.nn.ReLU(), fusion.nn.Linear(16, 3))
>>> loss = fusion.nn.CrossEntropyLoss()(model(fusion.randn(8, 4)), fusion.randint(0, 3, 8))
>>> loss.backward()
"""

from . import functional, init
from .activation import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .attention import MultiheadAttention
from .conv import AvgPool2d, Conv1d, Conv2d, ConvTranspose2d, MaxPool2d
from .layers import (
    BatchNorm1d,
    BatchNorm2d,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    LayerNorm,
    Linear,
    Unflatten,
)
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .module import LoadResult, Module, Sequential, StateDictError
from .parameter import Parameter
from .serialization import (
    FusionSerializationError,
    load,
    load_state_dict,
    read_safetensors,
    save,
    save_state_dict,
    write_safetensors,
)

__all__ = [
    "AvgPool2d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "Conv1d",
    "Conv2d", "ConvTranspose2d", "CrossEntropyLoss", "Dropout", "Embedding", "Flatten",
    "LayerNorm", "MaxPool2d", "MultiheadAttention", "Unflatten",
    "FusionSerializationError", "GELU", "Identity", "LeakyReLU", "Linear", "LoadResult",
    "LogSoftmax", "MSELoss", "Module", "NLLLoss", "Parameter", "ReLU", "Sequential", "Sigmoid",
    "Softmax", "StateDictError", "Tanh", "functional", "init", "load", "load_state_dict",
    "read_safetensors", "save", "save_state_dict", "write_safetensors",
]
