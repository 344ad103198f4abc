"""Dense products: linear/Gemm, matmul, einsum, attention.

Inputs: linear ``[x, W, (b)]`` with attributes ``trans_a``/``trans_b`` (ONNX Gemm) or
``weight_layout="out_in"`` (torch Linear, ``W [out, in]``); matmul ``[a, b]``; einsum its
operands with ``equation``; attention ``[q, k, v, (mask)]``; multihead_attention
(torch ``nn.MultiheadAttention``) ``[query, key, value]`` with ``embed_dim``,
``num_heads``, ``kdim``, ``vdim``, ``batch_first``.
"""

from __future__ import annotations

import math
from typing import TypedDict

from archlint.ir import Shape
from archlint.ops import rf
from archlint.ops.registry import OpCall, broadcast, kind, numel, product_flops


def _mixes_positions(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """A product over the last axis: when that axis is spatial the output depends on the
    whole input along it, so it is global; otherwise (channels-last pointwise layers) no change."""
    present = [f for f in fields if f is not None]
    if not present:
        return None
    field = rf.merge(present)
    rank = len(call.in_shapes[0]) if call.in_shapes and call.in_shapes[0] is not None else None
    if field is None or field.is_global or rank is None:
        return field
    if any(d == rank - 1 for d in field.dims) or len(present) > 1:
        return rf.make_global(field, "mixes all positions")
    return field


class LinearAttrs(TypedDict, total=False):
    """Gemm's transposes, or torch's ``[out, in]`` weight layout."""

    trans_a: bool
    trans_b: bool
    weight_layout: str


class EinsumAttrs(TypedDict, total=False):
    equation: str


class MultiheadAttentionAttrs(TypedDict, total=False):
    embed_dim: int
    num_heads: int
    kdim: int
    vdim: int
    batch_first: bool


LINEAR = kind("linear", "Fully connected layer (Gemm, nn.Linear, F.linear, MatMul with a weight).",
              examples=("Gemm", "nn.Linear", "F.linear"), slots=("data", "weight", "bias"), channel_axis=-1,
              attrs=LinearAttrs)


@LINEAR.shape
def linear_shape(call: OpCall) -> list[Shape]:
    """``[*x.shape[:-1], out]``: Gemm ``out = W.shape[0 if trans_b else 1]``; torch ``out = W.shape[0]``."""
    x, w = call.x, call.input(1)
    if call.attr("weight_layout") == "out_in" or call.attr("trans_b"):
        out = w[0]
    else:
        out = w[-1]
    if call.attr("trans_a"):
        return [(x[1], out)]
    return [(*x[:-1], out)]


@LINEAR.macs
def linear_macs(call: OpCall) -> int:
    """``prod(leading dims) * M * K * N`` = ``numel(out) * K``, where ``K`` is the input's last
    dimension (its first when Gemm's ``trans_a`` is set): a Linear on a 3-D input counts
    every position (torchinfo#77)."""
    x = call.x
    k = x[0] if call.attr("trans_a") else x[-1]
    return numel(call.y) * k


LINEAR.flops(product_flops)
LINEAR.rf(_mixes_positions)


MATMUL = kind("matmul", "Matrix product of two activations (MatMul, torch.matmul, @, bmm).",
              examples=("MatMul", "torch.matmul", "operator.matmul"), slots=("data", "data"), token_mixing=True)


@MATMUL.shape
def matmul_shape(call: OpCall) -> list[Shape]:
    """numpy matmul rules: broadcast batch dims, ``[.., M, K] x [.., K, N] -> [.., M, N]``."""
    a, b = call.input(0), call.input(1)
    if len(a) == 1 and len(b) == 1:
        return [()]
    if len(a) == 1:
        return [(*b[:-2], b[-1])]
    if len(b) == 1:
        return [a[:-1]]
    batch = broadcast(a[:-2], b[:-2])
    return [(*batch, a[-2], b[-1])]


@MATMUL.macs
def matmul_macs(call: OpCall) -> int:
    """``prod(batch) * M * K * N`` = ``numel(out) * K`` with ``K = a.shape[-1]``."""
    return numel(call.y) * call.input(0)[-1]


MATMUL.flops(product_flops)
MATMUL.rf(_mixes_positions)


EINSUM = kind("einsum", "Einstein summation (torch.einsum, ONNX Einsum).", examples=("Einsum", "torch.einsum"),
               variadic=True, token_mixing=True, attrs=EinsumAttrs)


def _einsum_terms(equation: str, n_operands: int) -> tuple[list[str], str]:
    eq = equation.replace(" ", "")
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    if not rhs and "->" not in eq:
        letters = "".join(terms)
        rhs = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    if any("..." in t for t in terms) or len(terms) != n_operands:
        raise ValueError("einsum with ellipsis")
    return terms, rhs


@EINSUM.macs
def einsum_macs(call: OpCall) -> int:
    """Operands contracted pairwise, left to right, as torch does: each pairwise product
    costs the product of the sizes of every index either operand carries (for
    ``bhid,bhjd->bhij``: ``b*h*i*j*d``); a single operand (transpose, trace, sum) costs 0."""
    shapes = [call.input(i) for i in range(len(call.in_shapes))]
    terms, rhs = _einsum_terms(call.attr("equation"), len(shapes))
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, shapes):
        for letter, size in zip(term, shape):
            sizes[letter] = max(sizes.get(letter, 1), size)
    total = 0
    current = terms[0]
    for i in range(1, len(terms)):
        other = terms[i]
        involved = set(current) | set(other)
        total += math.prod(sizes[c] for c in involved)
        later = set(rhs).union(*map(set, terms[i + 1:])) if i + 1 < len(terms) else set(rhs)
        current = "".join(c for c in dict.fromkeys(current + other) if c in later)
    return total


