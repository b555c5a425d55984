"""The paper's test protocol: ``twostream evaluate RUN [--split test|train]``.

Per video: ``test_positions`` evenly spaced frames (spatial) or flow stacks (temporal), 10 crops each
(4 corners + centre, and their mirror images, flow x negated), softmax scores averaged over all crops.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from .builders import load_task_split, make_clips
from .checkpoint import file_sha256
from .data.datasets import TestClips
from .devices import pick_device
from .errors import UserError
from .metrics import summary
from .precision import autocast
from .runs import check_part, load_run
from .scores import Scores, write_scores


@torch.no_grad()
def video_scores(model: nn.Module, clips: TestClips, x: torch.Tensor, task: str, chunk: int = 20,
                 dtype: torch.dtype | None = None) -> torch.Tensor:
    """One video's test input ``Tensor[P, C, H, W]`` (an item of ``clips``) -> softmax ``Tensor[K]``
    averaged over its P x 10 crops, run through the model about ``chunk`` crops at a time, under
    ``dtype``'s autocast if given (``LoadedRun.dtype``). (20 crops: a 224 px CNN-M pair peaks ~480 MB
    lower than with 50, at the same speed on this CPU.)"""
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for crops in clips.crops(x, max(1, chunk // 10)):
        with autocast(device, dtype):
            logits = model(crops.to(device), task)
        probs = torch.softmax(logits.float(), dim=1)
        total = total + probs.sum(0)
        count += len(probs)
    return (total / count).cpu()


def evaluate(run: str | Path, part: str = "test", positions: int | None = None, workers: int = 2,
             device: str = "auto", limit: int | None = None, progress: bool = True) -> dict[str, Path]:
    """Score every video of ``part`` for every task of the run; writes the run's score file per task
    (``RunDir.scores``) and returns their paths. ``limit`` scores only the first N videos (quick checks)."""
    check_part(part)
    loaded = load_run(run, pick_device(device))
    cfg = loaded.config
    options = replace(cfg.input, test_positions=positions) if positions else cfg.input
    sha = file_sha256(loaded.checkpoint_path)
    written = {}
    for task in cfg.tasks:
        split = load_task_split(task)
        if split.classes != loaded.classes[task.name]:
            raise UserError(f"{task.name}: the split's classes differ from the checkpoint's")
        samples = split.samples(part)[:limit] if limit else split.samples(part)
        clips = make_clips(TestClips, task, options, samples, loaded.convention)
        rows, labels, ids = [], [], []
        for item in tqdm(DataLoader(clips, batch_size=None, num_workers=workers), total=len(clips),
                         desc=f"{task.name} {part}", unit="video", disable=not progress):
            rows.append(video_scores(loaded.model, clips, item["input"], task.name, dtype=loaded.dtype))
            labels.append(item["label"])
            ids.append(item["video_id"])
        scores = Scores(ids, labels, split.classes, torch.stack(rows).numpy(), {
            "task": task.name, "part": part, "stream": options.stream, "positions": options.test_positions,
            "crops": 10, "limit": limit, "run": str(loaded.run.path), "checkpoint": str(loaded.checkpoint_path),
            "checkpoint_sha256": sha, "iteration": loaded.checkpoint["iteration"], "config": loaded.checkpoint["config"]})
        path = write_scores(loaded.run.scores(task.name, part, limit), scores)
        m = summary(scores.scores, scores.labels)
        if progress:
            print(f"{task.name} {part}: top-1 {m['top1']:.1%}, top-5 {m['top5']:.1%}, "
                  f"mean class {m['mean_class']:.1%} over {m['videos']} videos -> {path}")
        written[task.name] = path
    return written
