"""Run trained models on a clip: ``twostream.Recognizer`` and ``twostream predict CLIP RUN [RUN ...]``.

```python
from twostream import Recognizer

rec = Recognizer.load(["runs/spatial1", "runs/temporal1"])
p = rec.predict("my_clip.mp4")            # or frames: uint8[T, H, W, 3] RGB
print(p.top(5))                           # [(class, probability), ...]; p.per_run: each run's scores
```

The clip goes through the same extraction as each run's training videos (the extraction record of a unit
in the run's cache, when that cache is at hand; else the defaults) into a temporary cache, then through
the test protocol; the runs' softmax scores are averaged (late fusion).
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .builders import make_clips
from .cache import list_cached, read_manifest
from .data.datasets import TestClips
from .data.splits import Sample
from .devices import pick_device
from .errors import UserError
from .evaluate import video_scores
from .extract import ExtractOptions, extract_frames, extract_video
from .record import ExtractionRecord
from .runs import LoadedRun, load_run


def extraction_of(cache: str | Path) -> ExtractOptions | None:
    """The extraction settings a cache was made with (from one of its manifests), or None."""
    ids = list_cached(cache) if Path(cache).is_dir() else []
    if not ids:
        return None
    return ExtractOptions.from_record(ExtractionRecord.from_manifest(read_manifest(cache, ids[0]), str(cache)))


@dataclass
class Prediction:
    classes: list[str]
    scores: np.ndarray  # float[K]: the runs' softmax scores averaged
    per_run: dict[str, np.ndarray]  # each run's float[K]

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most likely classes with their fused probabilities."""
        order = np.argsort(-self.scores)[:k]
        return [(self.classes[i], float(self.scores[i])) for i in order]


class Recognizer:
    """Trained runs (a spatial and a temporal one, or any number) that classify clips together."""

    def __init__(self, runs: Sequence[LoadedRun], names: Sequence[str], task: str | None = None,
                 positions: int | None = None) -> None:
        if not runs:
            raise UserError("name at least one run")
        self.runs, self.names, self.positions = list(runs), [str(n) for n in names], positions
        self.tasks = []
        for name, run in zip(self.names, self.runs):
            t = next((x for x in run.config.tasks if x.name == task), None) if task else run.config.tasks[0]
            if t is None:
                raise UserError(f"{name}: no task {task!r}; tasks: {[x.name for x in run.config.tasks]}")
            self.tasks.append(t)
        self.classes = self.runs[0].classes[self.tasks[0].name]
        for name, run, t in zip(self.names, self.runs, self.tasks):
            if run.classes[t.name] != self.classes:
                raise UserError(f"{name}: its classes differ from the first run's; cannot fuse")
        self.extraction = []
        for name, run, t in zip(self.names, self.runs, self.tasks):
            options = extraction_of(t.cache)
            if options is None:
                options = ExtractOptions(bidirectional=run.config.input.bidirectional)
                warnings.warn(f"{name}: its cache {t.cache} is not at hand; clips are extracted with the defaults "
                              f"({options.flow_method}, short side {options.short_side})", stacklevel=2)
            self.extraction.append(options)

    @classmethod
    def load(cls, runs: str | Path | Sequence[str | Path], device: str = "auto", task: str | None = None,
             positions: int | None = None) -> Recognizer:
        """Run folders (or checkpoint files), on ``device``; ``task`` for multi-task runs; ``positions``
        overrides the test protocol's count (25)."""
        runs = [runs] if isinstance(runs, (str, Path)) else list(runs)
        dev = pick_device(device)
        return cls([load_run(r, dev) for r in runs], runs, task, positions)

    def predict(self, clip: str | Path | np.ndarray) -> Prediction:
        """Scores of a video file, or of frames ``uint8[T, H, W, 3]`` RGB, by the test protocol."""
        per_run = {}
        with tempfile.TemporaryDirectory(prefix="twostream-predict-") as tmp:
            extracted: dict[str, Path] = {}
            for name, run, t, options in zip(self.names, self.runs, self.tasks, self.extraction):
                key = json.dumps(options.record().to_manifest(), sort_keys=True)
                if key not in extracted:  # a spatial and a temporal run usually share one extraction
                    out = Path(tmp) / f"cache{len(extracted)}"
                    if isinstance(clip, np.ndarray):
                        extract_frames(clip, out, options)
                    else:
                        r = extract_video("clip", clip, out, options)
                        if r.status != "ok":
                            raise UserError(r.reason)
                    extracted[key] = out
                inputs = replace(run.config.input, test_positions=self.positions) if self.positions else run.config.input
                clips = make_clips(TestClips, t, inputs, [Sample("clip", 0)], run.convention, cache=extracted[key])
                per_run[name] = video_scores(run.model, clips, clips[0]["input"], t.name, dtype=run.dtype).numpy()
        return Prediction(self.classes, np.mean(list(per_run.values()), axis=0), per_run)


def predict(clip: str | Path | np.ndarray, runs: list[str | Path], task: str | None = None,
            positions: int | None = None, device: str = "auto") -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    """(class names, fused scores ``float[K]``, each run's scores) for ``clip``."""
    p = Recognizer.load(runs, device, task, positions).predict(clip)
    return p.classes, p.scores, p.per_run
