"""What a stream's input is, and how one position of a cached video becomes it.

``InputOptions`` is the one description of both streams' inputs (the config's ``input:`` section and what
the datasets take). A reader turns one position of a ``CachedVideo`` into a full-size ``float32[C, H, W]``:
``RGBFrames`` (C = 3) for the spatial stream, ``FlowStacks`` (C = 2L) for the temporal one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..cache import CachedVideo
from ..conventions import convention as get_convention
from ..errors import UserError
from . import sampling
from .transforms import (Planes, as_planes, field_means, flow_planes, flow_sign, flow_to_input, rgb_affine,
                         rgb_planes, trajectory_resample)

STREAMS = ("spatial", "temporal")
STACKINGS = ("flow", "trajectory")  # same pixel in every field, or follow the motion (the paper's two)


def input_channels(stream: str, length: int) -> int:
    """3 for an RGB frame, 2L for a stack of L flow fields (x and y each)."""
    if stream not in STREAMS:
        raise UserError(f"stream must be one of {', '.join(STREAMS)}, got {stream!r}")
    return 3 if stream == "spatial" else 2 * length


@dataclass
class InputOptions:
    """Both streams' inputs. Field names are the config keys (``input.<name>``)."""

    stream: str = field(default="spatial", metadata={"choices": STREAMS})
    crop: int = 224  # training and test crops are crop x crop
    jitter: float = 0.1  # RGB PCA-lighting noise std (spatial, training only)
    length: int = 10  # L flow fields per stack (temporal)
    stacking: str = field(default="flow", metadata={"choices": STACKINGS})
    bidirectional: bool = False  # L/2 forward + L/2 backward fields (needs extract --bidirectional)
    mean_subtraction: bool = True  # each field minus its mean vector (camera-motion compensation)
    test_positions: int = 25  # frames/stacks per video at test time (each x 10 crops)
    # multi-scale training crops (not the paper's; TSN's): [] cuts crop x crop pixels; else the box's height
    # and width are each a fraction from this list of the frame's short side, resized to crop x crop
    crop_scales: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.stream not in STREAMS:
            raise UserError(f"stream: must be one of {', '.join(STREAMS)}; got {self.stream!r}")
        if self.stacking not in STACKINGS:
            raise UserError(f"stacking: must be one of {', '.join(STACKINGS)}; got {self.stacking!r}")
        for name in ("crop", "length", "test_positions"):
            if getattr(self, name) < 1:
                raise UserError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.jitter < 0:
            raise UserError(f"jitter: must be >= 0, got {self.jitter}")
        if any(not 0 < f <= 1 for f in self.crop_scales):
            raise UserError(f"crop_scales: fractions of the frame's short side, each in (0, 1]; "
                            f"got {self.crop_scales}")
        if self.bidirectional:
            sampling.check_bidirectional_length(self.length, "length")
            if self.stacking == "trajectory":
                # a trajectory is followed through consecutive forward fields; through the backward half
                # of a bi-directional stack it would run the wrong way in time
                raise UserError("stacking: trajectory stacking works on forward flow only, not with bidirectional")

    @property
    def channels(self) -> int:
        return input_channels(self.stream, self.length)


@dataclass(frozen=True)
class Encoded:
    """A position's input as stored, for decoding elsewhere (``device_input``): ``jpegs`` (one RGB JPEG,
    or the x and y JPEGs of each field in channel order), the channel ``order`` of the decoded planes, the
    per-channel ``scale`` and ``offset`` ``float32[C]`` of ``Planes``, and ``subtract_mean``: once decoded,
    each channel's mean code over the frame is subtracted (the offset becomes -mean * scale)."""

    jpegs: list[bytes]
    order: np.ndarray
    scale: np.ndarray
    offset: np.ndarray
    subtract_mean: bool = False


