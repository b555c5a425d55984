"""Variational optical flow in PyTorch, batched over frame pairs on any device: ``tvl1-torch`` (TV-L1,
Zach et al. 2007 / Wedel et al. 2009). ``ops`` holds what the models share (pyramid, warping, derivatives)."""

from .tvl1 import TVL1Torch

__all__ = ["TVL1Torch"]
