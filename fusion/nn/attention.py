"""Multi-head attention, on :func:`fusion.nn.functional.scaled_dot_product_attention`."""

from __future__ import annotations

import math

from ..core.backend import Backend
from ..core.dtypes import default_float, to_dtype
from ..core.tensor import Tensor, zeros
from . import functional as F
from . import init
from .layers import Linear
from .module import Module
from .parameter import Parameter


class MultiheadAttention(Module):
    """PyTorch's ``nn.MultiheadAttention``: queries, keys and values projected by one packed
    ``in_proj_weight`` (3 E, E) (or three weights where ``kdim``/``vdim`` differ from E), split
    into ``num_heads`` heads, attended, and projected by ``out_proj``.

    Inputs are (L, N, E) (or (N, L, E) with ``batch_first``, or unbatched (L, E)); the result
    is ``(output, weights)`` with the attention weights averaged over heads (per head with
    ``average_attn_weights=False``; None with ``need_weights=False``). ``key_padding_mask``
    (N, S) and ``attn_mask`` (L, S) or (N * heads, L, S) are True where attention is *not*
    allowed (or floats added to the scores); ``is_causal`` masks the future. State dict names
    match PyTorch's: ``in_proj_weight``, ``in_proj_bias``, ``out_proj.weight``,
    ``out_proj.bias``.

    >>> mha = MultiheadAttention(8, 2, batch_first=True)
    >>> x = fusion.randn(3, 5, 8)
    >>> out, weights = mha(x, x, x)
    >>> out.shape, weights.shape
    ((3, 5, 8), (3, 5, 5))
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = False,
                 dtype=None, backend: str | Backend | None = None):
        super().__init__()
        if embed_dim < 1 or num_heads < 1 or embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be a positive "
                             f"multiple of num_heads ({num_heads})")
        if add_bias_kv or add_zero_attn:
            raise ValueError("MultiheadAttention: add_bias_kv and add_zero_attn are not "
                             "supported")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.head_dim = self.embed_dim // self.num_heads
        self.kdim = self.embed_dim if kdim is None else int(kdim)
        self.vdim = self.embed_dim if vdim is None else int(vdim)
        self.dropout, self.batch_first = float(dropout), bool(batch_first)
        self._packed = self.kdim == self.embed_dim and self.vdim == self.embed_dim
        dtype = to_dtype(dtype or default_float)
        e = self.embed_dim
        if self._packed:
            self.in_proj_weight = Parameter(zeros(3 * e, e, dtype=dtype, backend=backend))
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = Parameter(zeros(e, e, dtype=dtype, backend=backend))
            self.k_proj_weight = Parameter(zeros(e, self.kdim, dtype=dtype, backend=backend))
            self.v_proj_weight = Parameter(zeros(e, self.vdim, dtype=dtype, backend=backend))
        if bias:
            self.in_proj_bias = Parameter(zeros(3 * e, dtype=dtype, backend=backend))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(e, e, bias=bias, dtype=dtype, backend=backend)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform projections, zero biases (PyTorch's initialisation)."""
        if self._packed:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for weight in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def _projected(self, x: Tensor, which: int) -> Tensor:
        e = self.embed_dim
        if self._packed:
            weight = self.in_proj_weight[which * e:(which + 1) * e]
        else:
            weight = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)[which]
        out = x.matmul(weight.T)
        if self.in_proj_bias is not None:
            out = out + self.in_proj_bias[which * e:(which + 1) * e]
        return out

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = query._operand(key_padding_mask).unsqueeze(0)
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        if query.ndim != 3 or query.shape[-1] != self.embed_dim:
            raise ValueError(f"MultiheadAttention({self.embed_dim}) expects queries of shape "
                             f"(L, N, {self.embed_dim}), got {query.shape}")
        length, batch, _ = query.shape
        source = key.shape[0]
        h, d = self.num_heads, self.head_dim

        def heads(x: Tensor, size: int) -> Tensor:  # (T, N, E) -> (N, h, T, d)
            return x.reshape(size, batch, h, d).permute(1, 2, 0, 3)

        q = heads(self._projected(query, 0), length)
        k = heads(self._projected(key, 1), source)
        v = heads(self._projected(value, 2), source)
        mask = self._mask(query, attn_mask, key_padding_mask, is_causal, batch, length, source)
        dropout = self.dropout if self.training else 0.0
        out, weights = F.attention(q, k, v, mask, dropout)
        out = self.out_proj(out.permute(2, 0, 1, 3).reshape(length, batch, self.embed_dim))
        if unbatched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(1)
        return out, weights.squeeze(0) if unbatched else weights

    @staticmethod
    def _mask(query, attn_mask, key_padding_mask, is_causal, batch, length, source):
        """One additive mask (N, h or 1, L, S): -inf where attention is not allowed."""
        total = None

        def additive(mask: Tensor) -> Tensor:
            mask = query._operand(mask)
            if mask.dtype.name == "bool":
                return mask.where(-math.inf, 0.0).cast(query.dtype)
            return mask.cast(query.dtype)

        if attn_mask is None and is_causal:
            attn_mask = query._operand(1).expand(length, source).cast("bool").triu(1)
        if attn_mask is not None:
            mask = additive(attn_mask)
            if mask.ndim == 3:  # (N * h, L, S)
                mask = mask.reshape(batch, -1, length, source)
            total = mask
        if key_padding_mask is not None:
            padding = additive(key_padding_mask).reshape(batch, 1, 1, source)
            total = padding if total is None else total + padding
        return total

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}")

    def get_config(self) -> dict:
        return {"embed_dim": self.embed_dim, "num_heads": self.num_heads,
                "dropout": self.dropout, "bias": self.in_proj_bias is not None,
                "kdim": self.kdim, "vdim": self.vdim, "batch_first": self.batch_first,
                "dtype": self.out_proj.weight.dtype.name}
