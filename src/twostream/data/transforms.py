"""Array transforms of both streams' inputs (numpy, channels first): crops, flips, flow stacking."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..conventions import InputConvention
from ..flow.codec import FlowCodec
from .sampling import five_crops

# AlexNet-style PCA lighting noise ("RGB jitter"): the ImageNet pixel covariance's eigen-decomposition
# (pixels in 0-1 units).
_EIGVAL = np.float32([0.2175, 0.0188, 0.0045])
_EIGVEC = np.float32([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]])


@dataclass(frozen=True)
class Planes:
    """A stream's full-size input before cropping: ``codes`` ``[C, H, W]`` (uint8 as decoded, or float32)
    standing for ``codes * scale[c] + offset[c]`` (``float32[C]`` each). Crops are cut, mirrored and signed
    before the conversion to float: a quarter of the bytes moved, and only the crop's pixels converted
    (the temporal loader ran at ~115 samples/s converting whole frames first)."""

    codes: np.ndarray
    scale: np.ndarray
    offset: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return self.codes.shape

    def crop(self, y0: int, x0: int, size: int | tuple[int, int], flip: bool = False,
             sign: np.ndarray | None = None) -> Planes:
        """The planes of the crop ``[C, size, size]`` (or ``[C, h, w]`` for ``size`` (h, w)) at (y0, x0); when
        ``flip``, mirrored horizontally with channel c multiplied by ``sign[c]`` (flow: the x channels
        change sign)."""
        h, w = (size, size) if isinstance(size, int) else size
        codes, scale, offset = self.codes[:, y0:y0 + h, x0:x0 + w], self.scale, self.offset
        if flip:
            codes = codes[:, :, ::-1]
            scale, offset = signed(scale, offset, sign)
        return Planes(np.ascontiguousarray(codes), scale, offset)

    def resized(self, size: int, sign: np.ndarray | None = None) -> Planes:
        """The planes resized (bilinear) to ``[C, size, size]``. Flow (``sign`` given: its negative channels
        are the x components) is in pixels of the frame, so its values stretch with the image: x channels
        times size / w, y channels times size / h, folded into the scale and offset. RGB (``sign`` None)
        keeps its values."""
        c, h, w = self.codes.shape
        if (h, w) == (size, size):
            return self
        codes = cv2.resize(self.codes.transpose(1, 2, 0), (size, size), interpolation=cv2.INTER_LINEAR)
        # back to [C, size, size]; the reshape restores the axis cv2 drops for a lone channel
        codes = np.ascontiguousarray(codes.reshape(size, size, c).transpose(2, 0, 1))
        if sign is None:
            return Planes(codes, self.scale, self.offset)
        stretch = np.where(np.asarray(sign) < 0, size / w, size / h).astype(np.float32)
        return Planes(codes, self.scale * stretch, self.offset * stretch)

    def full(self) -> np.ndarray:
        """The input they stand for, ``float32[C, H, W]``."""
        out = np.empty(self.codes.shape, np.float32)
        np.multiply(self.codes, self.scale[:, None, None], out=out)
        out += self.offset[:, None, None]
        return out


def signed(scale, offset, sign):
    """A mirrored crop's per-channel scale and offset: channel c times ``sign[c]`` (flow: the x channels
    change sign; ``None``: a plain mirror), as sign * (a * code + b) = (sign * a) * code + sign * b. numpy
    arrays or tensors."""
    return (scale, offset) if sign is None else (scale * sign, offset * sign)


def batch_input(batch: dict, device: torch.device | str) -> torch.Tensor:
    """A training batch's input ``Tensor[B, C, S, S]`` float32 on ``device``, from its planes (``input``
    codes ``[B, C, S, S]``, ``scale`` and ``offset`` ``[B, C]``; one item's unbatched shapes work too): the
    uint8 codes cross from the loader's workers and to the device, a quarter of float32's bytes, and are
    converted there."""
    x = batch["input"].to(device, non_blocking=True)  # uint8 crosses to the device, then becomes float
    x = x.float() if x.dtype != torch.float32 else x.clone()  # a new tensor either way: changed in place

    def per_channel(key: str) -> torch.Tensor:  # [B, C] (or [C]) -> broadcast over the pixels
        v = batch[key].to(device, non_blocking=True)
        return v.reshape(*v.shape, *[1] * (x.ndim - v.ndim))

    return x.mul_(per_channel("scale")).add_(per_channel("offset"))  # in place: half addcmul's time here


def as_planes(x: np.ndarray) -> Planes:
    """Float input ``float32[C, H, W]`` as planes (scale 1, offset 0)."""
    return Planes(x, np.ones(len(x), np.float32), np.zeros(len(x), np.float32))


def rgb_planes(frame: np.ndarray, convention: InputConvention, jitter: float = 0.0,
               rng: np.random.Generator | None = None) -> Planes:
    """``uint8[H, W, 3]`` -> planes of the input ``[3, H, W]`` in the model's input ``convention``; with
    ``jitter`` > 0, PCA lighting noise of that standard deviation is added first (one colour shift for
    the frame, in pixels: an offset of each channel)."""
    order, scale, offset = rgb_affine(convention, jitter, rng)
    return Planes(frame.transpose(2, 0, 1)[order], scale, offset)


def rgb_affine(convention: InputConvention, jitter: float = 0.0, rng: np.random.Generator | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What ``rgb_planes`` applies to a frame's R, G, B planes: the channel ``order`` and per-channel
    ``scale`` and ``offset`` ``float32[3]``, with the PCA lighting noise drawn from ``rng`` when ``jitter``
    > 0 (one draw per frame, taken from ``rng`` here whether the frame is decoded now or later)."""
    shift = np.zeros(3, np.float32)
    if jitter > 0:
        alpha = rng.normal(0, jitter, 3).astype(np.float32)
        shift = np.float32(255) * (_EIGVEC @ (alpha * _EIGVAL))
    order, scale, offset = convention.affine()
    return order, scale, offset + scale * shift[order]


