"""Run configuration: dataclasses loaded from YAML, with dotted overrides (``optim.lr=0.01``,
``tasks.0.fold=2``). An unknown key or a bad value is an error naming the key and what is allowed."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


@dataclass
class TaskConfig:
    """One data set (the paper's multi-task training has two: UCF-101 and HMDB-51)."""

    name: str = "ucf101"
    kind: Literal["ucf101", "hmdb51", "folder", "csv"] = "ucf101"
    splits: str = ""  # split-file folder (ucf101, hmdb51), class-folder root, or CSV file
    fold: int = 1
    cache: str = ""  # the extracted cache of this data set's videos
    skip_missing: bool = False  # train without listed videos that are not in the cache (warns)
    weight: float = 1.0  # this task's share of every batch, relative to the others


@dataclass
class InputConfig:
    stream: Literal["spatial", "temporal"] = "spatial"
    crop: int = 224
    jitter: float = 0.1  # RGB PCA-lighting noise std (spatial)
    length: int = 10  # L flow fields per stack (temporal)
    stacking: Literal["flow", "trajectory"] = "flow"
    bidirectional: bool = False
    mean_subtraction: bool = True
    test_positions: int = 25  # frames/stacks per video at test time (each x 10 crops)


@dataclass
class ModelConfig:
    arch: Literal["cnn_m_2048", "resnet18", "resnet34", "resnet50", "resnet101"] = "cnn_m_2048"
    dropout: float = 0.9
    pretrained: str | None = None  # weights file, or "imagenet" (torchvision's cache; torchvision archs)
    train_layers: Literal["all", "last"] = "all"  # "last": fine-tune the classifier only


@dataclass
class OptimConfig:
    lr: float = 1e-2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256  # per optimizer step, over all processes
    micro_batch: int = 256  # per process and forward pass; gradients accumulate up to batch_size
    milestones: list[int] = field(default_factory=lambda: [50_000, 70_000])
    gamma: float = 0.1
    iterations: int = 80_000


@dataclass
class RunConfig:
    seed: int = 0
    workers: int = 4  # DataLoader processes
    log_every: int = 20
    val_every: int = 1000  # 0: never
    val_videos: int = 0  # validate on the first N test videos per task (0: all)
    checkpoint_every: int = 1000
    amp: bool = True  # mixed precision on CUDA (ignored on CPU)
    device: str = "auto"  # auto, cpu, cuda


@dataclass
class Config:
    tasks: list[TaskConfig] = field(default_factory=lambda: [TaskConfig()])
    input: InputConfig = field(default_factory=InputConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("tasks: at least one task is needed")
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"tasks: names must differ, got {names}")
        if self.optim.batch_size < 1 or self.optim.micro_batch < 1:
            raise ValueError("optim.batch_size and optim.micro_batch must be >= 1")
        if any(b <= a for a, b in zip(self.optim.milestones, self.optim.milestones[1:])):
            raise ValueError(f"optim.milestones must increase, got {self.optim.milestones}")


class ConfigError(ValueError):
    pass


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: must be one of {', '.join(map(str, args))}; got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], key)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: must be a list, got {value!r}")
        return [_convert(v, args[0], f"{key}.{i}") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}: must be a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{key}: unsupported type {tp}")


def _from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    where = prefix or "config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            raise ConfigError(f"{prefix + '.' if prefix else ''}{key}: unknown key; allowed: {', '.join(names)}")
    kwargs = {k: _convert(v, hints[k], f"{prefix + '.' if prefix else ''}{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def apply_override(data: dict, override: str) -> None:
    """Set ``a.b.c=value`` in a nested dict (value parsed as YAML; numeric parts index lists)."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} must look like key=value (e.g. optim.lr=0.01)")
    key, raw = override.split("=", 1)
    parts = key.strip().split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"{'.'.join(parts[:i + 1])}: list index out of range or not a number")
            node = node[int(part)]
        else:
            if node.get(part) is None:  # absent or null (e.g. model.pretrained): a new mapping
                node[part] = {}
            node = node[part]
    last = parts[-1]
    value = yaml.safe_load(raw) if raw.strip() else ""
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ConfigError(f"{key}: list index out of range or not a number")
        node[int(last)] = value
    else:
        node[last] = value


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Defaults, then the YAML file, then the overrides; validated."""
    data: dict = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
    data = to_dict(_from_dict(Config, data))  # fill defaults so overrides can reach into lists
    for override in overrides:
        apply_override(data, override)
    return _from_dict(Config, data)


def config_from_dict(data: dict) -> Config:
    """A validated ``Config`` from a plain dict (e.g. the one stored in a checkpoint)."""
    return _from_dict(Config, data)


def to_dict(config: Config) -> dict:
    return asdict(config)


def save_config(config: Config, path: str | Path) -> None:
    from .io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(config), sort_keys=False))
