"""Vectorisable exp, log and NaN-propagating maximum for numba kernels.

Without Intel's SVML runtime, ``math.exp``/``np.exp`` inside a numba loop compile to one scalar
libm call per element (2-4 GB/s) and block SIMD vectorisation of the whole loop. The functions
here are written so that LLVM vectorises them: a range reduction plus a polynomial, with the
special cases (NaN, +-inf, 0, subnormals, overflow) handled by selects rather than branches.

Accuracy (measured against numpy over the whole finite range, see tests/test_numba_backend.py):
within 3 ulp for float64 and float32, far inside the 1e-12 / 1e-6 relative tolerances the
conformance suite applies. float32 is computed in float32 arithmetic (8 SIMD lanes), float64 in
float64; both keep IEEE semantics (no fastmath flags), so NaN and inf behave as in numpy.

``fmaximum`` is LLVM's ``llvm.maximum`` (IEEE 754-2019 maximum: NaN if either operand is NaN),
which LLVM vectorises both elementwise and as a reduction, unlike a compare-and-select.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .options import SERIAL

# --- bit casts and llvm.maximum ------------------------------------------------------------


@intrinsic
def _bits_to_f64(typingctx, bits):
    """Reinterpret the 64 bits of an int64 as a float64."""
    if bits != types.int64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _bits_to_f32(typingctx, bits):
    """Reinterpret the low 32 bits of an int64 as a float32."""
    if bits != types.int64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(builder.trunc(args[0], ir.IntType(32)), ir.FloatType())

    return types.float32(types.int64), codegen


@intrinsic
def _f64_to_bits(typingctx, x):
    """The 64 bits of a float64 as an int64."""
    if x != types.float64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _f32_to_bits(typingctx, x):
    """The 32 bits of a float32, zero-extended to an int64."""
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.zext(builder.bitcast(args[0], ir.IntType(32)), ir.IntType(64))

    return types.int64(types.float32), codegen


@intrinsic
def fmaximum(typingctx, a, b):
    """``llvm.maximum``: the larger of two floats of one type; NaN if either is NaN."""
    if a != b or a not in (types.float32, types.float64):
        return None

    def codegen(context, builder, sig, args):
        lty = args[0].type
        name = "llvm.maximum.f32" if a == types.float32 else "llvm.maximum.f64"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(lty, [lty, lty]), name)
        return builder.call(fn, args)

    return a(a, b), codegen


# --- exp ------------------------------------------------------------------------------------
# exp(x) = 2**k * exp(r), k = round(x / ln 2), r = x - k ln 2 (Cody-Waite: ln 2 split in two so
# that k * LN2_HI is exact), |r| <= ln(2)/2, exp(r) by its Taylor polynomial (degree 12 for
# float64, 7 for float32: truncation error below half an ulp). 2**k is built from exponent bits
# in two factors so that results in the subnormal range and overflow to inf come out right.

_INV_FACT = tuple(1.0 / math.factorial(n) for n in range(13))
_F = np.float32

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # trailing 32 bits zero: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
(_E2, _E3, _E4, _E5, _E6, _E7, _E8, _E9, _E10, _E11, _E12) = _INV_FACT[2:13]

_LOG2E_F = _F(_LOG2E)
_LN2_HI_F = _F(0.693359375)  # 9 significant bits
_LN2_LO_F = _F(-2.12194440e-4)
(_E2F, _E3F, _E4F, _E5F, _E6F, _E7F) = (_F(c) for c in _INV_FACT[2:8])
_ONE_F = _F(1.0)
_HALF_F = _F(0.5)
_ZERO_F = _F(0.0)
# Clamps keep 2**k representable in two factors; beyond them the result is 0 or inf anyway.
_EXP_HI_F = _F(100.0)
_EXP_LO_F = _F(-110.0)


@njit(**SERIAL)
def exp_f64(x: float) -> float:
    x = 1000.0 if x > 1000.0 else x  # NaN fails both comparisons and stays NaN
    x = -1000.0 if x < -1000.0 else x
    kf = np.floor(x * _LOG2E + 0.5)
    r = (x - kf * _LN2_HI) - kf * _LN2_LO
    p = _E12
    p = p * r + _E11
    p = p * r + _E10
    p = p * r + _E9
    p = p * r + _E8
    p = p * r + _E7
    p = p * r + _E6
    p = p * r + _E5
    p = p * r + _E4
    p = p * r + _E3
    p = p * r + _E2
    p = p * r + 1.0
    p = p * r + 1.0
    kf = 0.0 if kf != kf else kf  # NaN input: p is NaN already; keep the conversion defined
    k = np.int64(np.int32(kf))  # via int32: AVX2 converts packed doubles to int32 only
    k1 = k >> 1
    k2 = k - k1
    return p * _bits_to_f64((k1 + 1023) << 52) * _bits_to_f64((k2 + 1023) << 52)


@njit(**SERIAL)
def exp_f32(x: np.float32) -> np.float32:
    x = _EXP_HI_F if x > _EXP_HI_F else x
    x = _EXP_LO_F if x < _EXP_LO_F else x
    kf = np.floor(x * _LOG2E_F + _HALF_F)
    r = (x - kf * _LN2_HI_F) - kf * _LN2_LO_F
    p = _E7F
    p = p * r + _E6F
    p = p * r + _E5F
    p = p * r + _E4F
    p = p * r + _E3F
    p = p * r + _E2F
    p = p * r + _ONE_F
    p = p * r + _ONE_F
    kf = _ZERO_F if kf != kf else kf
    k = np.int64(np.int32(kf))
    k1 = k >> 1
    k2 = k - k1
    return p * _bits_to_f32((k1 + 127) << 23) * _bits_to_f32((k2 + 127) << 23)


# --- log ------------------------------------------------------------------------------------
# log(x) = e ln 2 + log(m), x = m * 2**e with m in [sqrt(1/2), sqrt(2)); log(m) = 2 atanh(s),
# s = (m - 1) / (m + 1), |s| <= 0.172, by its odd series 2s + 2s * z * (1/3 + z/5 + ...), z = s*s
# (to z**10 for float64, z**4 for float32). Subnormal x are scaled into the normal range first.

_SQRT2 = math.sqrt(2.0)
_TINY = 2.2250738585072014e-308  # smallest normal float64
_TWO54 = 2.0**54
(_L3, _L5, _L7, _L9, _L11, _L13, _L15, _L17, _L19, _L21) = (1.0 / n for n in range(3, 22, 2))
_MANT_MASK = (1 << 52) - 1
_ONE_BITS = 1023 << 52

_SQRT2_F = _F(_SQRT2)
_TINY_F = _F(1.1754943508222875e-38)  # smallest normal float32
_TWO25_F = _F(2.0**25)
(_L3F, _L5F, _L7F, _L9F) = (_F(1.0 / n) for n in (3, 5, 7, 9))
_TWO_F = _F(2.0)
_MANT_MASK_F = (1 << 23) - 1
_INF_F = _F(np.inf)
_NAN_F = _F(np.nan)
_ONE_BITS_F = 127 << 23


@njit(**SERIAL)
def log_f64(x: float) -> float:
    sub = x < _TINY  # subnormal, zero, negative (the last two are fixed at the end)
    xs = x * _TWO54 if sub else x
    bits = _f64_to_bits(xs)
    e = ((bits >> 52) & 2047) - 1023
    m = _bits_to_f64((bits & _MANT_MASK) | _ONE_BITS)  # in [1, 2)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    e = e + 1 if big else e
    e = e - 54 if sub else e
    s = (m - 1.0) / (m + 1.0)
    z = s * s
    q = _L21
    q = q * z + _L19
    q = q * z + _L17
    q = q * z + _L15
    q = q * z + _L13
    q = q * z + _L11
    q = q * z + _L9
    q = q * z + _L7
    q = q * z + _L5
    q = q * z + _L3
    s2 = s + s
    ef = np.float64(np.int32(e))
    r = ef * _LN2_HI + (s2 + (s2 * z * q + ef * _LN2_LO))
    r = -np.inf if x == 0.0 else r
    r = np.nan if x < 0.0 else r
    r = x if x == np.inf else r
    return x if x != x else r


@njit(**SERIAL)
def log_f32(x: np.float32) -> np.float32:
    sub = x < _TINY_F
    xs = x * _TWO25_F if sub else x
    bits = _f32_to_bits(xs)
    e = ((bits >> 23) & 255) - 127
    m = _bits_to_f32((bits & _MANT_MASK_F) | _ONE_BITS_F)
    big = m > _SQRT2_F
    m = m * _HALF_F if big else m
    e = e + 1 if big else e
    e = e - 25 if sub else e
    s = (m - _ONE_F) / (m + _ONE_F)
    z = s * s
    q = _L9F
    q = q * z + _L7F
    q = q * z + _L5F
    q = q * z + _L3F
    s2 = s + s
    ef = _F(np.int32(e))
    r = ef * _LN2_HI_F + (s2 + (s2 * z * q + ef * _LN2_LO_F))
    r = -_INF_F if x == _ZERO_F else r
    r = _NAN_F if x < _ZERO_F else r
    r = x if x == _INF_F else r
    return x if x != x else r


# --- dtype-generic entry points used by the kernels ------------------------------------------


def vexp(x):
    """exp of a float32 or float64 scalar, vectorisable (see module docstring)."""
    raise NotImplementedError("only callable from numba-compiled code")


def vlog(x):
    """log of a float32 or float64 scalar, vectorisable (see module docstring)."""
    raise NotImplementedError("only callable from numba-compiled code")


@overload(vexp)
def _vexp(x):
    if x == types.float32:
        return lambda x: exp_f32(x)
    if x == types.float64:
        return lambda x: exp_f64(x)
    return None


@overload(vlog)
def _vlog(x):
    if x == types.float32:
        return lambda x: log_f32(x)
    if x == types.float64:
        return lambda x: log_f64(x)
    return None


def vmaximum(a, b):
    """The larger of two scalars of one dtype; for floats NaN wins (as ``np.maximum``)."""
    raise NotImplementedError("only callable from numba-compiled code")


@overload(vmaximum)
def _vmaximum(a, b):
    if a != b:
        return None
    if isinstance(a, types.Float):
        return lambda a, b: fmaximum(a, b)
    if isinstance(a, types.Boolean):
        return lambda a, b: a | b
    if isinstance(a, types.Integer):
        return lambda a, b: a if a > b else b
    return None
