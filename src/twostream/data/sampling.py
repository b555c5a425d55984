"""Pure index functions: which frames, flow fields and crops a sample uses. No I/O, no torch.

Conventions: a video has ``T`` frames and ``T - 1`` forward flow fields (field t maps frame t to t+1);
with bi-directional extraction, backward field t maps frame t+1 back to frame t.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import UserError


def num_positions(num_items: int, length: int = 1) -> int:
    """How many starts a window of ``length`` items has in ``num_items`` (at least 1: short videos
    are padded)."""
    if num_items < 1:
        raise UserError(f"need at least one item, got {num_items}")
    return max(num_items - length + 1, 1)


def stack_indices(start: int, length: int, num_flows: int) -> np.ndarray:
    """Flow fields ``start, start+1, ..., start+length-1``; past either end the edge field is repeated
    (videos with fewer than length+1 frames)."""
    return np.clip(np.arange(start, start + length), 0, num_flows - 1)


def check_bidirectional_length(length: int, name: str = "length") -> None:
    """A bi-directional stack is L/2 forward and L/2 backward fields: L must be even."""
    if length % 2:
        raise UserError(f"{name}: bi-directional stacks need an even length, got {length}")


def bidirectional_indices(position: int, length: int, num_flows: int) -> tuple[np.ndarray, np.ndarray]:
    """(forward, backward) field indices for the bi-directional stack at ``position`` (0-based, as from
    ``num_positions(num_flows, length)``): with tau = position + length/2, the length/2 forward fields
    from frame tau to tau + length/2 and the length/2 backward fields from frame tau - length/2 to tau."""
    check_bidirectional_length(length)
    half = length // 2
    tau = position + half
    return stack_indices(tau, half, num_flows), stack_indices(tau - half, half, num_flows)


def evenly_spaced(n: int, count: int) -> np.ndarray:
    """``count`` positions spread evenly over ``range(n)``: the centres of ``count`` equal segments
    (repeating positions when n < count)."""
    if count < 1:
        raise UserError(f"count must be >= 1, got {count}")
    return np.floor((np.arange(count) + 0.5) * n / count).astype(np.int64)


def random_crop(height: int, width: int, size: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left (y, x) of a ``size`` x ``size`` crop drawn uniformly from anywhere in the frame."""
    _check_crop(height, width, size)
    return int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))


def random_box(height: int, width: int, size: int, scales: Sequence[float], rng: np.random.Generator
               ) -> tuple[int, int, int, int]:
    """(y, x, h, w) of a training crop's box. No ``scales``: the ``size`` x ``size`` crop of ``random_crop``
    (the same draws from ``rng``). Else multi-scale cropping: h and w each drawn from ``scales`` as fractions
    of the frame's short side (so the aspect ratio varies too), the box placed uniformly in the frame; the
    caller resizes it to ``size`` x ``size``."""
    if not scales:
        return (*random_crop(height, width, size, rng), size, size)
    short = min(height, width)
    h, w = (max(1, round(scales[int(i)] * short)) for i in rng.integers(len(scales), size=2))
    return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w


def center_crop(height: int, width: int, size: int) -> tuple[int, int]:
    _check_crop(height, width, size)
    return (height - size) // 2, (width - size) // 2


def five_crops(height: int, width: int, size: int) -> list[tuple[int, int]]:
    """Top-left corners of the four corner crops (TL, TR, BL, BR) and the centre crop."""
    _check_crop(height, width, size)
    b, r = height - size, width - size
    return [(0, 0), (0, r), (b, 0), (b, r), center_crop(height, width, size)]


def _check_crop(height: int, width: int, size: int) -> None:
    if size > height or size > width:
        raise UserError(f"crop {size} is larger than the frame {width}x{height}")


def _by_class(labels: Sequence[int]) -> list[np.ndarray]:
    if not len(labels):
        raise UserError("the sampler needs at least one video")
    labels = np.asarray(labels)
    return [np.flatnonzero(labels == c) for c in np.unique(labels)]


def _balanced(by_class: list[np.ndarray], rng: np.random.Generator) -> tuple[int, int]:
    """A class uniformly, a video of it uniformly, and the sample's own seed."""
    videos = by_class[rng.integers(len(by_class))]
    return int(videos[rng.integers(len(videos))]), int(rng.integers(2**31))


@dataclass(frozen=True, kw_only=True)
class _KeyStream:
    """Keys of global samples k = start * world_size + rank, + world_size, ... forever; key(k) is pure."""

    seed: int = 0
    start: int = 0  # samples this rank has already drawn (resuming)
    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world_size:
            raise UserError(f"rank must be in 0..{self.world_size - 1}, got {self.rank}")

    def key(self, k: int) -> tuple[int, ...]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[tuple[int, ...]]:
        k = self.start * self.world_size + self.rank
        while True:
            yield self.key(k)
            k += self.world_size


@dataclass(frozen=True, kw_only=True)
class ClassBalancedSampler(_KeyStream):
    """Training keys ``(video index, sample seed)``: each sample draws its class uniformly, then a video
    of that class uniformly (the paper's class-balanced batches).

    Sample k is a pure function of (seed, k), so a resumed run sees exactly the samples it would have
    seen, whatever the number of DataLoader workers; under DDP rank r of w takes k = r, r + w, ...
    """

    labels: Sequence[int] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "_classes", _by_class(self.labels))

    def key(self, k: int) -> tuple[int, int]:
        return _balanced(self._classes, np.random.default_rng([self.seed, k]))


@dataclass(frozen=True, kw_only=True)
class MultiTaskSampler(_KeyStream):
    """Keys ``(task, video index, sample seed)`` over several data sets: task t with probability
    weights[t] / sum(weights), then class-balanced within it. One task gives the single-task recipe."""

    labels: Sequence[Sequence[int]] = ()
    weights: Sequence[float] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.labels:
            raise UserError("the sampler needs at least one task")
        w = np.ones(len(self.labels)) if self.weights is None else np.asarray(self.weights, float)
        if len(w) != len(self.labels) or (w <= 0).any():
            raise UserError(f"need one positive weight per task, got {self.weights}")
        object.__setattr__(self, "_classes", [_by_class(lab) for lab in self.labels])
        object.__setattr__(self, "_p", w / w.sum())

    def _task(self, rng: np.random.Generator) -> int:
        return int(rng.choice(len(self._p), p=self._p)) if len(self._p) > 1 else 0

    def key(self, k: int) -> tuple[int, int, int]:
        rng = np.random.default_rng([self.seed, k])
        task = self._task(rng)
        return (task, *_balanced(self._classes[task], rng))

    def task_counts(self, first: int, count: int) -> np.ndarray:
        """``int64[T]``: how many of the global samples ``first .. first + count - 1`` (one batch, over
        all processes) belong to each task. The multi-task loss divides each task's sum by its count."""
        if len(self._p) == 1:  # one task: no draw to replay
            return np.int64([count])
        tasks = [self._task(np.random.default_rng([self.seed, k])) for k in range(first, first + count)]
        return np.bincount(tasks, minlength=len(self._p)).astype(np.int64)
