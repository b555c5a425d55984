"""Run trained models on one clip: ``twostream predict CLIP RUN [RUN ...]``.

The clip goes through the same extraction as the run's training videos (the extraction record of a
unit in the run's cache, when that cache is at hand) into a temporary cache, then through the test
protocol; with several runs (a spatial and a temporal one) their softmax scores are averaged (late fusion).
"""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from .builders import make_clips
from .cache import list_cached, read_manifest
from .data.datasets import TestClips
from .data.splits import Sample
from .devices import pick_device
from .errors import UserError
from .evaluate import video_scores
from .extract import ExtractOptions, extract_video
from .record import ExtractionRecord
from .runs import load_run


def extraction_of(cache: str | Path) -> ExtractOptions | None:
    """The extraction settings a cache was made with (from one of its manifests), or None."""
    ids = list_cached(cache) if Path(cache).is_dir() else []
    if not ids:
        return None
    return ExtractOptions.from_record(ExtractionRecord.from_manifest(read_manifest(cache, ids[0]), str(cache)))


def predict(clip: str | Path, runs: list[str | Path], task: str | None = None, positions: int | None = None,
            device: str = "auto") -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    """(class names, fused scores ``float[K]``, each run's scores) for ``clip``."""
    if not runs:
        raise UserError("name at least one run")
    dev = pick_device(device)
    loaded = [load_run(r, dev) for r in runs]
    classes, per_run = None, {}
    with tempfile.TemporaryDirectory(prefix="twostream-predict-") as tmp:
        extracted: dict[str, Path] = {}
        for run, lr in zip(runs, loaded):
            cfg = lr.config
            t = next((x for x in cfg.tasks if x.name == task), None) if task else cfg.tasks[0]
            if t is None:
                raise UserError(f"{run}: no task {task!r}; tasks: {[x.name for x in cfg.tasks]}")
            options = extraction_of(t.cache)
            if options is None:
                options = ExtractOptions(bidirectional=cfg.input.bidirectional)
                warnings.warn(f"{run}: its cache {t.cache} is not at hand; extracting the clip with the defaults "
                              f"({options.flow_method}, short side {options.short_side})", stacklevel=2)
            key = json.dumps(options.record().to_manifest(), sort_keys=True)
            if key not in extracted:  # a spatial and a temporal run usually share one extraction
                out = Path(tmp) / f"cache{len(extracted)}"
                r = extract_video("clip", clip, out, options)
                if r.status != "ok":
                    raise UserError(r.reason)
                extracted[key] = out
            inputs = replace(cfg.input, test_positions=positions) if positions else cfg.input
            clips = make_clips(TestClips, t, inputs, [Sample("clip", 0)], lr.convention, cache=extracted[key])
            scores = video_scores(lr.model, clips, clips[0]["input"], t.name).numpy()
            if classes is not None and lr.classes[t.name] != classes:
                raise UserError(f"{run}: its classes differ from the first run's; cannot fuse")
            classes = lr.classes[t.name]
            per_run[str(run)] = scores
    return classes, np.mean(list(per_run.values()), axis=0), per_run
