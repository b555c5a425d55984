"""Local response normalisation across channels, fast on CPUs.

``nn.LocalResponseNorm`` pads, runs an ``avg_pool3d`` over channels and a float ``pow`` over the whole
batch: on this CPU it took about half of CNN-M's forward time. Here the windowed sum of squares is a
matrix product with a banded ``[C, C]`` matrix that carries alpha/n (a GEMM, which oneDNN/BLAS run near
peak), k is its bias, and the rest is memory-bound, so the number of passes over the activations is what
counts. Without autograd the work is done in chunks whose intermediates stay in cache, where
d^-0.75 = rsqrt(d) * sqrt(rsqrt(d)) beats ``pow``. Channels-last inputs (what CNN-M runs in) are
normalised as rows of C channels.
"""

from __future__ import annotations

import torch
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
        # buffers, not parameters: nothing to learn, and they follow .to(device)
        self.register_buffer("band", band, persistent=False)
        self.register_buffer("bias", torch.full((channels, 1), float(k)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"FastLRN({self.channels}) takes [B, {self.channels}, H, W], got {list(x.shape)}")
        band, bias = self.band.to(x.dtype), self.bias.to(x.dtype)
        grad = torch.is_grad_enabled() and x.requires_grad
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            # channels-last: rows of C channels, d = k + (a * a) @ band^T
            b, c, h, w = x.shape
            rows = x.permute(0, 2, 3, 1).reshape(-1, c)
            band_t, bias_row = band.t(), bias.view(1, c)
            if grad:
                out = rows * torch.addmm(bias_row, rows * rows, band_t).pow_(-self.beta)
            else:
                out = torch.empty_like(rows)
                step = max(1024, 2**18 // c)  # ~1 MB of activations per chunk: they stay in cache
                for i in range(0, len(rows), step):
                    r = rows[i:i + step]
                    torch.mul(r, self._inv_pow(torch.addmm(bias_row, r * r, band_t)), out=out[i:i + step])
            return out.view(b, h, w, c).permute(0, 3, 1, 2)
        flat = x.contiguous().flatten(2)  # [B, C, HW]: d = k + band @ (a * a) per image
        if grad:
            return (flat * torch.matmul(band, flat * flat).add_(bias).pow_(-self.beta)).view_as(x)
        out = torch.empty_like(flat)
        for i in range(len(flat)):  # one image at a time: its intermediates stay in cache
            xi = flat[i]
            torch.mul(xi, self._inv_pow(torch.addmm(bias, band, xi * xi)), out=out[i])
        return out.view_as(x)

    def _inv_pow(self, d: torch.Tensor) -> torch.Tensor:
        """d ** -beta in place. For the usual beta = 0.75, rsqrt(d) * sqrt(rsqrt(d)): on a chunk that sits
        in cache the extra passes cost less than pow's exp/log."""
        if self.beta != 0.75:
            return d.pow_(-self.beta)
        r = d.rsqrt_()
        return r.mul_(torch.sqrt(r))

    def extra_repr(self) -> str:
        return f"{self.channels}, size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