def flow_planes(codes: np.ndarray, codec: FlowCodec, mean_subtraction: bool = True) -> Planes:
    """Flow stacked as channels x_0, y_0, x_1, y_1, ..., ``uint8[2L, H, W]`` JPEG codes -> planes of the
    input in pixels; with ``mean_subtraction`` each channel's mean over the frame is subtracted (a cheap
    camera-motion compensation, as in the paper), computed on the codes (the map is linear)."""
    scale = np.full(len(codes), codec.step, np.float32)
    if mean_subtraction:
        means = cv2.reduce(codes.reshape(len(codes), -1), 1, cv2.REDUCE_AVG, dtype=cv2.CV_32F)[:, 0]
        return Planes(codes, scale, -means * scale)
    return Planes(codes, scale, np.full(len(codes), -codec.bound, np.float32))


def flow_sign(num_fields: int) -> np.ndarray:
    """``float32[2L]``: -1 on the x channels, +1 on the y channels (what a horizontal flip does)."""
    return np.tile(np.float32([-1, 1]), num_fields)


def trajectory_resample(fields: np.ndarray) -> np.ndarray:
    """Trajectory stacking: ``float32[L, H, W, 2]`` -> the same shape where field k at pixel p is
    sampled (bilinearly) at p_k, the point reached from p by following the previous fields:
    p_1 = p, p_{k+1} = p_k + d_k(p_k). Points leaving the frame take the border's value."""
    h, w = fields.shape[1:3]
    px, py = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out = np.empty_like(fields)
    for k, field in enumerate(fields):
        out[k] = field if k == 0 else cv2.remap(field, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        px = px + out[k][..., 0]
        py = py + out[k][..., 1]
    return out


def field_means(fields: np.ndarray) -> np.ndarray:
    """``float32[L, H, W, 2]`` -> ``float32[L, 2]``: each displacement field's mean vector over the frame."""
    n, pixels = len(fields), fields.shape[1] * fields.shape[2]
    # a row of ones times each field's [H*W, 2] rows: one BLAS pass instead of a strided reduction
    sums = np.ones((1, pixels), np.float32) @ np.ascontiguousarray(fields, np.float32).reshape(n, pixels, 2)
    return sums[:, 0, :] / np.float32(pixels)


def flow_to_input(fields: np.ndarray, mean_subtraction: bool = True, means: np.ndarray | None = None
                  ) -> np.ndarray:
    """``float32[L, H, W, 2]`` -> ``float32[2L, H, W]`` with channels x_0, y_0, x_1, y_1, ...; with
    ``mean_subtraction`` each field's mean vector over the frame is subtracted (a cheap camera-motion
    compensation, as in the paper): the given ``means`` ``float32[L, 2]`` (those of the displacement
    fields before trajectory resampling), or else the means of ``fields``."""
    stack = np.ascontiguousarray(fields.transpose(0, 3, 1, 2)).reshape(-1, *fields.shape[1:3])
    if mean_subtraction and means is not None:
        stack -= means.reshape(-1)[:, None, None]
    elif mean_subtraction:  # per channel, i.e. per field and component: over contiguous rows, 20x faster
        stack -= stack.reshape(len(stack), -1).mean(axis=1)[:, None, None]
    return stack


def ten_crop(x: torch.Tensor, size: int, sign: Sequence[float] | None = None) -> torch.Tensor:
    """The paper's test crops: ``Tensor[P, C, H, W]`` -> ``Tensor[P * 10, C, size, size]``, position-major;
    per position the 4 corners (TL, TR, BL, BR) and the centre, then the same five mirrored (x channels
    of flow negated through ``sign``)."""
    boxes = five_crops(x.shape[-2], x.shape[-1], size)
    crops = torch.stack([x[:, :, y:y + size, c:c + size] for y, c in boxes], dim=1)  # [P, 5, C, S, S]
    flipped = crops.flip(-1)
    if sign is not None:
        flipped = flipped * torch.as_tensor(sign, dtype=x.dtype).view(1, 1, -1, 1, 1)
    return torch.cat([crops, flipped], dim=1).flatten(0, 1)
