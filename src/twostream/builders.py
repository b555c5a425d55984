"""From a ``Config`` to the objects a run needs: splits, datasets, the model. Shared by train and evaluate."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .config import Config, InputConfig, TaskConfig
from .data.datasets import SpatialDataset, TemporalDataset, TemporalOptions
from .data.splits import Sample, Split, load_split
from .models import build_model, load_pretrained


def load_task_split(task: TaskConfig) -> Split:
    if not task.splits:
        raise ValueError(f"tasks.{task.name}.splits: the split files' path is not set")
    return load_split(task.kind, task.splits, task.fold)


def temporal_options(inp: InputConfig) -> TemporalOptions:
    return TemporalOptions(inp.length, inp.stacking, inp.bidirectional, inp.mean_subtraction)


def make_dataset(task: TaskConfig, inp: InputConfig, samples: list[Sample], mode: str):
    """The dataset of ``task``'s ``samples`` for the configured stream, in ``mode`` (train, val, test)."""
    if not task.cache:
        raise ValueError(f"tasks.{task.name}.cache: the cache path is not set")
    common = {"mode": mode, "crop": inp.crop, "positions": inp.test_positions, "skip_missing": task.skip_missing}
    if inp.stream == "spatial":
        return SpatialDataset(samples, task.cache, jitter=inp.jitter, **common)
    return TemporalDataset(samples, task.cache, options=temporal_options(inp), **common)


def model_args(cfg: Config, classes: dict[str, list[str]]) -> dict[str, Any]:
    """Everything ``build_model`` needs, stored in checkpoints so a model can be rebuilt from one."""
    return {"arch": cfg.model.arch, "num_classes": {t: len(c) for t, c in classes.items()},
            "in_channels": 3 if cfg.input.stream == "spatial" else 2 * cfg.input.length,
            "image_size": cfg.input.crop, "dropout": cfg.model.dropout,
            "temporal": cfg.input.stream == "temporal"}


def make_model(cfg: Config, classes: dict[str, list[str]]) -> tuple[nn.Module, dict | None]:
    """The model, with pretrained weights loaded and layers frozen as configured."""
    model = build_model(**model_args(cfg, classes))
    report = load_pretrained(model, cfg.model.pretrained, cfg.model.arch) if cfg.model.pretrained else None
    if cfg.model.train_layers == "last":
        trainable = {id(p) for p in model.classifier_parameters()}
        for p in model.parameters():
            p.requires_grad_(id(p) in trainable)
    return model, report


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("run.device: cuda was asked for, but no CUDA device is available")
        return torch.device(f"cuda:{local_rank}")
    if name != "cpu":
        raise ValueError(f"run.device must be auto, cpu or cuda, got {name!r}")
    return torch.device("cpu")
