"""Analyse a large transformer built on the meta device through the PyTorch path.

    python benchmarks/torch_meta_large.py [--layers 24] [--dim 2048]

Default: 24 pre-norm blocks of width 2048 (12*d^2 per block: about 1.2 billion parameters),
sequence 1024. Reports wall time and the process's peak resident memory. Nothing is
allocated for the weights (meta device) and no arithmetic runs (fake tensors).
"""

from __future__ import annotations

import argparse
import resource
import time

import torch
import torch.nn.functional as F
from torch import nn

import archlint


class Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, n, c))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class GPT(nn.Module):
    def __init__(self, layers: int, dim: int, heads: int, vocab: int = 50_304) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.embed.weight  # tied

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--seq", type=int, default=1024)
    args = parser.parse_args()
    start = time.perf_counter()
    with torch.device("meta"):
        model = GPT(args.layers, args.dim, args.heads)
    built = time.perf_counter() - start
    tokens = torch.zeros(1, args.seq, dtype=torch.long, device="meta")
    start = time.perf_counter()
    report = archlint.analyze(model, example_inputs=(tokens,))
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    params = sum(p.numel() for p in model.parameters())
    print(f"layers {args.layers}, dim {args.dim}, seq {args.seq}: params {report.totals.params:,} "
          f"(module: {params:,}), MACs {report.totals.macs / 1e9:.1f} G, {len(report.layers)} layers, "
          f"tracer {report.model.get('tracer')}")
    print(f"build {built:.2f} s, analyse {elapsed:.2f} s, peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
