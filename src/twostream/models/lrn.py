"""Local response normalisation across channels, fast on CPUs.

``nn.LocalResponseNorm`` pads, runs an ``avg_pool3d`` over channels and a float ``pow`` over the whole
batch: on this CPU it took about half of CNN-M's forward time, and more of a training step. Here the
activations are seen as rows of C channels (channels-last, what CNN-M runs in), the windowed sum of
squares is a product with a banded ``[C, C]`` matrix that carries alpha/n (a GEMM), k is its bias, and
the rest is memory-bound: so the work goes in chunks of rows small enough to stay in cache, forward and
backward (an analytic backward instead of autograd's chain of full-size temporaries), and
d^-0.75 = rsqrt(d) * sqrt(rsqrt(d)) replaces ``pow`` for the usual beta.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import UserError

CHUNK = 2**18  # elements per chunk (1 MB of float32): the chunk's temporaries stay in cache


def _inv_pow(d: torch.Tensor, beta: float) -> torch.Tensor:
    """d ** -beta, in place."""
    if beta != 0.75:
        return d.pow_(-beta)
    r = d.rsqrt_()
    return r.mul_(torch.sqrt(r))


def _chunks(n_rows: int, channels: int):
    step = max(256, CHUNK // channels)
    return ((i, min(i + step, n_rows)) for i in range(0, n_rows, step))


class _LRNRows(torch.autograd.Function):
    """y = a * (k + (a * a) @ band^T) ** -beta on rows ``[N, C]``, with
    dL/da = g * d^-beta - 2 beta * a * ((g * a * d^(-beta-1)) @ band)."""

    @staticmethod
    def forward(ctx, rows: torch.Tensor, band: torch.Tensor, bias: torch.Tensor, beta: float) -> torch.Tensor:
        out, d_all = torch.empty_like(rows), torch.empty_like(rows) if ctx.needs_input_grad[0] else None
        band_t = band.t()
        for i, j in _chunks(*rows.shape):
            a = rows[i:j]
            d = torch.addmm(bias, a * a, band_t)
            if d_all is not None:
                d_all[i:j] = d
            torch.mul(a, _inv_pow(d, beta), out=out[i:j])
        if d_all is not None:
            ctx.save_for_backward(rows, band, d_all)
            ctx.beta = beta
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        rows, band, d_all = ctx.saved_tensors
        beta, out = ctx.beta, torch.empty_like(rows)
        grad = grad.contiguous()
        for i, j in _chunks(*rows.shape):
            a, g, d = rows[i:j], grad[i:j], d_all[i:j]
            r = _inv_pow(d.clone(), beta)  # d^-beta
            t = (g * a).mul_(r).div_(d)  # g * a * d^(-beta-1)
            out[i:j] = (g * r).sub_(torch.mm(t, band).mul_(a), alpha=2 * beta)
        return out, None, None, None


class FastLRN(nn.Module):
    """Same function as ``nn.LocalResponseNorm(size, alpha, beta, k)``:
    ``b_c = a_c * (k + alpha / size * sum_{c' in window(c)} a_c'^2) ^ -beta`` on ``Tensor[B, C, H, W]``.
    The channel count is fixed at construction (it sizes the banded matrix). The output has the input's
    memory layout; channels-last inputs avoid two copies."""

    def __init__(self, channels: int, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        if size < 1 or channels < 1:
            raise UserError(f"size and channels must be >= 1, got {size} and {channels}")
        self.channels, self.size, self.alpha, self.beta, self.k = channels, size, alpha, beta, k
        c = torch.arange(channels)
        offset = c[None, :] - c[:, None]  # input channel minus output channel
        # window of output c: c - size//2 .. c + (size-1)//2, as nn.LocalResponseNorm pads it
        band = ((offset >= -(size // 2)) & (offset <= (size - 1) // 2)).float() * (alpha / size)
        # buffers, not parameters: nothing to learn, and they follow .to(device)
        self.register_buffer("band", band, persistent=False)
        self.register_buffer("bias", torch.full((1, channels), float(k)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise UserError(f"FastLRN({self.channels}) takes [B, {self.channels}, H, W], got {list(x.shape)}")
        channels_last = x.is_contiguous(memory_format=torch.channels_last)
        b, c, h, w = x.shape
        rows = x.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1).reshape(-1, c)
        out = _LRNRows.apply(rows, self.band.to(x.dtype), self.bias.to(x.dtype), self.beta)
        out = out.view(b, h, w, c).permute(0, 3, 1, 2)
        return out if channels_last else out.contiguous()

    def extra_repr(self) -> str:
        return f"{self.channels}, size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
