"""Run configuration: dataclasses loaded from YAML, with dotted overrides (``optim.lr=0.01``,
``tasks.0.fold=2``). An unknown key or a bad value is an error naming the key and what is allowed."""

from __future__ import annotations

import dataclasses
import reprlib
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .conventions import CONVENTIONS
from .data.device_input import DECODE
from .data.inputs import InputOptions
from .data.splits import FOLDED_KINDS, KINDS, check_fold
from .devices import DEVICES
from .errors import UserError
from .models import ARCHS, TRAIN_LAYERS


@dataclass
class ExtraConfig:
    """Training videos of another data set added to a task as classes of their own (never tested on)."""

    kind: str = field(default="ucf101", metadata={"choices": KINDS})
    splits: str = ""
    fold: int = 1
    cache: str = ""
    exclude: list[str] = field(default_factory=list)  # classes left out (e.g. those the task has too)

    def __post_init__(self) -> None:
        if self.kind in FOLDED_KINDS:
            check_fold(self.fold, "fold:")


@dataclass
class TaskConfig:
    """One data set (the paper's multi-task training has two: UCF-101 and HMDB-51)."""

    name: str = "ucf101"
    kind: str = field(default="ucf101", metadata={"choices": KINDS})
    splits: str = ""  # split-file folder (ucf101, hmdb51), class-folder root, or CSV file
    fold: int = 1
    cache: str = ""  # the extracted cache of this data set's videos
    skip_missing: bool = False  # train without listed videos that are not in the cache (warns)
    weight: float = 1.0  # this task's share of every batch, relative to the others
    fusion_groups: list[int] = field(default_factory=list)  # training groups held out to fit the fusion on
    classes: list[str] = field(default_factory=list)  # only these classes (labels renumbered); []: all
    first_classes: int = 0  # only the first N classes of the list (e.g. of classInd.txt); 0: all
    extra: list[ExtraConfig] = field(default_factory=list)  # training videos of other data sets

    def __post_init__(self) -> None:
        if self.kind in FOLDED_KINDS:
            check_fold(self.fold, "fold:")
        if not self.weight > 0:
            raise UserError(f"weight: must be > 0, got {self.weight}")
        if self.first_classes < 0:
            raise UserError(f"first_classes: must be >= 0, got {self.first_classes}")
        if self.first_classes and self.classes:
            raise UserError("first_classes: give either classes or first_classes, not both")


@dataclass
class ModelConfig:
    arch: str = field(default="cnn_m_2048", metadata={"choices": ARCHS})
    dropout: float = 0.9  # the paper's from-scratch and fine-tuning nets; 0.5 for the last layer only
    pretrained: str | None = None  # weights file, or "imagenet" (torchvision's cache; torchvision archs)
    # the input convention the weights file was trained in (twostream checkpoints record it; "imagenet" is
    # torchvision's); its first layer is converted to the model's
    pretrained_convention: str | None = field(default=None, metadata={"choices": (None, *CONVENTIONS)})
    train_layers: str = field(default="all", metadata={"choices": TRAIN_LAYERS})

    def __post_init__(self) -> None:
        if not 0 <= self.dropout < 1:
            raise UserError(f"dropout: must be in [0, 1), got {self.dropout}")


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

    def __post_init__(self) -> None:
        for name in ("batch_size", "micro_batch", "iterations"):
            if getattr(self, name) < 1:
                raise UserError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise UserError(f"lr: must be > 0, got {self.lr}")
        if any(b <= a for a, b in zip(self.milestones, self.milestones[1:])):
            raise UserError(f"milestones: must increase, got {self.milestones}")


