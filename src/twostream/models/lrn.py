"""Local response normalisation across channels, fast on CPUs.

``nn.LocalResponseNorm`` pads, runs an ``avg_pool3d`` over channels and a float ``pow``: on this CPU it took
about half of CNN-M's forward time. Here the windowed sum of squares is a 1x1 convolution with a banded
0/1 matrix (a GEMM, which oneDNN runs near peak) whose weights carry alpha/n and whose bias carries k, and
d^-0.75 (the usual beta) is rsqrt(d) * sqrt(rsqrt(d)) instead of a ``pow``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FastLRN(nn.Module):
    """Same function as ``nn.LocalResponseNorm(size, alpha, beta, k)``:
    ``b_c = a_c * (k + alpha / size * sum_{c' in window(c)} a_c'^2) ^ -beta`` on ``Tensor[B, C, H, W]``.
    The channel count is fixed at construction (it sizes the banded matrix)."""

    def __init__(self, channels: int, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        if size < 1 or channels < 1:
            raise ValueError(f"size and channels must be >= 1, got {size} and {channels}")
        self.channels, self.size, self.alpha, self.beta, self.k = channels, size, alpha, beta, k
        c = torch.arange(channels)
        offset = c[None, :] - c[:, None]  # input channel minus output channel
        # window of output c: c - size//2 .. c + (size-1)//2, as nn.LocalResponseNorm pads it
        band = ((offset >= -(size // 2)) & (offset <= (size - 1) // 2)).float() * (alpha / size)
        # buffers, not parameters: nothing to learn, and they follow .to(device) / state_dict
        self.register_buffer("weight", band[:, :, None, None], persistent=False)
        self.register_buffer("bias", torch.full((channels,), float(k)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = F.conv2d(x * x, self.weight.to(x.dtype), self.bias.to(x.dtype))
        if self.beta == 0.75:
            r = torch.rsqrt(d)
            return x * (r * torch.sqrt(r))
        return x * d.pow(-self.beta)

    def extra_repr(self) -> str:
        return f"{self.channels}, size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
