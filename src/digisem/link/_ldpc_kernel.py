"""Compiled (numba) flooding sum-product kernel of :class:`~digisem.link.ldpc.LDPC5GCode`'s ``"numba"`` decoder.

Importing this module needs numba; :mod:`digisem.link.ldpc` falls back to its pure-torch decoder
without it. The kernel runs the schedule of ``_FloodingDecoder`` (same graph, update rule,
clipping and early stopping) on ``LANES`` codewords at once in a ``[nodes or edges, LANES]``
layout, so every inner loop is a fixed-length loop over codewords that LLVM vectorises. A lane whose
codeword has stopped takes the next codeword of its range at once, so lanes do not wait for the
slowest codeword of a group.

The arithmetic differs from the torch decoder's only in float32 rounding (see :func:`decode_range`).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

LANES = 64
"""Codewords decoded side by side per thread (measured: 64 beats 32 and 128 at k=512, n=1024)."""

_f32 = np.float32
_LLR_MAX = _f32(20.0)  # ldpc.LLR_MAX and ldpc._TINY, as float32
_TINY = _f32(1e-12)
# error_model="numpy": no ZeroDivisionError checks, which would keep LLVM from vectorising the loops.
# Divisions may become reciprocal + Newton step (no denominator here is 0, inf or subnormal) and
# products may fuse with additions; no reassociation, which would fold "- 0.5 + _TINY" into one constant.
_jit = njit(error_model="numpy", fastmath={"contract", "arcp"}, cache=True)
_inline = njit(error_model="numpy", fastmath={"contract", "arcp"}, inline="always", cache=True)


@intrinsic
def _bits(typingctx, x):
    """The bits of a float32 as an int32 (a reinterpretation, no conversion)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def _float(typingctx, i):
    """The float32 whose bits are the int32 ``i``."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@_inline
def _exp(x):
    """``e^x`` for ``|x| <= 20`` (Cephes expf: ``2^n e^r``, ``|r| <= ln(2)/2``; at most 1.3 ulp off)."""
    n = np.floor(x * _f32(1.44269504088896341) + _f32(0.5))
    r = x - n * _f32(0.693359375) - n * _f32(-2.12194440e-4)
    p = _f32(1.9875691500e-4)
    p = p * r + _f32(1.3981999507e-3)
    p = p * r + _f32(8.3334519073e-3)
    p = p * r + _f32(4.1665795894e-2)
    p = p * r + _f32(1.6666665459e-1)
    p = p * r + _f32(5.0000001201e-1)
    return (p * r * r + r + _f32(1.0)) * _float(np.int32((np.int32(n) + np.int32(127)) << np.int32(23)))


@_inline
def _log(x):
    """``ln x`` for normal ``x > 0`` (Cephes logf: ``x = 2^e m``, ``sqrt(1/2) <= m < sqrt(2)``; about 1 ulp)."""
    bits = _bits(x) + np.int32(0x3F800000 - 0x3F3504F3)
    e = _f32((bits >> np.int32(23)) - np.int32(0x7F))
    m = _float((bits & np.int32(0x007FFFFF)) + np.int32(0x3F3504F3)) - _f32(1.0)
    z = m * m
    y = _f32(7.0376836292e-2)
    y = y * m - _f32(1.1514610310e-1)
    y = y * m + _f32(1.1676998740e-1)
    y = y * m - _f32(1.2420140846e-1)
    y = y * m + _f32(1.4249322787e-1)
    y = y * m - _f32(1.6668057665e-1)
    y = y * m + _f32(2.0000714765e-1)
    y = y * m - _f32(2.4999993993e-1)
    y = y * m + _f32(3.3333331174e-1)
    y = y * m * z + e * _f32(-2.12194440e-4) - _f32(0.5) * z
    return m + y + e * _f32(0.693359375)


@_inline
def _two_atanh(z, ratio):
    """``2 atanh(z)`` for ``|z| < 1`` given ``ratio = (1 + z) / (1 - z)``: Cephes atanhf's odd polynomial
    for ``|z| < 1/2`` (relative accuracy down to the smallest ``z``), ``ln(ratio)`` above."""
    w = z * z
    p = _f32(1.81740078349e-1)
    p = p * w + _f32(8.24370301058e-2)
    p = p * w + _f32(1.46691431730e-1)
    p = p * w + _f32(1.99782164500e-1)
    p = p * w + _f32(3.33337300303e-1)
    return _f32(2.0) * (p * w * z + z) if abs(z) < _f32(0.5) else _log(ratio)


@_inline
def _load(llr, word, lanes, count, prior, post, first_sent):
    """Put the clipped channel LLRs (internal sign, 0 where not sent) of codeword ``word[lane]`` into
    each of the first ``count`` ``lanes``, node by node (each cache line of ``prior`` and ``post`` once)."""
    n = llr.shape[1]
    for v in range(prior.shape[0]):
        for d in range(count):
            lane = lanes[d]
            value = min(max(-llr[word[lane], v - first_sent], -_LLR_MAX), _LLR_MAX) if first_sent <= v < first_sent + n else _f32(0.0)
            prior[v, lane] = value
            post[v, lane] = value


@_inline
def _park(lane, prior, post):
    """Fill an unused lane with a confident all-zero word (no subnormal products on the idle lane)."""
    for v in range(prior.shape[0]):
        prior[v, lane] = _LLR_MAX
        post[v, lane] = _LLR_MAX


@_jit
def decode_range(llr, out, start, stop, cn_ptr, edge_vn, scale, first_sent, num_vns, num_iter, bound):
    """Decode codewords ``start:stop`` of ``llr`` into ``out`` (releases the GIL, so threads run ranges in parallel).

    Input
    -----
    llr : [batch, n], np.float32
        Channel LLRs, ``ln P(b=1|y) / P(b=0|y)``.
    out : [batch, k], np.uint8
        Written for rows ``start:stop``: hard information bits {0, 1}.
    cn_ptr, edge_vn : [checks + 1] and [edges], np.int64
        The graph as CSR over check nodes: check ``j``'s edges are ``cn_ptr[j]:cn_ptr[j + 1]``,
        edge ``e`` joins variable node ``edge_vn[e]``; coded bit ``i`` is variable node ``first_sent + i``.
    scale : [checks], np.float32
        ``2^(degree - 1)`` per check.
    num_iter : int
        Iterations, >= 1.
    bound : np.float32
        Largest magnitude of the exclusive tanh product (``1 - 2^-24``).

    Note
    ----
    Per check of the torch decoder: ``s = sigmoid(Q) - 1/2 + 1e-12`` per edge, ``P = 2^(d-1) prod s``,
    ``z = clip(P / s_own, +-bound)``, ``R = 2 atanh(z)``. Here ``p = clip(sign(s_own) P, +-bound |s_own|)``,
    ``z = p / |s_own|`` and, for ``|z| >= 1/2``, ``R = ln((|s_own| + p) / (|s_own| - p))``: the same
    values and clipping (``2 atanh z = ln((1 + z) / (1 - z))``) with one division and one logarithm
    fewer than ``log1p``. Exp, log and atanh are Cephes polynomials, divisions may be reciprocal plus
    Newton step: messages move from the torch ones by float32 rounding (about 1e-7 relative).
    """
    k = out.shape[1]
    num_checks = cn_ptr.shape[0] - 1
    max_degree = 0
    for j in range(num_checks):
        max_degree = max(max_degree, cn_ptr[j + 1] - cn_ptr[j])
    prior = np.empty((num_vns, LANES), np.float32)
    cur = np.empty((num_vns, LANES), np.float32)
    nxt = np.empty((num_vns, LANES), np.float32)
    c2v = np.zeros((edge_vn.shape[0], LANES), np.float32)
    # 0 in a lane's first iteration: its old messages count as 0 (cheaper than clearing them, strided).
    keep = np.zeros(LANES, np.float32)
    s_own = np.empty((max_degree, LANES), np.float32)
    prod = np.empty(LANES, np.float32)
    parity = np.empty(LANES, np.uint8)
    unsatisfied = np.empty(LANES, np.uint8)
    word = np.full(LANES, -1, np.int64)
    iterations = np.zeros(LANES, np.int64)
    lanes = np.arange(LANES)
    active = min(LANES, stop - start)
    word[:active] = np.arange(start, start + active)
    next_word = start + active
    _load(llr, word, lanes, active, prior, cur, first_sent)
    for lane in range(active, LANES):
        _park(lane, prior, cur)
    while active > 0:
        # One flooding iteration: check-to-variable messages from `cur`, posteriors into `nxt`.
        for v in range(num_vns):
            for lane in range(LANES):
                nxt[v, lane] = prior[v, lane]
        for j in range(num_checks):
            first = cn_ptr[j]
            for lane in range(LANES):
                prod[lane] = _f32(1.0)
            for e in range(first, cn_ptr[j + 1]):
                v = edge_vn[e]
                for lane in range(LANES):
                    q = min(max(cur[v, lane] - keep[lane] * c2v[e, lane], -_LLR_MAX), _LLR_MAX)
                    s = _f32(1.0) / (_f32(1.0) + _exp(-q)) - _f32(0.5) + _TINY
                    s_own[e - first, lane] = s
                    prod[lane] *= s
            for lane in range(LANES):
                prod[lane] *= scale[j]
            for e in range(first, cn_ptr[j + 1]):
                v = edge_vn[e]
                for lane in range(LANES):
                    s = s_own[e - first, lane]
                    magnitude = abs(s)
                    limit = magnitude * bound
                    p = min(max(prod[lane] if s >= _f32(0.0) else -prod[lane], -limit), limit)
                    r = _two_atanh(p / magnitude, (magnitude + p) / (magnitude - p))
                    c2v[e, lane] = r
                    nxt[v, lane] += r
        # Syndrome of the new hard decisions (bit 1 where the posterior <= 0).
        for lane in range(LANES):
            unsatisfied[lane] = 0
        for j in range(num_checks):
            for lane in range(LANES):
                parity[lane] = 0
            for e in range(cn_ptr[j], cn_ptr[j + 1]):
                v = edge_vn[e]
                for lane in range(LANES):
                    parity[lane] ^= np.uint8(nxt[v, lane] <= _f32(0.0))
            for lane in range(LANES):
                unsatisfied[lane] |= parity[lane]
        # Lanes whose codeword stops (parity holds or num_iter reached) emit it and take the next one.
        num_done = 0
        for lane in range(LANES):
            keep[lane] = _f32(1.0)
            if word[lane] >= 0:
                iterations[lane] += 1
                if iterations[lane] == num_iter or not unsatisfied[lane]:
                    lanes[num_done] = lane
                    num_done += 1
        for i in range(k):
            for d in range(num_done):
                out[word[lanes[d]], i] = nxt[i, lanes[d]] <= _f32(0.0)
        num_loaded = 0
        for d in range(num_done):
            lane = lanes[d]
            if next_word < stop:
                word[lane], iterations[lane], keep[lane], next_word = next_word, 0, _f32(0.0), next_word + 1
                lanes[num_loaded] = lane
                num_loaded += 1
            else:
                _park(lane, prior, nxt)
                word[lane], active = -1, active - 1
        _load(llr, word, lanes, num_loaded, prior, nxt, first_sent)
        cur, nxt = nxt, cur
