"""Middlebury ``.flo`` files and end-point error, for checking flow estimators against ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError

FLO_TAG = 202021.25
UNKNOWN = 1e9  # ground-truth values above this mark pixels with unknown flow


def read_flo(path: str | Path) -> np.ndarray:
    """Middlebury .flo -> ``float32[H, W, 2]`` (u, v). Layout: float32 tag 202021.25, int32 width,
    int32 height, then u, v interleaved row by row, little-endian."""
    data = Path(path).read_bytes()
    if len(data) < 12 or np.frombuffer(data, "<f4", 1)[0] != np.float32(FLO_TAG):
        raise UserError(f"{path}: not a Middlebury .flo file (bad tag)")
    width, height = (int(v) for v in np.frombuffer(data, "<i4", 2, offset=4))
    expected = 12 + 8 * width * height
    if width <= 0 or height <= 0 or len(data) != expected:
        raise UserError(f"{path}: size {len(data)} B does not match {width}x{height} flow ({expected} B)")
    return np.frombuffer(data, "<f4", offset=12).reshape(height, width, 2).copy()


def write_flo(path: str | Path, flow: np.ndarray) -> None:
    """``float32[H, W, 2]`` -> Middlebury .flo."""
    h, w = flow.shape[:2]
    header = np.array([FLO_TAG], "<f4").tobytes() + np.array([w, h], "<i4").tobytes()
    Path(path).write_bytes(header + np.ascontiguousarray(flow, "<f4").tobytes())


def endpoint_error(flow: np.ndarray, truth: np.ndarray) -> float:
    """Mean end-point error (px) over the pixels whose ground truth is known."""
    if flow.shape != truth.shape:
        raise UserError(f"flow {flow.shape} and ground truth {truth.shape} differ in shape")
    known = np.all(np.abs(truth) < UNKNOWN, axis=-1)
    if not known.any():
        raise UserError("ground truth has no known pixel")
    return float(np.linalg.norm(flow[known] - truth[known], axis=-1).mean())
