"""A hypothesis strategy for random valid PyTorch networks.

A network is a list of block specs, built with the input's spatial rank (1-D, 2-D, 3-D)
and size tracked so every block is valid: conv (kernel, stride, padding incl. 'same',
dilation, groups incl. depthwise), pooling (max/avg, ceil_mode, adaptive), BatchNorm and
activations, residual adds, concat branches, upsampling (ConvTranspose, interpolate),
squeeze-and-excitation, and a head (global pool or flatten + linear, or an attention
block over the positions).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONVT = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
MAXPOOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
AVGPOOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
ADAPTIVE = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}
LINEAR_MODE = {1: "linear", 2: "bilinear", 3: "trilinear"}


@dataclass
class Spec:
    ndim: int
    channels: int
    size: int
    blocks: list
    head: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (1, self.channels, *([self.size] * self.ndim))


class Residual(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


class Concat(nn.Module):
    def __init__(self, a: nn.Module, b: nn.Module) -> None:
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], 1)


class SE(nn.Module):
    def __init__(self, c: int, ndim: int) -> None:
        super().__init__()
        self.ndim = ndim
        self.fc1 = nn.Linear(c, max(c // 2, 1))
        self.fc2 = nn.Linear(max(c // 2, 1), c)

    def forward(self, x):
        s = x.mean(tuple(range(2, 2 + self.ndim)))
        g = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * g.reshape(*g.shape, *([1] * self.ndim))


class Interp(nn.Module):
    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x):
        kwargs = {} if self.mode == "nearest" else {"align_corners": False}
        return F.interpolate(x, scale_factor=2, mode=self.mode, **kwargs)


class AttentionHead(nn.Module):
    """Positions as tokens, one SDPA attention layer, mean over tokens, linear."""

    def __init__(self, c: int, classes: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(c, 3 * c)
        self.out = nn.Linear(c, classes)

    def forward(self, x):
        t = x.flatten(2).transpose(1, 2)
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        y = F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)).squeeze(1)
        return self.out(y.mean(1))


def _out(size: int, k: int, s: int, p: int, d: int = 1, ceil: bool = False) -> int:
    span = size + 2 * p - d * (k - 1) - 1
    if span < 0:
        return 0
    if not ceil:
        return span // s + 1
    out = -(-span // s) + 1
    return out - 1 if (out - 1) * s >= size + p else out


RF_KINDS = ("conv", "conv", "pool", "bnact", "residual", "concat")
ALL_KINDS = ("conv", "conv", "pool", "adaptive", "bnact", "residual", "concat", "upsample", "se")


@st.composite
def networks(draw, max_blocks: int = 5, attention: bool = True, kinds: tuple[str, ...] = ALL_KINDS,
             heads: bool = True) -> Spec:
    ndim = draw(st.sampled_from([1, 2, 2, 3]))
    size = draw(st.integers(6, 20 if ndim < 3 else 10))
    c = draw(st.sampled_from([1, 3, 4, 8]))
    spec = Spec(ndim, c, size, [], "none")
    for _ in range(draw(st.integers(1, max_blocks))):
        kind = draw(st.sampled_from(kinds))
        if kind == "conv":
            k = draw(st.integers(1, 5))
            s = draw(st.integers(1, 2))
            d = draw(st.integers(1, 2)) if k > 1 else 1
            # padding='same' exports as auto_pad SAME, which onnxruntime rejects with dilation
            same = s == 1 and d == 1 and draw(st.booleans())
            p = "same" if same else draw(st.integers(0, (d * (k - 1)) // 2))
            groups = draw(st.sampled_from([g for g in (1, 2, c) if c % g == 0]))
            cout = groups * draw(st.integers(1, 3)) if groups > 1 else draw(st.integers(1, 12))
            new = size if same else _out(size, k, s, p, d)
            if new < 1:
                continue
            spec.blocks.append(("conv", c, cout, k, s, p, d, groups, draw(st.booleans())))
            c, size = cout, new
        elif kind == "pool":
            k = draw(st.integers(2, 3))
            s = draw(st.integers(1, 2))
            p = draw(st.integers(0, k // 2))
            ceil = draw(st.booleans())
            mode = draw(st.sampled_from(["max", "avg"]))
            new = _out(size, k, s, p, 1, ceil)
            if new < 1 or size < k:  # torch's 3-D average pooling rejects inputs below the kernel
                continue
            spec.blocks.append(("pool", mode, k, s, p, ceil))
            size = new
        elif kind == "adaptive":
            out = draw(st.integers(1, max(size - 1, 1)))
            spec.blocks.append(("adaptive", out))
            size = out
        elif kind == "bnact":
            spec.blocks.append(("bnact", c, draw(st.sampled_from(["relu", "gelu", "silu", "hardswish"]))))
        elif kind == "residual":
            k = draw(st.sampled_from([1, 3]))
            spec.blocks.append(("residual", c, k))
        elif kind == "concat":
            a, b = draw(st.integers(1, 6)), draw(st.integers(1, 6))
            spec.blocks.append(("concat", c, a, b))
            c = a + b
        elif kind == "upsample":
            if size * 2 > 40:
                continue
            how = draw(st.sampled_from(["convt", "nearest", "linear"]))
            spec.blocks.append(("upsample", how, c))
            size *= 2
        elif kind == "se" and c >= 2:
            spec.blocks.append(("se", c))
    options = ["none", "pool-linear", "flatten-linear"] + (["attention"] if attention and ndim == 2 else [])
    spec.head = draw(st.sampled_from(options)) if heads else "none"
    spec.blocks.append(("head", spec.head, c, size))
    return spec


def build(spec: Spec) -> nn.Module:
    torch.manual_seed(0)
    n = spec.ndim
    layers: list[nn.Module] = []
    for block in spec.blocks:
        kind = block[0]
        if kind == "conv":
            _, cin, cout, k, s, p, d, g, bias = block
            layers.append(CONV[n](cin, cout, k, s, p, dilation=d, groups=g, bias=bias))
        elif kind == "pool":
            _, mode, k, s, p, ceil = block
            layers.append((MAXPOOL if mode == "max" else AVGPOOL)[n](k, s, p, ceil_mode=ceil))
        elif kind == "adaptive":
            layers.append(ADAPTIVE[n](block[1]))
        elif kind == "bnact":
            act = {"relu": nn.ReLU(), "gelu": nn.GELU(), "silu": nn.SiLU(), "hardswish": nn.Hardswish()}[block[2]]
            layers += [BN[n](block[1]), act]
        elif kind == "residual":
            _, c, k = block
            layers.append(Residual(CONV[n](c, c, k, 1, k // 2)))
        elif kind == "concat":
            _, c, a, b = block
            layers.append(Concat(CONV[n](c, a, 1), CONV[n](c, b, 3, 1, 1)))
        elif kind == "upsample":
            _, how, c = block
            if how == "convt":
                layers.append(CONVT[n](c, c, 2, 2))
            else:
                layers.append(Interp("nearest" if how == "nearest" else LINEAR_MODE[n]))
        elif kind == "se":
            layers.append(SE(block[1], n))
        elif kind == "head":
            _, head, c, size = block
            if head == "pool-linear":
                layers += [ADAPTIVE[n](1), nn.Flatten(), nn.Linear(c, 5)]
            elif head == "flatten-linear":
                layers += [nn.Flatten(), nn.Linear(c * size ** n, 5)]
            elif head == "attention":
                layers.append(AttentionHead(c, 5))
    model = nn.Sequential(*layers).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model
