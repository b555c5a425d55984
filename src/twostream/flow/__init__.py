"""Optical flow: one estimator per file behind the small interface in ``base``; ``codec`` stores it."""

from __future__ import annotations

from typing import Any

from ..errors import UserError
from .base import FlowEstimator, compute_flow, iter_flow, to_gray
from .codec import FlowCodec
from .dis import DISFlow
from .farneback import FarnebackFlow
from .tvl1 import TVL1Flow
from .variational import BroxTorch, TVL1Torch

METHODS: dict[str, type] = {"dis": DISFlow, "farneback": FarnebackFlow, "tvl1": TVL1Flow,
                            "tvl1-torch": TVL1Torch, "brox": BroxTorch}  # the last two: PyTorch, any device
DEVICE_METHODS = sorted(m for m, c in METHODS.items() if hasattr(c, "batch"))  # batched, any torch device
DEFAULT_METHOD = "dis"  # DIS medium: the CPU default (the paper used Brox et al. 2004 on a GPU)


def build_flow(method: str, **params: Any) -> FlowEstimator:
    """The estimator for ``method`` ("dis", "farneback" or "tvl1") with the given parameters."""
    if method not in METHODS:
        raise UserError(f"flow method must be one of {sorted(METHODS)}, got {method!r}")
    try:
        return METHODS[method](**params)
    except TypeError as exc:  # an unknown keyword: name it with the method
        raise UserError(f"bad parameters for flow method {method!r}: {exc}") from exc


__all__ = ["DEFAULT_METHOD", "FlowEstimator", "FlowCodec", "DISFlow", "FarnebackFlow", "TVL1Flow", "TVL1Torch", "BroxTorch",
           "METHODS", "DEVICE_METHODS",
           "build_flow", "compute_flow", "iter_flow", "to_gray"]
