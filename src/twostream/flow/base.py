"""The optical-flow interface shared by every estimator.

An estimator maps two grey uint8 frames ``[H, W]`` to a flow field ``float32[H, W, 2]`` in pixels
(x, then y) such that ``next[y + v, x + u] ~ prev[y, x]``: flow t maps frame t to frame t+1.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import cv2
import numpy as np

from ..errors import UserError


class FlowEstimator(Protocol):
    name: str

    def params(self) -> dict[str, Any]:
        """Every parameter that determines the output, JSON-serialisable (recorded in the cache); all but
        ``opencv`` (the library's version) are constructor keywords, so the estimator can be rebuilt."""

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """Grey ``uint8[H, W]`` x 2 -> ``float32[H, W, 2]`` flow from ``prev`` to ``nxt``."""


def to_gray(frame: np.ndarray) -> np.ndarray:
    """``uint8[H, W, 3]`` RGB -> ``uint8[H, W]`` luma (grey frames pass through)."""
    if frame.ndim == 2:
        return frame
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def iter_flow(frames: Iterable[np.ndarray], estimator: FlowEstimator, backward: bool = False
              ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Stream over RGB (or grey) frames, yielding ``(forward_t, backward_t)`` for t = 0..T-2.

    forward_t maps frame t to t+1; backward_t (only when ``backward``) maps frame t+1 to t.
    Only two frames are held at a time, so arbitrarily long videos fit in memory.
    """
    prev = None
    for frame in frames:
        gray = to_gray(frame)
        if prev is not None:
            yield estimator(prev, gray), (estimator(gray, prev) if backward else None)
        prev = gray


def compute_flow(frames: np.ndarray, estimator: FlowEstimator, backward: bool = False
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """``uint8[T, H, W, 3]`` -> forward ``float32[T-1, H, W, 2]`` and backward (or None)."""
    if len(frames) < 2:
        raise UserError(f"flow needs at least 2 frames, got {len(frames)}")
    pairs = list(iter_flow(frames, estimator, backward))
    fwd = np.stack([f for f, _ in pairs])
    bwd = np.stack([b for _, b in pairs]) if backward else None
    return fwd, bwd