@dataclass
class RunConfig:
    seed: int = 0
    workers: int = 4  # DataLoader processes
    log_every: int = 20
    val_every: int = 1000  # 0: never
    val_videos: int = 0  # validate on the first N test videos per task (0: all)
    checkpoint_every: int = 1000
    amp: bool = True  # float16 autocast on CUDA (ignored on CPU)
    bf16_cpu: bool = False  # bfloat16 autocast on a CPU with native bf16 (AVX512_BF16, AMX; ignored elsewhere)
    device: str = field(default="auto", metadata={"choices": DEVICES})
    # where training JPEGs are decoded: in the loader's workers, or on the device (``data.device_input``;
    # auto: on CUDA when torchvision is installed)
    decode: str = field(default="auto", metadata={"choices": DECODE})

    def __post_init__(self) -> None:
        for name in ("log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise UserError(f"{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("workers", "val_every", "val_videos"):
            if getattr(self, name) < 0:
                raise UserError(f"{name}: must be >= 0, got {getattr(self, name)}")


@dataclass
class Config:
    tasks: list[TaskConfig] = field(default_factory=lambda: [TaskConfig()])
    input: InputOptions = field(default_factory=InputOptions)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        if not self.tasks:
            raise UserError("tasks: at least one task is needed")
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise UserError(f"tasks: names must differ, got {names}")


class ConfigError(UserError):
    """A config key with a bad value, or an unknown key: the message starts with the key."""


def _plain_key(part: Any) -> bool:
    """A key part a message can start with as it is: an ASCII field name or list index (no line break)."""
    return isinstance(part, str) and part.isascii() and (part.isidentifier() or part.isdigit())


def _show(value: Any) -> str:
    """A bounded repr for messages: never expands a large (or YAML-aliased) value in full."""
    return _REPR.repr(value)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 60, 60


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, key)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], key)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: must be a list, got {_show(value)}")
        return [_convert(v, args[0], f"{key}.{i}") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: must be an integer, got {_show(value)}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string: take it as the number it is
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: must be a number, got {_show(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}: must be a string, got {_show(value)}")
        return str(value)
    raise ConfigError(f"{key}: unsupported type {tp}")


def _from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """``cls`` from a mapping: every key known, every value of its field's type and among its field's
    ``choices`` (the vocabulary's owner declares them); the dataclass's own checks name their field."""
    dot = f"{prefix}." if prefix else ""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: must be a mapping, got {_show(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:  # a file's key may hold anything YAML allows: shown as a repr unless plain
            shown = key if _plain_key(key) else _show(key)
            raise ConfigError(f"{dot}{shown}: unknown key; allowed: {', '.join(fields)}")
        kwargs[key] = _convert(value, hints[key], f"{dot}{key}")
        choices = fields[key].metadata.get("choices")
        if choices is not None and kwargs[key] not in choices:
            raise ConfigError(f"{dot}{key}: must be one of {', '.join(map(str, choices))}; got {_show(value)}")
    try:
        return cls(**kwargs)
    except ValueError as exc:  # the dataclass's checks say "<field>: ..."
        raise ConfigError(f"{dot}{exc}") from None


def apply_override(data: dict, override: str) -> None:
    """Set ``a.b.c=value`` in a nested dict (value parsed as YAML; numeric parts index lists)."""
    if "=" not in override:
        raise ConfigError(f"override {_show(override)} must look like key=value (e.g. optim.lr=0.01)")
    key, raw = override.split("=", 1)
    key = key.strip()
    parts = key.split(".")
    if not all(map(_plain_key, parts)):  # every message below starts with the key
        raise ConfigError(f"{_show(key)}: not a config key (field names and list indices, e.g. tasks.0.fold)")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"{'.'.join(parts[:i])}: is {_show(node)}, not a mapping: cannot set {key}")
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"{'.'.join(parts[:i + 1])}: list index out of range or not a number")
            node = node[int(part)]
        else:
            if node.get(part) is None:  # absent or null (e.g. model.pretrained): a new mapping
                node[part] = {}
            node = node[part]
    last = parts[-1]
    try:
        value = _yaml(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"{key}: the value {_show(raw)} is not valid YAML ({str(exc).splitlines()[0]})") from None
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ConfigError(f"{key}: list index out of range or not a number")
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"{'.'.join(parts[:-1])}: is {_show(node)}, not a mapping: cannot set {key}")


MAX_NODES = 100_000  # values in a config once aliases are expanded; a "billion laughs" file has 10^9


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a document whose aliases (``*name``) expand to more than
    ``MAX_NODES`` values: a 364-byte file of nested aliases otherwise becomes gigabytes wherever the value
    is copied or printed. The expanded size is counted on the composed graph, shared nodes once each."""

    def compose_document(self):
        root = super().compose_document()
        sizes: dict[int, int] = {}

        def size(node) -> int:
            if id(node) not in sizes:
                sizes[id(node)] = 0  # a cycle counts once
                children = node.value if isinstance(node.value, list) else []
                flat = [c for pair in children for c in pair] if isinstance(node, yaml.MappingNode) else children
                sizes[id(node)] = 1 + sum(size(c) for c in flat)
                if sizes[id(node)] > MAX_NODES:
                    raise ConfigError(f"the YAML expands to more than {MAX_NODES} values through its aliases "
                                      "(*name): refused (an alias bomb?)")
            return sizes[id(node)]

        if root is not None:
            size(root)
        return root


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader, bounded


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Defaults, then the YAML file, then the overrides; validated."""
    data: dict = {}
    if path is not None:
        try:
            data = _yaml(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
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
