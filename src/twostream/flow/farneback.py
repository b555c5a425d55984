"""Farneback polynomial-expansion flow (OpenCV)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..errors import UserError


class FarnebackFlow:
    name = "farneback"

    def __init__(self, pyr_scale: float = 0.5, levels: int = 3, winsize: int = 15, iterations: int = 3,
                 poly_n: int = 5, poly_sigma: float = 1.2) -> None:
        if not 0 < pyr_scale < 1:
            raise UserError(f"pyr_scale must be in (0, 1), got {pyr_scale}")
        if poly_n not in (5, 7):
            raise UserError(f"poly_n must be 5 or 7, got {poly_n}")
        self.pyr_scale, self.levels, self.winsize = float(pyr_scale), int(levels), int(winsize)
        self.iterations, self.poly_n, self.poly_sigma = int(iterations), int(poly_n), float(poly_sigma)

    def params(self) -> dict[str, Any]:
        return {"pyr_scale": self.pyr_scale, "levels": self.levels, "winsize": self.winsize,
                "iterations": self.iterations, "poly_n": self.poly_n, "poly_sigma": self.poly_sigma,
                "opencv": cv2.__version__}

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        return cv2.calcOpticalFlowFarneback(prev, nxt, None, self.pyr_scale, self.levels, self.winsize,
                                            self.iterations, self.poly_n, self.poly_sigma, 0)
