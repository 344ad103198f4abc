"""Fused Attention (opset 23) with a key/value cache and grouped-query heads, and the recurrent
layers LSTM, GRU and RNN (issue 17, items 4 and 8). Expected figures derived in each docstring."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import archlint


def _vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _model(nodes, inputs, outputs, inits=(), opset=23):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_attention_with_past_key_and_value():
    """As onnx's node test ``test_attention_4d_with_past_and_present``: Q [2,3,4,8], K and V
    [2,3,6,8], past_key and past_value [2,3,12,8]: every query row attends to 12 + 6 = 18 keys:
    MACs = B*H*Sq*Skv*(D + Dv) = 2*3*4*18*16 = 6,912 (its ``_expanded`` model's MatMuls give the
    same; ignoring the cache gave 2,304)."""
    node = helper.make_node("Attention", ["Q", "K", "V", "", "pk", "pv"], ["Y", "present_k", "present_v"],
                            name="attn")
    model = _model([node], [_vi("Q", [2, 3, 4, 8]), _vi("K", [2, 3, 6, 8]), _vi("V", [2, 3, 6, 8]),
                            _vi("pk", [2, 3, 12, 8]), _vi("pv", [2, 3, 12, 8])],
                   [_vi("Y", None), _vi("present_k", None), _vi("present_v", None)])
    layer = archlint.analyze(model, lint=False).layer("attn")
    assert (layer.output_shape, layer.macs) == ((2, 3, 4, 8), 6_912)


def test_attention_3d_grouped_query_heads():
    """3-D inputs with grouped-query attention: Q [2,4,72] with 9 heads of 8, K [2,6,24] (3 KV
    heads of 8) and V [2,6,30] (3 heads of 10): each of the 9 query heads attends to 6 keys:
    MACs = B*Sq*Hq*Skv*(D + Dv) = 2*4*9*6*(8 + 10) = 7,776; output [2,4,9*10] = [2,4,90]."""
    node = helper.make_node("Attention", ["Q", "K", "V"], ["Y"], q_num_heads=9, kv_num_heads=3, name="attn")
    model = _model([node], [_vi("Q", [2, 4, 72]), _vi("K", [2, 6, 24]), _vi("V", [2, 6, 30])], [_vi("Y", None)])
    layer = archlint.analyze(model, lint=False).layer("attn")
    assert (layer.output_shape, layer.macs) == ((2, 4, 90), 7_776)


@pytest.mark.parametrize("op, gates", [("LSTM", 4), ("GRU", 3), ("RNN", 1)])
def test_recurrent_macs_and_params(op, gates):
    """X [seq 5, batch 2, input 3], hidden 4, bidirectional, weights as initializers:
    MACs = seq * dirs * batch * G*H * (input + H) = 5*2*2*G*4*(3+4) = 560*G (LSTM 2,240, GRU
    1,680, RNN 560); params = W [2, G*4, 3] + R [2, G*4, 4] + B [2, 2*G*4] = 24G + 32G + 16G = 72G."""
    h, dirs = 4, 2
    inits = [numpy_helper.from_array(np.ones((dirs, gates * h, 3), np.float32), "W"),
             numpy_helper.from_array(np.ones((dirs, gates * h, h), np.float32), "R"),
             numpy_helper.from_array(np.ones((dirs, 2 * gates * h), np.float32), "B")]
    node = helper.make_node(op, ["X", "W", "R", "B"], ["Y", "Y_h"], hidden_size=h, direction="bidirectional",
                            name="rnn")
    model = _model([node], [_vi("X", [5, 2, 3])], [_vi("Y", None), _vi("Y_h", None)], inits, opset=14)
    report = archlint.analyze(model, lint=False)
    layer = report.layer("rnn")
    assert layer.output_shape == (5, 2, 2, 4)
    assert (layer.macs, layer.params) == (560 * gates, 72 * gates)
    assert not report.totals.uncounted_ops


def _if_model():
    """x [1,4,H,W]; If(H == 8): then a 3x3 conv 4 -> 4 (weight in the branch, 144 params),
    else a Relu. The condition is shape arithmetic (Shape -> Gather -> Equal), constant once the
    input shape is fixed."""
    then_w = numpy_helper.from_array(np.ones((4, 4, 3, 3), np.float32), "w_then")
    then_branch = helper.make_graph([helper.make_node("Conv", ["x", "w_then"], ["t"], pads=[1, 1, 1, 1],
                                                      name="then_conv")], "then", [], [_vi("t", None)], [then_w])
    else_branch = helper.make_graph([helper.make_node("Relu", ["x"], ["e"], name="else_relu")], "else", [],
                                    [_vi("e", None)])
    inits = [numpy_helper.from_array(np.array(2, np.int64), "two"),
             numpy_helper.from_array(np.array(8, np.int64), "eight")]
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "two"], ["h"]),
             helper.make_node("Equal", ["h", "eight"], ["cond"]),
             helper.make_node("If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch, name="if")]
    return _model(nodes, [_vi("x", [1, 4, 8, 8])], [_vi("y", None)], inits, opset=17)


@pytest.mark.parametrize("size, macs, params", [(8, 4 * 8 * 8 * 36, 144), (16, 0, 0)])
def test_if_takes_the_branch_its_constant_condition_selects(size, macs, params):
    """At 8x8 the condition is true: the conv branch, 4*8*8 * 4*3*3 = 9,216 MACs and 144 params;
    at 16x16 it is false: the Relu branch, 0 MACs. Nothing is left uncosted either way."""
    report = archlint.analyze(_if_model(), input_shape=(1, 4, size, size), lint=False)
    assert (report.totals.macs, report.totals.params) == (macs, params)
    assert not report.totals.uncounted_ops


def test_lstm_costs_as_its_gemm_decomposition():
    """An LSTM step written out as exporters without an LSTM op do (silero VAD's opset-18 file:
    two Gemms, x W^T and h R^T, then the gate arithmetic) costs what the LSTM op costs: one
    step, batch 1, input 128, hidden 128: x [1,128] x W^T [128,512] = 65,536 MACs plus
    h [1,128] x R^T [128,512] = 65,536, 131,072 in all = 4 gates * 128 * (128 + 128)."""
    h = 128
    lstm = _model([helper.make_node("LSTM", ["X", "W", "R"], ["Y"], hidden_size=h, name="lstm")],
                  [_vi("X", [1, 1, h])], [_vi("Y", None)],
                  [numpy_helper.from_array(np.zeros((1, 4 * h, h), np.float32), "W"),
                   numpy_helper.from_array(np.zeros((1, 4 * h, h), np.float32), "R")], opset=14)
    gemms = _model([helper.make_node("Gemm", ["x", "Wg"], ["xw"], transB=1, name="input_gemm"),
                    helper.make_node("Gemm", ["h", "Rg"], ["hr"], transB=1, name="hidden_gemm"),
                    helper.make_node("Add", ["xw", "hr"], ["gates"])],
                   [_vi("x", [1, h]), _vi("h", [1, h])], [_vi("gates", None)],
                   [numpy_helper.from_array(np.zeros((4 * h, h), np.float32), "Wg"),
                    numpy_helper.from_array(np.zeros((4 * h, h), np.float32), "Rg")], opset=18)
    assert archlint.analyze(lstm, lint=False).totals.macs == 131_072
    assert archlint.analyze(gemms, lint=False).totals.macs == 131_072
