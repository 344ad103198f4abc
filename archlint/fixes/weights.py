"""Weights carried over from a replaced layer to its replacement (numpy).

Every function returns the new arrays and ``W_hat``, the dense weight the replacement
computes, so that the relative weight error ``||W - W_hat|| / ||W||`` (Frobenius) is
measured, not assumed. Conv weights are ``[Co, Ci/G, *k]``.

- AL101 (depthwise-separable): for each input channel ``c``, ``W[:, c]`` is a ``Co x K^d``
  matrix; the replacement can only express rank-1 matrices ``p_c d_c^T`` (pointwise column
  times depthwise kernel), and by Eckart-Young the best one in the Frobenius norm is
  ``sigma1 u1 v1^T`` from the SVD: pointwise column ``sigma1*u1``, depthwise kernel ``v1``.
- AL102 (grouped, G groups): the block-diagonal part of W, channels kept in place. A channel
  permutation could keep more energy, but permuting input or output channels moves the
  rewrite into the neighbouring layers (or adds a shuffle op); the block-diagonal part is
  the least-squares optimum among grouped weights with the channel order unchanged.
- AL103 (stacked 3x3): the first 3x3 is the centre 3x3 of W and every later 3x3 is the
  identity (a Dirac kernel). With the later layers fixed at identity, the stack computes a
  KxK kernel that is zero outside its centre 3x3, so the centre crop is the least-squares
  optimum for that starting point; fine-tuning then uses the extra layers.
- AL105 (average pool then 1x1): the same weights (the conv now reads pooled inputs).
- AL106 (bias into BatchNorm): ``mean' = mean - b``, exact in eval mode.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np


def relative_error(w: np.ndarray, w_hat: np.ndarray) -> float:
    """``||W - W_hat|| / ||W||`` (0 for an all-zero W reproduced exactly)."""
    norm = float(np.linalg.norm(w))
    diff = float(np.linalg.norm(np.asarray(w, dtype=np.float64) - np.asarray(w_hat, dtype=np.float64)))
    return diff / norm if norm else diff


def depthwise_separable(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(depthwise [Ci, 1, *k], pointwise [Co, Ci, 1...], W_hat)`` by a rank-1 SVD of each
    ``W[:, c]`` (``Co x prod(k)``)."""
    w64 = np.asarray(w, dtype=np.float64)
    co, ci, *k = w64.shape
    taps = math.prod(k)
    dw = np.zeros((ci, taps))
    pw = np.zeros((co, ci))
    for c in range(ci):
        u, s, vt = np.linalg.svd(w64[:, c].reshape(co, taps), full_matrices=False)
        pw[:, c] = s[0] * u[:, 0]
        dw[c] = vt[0]
    w_hat = np.einsum("oc,ct->oct", pw, dw).reshape(w64.shape)
    return dw.reshape(ci, 1, *k), pw.reshape(co, ci, *([1] * len(k))), w_hat


def dense(w: np.ndarray, groups: int) -> np.ndarray:
    """A grouped weight ``[Co, Ci/G, *k]`` as the dense ``[Co, Ci, *k]`` it computes (zeros
    off the diagonal blocks)."""
    co, cig = w.shape[:2]
    out = np.zeros((co, cig * groups, *w.shape[2:]), dtype=np.float64)
    cog = co // groups
    for g in range(groups):
        out[g * cog:(g + 1) * cog, g * cig:(g + 1) * cig] = w[g * cog:(g + 1) * cog]
    return out


def grouped(w: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """``(W_G [Co, Ci/G, *k], W_hat)``: the diagonal blocks of W, output group ``g`` reading
    input channels ``[g*Ci/G, (g+1)*Ci/G)``."""
    w64 = np.asarray(w, dtype=np.float64)
    co, ci = w64.shape[:2]
    cog, cig = co // groups, ci // groups
    wg = np.concatenate([w64[g * cog:(g + 1) * cog, g * cig:(g + 1) * cig] for g in range(groups)])
    return wg, dense(wg, groups)


def compose(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The dense kernel of conv ``second`` applied after conv ``first`` (both dense, stride 1):
    ``W[o, i, t] = sum_m sum_{u+v=t} second[o, m, v] * first[m, i, u]`` (cross-correlation
    composes by adding offsets)."""
    k1, k2 = first.shape[2:], second.shape[2:]
    out = np.zeros((second.shape[0], first.shape[1], *(a + b - 1 for a, b in zip(k1, k2))))
    for v in itertools.product(*(range(b) for b in k2)):
        region = (slice(None), slice(None), *(slice(o, o + a) for o, a in zip(v, k1)))
        tap: tuple[Any, ...] = (slice(None), slice(None), *v)
        out[region] += np.einsum("om,mi...->oi...", second[tap], first)
    return out


def stacked_3x3(w: np.ndarray, n: int, groups: int) -> tuple[list[np.ndarray], np.ndarray]:
    """``([first, identity, ...], W_hat)``: the centre 3x3 of W, then ``n - 1`` Dirac kernels
    ``[Co, Co/G, 3...]`` (output ``o`` copies input ``o`` of its group); ``W_hat`` is the
    dense composition of the stack (the centre 3x3 of W inside a zero KxK kernel)."""
    w64 = np.asarray(w, dtype=np.float64)
    co = w64.shape[0]
    nd = w64.ndim - 2
    centre = tuple(slice(k // 2 - 1, k // 2 + 2) for k in w64.shape[2:])
    first = w64[(slice(None), slice(None), *centre)].copy()
    cog = co // groups
    dirac = np.zeros((co, cog, *([3] * nd)))
    for o in range(co):
        dirac[(o, o % cog, *([1] * nd))] = 1.0
    kernels = [first] + [dirac.copy() for _ in range(n - 1)]
    total = dense(kernels[0], groups)
    for k in kernels[1:]:
        total = compose(total, dense(k, groups))
    # back to the grouped layout of W for the error: the diagonal blocks of the composition
    return kernels, _blocks(total, groups)


def _blocks(w: np.ndarray, groups: int) -> np.ndarray:
    co, ci = w.shape[:2]
    cog, cig = co // groups, ci // groups
    return np.concatenate([w[g * cog:(g + 1) * cog, g * cig:(g + 1) * cig] for g in range(groups)])


def fold_bias(mean: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """BatchNorm's running mean after the preceding bias is dropped: ``mean - b``."""
    return np.asarray(mean) - np.asarray(bias).reshape(np.asarray(mean).shape)
