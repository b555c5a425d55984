"""TV-L1 optical flow in PyTorch (``tvl1-torch``): the model of Zach, Pock and Bischof (2007) with the
improvements of Wedel et al. (2009), the one OpenCV's DualTVL1 implements, batched over frame pairs on any
device.

Energy: sum |grad u| + lambda |rho(u)|, rho the linearised brightness residual of the second frame warped
by u. Solved as OpenCV does: coarse to fine, several warps per level, and per warp alternating steps
(the point-wise thresholding of the data term, then Chambolle's dual projection for the TV term, coupled
by theta) until a step moves the flow less than epsilon, at most outer x inner steps (OpenCV tests after
every step too; its outer loop only re-applies the median filter, which here runs once per warp), then a
median filter of the flow.

Unlike OpenCV's defaults (5 levels of 0.8: the coarsest at 41 % of the frame), the pyramid here goes
down by halves until the short side reaches 16 px: motions of tens of pixels (Middlebury's Urban2, where
OpenCV's TV-L1 errs by 3.6 px) shrink below a pixel at the coarsest level. Each pair of a batch stops on
its own criterion and then leaves the batch, so a batch gives the fields its pairs give one by one, in
the time of their steps together rather than of its slowest pair's times its size.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ...errors import UserError
from .ops import (BatchedFlow, as_batch, centered_gradient, coarse_to_fine, divergence, forward_gradient, median_filter,
                  warp)


def inner_step(u: torch.Tensor, dual: torch.Tensor, rho_c: torch.Tensor, g: torch.Tensor, g2: torch.Tensor,
               lt_g: torch.Tensor, lt_g2: torch.Tensor, theta: float, taut: float
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One inner iteration: the flow ``Tensor[B, 2, H, W]`` after the data term's point-wise minimiser
    (the thresholding step's three cases) and the TV term's coupling, the dual ``Tensor[B, 2, 2, H, W]``
    after Chambolle's projection at that flow, and each pair's mean squared change of the flow ``Tensor[B]``
    (the stopping criterion)."""
    rho = (rho_c + (g * u).sum(1))[:, None]
    step = torch.where(rho < -lt_g2, lt_g, torch.where(rho > lt_g2, -lt_g, rho * g / -g2))
    new = step + u + theta * divergence(dual[:, :, 0], dual[:, :, 1])
    gx, gy = forward_gradient(new)
    norm = (torch.sqrt(gx * gx + gy * gy) * taut + 1)[:, :, None]
    change = (new - u).square().sum(1).flatten(1).mean(1)
    return new, (torch.stack([gx, gy], dim=2) * taut + dual) / norm, change


@functools.cache
def _compiled_step():
    """torch.compile of ``inner_step``, made once per process on first use."""
    return torch.compile(inner_step, dynamic=True)


