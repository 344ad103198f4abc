"""The op registry's formulas against hand derivations (each in the test's docstring)."""

from __future__ import annotations

from archlint.ops import REGISTRY, OpCall
from archlint.ops.conv import resolve_pads, window_output_size


def call(kind, attrs, ins, outs=None):
    c = OpCall(attrs, ins, outs or [])
    entry = REGISTRY[kind]
    if outs is None and entry.shape_fn is not None:
        c = OpCall(attrs, ins, entry.shape_fn(c))
    macs = entry.macs_fn(c)
    return c, macs, entry.flops_fn(c, macs)


CONV = {"kernel": [3, 3], "stride": [2, 2], "dilation": [1, 1], "pads": [1, 1, 1, 1], "groups": 4}


def test_grouped_conv():
    """x [2, 16, 15, 15], W [32, 4, 3, 3] (groups 4), s2 p1: out floor((15+2-3)/2)+1 = 8;
    MACs = N*Ho*Wo*Co*(Ci/G)*k*k = 2*8*8*32*4*9 = 147,456; FLOPs 2*MACs (no bias)."""
    c, macs, flops = call("conv", CONV, [(2, 16, 15, 15), (32, 4, 3, 3)])
    assert c.out_shapes == [(2, 32, 8, 8)]
    assert (macs, flops) == (147_456, 294_912)


def test_depthwise_conv_with_bias():
    """Depthwise 3x3 on [1, 8, 10, 10], p1 s1: 10*10*8*1*9 = 7,200 MACs; FLOPs 2*7200 + 800 (bias)."""
    attrs = dict(CONV, stride=[1, 1], groups=8)
    _, macs, flops = call("conv", attrs, [(1, 8, 10, 10), (8, 1, 3, 3), (8,)])
    assert (macs, flops) == (7_200, 15_200)


def test_conv_transpose():
    """ConvTranspose k4 s2 p1, x [1, 8, 5, 5], W [8, 3, 4, 4] (Ci, Co/G, k, k), groups 1:
    out (5-1)*2 + 4 - 2 = 10; MACs counted over inputs: 5*5*8*3*16 = 9,600."""
    attrs = {"kernel": [4, 4], "stride": [2, 2], "dilation": [1, 1], "pads": [1, 1, 1, 1], "groups": 1,
             "output_padding": [0, 0]}
    c, macs, _ = call("conv_transpose", attrs, [(1, 8, 5, 5), (8, 3, 4, 4)])
    assert c.out_shapes == [(1, 3, 10, 10)] and macs == 9_600


def test_linear_on_3d_input_counts_every_position():
    """nn.Linear(64, 10) on [4, 7, 64]: 4*7*64*10 = 17,920 MACs (torchinfo#77)."""
    c, macs, flops = call("linear", {"weight_layout": "out_in"}, [(4, 7, 64), (10, 64), (10,)])
    assert c.out_shapes == [(4, 7, 10)] and macs == 17_920 and flops == 2 * 17_920 + 280


def test_gemm_transposes():
    """Gemm transA: A [K=6, M=3], B [6, 5]: out [3, 5], MACs 3*6*5 = 90."""
    c, macs, _ = call("linear", {"trans_a": True}, [(6, 3), (6, 5)])
    assert c.out_shapes == [(3, 5)] and macs == 90


def test_matmul_broadcast():
    """[2, 1, 4, 8] @ [3, 8, 5] -> [2, 3, 4, 5]; MACs 2*3*4*5*8 = 960."""
    c, macs, _ = call("matmul", {}, [(2, 1, 4, 8), (3, 8, 5)])
    assert c.out_shapes == [(2, 3, 4, 5)] and macs == 960


