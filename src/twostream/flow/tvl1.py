"""Dual TV-L1 flow (Zach et al. 2007; OpenCV contrib), the flow of the TSN/I3D era. Slow on a CPU."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np


class TVL1Flow:
    name = "tvl1"

    def __init__(self, tau: float = 0.25, lambda_: float = 0.15, theta: float = 0.3, nscales: int = 5,
                 warps: int = 5, epsilon: float = 0.01, inner_iterations: int = 30,
                 outer_iterations: int = 10, scale_step: float = 0.8, gamma: float = 0.0,
                 median_filtering: int = 5) -> None:
        self._kwargs = {"tau": float(tau), "lambda_": float(lambda_), "theta": float(theta),
                        "nscales": int(nscales), "warps": int(warps), "epsilon": float(epsilon),
                        "innnerIterations": int(inner_iterations),  # sic: OpenCV's spelling
                        "outerIterations": int(outer_iterations), "scaleStep": float(scale_step),
                        "gamma": float(gamma), "medianFiltering": int(median_filtering)}
        self._tvl1 = cv2.optflow.DualTVL1OpticalFlow_create(**self._kwargs)

    def params(self) -> dict[str, Any]:
        """The constructor's keywords (so ``TVL1Flow(**params)`` rebuilds it) and OpenCV's version."""
        names = {"innnerIterations": "inner_iterations", "outerIterations": "outer_iterations",
                 "scaleStep": "scale_step", "medianFiltering": "median_filtering"}
        return {names.get(k, k): v for k, v in self._kwargs.items()} | {"opencv": cv2.__version__}

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        return self._tvl1.calc(prev, nxt, None)
