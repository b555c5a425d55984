"""From a ``Config`` to the objects a run needs: splits, datasets, the model. Shared by train, evaluate
and predict."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from torch import nn

from .config import Config, TaskConfig
from .data.datasets import Clips
from .data.inputs import InputOptions
from .data.splits import Sample, Split, load_split
from .errors import UserError
from .models import build_model, load_pretrained, set_trainable

ClipsT = TypeVar("ClipsT", bound=Clips)


def load_task_split(task: TaskConfig) -> Split:
    """The task's split: its classes (all, the named ones, or the first N), its held-out fusion groups,
    and the training videos of its extra data sets."""
    if not task.splits:
        raise UserError(f"tasks.{task.name}.splits: the split files' path is not set")
    split = load_split(task.kind, task.splits, task.fold)
    if task.classes or task.first_classes:
        split = split.restrict(task.classes or split.classes[:task.first_classes])
    if task.fusion_groups:
        split = split.hold_out(task.fusion_groups)
    for i, extra in enumerate(task.extra):
        if not extra.splits or not extra.cache:
            raise UserError(f"tasks.{task.name}.extra.{i}: splits and cache must be set")
        other = load_split(extra.kind, extra.splits, extra.fold)
        unknown = sorted(set(extra.exclude) - set(other.classes))
        if unknown:
            raise UserError(f"tasks.{task.name}.extra.{i}.exclude: {other.name} has no classes {unknown[:5]}")
        split = split.with_training_videos_of(other.restrict([c for c in other.classes if c not in extra.exclude]),
                                              extra.cache)
    return split


def make_clips(cls: type[ClipsT], task: TaskConfig, options: InputOptions, samples: list[Sample],
               convention: str, cache: str | Path | None = None) -> ClipsT:
    """``cls`` (``TrainClips``, ``ValClips`` or ``TestClips``) over ``task``'s ``samples``, read from the
    task's cache (or ``cache``), RGB in the model's input ``convention``."""
    cache = cache or task.cache
    if not cache:
        raise UserError(f"tasks.{task.name}.cache: the cache path is not set")
    return cls(samples, cache, options, convention, skip_missing=task.skip_missing and cache == task.cache)


def model_args(cfg: Config, classes: dict[str, list[str]]) -> dict[str, Any]:
    """Everything ``build_model`` needs, stored in checkpoints so a model can be rebuilt from one."""
    return {"arch": cfg.model.arch, "num_classes": {t: len(c) for t, c in classes.items()},
            "in_channels": cfg.input.channels, "image_size": cfg.input.crop, "dropout": cfg.model.dropout,
            "temporal": cfg.input.stream == "temporal"}


def make_model(cfg: Config, classes: dict[str, list[str]]) -> tuple[nn.Module, dict | None]:
    """The model, with pretrained weights loaded and layers frozen as configured."""
    model = build_model(**model_args(cfg, classes))
    m = cfg.model
    report = load_pretrained(model, m.pretrained, m.arch, m.pretrained_convention) if m.pretrained else None
    set_trainable(model, cfg.model.train_layers)
    return model, report
