"""Input conventions: how RGB pixels (0-255) become a network's input, a stated part of every model.

* ``caffe``: the paper's CNN-M (Caffe era): pixels 0-255 minus the ImageNet mean, RGB order. CNN-M's LRN
  constants (k 2, alpha 5e-4) were tuned for inputs at this scale; at unit scale its LRN does nothing.
* ``caffe_bgr``: the same in BGR order (weights of the Caffe model zoo).
* ``torchvision``: 0-1, minus the ImageNet mean, divided by the ImageNet std (torchvision's weights).

Flow stacks are in pixels under every convention. The three share the mean in pixel units, so a first
convolution converts from one to another by a per-channel scale (and order): ``convert_first_conv``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB, in 0-1 units
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputConvention:
    name: str
    scale: float  # pixel (0-255) -> value
    mean: tuple[float, float, float]  # subtracted after scaling, RGB order
    std: tuple[float, float, float]  # divided after that, RGB order
    bgr: bool  # channel order of the input

    @property
    def typical_std(self) -> float:
        """The standard deviation of a natural image's input values (ImageNet's pixel std, ~0.226 x 255)."""
        return 255 * self.scale * float(np.mean(IMAGENET_STD) / np.mean(self.std))

    def affine(self) -> tuple[list[int], np.ndarray, np.ndarray]:
        """The convention as a per-channel map: input channel c = pixels[order[c]] * scale[c] + offset[c]
        (``order`` picks RGB channels in the input's order; ``scale``, ``offset``: ``float32[3]``)."""
        order = [2, 1, 0] if self.bgr else [0, 1, 2]
        scale = np.float32([self.scale / self.std[r] for r in order])
        offset = np.float32([-self.mean[r] / self.std[r] for r in order])
        return order, scale, offset

    def normalize(self, rgb: np.ndarray) -> np.ndarray:
        """Pixels ``float32[H, W, 3]`` (RGB, 0-255) -> the input ``float32[3, H, W]``."""
        order, scale, offset = self.affine()
        return rgb.transpose(2, 0, 1)[order] * scale[:, None, None] + offset[:, None, None]


CONVENTIONS = {
    "caffe": InputConvention("caffe", 1.0, tuple(255 * m for m in IMAGENET_MEAN), (1.0, 1.0, 1.0), False),
    "caffe_bgr": InputConvention("caffe_bgr", 1.0, tuple(255 * m for m in IMAGENET_MEAN), (1.0, 1.0, 1.0), True),
    "torchvision": InputConvention("torchvision", 1 / 255, IMAGENET_MEAN, IMAGENET_STD, False),
}
# what checkpoints made before conventions were recorded were trained with
LEGACY = "torchvision"


def convention(name: str) -> InputConvention:
    if name not in CONVENTIONS:
        raise UserError(f"input convention must be one of {', '.join(CONVENTIONS)}, got {name!r}")
    return CONVENTIONS[name]


def convert_first_conv(weight: torch.Tensor, source: str, target: str) -> torch.Tensor:
    """RGB first-layer weights ``Tensor[O, 3, k, k]`` trained on inputs of convention ``source`` -> the
    weights that compute the same function on inputs of convention ``target`` (bias unchanged: every
    convention subtracts the same mean in pixel units, so zero padding means the same pixel value)."""
    src, dst = convention(source), convention(target)
    if weight.ndim != 4 or weight.shape[1] != 3:
        raise UserError(f"first-layer weights must be [O, 3, k, k] (RGB), got {list(weight.shape)}")
    # z_src[r] = z_dst[r] * (s_src * std_dst[r]) / (s_dst * std_src[r]) for each RGB channel r
    factor = torch.tensor([src.scale * dst.std[r] / (dst.scale * src.std[r]) for r in range(3)], dtype=weight.dtype)
    rgb = weight.flip(1) if src.bgr else weight  # the source's channels in RGB order
    out = rgb * factor.view(1, 3, 1, 1)
    return out.flip(1) if dst.bgr else out