@EINSUM.flops
def einsum_flops(call: OpCall, macs: int) -> int:
    """``2 * MACs``."""
    return 2 * macs
EINSUM.rf(_mixes_positions)


class AttentionAttrs(TypedDict, total=False):
    """Head counts of 3-D inputs ``[B, S, heads * head_size]`` (ONNX Attention, opset 23)."""

    q_num_heads: int
    kv_num_heads: int


ATTENTION = kind("attention", "Fused scaled dot-product attention softmax(QK^T/sqrt(d))V.",
                 examples=("F.scaled_dot_product_attention", "Attention (ONNX opset 23)"),
                 slots=("data", "data", "data", "mask", "state", "state"), token_mixing=True, attrs=AttentionAttrs)


def _attention_dims(call: OpCall) -> tuple[int, int, int, int, int]:
    """``(rows, heads, Skv, D, Dv)``: ``rows = B*Hq*Sq`` query rows, ``Skv`` the key length
    including a cached ``past_key`` (input 4, ``[B, Hkv, past, D]``), ``D``/``Dv`` the head sizes.
    4-D (or torch's ``[..., L, E]``) inputs carry heads in their shape; 3-D ONNX inputs
    ``[B, S, H*D]`` are split by ``q_num_heads`` and ``kv_num_heads`` (grouped-query attention
    shares each K/V head among ``Hq/Hkv`` query heads)."""
    q, k, v = call.input(0), call.input(1), call.input(2)
    past = call.in_shapes[4] if len(call.in_shapes) > 4 else None
    skv = k[-2] + (past[-2] if past is not None else 0)
    hq = call.attr("q_num_heads")
    if len(q) == 3 and hq:
        hkv = call.attr("kv_num_heads") or hq
        return q[0] * q[1] * hq, hq, skv, q[-1] // hq, v[-1] // hkv
    return numel(q[:-1]), 1, skv, q[-1], v[-1]


@ATTENTION.shape
def attention_shape(call: OpCall) -> list[Shape]:
    """``[*q.shape[:-1], Dv]`` (``[B, Sq, Hq*Dv]`` for 3-D inputs)."""
    _, heads, _, _, dv = _attention_dims(call)
    return [(*call.input(0)[:-1], heads * dv)]


@ATTENTION.macs
def attention_macs(call: OpCall) -> int:
    """Q ``[B,Hq,Sq,D]``, K ``[B,Hkv,Sk,D]``, V ``[B,Hkv,Sk,Dv]``, with ``past`` cached keys:
    ``B*Hq*Sq*(past+Sk)*(D + Dv)`` (``QK^T`` then ``softmax(.)V``, every query head against
    the whole key length, grouped-query or not)."""
    rows, _, skv, d, dv = _attention_dims(call)
    return rows * skv * (d + dv)


@ATTENTION.flops
def attention_flops(call: OpCall, macs: int) -> int:
    """``2 * MACs + B*Hq*Sq*Skv`` (one per score for scaling and softmax)."""
    rows, _, skv, _, _ = _attention_dims(call)
    return 2 * macs + rows * skv


ATTENTION.rf(_mixes_positions)


MHA = kind("multihead_attention", "torch nn.MultiheadAttention: input projections, attention, output projection.",
           examples=("nn.MultiheadAttention",), slots=("data", "data", "data"), token_mixing=True,
           attrs=MultiheadAttentionAttrs)


def _seq_batch(shape: Shape, batch_first: bool) -> tuple[int, int]:
    if len(shape) == 2:
        return shape[0], 1
    return (shape[1], shape[0]) if batch_first else (shape[0], shape[1])


@MHA.macs
def mha_macs(call: OpCall) -> int:
    """With query length ``L``, key length ``S``, batch ``N``, width ``E``:
    ``N*(L*E*E + S*kdim*E + S*vdim*E)`` for the q/k/v projections, ``N*L*S*2E`` for
    attention (``H*(D + Dv)`` with ``D = Dv = E/H``), and ``N*L*E*E`` for the output projection."""
    e = call.attr("embed_dim")
    kdim = call.attr("kdim") or e
    vdim = call.attr("vdim") or e
    bf = bool(call.attr("batch_first"))
    lq, n = _seq_batch(call.input(0), bf)
    sk, _ = _seq_batch(call.input(1), bf)
    return n * (lq * e * e + sk * kdim * e + sk * vdim * e) + n * lq * sk * 2 * e + n * lq * e * e


@MHA.flops
def mha_flops(call: OpCall, macs: int) -> int:
    """``2 * MACs + N*H*L*S`` (softmax, one per score)."""
    bf = bool(call.attr("batch_first"))
    lq, n = _seq_batch(call.input(0), bf)
    sk, _ = _seq_batch(call.input(1), bf)
    return 2 * macs + n * call.attr("num_heads") * lq * sk


MHA.rf(_mixes_positions)
