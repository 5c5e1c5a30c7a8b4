"""Feature standardisation: zero mean and unit variance, learnt on the training split."""

from __future__ import annotations

import numpy as np

from ..core.tensor import Tensor


class StandardScaler:
    """Scale each column to zero mean and unit (population) standard deviation.

    Fit it on the training split only, then transform every split with those statistics, so
    that nothing about the validation or test data leaks into training. The mean and standard
    deviation are computed with Fusion's reductions. A constant column keeps a scale of 1 (it
    becomes all zeros, never nan). ``transform`` returns the type it is given: a Tensor (on its
    backend) or a numpy array; integer input gives float32.

    >>> scaler = StandardScaler().fit(np.array([[1.0, 5.0], [3.0, 5.0]]))
    >>> scaler.mean_.tolist(), scaler.scale_.tolist()
    ([2.0, 5.0], [1.0, 1.0])
    >>> scaler.transform(np.array([[3.0, 5.0]])).tolist()
    [[1.0, 0.0]]
    """

    def __init__(self, with_mean: bool = True, with_std: bool = True):
        self.with_mean = with_mean
        self.with_std = with_std
        self.mean_: np.ndarray | None = None
        self.var_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.n_samples_seen_: int | None = None

    def fit(self, X) -> StandardScaler:
        """Learn each column's mean and standard deviation from ``X`` (rows are samples)."""
        x = X if isinstance(X, Tensor) else Tensor(np.asarray(X))
        if x.ndim != 2:
            raise ValueError(f"StandardScaler expects a 2-D array (samples, features), "
                             f"got shape {x.shape}")
        if x.shape[0] == 0:
            raise ValueError("cannot fit StandardScaler on 0 samples")
        x = x.detach()._float()
        mean = x.mean(axis=0)
        var = x.var(axis=0, correction=0)
        self.mean_ = mean.numpy()
        self.var_ = var.numpy()
        std = np.sqrt(self.var_)
        # a (numerically) constant column would divide by ~0: leave it unscaled
        tiny = 10 * np.finfo(std.dtype).eps * np.maximum(np.abs(self.mean_), 1.0)
        self.scale_ = np.where(std <= tiny, 1.0, std).astype(std.dtype)
        self.n_samples_seen_ = int(x.shape[0])
        return self

    def _check(self, X):
        if self.mean_ is None:
            raise RuntimeError("this StandardScaler is not fitted yet; call fit(X_train) first")
        width = X.shape[-1] if len(X.shape) else None
        if len(X.shape) != 2 or width != len(self.mean_):
            raise ValueError(f"expected an array of shape (n, {len(self.mean_)}), "
                             f"got {tuple(X.shape)}")

    def _apply(self, X, forward: bool):
        is_tensor = isinstance(X, Tensor)
        x = X if is_tensor else Tensor(np.asarray(X))
        self._check(x)
        x = x._float()
        mean = self.mean_ if self.with_mean else np.zeros_like(self.mean_)
        scale = self.scale_ if self.with_std else np.ones_like(self.scale_)
        mean = x._operand(mean.astype(x.dtype.np))
        scale = x._operand(scale.astype(x.dtype.np))
        out = (x - mean) / scale if forward else x * scale + mean
        return out if is_tensor else out.numpy()

    def transform(self, X):
        """``(X - mean) / scale`` with the fitted statistics."""
        return self._apply(X, forward=True)

    def inverse_transform(self, X):
        """``X * scale + mean``: undoes :meth:`transform`."""
        return self._apply(X, forward=False)

    def fit_transform(self, X):
        """Fit on ``X`` and transform it (for the training split only)."""
        return self.fit(X).transform(X)

    def state_dict(self) -> dict:
        """The fitted statistics as plain lists (JSON-ready), to use the scaler elsewhere."""
        if self.mean_ is None:
            raise RuntimeError("this StandardScaler is not fitted yet")
        return {"with_mean": self.with_mean, "with_std": self.with_std,
                "mean": self.mean_.tolist(), "var": self.var_.tolist(),
                "scale": self.scale_.tolist(), "n_samples_seen": self.n_samples_seen_,
                "dtype": str(self.mean_.dtype)}

    def load_state_dict(self, state: dict) -> StandardScaler:
        """Restore statistics written by :meth:`state_dict`."""
        try:
            dtype = np.dtype(state.get("dtype", "float64"))
            self.with_mean = bool(state["with_mean"])
            self.with_std = bool(state["with_std"])
            self.mean_ = np.asarray(state["mean"], dtype=dtype)
            self.var_ = np.asarray(state["var"], dtype=dtype)
            self.scale_ = np.asarray(state["scale"], dtype=dtype)
            self.n_samples_seen_ = int(state["n_samples_seen"])
        except KeyError as exc:
            raise ValueError(f"StandardScaler state is missing {exc}") from None
        if not (self.mean_.shape == self.var_.shape == self.scale_.shape) or self.mean_.ndim != 1:
            raise ValueError("StandardScaler state has mean, var and scale of different shapes")
        return self

    def __repr__(self) -> str:
        fitted = f", features={len(self.mean_)}" if self.mean_ is not None else ", not fitted"
        return f"StandardScaler(with_mean={self.with_mean}, with_std={self.with_std}{fitted})"
