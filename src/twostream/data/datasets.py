"""torch Datasets of cached videos, one small class per behaviour. Items are dicts.

``TrainClips``: key ``(video index, sample seed)`` (from ``ClassBalancedSampler``); one random frame or
          stack, a random ``crop`` x ``crop`` crop from anywhere in the frame (or with ``crop_scales`` a
          box of random size resized to it), a random horizontal flip (flow x negated), RGB jitter.
          ``input`` is ``Tensor[C, S, S]``.
``ValClips``: key = video index; the centre frame or stack, centre crop. ``input`` is ``Tensor[C, S, S]``.
``TestClips``: key = video index; ``test_positions`` evenly spaced frames or stacks at full size,
          ``input`` is ``Tensor[P, C, H, W]``; ``TestClips.crops`` turns it into the paper's ten crops,
          ``Tensor[P * 10, C, S, S]``, chunk by chunk (250 x 20 x 224 x 224 floats would be 1 GB per
          temporal item).
C is 3 for the spatial stream and 2L for the temporal one (``InputOptions.channels``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..cache import CachedVideo, read_manifest
from ..errors import UserError
from . import sampling
from .inputs import InputOptions, make_reader
from .splits import Sample
from .transforms import ten_crop


class Clips(Dataset):
    """The videos of ``samples`` in ``cache``, read as ``options`` says (RGB in the model's input
    ``convention``). Listed videos missing from the cache are an error naming them, or (``skip_missing``)
    a warning with their count."""

    def __init__(self, samples: list[Sample], cache: str | Path, options: InputOptions,
                 convention: str | None = None, skip_missing: bool = False) -> None:
        self.cache, self.options, self.reader = Path(cache), options, make_reader(options, convention)
        kept, missing, manifests = [], [], []
        for s in samples:
            try:
                manifests.append(read_manifest(s.cache or cache, s.video_id))
                kept.append(s)
            except ValueError:
                missing.append(s.video_id)
        if missing:
            shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            if not skip_missing:
                raise UserError(f"{len(missing)} listed videos are not in the cache {cache}: {shown} "
                                "(extract them, or set skip_missing to train without them)")
            warnings.warn(f"skipping {len(missing)} listed videos missing from the cache {cache}: {shown}",
                          stacklevel=3)
        if not kept:
            raise UserError(f"no listed video is in the cache {cache}")
        for s, m in zip(kept, manifests):
            self.reader.check(s.video_id, m)
        self.samples, self._manifests = kept, manifests
        self._videos: dict[int, CachedVideo] = {}

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list[int]:
        return [s.label for s in self.samples]

    @property
    def channels(self) -> int:
        return self.reader.channels

    def video(self, index: int) -> CachedVideo:
        if index not in self._videos:
            s = self.samples[index]
            self._videos[index] = CachedVideo(s.cache or self.cache, s.video_id, self._manifests[index])
        return self._videos[index]

    def _item(self, index: int, x: np.ndarray, positions: np.ndarray) -> dict:
        return {"input": torch.from_numpy(x)} | self._about(index, positions)

    def _about(self, index: int, positions: np.ndarray) -> dict:
        s = self.samples[index]
        return {"label": s.label, "video_id": s.video_id, "index": index, "positions": torch.from_numpy(positions)}


class TrainClips(Clips):
    """Training samples: a random position, crop and flip, drawn from the key's own seed. Items hold the
    crop as planes: ``input`` codes ``[C, S, S]`` (uint8; float32 for trajectory stacks), ``scale`` and
    ``offset`` ``[C]``; ``transforms.batch_input`` makes the float input of a batch."""

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, p, planes, (y0, x0, h, w, flip) = self._draw(key, self.reader.load)
        crop = planes.crop(y0, x0, (h, w), flip, self.reader.sign).resized(self.options.crop, self.reader.sign)
        # the crop's codes, not floats: ``transforms.batch_input`` converts a batch where it is used
        return self._item(index, crop.codes, np.int64([p])) | {"scale": torch.from_numpy(crop.scale),
                                                               "offset": torch.from_numpy(crop.offset)}

    def _draw(self, key: tuple[int, int], read: Callable
              ) -> tuple[int, int, Any, tuple[int, int, int, int, bool]]:
        """Sample ``key`` (video index, seed): (index, position, ``read(video, position, rng)``, crop box
        (y0, x0, h, w, flip)), drawn in this order from the seed's generator, whatever ``read`` makes; the
        box is crop x crop unless ``crop_scales`` (``sampling.random_box``)."""
        if not isinstance(key, tuple):
            raise TypeError("training items are keyed (video index, seed): use ClassBalancedSampler")
        index, seed = key
        rng = np.random.default_rng(seed)
        video = self.video(index)
        p = int(rng.integers(self.reader.num_positions(video)))
        got = read(video, p, rng)
        box = sampling.random_box(*video.frame_size, self.options.crop, self.options.crop_scales, rng)
        return index, p, got, (*box, bool(rng.integers(2)))


class ValClips(Clips):
    """The quick check during training: the centre position, the centre crop."""

    def __getitem__(self, index: int) -> dict:
        video = self.video(index)
        p = self.reader.num_positions(video) // 2
        planes = self.reader.load(video, p, None)
        y0, x0 = sampling.center_crop(*planes.shape[1:], self.options.crop)
        return self._item(index, planes.crop(y0, x0, self.options.crop).full(), np.int64([p]))


class TestClips(Clips):
    """The paper's test protocol: ``test_positions`` evenly spaced positions, each in ten crops."""

    __test__ = False  # not a pytest class

    def __getitem__(self, index: int) -> dict:
        return self.at(index, sampling.evenly_spaced(self.num_positions(index), self.options.test_positions))

    def num_positions(self, index: int) -> int:
        """Positions of video ``index``: frames (spatial) or stack starts (temporal)."""
        return self.reader.num_positions(self.video(index))

    def at(self, index: int, where: np.ndarray) -> dict:
        """The item of video ``index`` at the positions ``where`` (``int64[P]``; e.g. one time window's)."""
        video = self.video(index)
        return self._item(index, np.stack([self.reader.load(video, int(p), None).full() for p in where]), where)

    def crops(self, x: torch.Tensor, positions_per_chunk: int = 5) -> Iterator[torch.Tensor]:
        """``Tensor[P, C, H, W]`` (an item's input) -> chunks ``Tensor[n * 10, C, S, S]`` of its ten
        crops, position-major (per position: TL, TR, BL, BR, centre, then the same mirrored, flow x
        negated)."""
        sign = None if self.reader.sign is None else torch.from_numpy(self.reader.sign)
        for i in range(0, len(x), max(1, positions_per_chunk)):
            yield ten_crop(x[i:i + positions_per_chunk], self.options.crop, sign)


class TaskConcat(Dataset):
    """Several training datasets behind one index: key ``(task, video index, seed)`` (as from
    ``MultiTaskSampler``); items gain ``task``."""

    def __init__(self, datasets: list[TrainClips]) -> None:
        if not datasets:
            raise UserError("need at least one dataset")
        self.datasets = datasets

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    def __getitem__(self, key: tuple[int, int, int]) -> dict:
        task, index, seed = key
        return self.datasets[task][(index, seed)] | {"task": task}