class RGBFrames:
    """Spatial stream: one RGB frame per position in the model's input convention (``conventions``); PCA
    lighting noise in training."""

    sign = None  # a horizontal flip is a plain mirror

    def __init__(self, options: InputOptions, convention: str | None) -> None:
        if convention is None:
            raise UserError("the spatial stream needs the model's input convention (caffe, torchvision, ...)")
        self.channels, self.jitter, self.convention = 3, options.jitter, get_convention(convention)

    def check(self, video_id: str, manifest: dict) -> None:
        """Every unit has at least one frame: nothing to refuse."""

    def num_positions(self, video: CachedVideo) -> int:
        return video.num_frames

    def load(self, video: CachedVideo, position: int, rng: np.random.Generator | None) -> Planes:
        """Frame ``position`` as planes ``[3, H, W]``; ``rng`` is given in training only (jitter)."""
        return rgb_planes(video.frame(position), self.convention, self.jitter if rng is not None else 0.0, rng)

    def encoded(self, video: CachedVideo, position: int, rng: np.random.Generator | None) -> Encoded:
        """What ``load`` gives, not decoded (the same draws from ``rng``)."""
        order, scale, offset = rgb_affine(self.convention, self.jitter if rng is not None else 0.0, rng)
        return Encoded([video.frame_jpeg(position)], order, scale, offset)


class FlowStacks:
    """Temporal stream: L flow fields per position, stacked as channels x_0, y_0, x_1, y_1, ..."""

    def __init__(self, options: InputOptions) -> None:
        self.options, self.channels = options, options.channels
        self.sign = flow_sign(options.length)  # a horizontal flip negates every x channel

    def check(self, video_id: str, manifest: dict) -> None:
        """Refuse, naming the video, a unit this stream cannot read."""
        if manifest["num_frames"] < 2:
            raise UserError(f"{video_id}: {manifest['num_frames']} frame(s), flow needs 2")
        if self.options.bidirectional and not manifest.get("bidirectional"):
            raise UserError(f"{video_id}: bi-directional stacks need backward flow; extract with --bidirectional")

    def num_positions(self, video: CachedVideo) -> int:
        return sampling.num_positions(video.num_flows, self.options.length)

    def _fields(self, video: CachedVideo, position: int) -> list[tuple[int, bool]]:
        """(flow index, backward) of the stack's fields, in channel order."""
        o = self.options
        if o.bidirectional:
            fwd, bwd = sampling.bidirectional_indices(position, o.length, video.num_flows)
            return [(int(t), False) for t in fwd] + [(int(t), True) for t in bwd]
        return [(int(t), False) for t in sampling.stack_indices(position, o.length, video.num_flows)]

    def codes(self, video: CachedVideo, position: int) -> np.ndarray:
        """The stack's fields as stored, ``uint8[2L, H, W]`` in channel order (x_0, y_0, x_1, ...)."""
        codes = np.stack([video.field_codes(t, back) for t, back in self._fields(video, position)])
        return codes.reshape(-1, *codes.shape[2:])

    def encoded(self, video: CachedVideo, position: int, rng: np.random.Generator | None) -> Encoded:
        """What ``load`` gives for flow stacking, not decoded (trajectory stacks are resampled on the CPU)."""
        o = self.options
        if o.stacking != "flow":
            raise UserError(f"{o.stacking} stacking resamples the flow on the CPU: decoding on the device "
                            "takes flow stacking only")
        jpegs = [jpeg for t, back in self._fields(video, position) for jpeg in video.field_jpegs(t, back)]
        scale = np.full(self.channels, video.codec.step, np.float32)
        offset = np.full(self.channels, 0.0 if o.mean_subtraction else -video.codec.bound, np.float32)
        return Encoded(jpegs, np.arange(self.channels), scale, offset, o.mean_subtraction)

    def load(self, video: CachedVideo, position: int, rng: np.random.Generator | None) -> Planes:
        """The stack at ``position`` as planes ``[2L, H, W]`` in pixels."""
        o, codes = self.options, self.codes(video, position)
        if o.stacking == "flow":
            return flow_planes(codes, video.codec, o.mean_subtraction)
        # trajectory stacking resamples in float; the paper subtracts the mean of each displacement field
        # d_t, not of the field resampled along the trajectories (whose mean is another one)
        fields = video.codec.pixels(codes.reshape(-1, 2, *codes.shape[1:]))
        means = field_means(fields) if o.mean_subtraction else None
        return as_planes(flow_to_input(trajectory_resample(fields), o.mean_subtraction, means))


def make_reader(options: InputOptions, convention: str | None = None) -> RGBFrames | FlowStacks:
    """The stream's reader; ``convention`` (the model's, for RGB input) is needed by the spatial stream."""
    return RGBFrames(options, convention) if options.stream == "spatial" else FlowStacks(options)