def test_einsum_pairwise():
    """'bij,bjk,bkl->bil' with b2 i3 j4 k5 l6: first pair b*i*j*k = 120, then (bik) x (bkl):
    b*i*k*l = 180; total 300."""
    _, macs, flops = call("einsum", {"equation": "bij,bjk,bkl->bil"}, [(2, 3, 4), (2, 4, 5), (2, 5, 6)], [(2, 3, 6)])
    assert (macs, flops) == (300, 600)


def test_attention():
    """q [2, 4, 10, 8], k [2, 4, 12, 8], v [2, 4, 12, 16]: B*H*Sq*Sk*(D+Dv) = 2*4*10*12*24 = 23,040;
    FLOPs 2*MACs + B*H*Sq*Sk (960)."""
    c, macs, flops = call("attention", {}, [(2, 4, 10, 8), (2, 4, 12, 8), (2, 4, 12, 16)])
    assert c.out_shapes == [(2, 4, 10, 16)] and macs == 23_040 and flops == 46_080 + 960


def test_pool_ceil_mode_and_flops():
    """MaxPool k3 s2 on 6, ceil_mode: ceil((6-3)/2)+1 = 3, the last window starts at 4 < 6 so it
    stays; with p1 on 5: ceil((5+2-3)/2)+1 = 3, last start 4 < 5+1 stays. FLOPs out*9."""
    assert window_output_size(6, 3, 2, 1, 0, 0, ceil_mode=True) == 3
    assert window_output_size(6, 3, 2, 1, 0, 0, ceil_mode=False) == 2
    assert window_output_size(5, 2, 2, 1, 0, 1, ceil_mode=True) == 3
    # PyTorch's rule: a window starting in the end padding is dropped: in 4, k2 s2 p1 ceil: ceil(4/2)+1 = 3,
    # start of the 3rd window 4 >= 4 + 1? no -> kept (torch gives 3)
    assert window_output_size(4, 2, 2, 1, 1, 1, ceil_mode=True) == 3
    # in 5, k2 s2 p1 ceil: ceil(5/2)+1 = 4, but window 4 starts at 6 >= 5 + 1: dropped (torch gives 3)
    assert window_output_size(5, 2, 2, 1, 1, 1, ceil_mode=True) == 3
    attrs = {"kernel": [3, 3], "stride": [2, 2], "pads": [0, 0, 0, 0], "ceil_mode": True}
    c, _, flops = call("pool", attrs, [(1, 2, 6, 6)])
    assert c.out_shapes == [(1, 2, 3, 3)] and flops == 18 * 9


def test_same_pads():
    """SAME_UPPER, in 10, k3 s2: total max((5-1)*2 + 3 - 10, 0) = 1: begin 0, end 1."""
    c = OpCall({"kernel": [3], "stride": [2], "dilation": [1], "auto_pad": "SAME_UPPER"}, [(1, 1, 10)], [])
    assert resolve_pads(c) == ([0], [1])
    c = OpCall({"kernel": [3], "stride": [2], "dilation": [1], "auto_pad": "SAME_LOWER"}, [(1, 1, 10)], [])
    assert resolve_pads(c) == ([1], [0])


def test_adaptive_pool_flops():
    """10 -> 3 per axis: windows [0,4) [3,7) [6,10): 4+4+4 = 12 per axis; 12*12 per channel."""
    _, _, flops = call("adaptive_pool", {}, [(1, 2, 10, 10)], [(1, 2, 3, 3)])
    assert flops == 2 * 12 * 12


def test_multihead_attention():
    """E 16, 2 heads, L 5, S 7 (cross attention), N 3, batch_first:
    q proj 3*5*16*16 = 3840, k and v 3*7*16*16 each = 5376 + 5376, attention 3*5*7*32 = 3360,
    out 3840: 21,792."""
    attrs = {"embed_dim": 16, "num_heads": 2, "kdim": 16, "vdim": 16, "batch_first": True}
    _, macs, _ = call("multihead_attention", attrs, [(3, 5, 16), (3, 7, 16), (3, 7, 16)], [(3, 5, 16)])
    assert macs == 21_792
