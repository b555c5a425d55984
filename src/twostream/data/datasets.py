"""torch Datasets of cached videos for both streams. Items are dicts.

Three modes:
  ``train``: key ``(video index, seed)`` from ``ClassBalancedSampler``; one random frame (spatial) or
            stack (temporal), a random ``crop`` x ``crop`` crop from anywhere, a random horizontal flip,
            RGB jitter. ``input`` is ``Tensor[C, S, S]``.
  ``val``:   key = video index; the centre frame/stack, centre crop. ``input`` is ``Tensor[C, S, S]``.
  ``test``:  key = video index; ``positions`` evenly spaced frames/stacks at full size, ``input`` is
            ``Tensor[P, C, H, W]``; ``transforms.ten_crop`` turns it into the paper's ``[P * 10, C, S, S]``.
            (The crops are taken by the consumer, chunk by chunk: 250 x 20 x 224 x 224 floats would be 1 GB
            per temporal item.)
C is 3 for the spatial stream and 2L for the temporal one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..cache import CachedVideo, read_manifest
from . import sampling
from .splits import Sample
from .transforms import crop_flip, flow_sign, flow_to_input, rgb_to_input, trajectory_resample

MODES = ("train", "val", "test")


@dataclass(frozen=True)
class TemporalOptions:
    """How the temporal stream's input is built from the flow fields."""

    length: int = 10  # L: fields per stack, 2L input channels
    stacking: str = "flow"  # "flow" (same pixel in every field) or "trajectory" (follow the motion)
    bidirectional: bool = False  # L/2 forward + L/2 backward fields (needs extract --bidirectional)
    mean_subtraction: bool = True

    def __post_init__(self) -> None:
        if self.length < 1:
            raise ValueError(f"stack length must be >= 1, got {self.length}")
        if self.stacking not in ("flow", "trajectory"):
            raise ValueError(f"stacking must be 'flow' or 'trajectory', got {self.stacking!r}")
        if self.bidirectional and self.length % 2:
            raise ValueError(f"bi-directional stacks need an even length, got {self.length}")
        if self.bidirectional and self.stacking == "trajectory":
            # a trajectory is followed through consecutive forward fields; through the backward half of
            # a bi-directional stack it would run the wrong way in time
            raise ValueError("trajectory stacking works on forward flow only, not with bidirectional")

    @property
    def channels(self) -> int:
        return 2 * self.length


class _CachedVideoDataset(Dataset):
    channels: int
    sign: np.ndarray | None = None  # per-channel sign of a horizontal flip (None: plain mirror)

    def __init__(self, samples: list[Sample], cache: str | Path, mode: str = "train", crop: int = 224,
                 positions: int = 25, skip_missing: bool = False) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if crop < 1 or positions < 1:
            raise ValueError(f"crop and positions must be >= 1, got {crop} and {positions}")
        self.cache, self.mode, self.crop, self.positions = Path(cache), mode, crop, positions
        kept, missing, manifests = [], [], []
        for s in samples:
            try:
                manifests.append(read_manifest(cache, s.video_id))
                kept.append(s)
            except ValueError:
                missing.append(s.video_id)
        if missing:
            shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            if not skip_missing:
                raise ValueError(f"{len(missing)} listed videos are not in the cache {cache}: {shown} "
                                 "(extract them, or set skip_missing to train without them)")
            warnings.warn(f"skipping {len(missing)} listed videos missing from the cache {cache}: {shown}",
                          stacklevel=2)
        if not kept:
            raise ValueError(f"no listed video is in the cache {cache}")
        self.samples = kept
        self._manifests = manifests
        self._videos: dict[int, CachedVideo] = {}

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list[int]:
        return [s.label for s in self.samples]

    def video(self, index: int) -> CachedVideo:
        if index not in self._videos:
            self._videos[index] = CachedVideo(self.cache, self.samples[index].video_id, self._manifests[index])
        return self._videos[index]

    # -- what a stream defines -------------------------------------------------------------------
    def num_positions(self, video: CachedVideo) -> int:
        raise NotImplementedError

    def load(self, video: CachedVideo, position: int, rng: np.random.Generator | None) -> np.ndarray:
        """The full-size input at ``position``: ``float32[C, H, W]`` (rng given only in training)."""
        raise NotImplementedError

    # -- shared by both streams ----------------------------------------------------------------
    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        if self.mode == "train":
            if not isinstance(key, tuple):
                raise TypeError("training items are keyed (video index, seed): use ClassBalancedSampler")
            index, seed = key
            rng = np.random.default_rng(seed)
        else:
            index, rng = int(key), None
        video = self.video(index)
        n = self.num_positions(video)
        if self.mode == "test":
            where = sampling.evenly_spaced(n, self.positions)
            x = np.stack([self.load(video, int(p), None) for p in where])
        else:
            p = int(rng.integers(n)) if rng is not None else n // 2
            full = self.load(video, p, rng)
            h, w = full.shape[1:]
            if rng is not None:
                (y0, x0), flip = sampling.random_crop(h, w, self.crop, rng), bool(rng.integers(2))
            else:
                (y0, x0), flip = sampling.center_crop(h, w, self.crop), False
            x, where = crop_flip(full, y0, x0, self.crop, flip, self.sign), np.int64([p])
        s = self.samples[index]
        return {"input": torch.from_numpy(x), "label": s.label, "video_id": s.video_id,
                "index": index, "positions": torch.from_numpy(where)}


