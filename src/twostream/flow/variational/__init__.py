"""Variational optical flow in PyTorch, batched over frame pairs on any device: ``brox`` (Brox et al. 2004,
the paper's flow) and ``tvl1-torch`` (TV-L1, Zach et al. 2007 / Wedel et al. 2009). ``ops`` holds what the
models share (pyramid, warping, derivatives, median filter)."""

from .brox import BroxTorch
from .tvl1 import TVL1Torch

__all__ = ["BroxTorch", "TVL1Torch"]
