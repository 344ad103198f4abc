"""Recurrent layers: LSTM, GRU and vanilla RNN (ONNX ``LSTM``/``GRU``/``RNN``).

Inputs in slot order: ``X`` (``[seq, batch, input]``, or ``[batch, seq, input]`` with
``layout=1``), ``W`` ``[dirs, G*H, input]``, ``R`` ``[dirs, G*H, H]``, ``B`` ``[dirs, 2*G*H]``
(then sequence lengths, initial states and LSTM's peepholes ``P [dirs, 3H]``), with ``G``
gates: 4 for LSTM (input, output, forget, cell), 3 for GRU (update, reset, hidden), 1 for RNN
(the ONNX operator specification, https://onnx.ai/onnx/operators/onnx__LSTM.html).
"""

from __future__ import annotations

from typing import TypedDict

from archlint.ir import Shape
from archlint.ops import rf
from archlint.ops.registry import OpCall, kind


class RecurrentAttrs(TypedDict, total=False):
    """``gates`` per hidden unit (4 LSTM, 3 GRU, 1 RNN), ``hidden_size``, ``directions`` (1 or 2),
    ``layout`` (0: ``[seq, batch, ...]``, 1: ``[batch, seq, ...]``)."""

    gates: int
    hidden_size: int
    directions: int
    layout: int


RECURRENT = kind("recurrent", "Recurrent layer (LSTM, GRU, RNN): gate products over every time step.",
                 examples=("LSTM", "GRU", "RNN"), slots=("data", "weight", "weight", "bias"), token_mixing=True,
                 attrs=RecurrentAttrs)


def _steps(call: OpCall) -> tuple[int, int, int, int, int, int]:
    """``(seq, batch, input, hidden, gates, directions)``."""
    x = call.x
    seq, batch = (x[1], x[0]) if call.attr("layout", 0) else (x[0], x[1])
    w = call.input(1)
    gates = int(call.attr("gates", 1))
    hidden = int(call.attr("hidden_size") or w[1] // gates)
    return seq, batch, x[2], hidden, gates, int(call.attr("directions", w[0]))


@RECURRENT.shape
def recurrent_shape(call: OpCall) -> list[Shape]:
    """``Y [seq, dirs, batch, H]`` (``[batch, seq, dirs, H]`` with ``layout=1``), ``Y_h`` (and
    LSTM's ``Y_c``) ``[dirs, batch, H]``."""
    seq, batch, _, hidden, gates, dirs = _steps(call)
    y = (batch, seq, dirs, hidden) if call.attr("layout", 0) else (seq, dirs, batch, hidden)
    state = (batch, dirs, hidden) if call.attr("layout", 0) else (dirs, batch, hidden)
    return [y, state] + ([state] if gates == 4 else [])


@RECURRENT.macs
def recurrent_macs(call: OpCall) -> int:
    """``seq * dirs * batch * G*H * (input + H)``: at every step each direction multiplies the
    input by ``W`` (``G*H x input``) and the previous hidden state by ``R`` (``G*H x H``)."""
    seq, batch, inp, hidden, gates, dirs = _steps(call)
    return seq * dirs * batch * gates * hidden * (inp + hidden)


@RECURRENT.flops
def recurrent_flops(call: OpCall, macs: int) -> int:
    """``2 * MACs + seq * dirs * batch * G*H``: the products, and one per gate pre-activation
    for its nonlinearity (bias adds and the state update are not counted separately)."""
    seq, batch, _, hidden, gates, dirs = _steps(call)
    return 2 * macs + seq * dirs * batch * gates * hidden


@RECURRENT.rf
def recurrent_rf(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """Each output step depends on every earlier (and, bidirectional, later) step: global."""
    field = rf.merge(f for f in fields[:1] if f is not None)
    return rf.make_global(field, "recurrence over the sequence") if field is not None else None
