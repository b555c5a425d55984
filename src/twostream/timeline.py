"""What a clip shows over time: the fused class probabilities of sliding windows (``Recognizer.timeline``),
as numbers (``Timeline.to_dict``, what ``predict --json`` prints) and as a plot of the top classes
(``plot_timelines``, what ``predict --timeline out.png`` writes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .data.sampling import evenly_spaced
from .errors import UserError
from .io import atomic_write


@dataclass(frozen=True)
class Windows:
    """Sliding windows over a clip: ``length`` and ``stride`` in seconds, ``positions`` scored per window
    (each in ten crops, as the test protocol)."""

    length: float = 2.0
    stride: float = 1.0
    positions: int = 5

    def __post_init__(self) -> None:
        if not (self.length > 0 and self.stride > 0):
            raise UserError(f"window length and stride must be > 0 s, got {self.length} and {self.stride}")
        if self.positions < 1:
            raise UserError(f"positions per window must be >= 1, got {self.positions}")

    def spans(self, frames: int, fps: float) -> list[tuple[int, int]]:
        """[start, stop) frame ranges of the windows over ``frames`` frames at ``fps``; a clip shorter than
        one window is one window."""
        size, step = max(1, round(self.length * fps)), max(1, round(self.stride * fps))
        if frames <= size:
            return [(0, frames)]
        starts = list(range(0, frames - size + 1, step))
        if starts[-1] + size < frames:  # the end of the clip gets a window of its own
            starts.append(frames - size)
        return [(s, s + size) for s in starts]

    def positions_in(self, start: int, stop: int, available: int) -> np.ndarray:
        """``positions`` evenly spaced positions in [start, stop), kept below ``available`` (a temporal
        stream has L - 1 fewer stack starts than the clip has frames)."""
        stop = min(stop, available)
        start = min(start, stop - 1)
        return start + evenly_spaced(stop - start, self.positions)


@dataclass
class Timeline:
    clip: str
    classes: list[str]
    times: np.ndarray  # float[N]: each window's centre, seconds
    spans: list[tuple[int, int]]  # each window's [start, stop) frames
    scores: np.ndarray  # float[N, K]: the runs' softmax scores averaged, per window
    fps: float

    def top_classes(self, k: int = 3) -> list[int]:
        """The ``k`` classes with the highest probability in any window, most likely first."""
        return [int(i) for i in np.argsort(-self.scores.max(0), kind="stable")[:k]]

    def to_dict(self, k: int | None = None) -> dict[str, Any]:
        """The numbers of the timeline (all classes, or the top ``k``), ready for JSON."""
        chosen = self.top_classes(k) if k else range(len(self.classes))
        return {"clip": self.clip, "fps": self.fps, "times": [round(float(t), 3) for t in self.times],
                "windows": [list(s) for s in self.spans],
                "scores": {self.classes[i]: [round(float(v), 5) for v in self.scores[:, i]] for i in chosen}}


def plot_timelines(timelines: Sequence[Timeline], path: str | Path, top: int = 3) -> Path:
    """One panel per clip: the probability of its ``top`` classes over time. Written whole or not at all."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    if not timelines:
        raise UserError("no timeline to plot")
    fig, axes = plt.subplots(len(timelines), 1, figsize=(8, 2.6 * len(timelines)), squeeze=False)
    for ax, tl in zip(axes[:, 0], timelines):
        for i in tl.top_classes(top):
            ax.plot(tl.times, tl.scores[:, i], marker="o", markersize=3, label=tl.classes[i])
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.set_title(Path(tl.clip).name, fontsize=10)
        ax.legend(fontsize=8, loc="upper right")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time (s, window centre)")
    fig.tight_layout()
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=100))
    plt.close(fig)
    return path
