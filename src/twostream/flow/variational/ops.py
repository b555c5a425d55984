"""What the variational flows share, in batched torch operations (no loop over pixels): image pyramids,
warping, derivatives, divergence, median filtering. Images are ``Tensor[B, H, W]`` float32 (0-255),
flows ``Tensor[B, 2, H, W]`` in pixels (x, then y)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import UserError


class BatchedFlow:
    """What both PyTorch flows share: ``params()`` (the constructor keywords a subclass keeps in
    ``_params``, and torch's version; the device is where it runs, not what it computes) and the one-pair
    estimator interface (grey ``uint8[H, W]`` x 2 -> ``float32[H, W, 2]``) over ``batch``."""

    name: str
    device: torch.device
    _params: dict

    def params(self) -> dict:
        return dict(self._params) | {"torch": torch.__version__}

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        return self.batch(prev, nxt)[0].permute(1, 2, 0).cpu().numpy()

    def batch(self, prev: torch.Tensor | np.ndarray, nxt: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Flows ``Tensor[B, 2, H, W]`` (pixels, float32) from ``prev`` to ``nxt`` ``[B, H, W]``."""
        raise NotImplementedError


def as_batch(frames: torch.Tensor | np.ndarray, device: torch.device) -> torch.Tensor:
    """Grey frames ``[H, W]`` or ``[B, H, W]`` (uint8 or float, 0-255) -> float32 ``Tensor[B, H, W]``."""
    x = torch.as_tensor(frames)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise UserError(f"grey frames must be [H, W] or [B, H, W], got {list(x.shape)}")
    return x.to(device=device, dtype=torch.float32)


def coarse_to_fine(i0: torch.Tensor, i1: torch.Tensor, factor: float, levels: int, min_side: int,
                   smoothing: float, solve: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
                   ) -> torch.Tensor:
    """The pyramid scheme both models share: frames ``Tensor[B, H, W]`` shrunk by ``factor`` per level
    (``pyramid_sizes``; each level made from the one above it, Gaussian anti-aliasing of sigma
    ``smoothing * sqrt(1 / factor^2 - 1)``), then from the coarsest level to the finest
    ``flow = solve(frame0, frame1, flow from the level below, resized)``; returns ``Tensor[B, 2, H, W]``."""
    if i0.shape != i1.shape:
        raise UserError(f"frame pairs must match in shape, got {list(i0.shape)} and {list(i1.shape)}")
    sizes = pyramid_sizes(*i0.shape[-2:], factor, levels, min_side)
    sigma = smoothing * float(np.sqrt(1 / factor ** 2 - 1))
    pyramid = [(i0, i1)]
    for size in sizes[1:]:
        pyramid.append((resize(pyramid[-1][0], size, sigma), resize(pyramid[-1][1], size, sigma)))
    flow = torch.zeros(len(i0), 2, *sizes[-1], device=i0.device)
    for a, b in reversed(pyramid):
        flow = solve(a, b, resize_flow(flow, tuple(a.shape[-2:])))
    return flow


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian smoothing of ``Tensor[B, H, W]`` (replicated borders)."""
    if sigma <= 0:
        return x
    radius = max(1, int(round(2 * sigma)))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-t * t / (2 * sigma * sigma))
    k = k / k.sum()
    y = F.pad(x[:, None], (radius, radius, 0, 0), mode="replicate")
    y = F.conv2d(y, k.view(1, 1, 1, -1))
    y = F.pad(y, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(y, k.view(1, 1, -1, 1))[:, 0]


def pyramid_sizes(height: int, width: int, factor: float, levels: int, min_side: int) -> list[tuple[int, int]]:
    """Sizes from the finest (the input's) to the coarsest, each ``factor`` of the previous, at most
    ``levels`` of them and none with a side under ``min_side``."""
    sizes = [(height, width)]
    while len(sizes) < levels:
        h, w = round(sizes[-1][0] * factor), round(sizes[-1][1] * factor)
        if min(h, w) < min_side:
            break
        sizes.append((h, w))
    return sizes


def resize(x: torch.Tensor, size: tuple[int, int], sigma: float = 0.0) -> torch.Tensor:
    """``Tensor[B, H, W]`` smoothed by ``sigma`` (anti-aliasing before shrinking) and resized bilinearly."""
    return F.interpolate(gaussian_blur(x, sigma)[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``Tensor[B, 2, h, w]`` -> ``Tensor[B, 2, H, W]``, its vectors scaled with the image."""
    h, w = flow.shape[-2:]
    out = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
    scale = torch.tensor([size[1] / w, size[0] / h], device=flow.device, dtype=flow.dtype)
    return out * scale.view(1, 2, 1, 1)


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``image`` ``Tensor[B, C, H, W]`` sampled at x + flow (bilinear; outside the frame: the border)."""
    b, _, h, w = flow.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=flow.device, dtype=flow.dtype),
                            torch.arange(w, device=flow.device, dtype=flow.dtype), indexing="ij")
    gx = (xs + flow[:, 0]) * (2 / max(w - 1, 1)) - 1
    gy = (ys + flow[:, 1]) * (2 / max(h - 1, 1)) - 1
    return F.grid_sample(image, torch.stack([gx, gy], dim=-1), mode="bilinear", padding_mode="border",
                         align_corners=True)


def centered_gradient(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences of ``Tensor[B, ..., H, W]`` (one-sided at the borders): (d/dx, d/dy)."""
    gx = torch.empty_like(x)
    gy = torch.empty_like(x)
    gx[..., 1:-1] = (x[..., 2:] - x[..., :-2]) / 2
    gx[..., 0], gx[..., -1] = x[..., 1] - x[..., 0], x[..., -1] - x[..., -2]
    gy[..., 1:-1, :] = (x[..., 2:, :] - x[..., :-2, :]) / 2
    gy[..., 0, :], gy[..., -1, :] = x[..., 1, :] - x[..., 0, :], x[..., -1, :] - x[..., -2, :]
    return gx, gy


def forward_gradient(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences of ``Tensor[..., H, W]``, zero at the last column / row (TV's discrete gradient)."""
    gx = F.pad(x[..., 1:] - x[..., :-1], (0, 1))
    gy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
    return gx, gy


def divergence(px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Backward-difference divergence, the negative adjoint of ``forward_gradient``."""
    dx = torch.cat([px[..., :1], px[..., 1:-1] - px[..., :-2], -px[..., -2:-1]], dim=-1)
    dy = torch.cat([py[..., :1, :], py[..., 1:-1, :] - py[..., :-2, :], -py[..., -2:-1, :]], dim=-2)
    return dx + dy


def median_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    """``size`` x ``size`` median of each channel of ``Tensor[B, C, H, W]`` (replicated borders), exact.

    A selection network of element-wise min / max over the window's ``size ** 2`` shifted views (torch's
    ``median`` over an unfolded copy was 3x slower and most of TV-L1's time here), run on a few pairs at a
    time so that the network's dozen live planes stay in the CPU's cache."""
    if size <= 1:
        return x
    if size % 2 == 0:
        raise UserError(f"median filter size must be odd, got {size}")
    r, (h, w) = size // 2, x.shape[-2:]
    padded = F.pad(x, (r, r, r, r), mode="replicate")
    out = torch.empty_like(x)
    rows = max(1, _CACHE_ELEMENTS // x[0].numel())
    for i in range(0, len(x), rows):
        p = padded[i:i + rows]
        out[i:i + rows] = _select_median([p[..., a:a + h, b:b + w] for a in range(size) for b in range(size)])
    return out


_CACHE_ELEMENTS = 1 << 18  # elements per plane of the median's network: a 340x256 flow field (2 channels)


def _select_median(values: list[torch.Tensor]) -> torch.Tensor:
    """The median of an odd number of same-shaped tensors, element-wise, by forgetful selection: of the
    first n // 2 + 2, the least and the greatest cannot be the median; drop both, take in the next, repeat."""
    work, rest = list(values[: len(values) // 2 + 2]), list(values[len(values) // 2 + 2:])
    while len(work) > 1:
        for i in range(1, len(work)):  # the least to the front
            work[0], work[i] = torch.minimum(work[0], work[i]), torch.maximum(work[0], work[i])
        for i in range(1, len(work) - 1):  # the greatest to the back
            work[i], work[-1] = torch.minimum(work[i], work[-1]), torch.maximum(work[i], work[-1])
        work, rest = work[1:-1] + rest[:1], rest[1:]
    return work[0]
