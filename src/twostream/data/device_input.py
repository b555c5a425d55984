"""The GPU input path: the loader's worker processes only read a training sample's JPEG bytes; the main
process decodes a whole batch's JPEGs on the device (nvJPEG, through ``torchvision.io.decode_jpeg`` on
CUDA), and crops, mirrors (flow x negated), subtracts the flow means and scales there.

``EncodedTrainClips`` draws the same samples as ``TrainClips`` (same key, same draws from its seed), so
the two paths give the same input up to the JPEG decoder's rounding. ``where_to_decode`` picks the path
(``run.decode``); ``opencv_decode`` is the CPU path's own decoder behind the device path's interface:
the twin the tests run where there is neither torchvision nor a GPU.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import default_collate

from ..errors import UserError
from ..flow.codec import decode_jpeg
from .datasets import TrainClips
from .inputs import InputOptions
from .transforms import batch_input, signed

DECODE = ("auto", "workers", "device")  # run.decode: where a training batch's JPEGs are decoded

# (JPEGs as uint8 tensors, colour or grey, device) -> the decoded planes, uint8 [3 or 1, H, W] each
Decoder = Callable[[list[torch.Tensor], bool, torch.device], list[torch.Tensor]]


def torchvision_decoder() -> Decoder | None:
    """torchvision's batched JPEG decoder (nvJPEG on CUDA, libjpeg-turbo on the CPU), or None when
    torchvision is not installed (it is an optional extra)."""
    try:
        from torchvision.io import ImageReadMode, decode_jpeg as tv_decode
    except ImportError:
        return None

    def decode(jpegs: list[torch.Tensor], color: bool, device: torch.device) -> list[torch.Tensor]:
        return tv_decode(jpegs, mode=ImageReadMode.RGB if color else ImageReadMode.GRAY, device=device)

    return decode


def opencv_decode(jpegs: list[torch.Tensor], color: bool, device: torch.device) -> list[torch.Tensor]:
    """The CPU path's decoder (OpenCV's, as the workers use it) behind the ``Decoder`` interface."""
    out = []
    for jpeg in jpegs:
        image = decode_jpeg(jpeg.numpy(), color)
        out.append(torch.from_numpy(image.transpose(2, 0, 1) if color else image[None]).to(device))
    return out


def where_to_decode(where: str, device: torch.device, options: InputOptions) -> Decoder | None:
    """The decoder of the device path, or None for the workers' path. ``auto``: the device path on CUDA
    when torchvision is installed and the stream's input can be decoded there (not trajectory stacks,
    not multi-scale crops); ``device``: the device path, or an error saying what is missing; ``workers``:
    decode in the workers."""
    if where not in DECODE:
        raise UserError(f"run.decode must be one of {', '.join(DECODE)}, got {where!r}")
    cpu_only = []  # what only the workers' path does
    if options.stream == "temporal" and options.stacking != "flow":
        cpu_only.append(f"{options.stacking} stacking resamples the flow")
    if options.crop_scales:
        cpu_only.append("crop_scales resize the crops")
    if where == "workers" or (where == "auto" and (device.type != "cuda" or cpu_only)):
        return None
    if cpu_only:
        raise UserError(f"run.decode=device: {' and '.join(cpu_only)} on the CPU; set run.decode=workers")
    decode = torchvision_decoder()
    if decode is None and where == "device":
        raise UserError("run.decode=device needs torchvision (pip install 'twostream[torchvision]')")
    return decode


class EncodedTrainClips(TrainClips):
    """``TrainClips``' samples as their JPEG bytes and what to do with them once decoded: ``jpegs`` (a
    list of uint8 tensors), ``order`` ``int64[C]`` (channel order of the decoded planes), ``box``
    ``int64[4]`` (y0, x0, size, flip), ``sign``, ``scale`` and ``offset`` ``float32[C]``, ``subtract_mean``.
    Batch them with ``collate_encoded``; ``decode_batch`` makes the model's input."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.options.crop_scales:  # decode_batch cuts crop x crop boxes and never resizes
            raise UserError("crop_scales resize the crops on the CPU: the device path takes fixed crops")

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, p, enc, (y0, x0, _, _, flip) = self._draw(key, self.reader.encoded)  # h = w = crop (__init__)
        sign = np.ones(self.channels, np.float32) if self.reader.sign is None else self.reader.sign
        return self._about(index, np.int64([p])) | {
            "jpegs": [torch.from_numpy(np.frombuffer(j, np.uint8).copy()) for j in enc.jpegs],
            "order": torch.as_tensor(np.asarray(enc.order), dtype=torch.int64),
            "box": torch.tensor([y0, x0, self.options.crop, int(flip)]),
            "sign": torch.from_numpy(sign), "scale": torch.from_numpy(enc.scale),
            "offset": torch.from_numpy(enc.offset), "subtract_mean": enc.subtract_mean}


def collate_encoded(items: list[dict]) -> dict:
    """The DataLoader's batch of ``EncodedTrainClips`` items: ``jpegs`` stays a list (one list per item,
    of different lengths in bytes); the rest is stacked as usual."""
    batch = default_collate([{k: v for k, v in item.items() if k != "jpegs"} for item in items])
    return batch | {"jpegs": [item["jpegs"] for item in items]}


def decode_batch(batch: dict, device: torch.device, decode: Decoder) -> torch.Tensor:
    """A ``collate_encoded`` batch -> the model's input ``Tensor[B, C, S, S]`` float32 on ``device``: all
    its JPEGs decoded in one call, then per item the planes put in channel order, the flow means taken
    over the whole frame, the crop cut and mirrored (flow x negated), and ``transforms.batch_input``'s
    conversion, all on the device."""
    jpegs = batch["jpegs"]
    color = len(jpegs[0]) * 3 == batch["order"].shape[1]  # one RGB JPEG per item, or a grey one per channel
    planes = iter(decode([j for item in jpegs for j in item], color, device))
    scale, offset = batch["scale"].to(device), batch["offset"].to(device)
    sign, order = batch["sign"].to(device), batch["order"].to(device)
    crops, scales, offsets = [], [], []
    for i, item in enumerate(jpegs):
        codes = torch.cat([next(planes) for _ in item])[order[i]]  # [C, H, W] uint8
        a, b = scale[i], offset[i]
        if batch["subtract_mean"][i]:  # as transforms.flow_planes: the mean code over the whole frame
            b = -codes.float().mean(dim=(1, 2)) * a
        y0, x0, size, flip = batch["box"][i].tolist()
        crop = codes[:, y0:y0 + size, x0:x0 + size]
        if flip:
            crop = crop.flip(-1)
            a, b = signed(a, b, sign[i])
        crops.append(crop)
        scales.append(a)
        offsets.append(b)
    planes_of_batch = {"input": torch.stack(crops), "scale": torch.stack(scales), "offset": torch.stack(offsets)}
    return batch_input(planes_of_batch, device)