class TVL1Torch(BatchedFlow):
    """``TVL1Torch(device="cpu")(prev, nxt)``: grey ``uint8[H, W]`` x 2 -> ``float32[H, W, 2]`` (the
    estimator interface); ``.batch(prev, nxt)``: ``Tensor[B, H, W]`` x 2 -> ``Tensor[B, 2, H, W]``."""

    name = "tvl1-torch"

    def __init__(self, tau: float = 0.25, lambda_: float = 0.15, theta: float = 0.3, scale_factor: float = 0.5,
                 levels: int = 10, min_side: int = 16, warps: int = 5, epsilon: float = 0.01,
                 inner_iterations: int = 30, outer_iterations: int = 10, median_filtering: int = 5,
                 smoothing: float = 0.8, device: str = "cpu", compile: bool = False) -> None:
        if not 0 < scale_factor < 1:
            raise UserError(f"scale_factor must be in (0, 1), got {scale_factor}")
        if min(levels, warps, inner_iterations, outer_iterations) < 1:
            raise UserError("levels, warps, inner_iterations and outer_iterations must be >= 1")
        if tau <= 0 or theta <= 0 or lambda_ <= 0:
            raise UserError("tau, theta and lambda_ must be > 0")
        if median_filtering > 1 and median_filtering % 2 == 0:
            raise UserError(f"median_filtering must be odd (or 0 / 1: none), got {median_filtering}")
        self._params = {"tau": float(tau), "lambda_": float(lambda_), "theta": float(theta),
                        "scale_factor": float(scale_factor), "levels": int(levels), "min_side": int(min_side),
                        "warps": int(warps), "epsilon": float(epsilon), "inner_iterations": int(inner_iterations),
                        "outer_iterations": int(outer_iterations), "median_filtering": int(median_filtering),
                        "smoothing": float(smoothing)}
        self.device = torch.device(device)
        # torch.compile fuses the inner iteration's element-wise work (~5x faster on this CPU after a
        # one-off compilation of a few seconds; needs a C++ compiler on a CPU). Like the device it is how
        # the flow is computed, not what: not recorded (results agree within float rounding; tested)
        self._step = _compiled_step() if compile else inner_step

    @torch.no_grad()
    def batch(self, prev: torch.Tensor | np.ndarray, nxt: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Flows ``Tensor[B, 2, H, W]`` (pixels, float32) from ``prev`` to ``nxt`` ``[B, H, W]``."""
        i0, i1 = as_batch(prev, self.device), as_batch(nxt, self.device)
        p = self._params
        return coarse_to_fine(i0, i1, p["scale_factor"], p["levels"], p["min_side"], p["smoothing"], self._level)

    def _level(self, i0: torch.Tensor, i1: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        p = self._params
        lt = p["lambda_"] * p["theta"]
        ix, iy = centered_gradient(i1)
        grads = torch.stack([i1, ix, iy], dim=1)  # warped together: the gradient of the warped image
        dual = torch.zeros(len(u), 2, 2, *u.shape[-2:], device=u.device)  # p for u_x and u_y: [B, 2, 2, H, W]
        for _ in range(p["warps"]):
            w1, wx, wy = warp(grads, u).unbind(1)
            g = torch.stack([wx, wy], dim=1)  # [B, 2, H, W]
            g2 = (wx * wx + wy * wy).clamp_min(1e-9)[:, None]
            rho_c = w1 - (g * u).sum(1) - i0  # residual without the flow's part: rho = rho_c + g . u
            u, dual = self._solve(u, dual, (rho_c, g, g2, lt * g, lt * g2))
            u = median_filter(u, p["median_filtering"])
        return u

    def _solve(self, u: torch.Tensor, dual: torch.Tensor, data: tuple[torch.Tensor, ...]
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """One warp's steps: the flow ``Tensor[B, 2, H, W]`` and dual ``Tensor[B, 2, 2, H, W]`` after each pair
        stopped. As OpenCV, every step tests the criterion and a pair stops at its first step that moves
        the flow less than epsilon (RMS, pixels), or after outer x inner steps; on the small motions of
        consecutive video frames that is a few steps. A pair that stops leaves the batch, so a batch costs
        the sum of its pairs' steps, not its size times its slowest pair's."""
        p = self._params
        taut, limit = p["tau"] / p["theta"], p["epsilon"] ** 2
        pairs = torch.arange(len(u), device=u.device)  # the batch rows still stepping
        su, sd = u, dual
        for _ in range(p["outer_iterations"] * p["inner_iterations"]):
            su, sd, change = self._step(su, sd, *data, p["theta"], taut)
            going = change > limit
            if bool(going.all()):
                continue
            u, dual = u.index_copy(0, pairs, su), dual.index_copy(0, pairs, sd)
            pairs, su, sd, data = pairs[going], su[going], sd[going], tuple(t[going] for t in data)
            if not len(pairs):
                return u, dual
        return u.index_copy(0, pairs, su), dual.index_copy(0, pairs, sd)
