"""Run trained models on one clip: ``twostream predict CLIP RUN [RUN ...]``.

The clip goes through the same extraction as the run's training videos (read from a manifest in the
run's cache, when that cache is at hand) into a temporary cache, then through the test protocol; with
several runs (a spatial and a temporal one) their softmax scores are averaged (late fusion).
"""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .builders import make_dataset, pick_device
from .cache import list_cached, read_manifest
from .data.splits import Sample
from .evaluate import load_run, video_scores
from .extract import ExtractOptions, extract_video


def extraction_of(cache: str | Path) -> ExtractOptions | None:
    """The extraction settings a cache was made with (from one of its manifests), or None."""
    ids = list_cached(cache) if Path(cache).is_dir() else []
    if not ids:
        return None
    m = read_manifest(cache, ids[0])
    params = {k: v for k, v in m["flow"]["params"].items() if k != "opencv"}
    return ExtractOptions(flow_method=m["flow"]["method"], flow_params=params, short_side=m["short_side"],
                          bidirectional=m["bidirectional"], bound=m["codec"]["bound"],
                          flow_quality=m["codec"]["quality"], rgb_quality=m["rgb_quality"])


def predict(clip: str | Path, runs: list[str | Path], task: str | None = None, positions: int | None = None,
            device: str = "auto") -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    """(class names, fused scores ``float[K]``, each run's scores) for ``clip``."""
    if not runs:
        raise ValueError("name at least one run")
    dev = pick_device(device)
    loaded = [load_run(r, dev) for r in runs]
    classes, per_run = None, {}
    with tempfile.TemporaryDirectory(prefix="twostream-predict-") as tmp:
        extracted: dict[str, Path] = {}
        for run, (model, cfg, ckpt) in zip(runs, loaded):
            t = next((x for x in cfg.tasks if x.name == task), None) if task else cfg.tasks[0]
            if t is None:
                raise ValueError(f"{run}: no task {task!r}; tasks: {[x.name for x in cfg.tasks]}")
            options = extraction_of(t.cache)
            if options is None:
                warnings.warn(f"{run}: its cache {t.cache} is not at hand; extracting the clip with the defaults "
                              "(DIS medium, short side 256)", stacklevel=2)
                options = ExtractOptions(bidirectional=cfg.input.bidirectional)
            key = json.dumps(asdict(options), sort_keys=True)
            if key not in extracted:  # a spatial and a temporal run usually share one extraction
                out = Path(tmp) / f"cache{len(extracted)}"
                r = extract_video("clip", clip, out, options)
                if r.status != "ok":
                    raise ValueError(r.reason)
                extracted[key] = out
            if positions:
                cfg.input.test_positions = positions
            t.cache, t.skip_missing = str(extracted[key]), False
            dataset = make_dataset(t, cfg.input, [Sample("clip", 0)], "test")
            sign = None if dataset.sign is None else torch.from_numpy(dataset.sign)
            scores = video_scores(model, dataset[0]["input"], cfg.input.crop, t.name, sign).numpy()
            if classes is not None and ckpt["classes"][t.name] != classes:
                raise ValueError(f"{run}: its classes differ from the first run's; cannot fuse")
            classes = ckpt["classes"][t.name]
            per_run[str(run)] = scores
    return classes, np.mean(list(per_run.values()), axis=0), per_run
