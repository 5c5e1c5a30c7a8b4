"""Optimizers, learning-rate schedules and gradient clipping.

>>> opt = fusion.optim.Adam(model.parameters(), lr=1e-3)
>>> for x, y in batches:
...     opt.zero_grad()
...     loss_fn(model(x), y).backward()
...     opt.step()
"""

from .adam import Adam, AdamW
from .clip import clip_grad_norm_, clip_grad_value_
from .lr_scheduler import CosineAnnealingLR, ExponentialLR, LRScheduler, StepLR
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import GD, SGD

__all__ = [
    "GD", "SGD", "Adam", "AdamW", "CosineAnnealingLR", "ExponentialLR", "LRScheduler",
    "Optimizer", "RMSprop", "StepLR", "clip_grad_norm_", "clip_grad_value_",
]
