"""Run trained models on a clip: ``twostream.Recognizer`` and ``twostream predict CLIP RUN [RUN ...]``.

```python
from twostream import Recognizer

rec = Recognizer.load(["runs/spatial1", "runs/temporal1"])
p = rec.predict("my_clip.mp4")            # or frames: uint8[T, H, W, 3] RGB
print(p.top(5))                           # [(class, probability), ...]; p.per_run: each run's scores
```

The clip goes through the same extraction as each run's training videos (the extraction record the
checkpoint carries; for older checkpoints, a unit's in the run's cache when it is at hand; else the
defaults) into a temporary cache, then through the test protocol; the runs' softmax scores are averaged
(late fusion). Asking for another flow method or codec than a run was trained on is refused unless forced.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .builders import make_clips
from .cache import extraction_record
from .config import TaskConfig
from .data.datasets import TestClips
from .data.splits import Sample
from .devices import pick_device
from .errors import UserError
from .evaluate import video_scores
from .extract import ExtractOptions, extract_frames, extract_video
from .record import ExtractionRecord
from .runs import LoadedRun, load_run
from .stream import StreamUpdate, stream_predictions
from .timeline import Timeline, Windows


# what a user may ask of a clip's extraction (``ExtractOptions`` fields) that a run's training fixed
REQUESTABLE = ("flow_method", "bound", "flow_quality")


def run_extraction(run: LoadedRun, task: TaskConfig, name: str) -> ExtractOptions:
    """How the training videos of ``run``'s ``task`` were extracted: from the checkpoint (recorded since
    training records it), else from the task's cache when it is at hand, else extract's defaults (warned)."""
    recorded = run.checkpoint.get("extraction", {}).get(task.name)
    record = (ExtractionRecord.from_manifest(recorded, f"{run.checkpoint_path}: extraction.{task.name}")
              if recorded else extraction_record(task.cache))
    if record is not None:
        return ExtractOptions.from_record(record)
    options = ExtractOptions(bidirectional=run.config.input.bidirectional)
    warnings.warn(f"{name}: neither its checkpoint nor its cache {task.cache} says how its videos were extracted; "
                  f"clips are extracted with the defaults ({options.flow_method}, short side {options.short_side})",
                  stacklevel=3)
    return options


def requested_extraction(trained: ExtractOptions, name: str, force: bool = False, uses_flow: bool = True,
                         **asked) -> ExtractOptions:
    """``trained`` with what the user asked (``REQUESTABLE`` keys; None: as trained). For a run that reads
    flow (``uses_flow``), a flow method or codec other than it was trained on is refused, naming both,
    unless ``force``: its scores would not mean what they meant in training."""
    unknown = set(asked) - set(REQUESTABLE)
    if unknown:
        raise UserError(f"can only ask for {', '.join(REQUESTABLE)}, not {', '.join(sorted(unknown))}")
    asked = {k: v for k, v in asked.items() if v is not None and v != getattr(trained, k)}
    if not asked:
        return trained
    if uses_flow and not force:
        what = "; ".join(f"{k} {getattr(trained, k)!r}, asked for {v!r}" for k, v in asked.items())
        raise UserError(f"{name}: trained on other flow or codec settings ({what}); --force runs it anyway")
    params = {} if "flow_method" in asked else trained.flow_params  # another method's parameters do not carry over
    return replace(trained, flow_params=params, **asked)


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
                 positions: int | None = None, force: bool = False, **asked) -> None:
        if not runs:
            raise UserError("name at least one run")
        self.runs, self.names, self.positions = list(runs), [str(n) for n in names], positions
        self.tasks = [run.task(task, name) for name, run in zip(self.names, self.runs)]
        self.classes = self.runs[0].classes[self.tasks[0].name]
        for name, run, t in zip(self.names, self.runs, self.tasks):
            if run.classes[t.name] != self.classes:
                raise UserError(f"{name}: its classes differ from the first run's; cannot fuse")
        self.extraction = [requested_extraction(run_extraction(run, t, name), name, force,
                                                run.config.input.stream == "temporal", **asked)
                           for name, run, t in zip(self.names, self.runs, self.tasks)]

    @classmethod
    def load(cls, runs: str | Path | Sequence[str | Path], device: str = "auto", task: str | None = None,
             positions: int | None = None, force: bool = False, **asked) -> Recognizer:
        """Run folders (or checkpoint files), on ``device``; ``task`` for multi-task runs; ``positions``
        overrides the test protocol's count (25). ``asked``: ``flow_method``, ``bound``, ``flow_quality``
        for the clips' extraction, refused unless ``force`` where they differ from the runs' training."""
        runs = [runs] if isinstance(runs, (str, Path)) else list(runs)
        dev = pick_device(device)
        return cls([load_run(r, dev) for r in runs], runs, task, positions, force, **asked)

    @contextmanager
    def _clips(self, clip: str | Path | np.ndarray) -> Iterator[list[TestClips]]:
        """The clip extracted as each run's training videos were (once per distinct extraction: a spatial
        and a temporal run usually share one) into a temporary cache, as one ``TestClips`` per run."""
        with tempfile.TemporaryDirectory(prefix="twostream-predict-") as tmp:
            extracted: dict[str, Path] = {}
            clips = []
            for run, t, options in zip(self.runs, self.tasks, self.extraction):
                key = json.dumps(options.record().to_manifest(), sort_keys=True)
                if key not in extracted:
                    out = Path(tmp) / f"cache{len(extracted)}"
                    if isinstance(clip, np.ndarray):
                        extract_frames(clip, out, options)
                    else:
                        r = extract_video("clip", clip, out, options)
                        if r.status != "ok":
                            raise UserError(r.reason)
                    extracted[key] = out
                inputs = replace(run.config.input, test_positions=self.positions) if self.positions else run.config.input
                clips.append(make_clips(TestClips, t, inputs, [Sample("clip", 0)], run.convention, cache=extracted[key]))
            yield clips

    def _scores(self, clips: list[TestClips], item: Callable[[TestClips], dict]) -> dict[str, np.ndarray]:
        """Each run's softmax ``float[K]`` of ``item(its clips)`` (a ``TestClips`` item)."""
        return {name: video_scores(run.model, c, item(c)["input"], t.name, dtype=run.dtype).numpy()
                for name, run, t, c in zip(self.names, self.runs, self.tasks, clips)}

    def predict(self, clip: str | Path | np.ndarray) -> Prediction:
        """Scores of a video file, or of frames ``uint8[T, H, W, 3]`` RGB, by the test protocol."""
        with self._clips(clip) as clips:
            per_run = self._scores(clips, lambda c: c[0])
        return Prediction(self.classes, np.mean(list(per_run.values()), axis=0), per_run)

    def timeline(self, clip: str | Path | np.ndarray, windows: Windows = Windows()) -> Timeline:
        """Fused scores of sliding ``windows`` over the clip (each window by the test protocol, with
        ``windows.positions`` positions in it)."""
        with self._clips(clip) as clips:
            video = clips[0].video(0)
            fps = float(video.manifest.get("fps") or 25.0)
            spans = windows.spans(video.num_frames, fps)
            rows = [np.mean(list(self._scores(clips, lambda c: c.at(0, windows.positions_in(a, b, c.num_positions(0))))
                                 .values()), axis=0) for a, b in spans]
        times = np.array([(a + b) / 2 / fps for a, b in spans])
        name = "frames" if isinstance(clip, np.ndarray) else str(clip)
        return Timeline(name, self.classes, times, spans, np.stack(rows), fps)


    def stream(self, source: str, every: int = 5, pace: bool = True, max_frames: int = 0) -> Iterator[StreamUpdate]:
        """Live prediction on a video file, a camera (``/dev/video0``) or a URL: one ``StreamUpdate`` per
        processed frame, holding the current fused prediction (``twostream.stream``)."""
        return stream_predictions(self, source, every, pace, max_frames)


def predict(clip: str | Path | np.ndarray, runs: list[str | Path], task: str | None = None,
            positions: int | None = None, device: str = "auto") -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    """(class names, fused scores ``float[K]``, each run's scores) for ``clip``."""
    p = Recognizer.load(runs, device, task, positions).predict(clip)
    return p.classes, p.scores, p.per_run
