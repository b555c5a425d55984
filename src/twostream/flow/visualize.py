"""The standard optical-flow colour coding (Baker et al., Middlebury): hue = direction, saturation =
magnitude relative to the largest displacement shown."""

from __future__ import annotations

import numpy as np


def color_wheel() -> np.ndarray:
    """``uint8[55, 3]``: the Middlebury wheel, red -> yellow -> green -> cyan -> blue -> magenta -> red,
    with 15, 6, 4, 11, 13 and 6 steps per transition."""
    steps = [(15, (255, 0, 0), (255, 255, 0)), (6, (255, 255, 0), (0, 255, 0)), (4, (0, 255, 0), (0, 255, 255)),
             (11, (0, 255, 255), (0, 0, 255)), (13, (0, 0, 255), (255, 0, 255)), (6, (255, 0, 255), (255, 0, 0))]
    rows = []
    for n, start, end in steps:
        t = np.arange(n)[:, None] / n
        rows.append(np.floor(np.array(start) * (1 - t) + np.array(end) * t))
    return np.concatenate(rows).astype(np.uint8)


def flow_to_color(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """``float32[H, W, 2]`` -> ``uint8[H, W, 3]`` RGB. Zero motion is white; a displacement of
    ``max_magnitude`` (default: the largest in the field) is fully saturated."""
    u, v = flow[..., 0], flow[..., 1]
    mag = np.hypot(u, v)
    top = max_magnitude or float(mag.max()) or 1.0
    wheel = color_wheel().astype(np.float32) / 255
    n = len(wheel)
    angle = np.arctan2(-v, -u) / np.pi  # -1..1
    pos = (angle + 1) / 2 * (n - 1)
    i0 = np.floor(pos).astype(int)
    i1 = (i0 + 1) % n
    frac = (pos - i0)[..., None]
    col = (1 - frac) * wheel[i0] + frac * wheel[i1]
    r = np.clip(mag / top, 0, 1)[..., None]
    col = 1 - r * (1 - col)  # desaturate towards white for small motion
    return (col * 255).round().astype(np.uint8)