class SpatialDataset(_CachedVideoDataset):
    """RGB frames for the spatial stream; ``jitter`` is the PCA lighting noise std (training only)."""

    channels = 3

    def __init__(self, samples: list[Sample], cache: str | Path, mode: str = "train", crop: int = 224,
                 positions: int = 25, jitter: float = 0.1, skip_missing: bool = False) -> None:
        super().__init__(samples, cache, mode, crop, positions, skip_missing)
        self.jitter = jitter

    def num_positions(self, video: CachedVideo) -> int:
        return video.num_frames

    def load(self, video: CachedVideo, position: int, rng: np.random.Generator | None) -> np.ndarray:
        return rgb_to_input(video.frame(position), self.jitter if rng is not None else 0.0, rng)


class TemporalDataset(_CachedVideoDataset):
    """Stacks of L flow fields for the temporal stream (``TemporalOptions`` picks the variant)."""

    def __init__(self, samples: list[Sample], cache: str | Path, mode: str = "train", crop: int = 224,
                 positions: int = 25, options: TemporalOptions = TemporalOptions(),
                 skip_missing: bool = False) -> None:
        super().__init__(samples, cache, mode, crop, positions, skip_missing)
        self.options = options
        self.channels = options.channels
        self.sign = flow_sign(options.length)
        for i, m in enumerate(self._manifests):
            if m["num_frames"] < 2:
                raise ValueError(f"{self.samples[i].video_id}: {m['num_frames']} frame(s), flow needs 2")
            if options.bidirectional and not m.get("bidirectional"):
                raise ValueError(f"{self.samples[i].video_id}: bi-directional stacks need backward flow; "
                                 "extract with --bidirectional")

    def num_positions(self, video: CachedVideo) -> int:
        return sampling.num_positions(video.num_flows, self.options.length)

    def fields(self, video: CachedVideo, position: int) -> np.ndarray:
        """The stack's flow fields ``float32[L, H, W, 2]`` in channel order."""
        o = self.options
        if o.bidirectional:
            fwd, bwd = sampling.bidirectional_indices(position, o.length, video.num_flows)
            fields = [video.flow(int(t)) for t in fwd] + [video.back_flow(int(t)) for t in bwd]
        else:
            fields = [video.flow(int(t)) for t in sampling.stack_indices(position, o.length, video.num_flows)]
        stack = np.stack(fields)
        return trajectory_resample(stack) if o.stacking == "trajectory" else stack

    def load(self, video: CachedVideo, position: int, rng: np.random.Generator | None) -> np.ndarray:
        return flow_to_input(self.fields(video, position), self.options.mean_subtraction)


class TaskConcat(Dataset):
    """Several training datasets behind one index: key ``(task, video index, seed)`` (as from
    ``MultiTaskSampler``); items gain ``task``."""

    def __init__(self, datasets: list[_CachedVideoDataset]) -> None:
        if not datasets:
            raise ValueError("need at least one dataset")
        self.datasets = datasets

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    def __getitem__(self, key: tuple[int, int, int]) -> dict:
        task, index, seed = key
        return self.datasets[task][(index, seed)] | {"task": task}
