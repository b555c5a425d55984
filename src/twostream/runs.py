"""The run folder: the one place that knows a run's file names and what they hold.

```
RUN/config.yaml                   the resolved config
RUN/checkpoint.pt                 weights, model args, config, class names, optimizer state, iteration
RUN/metrics.jsonl                 one JSON line per logged iteration
RUN/scores-<task>-<part>.npz      the test protocol's scores of one task's train or test part
RUN/report-<task>-<part>.html     their report
FOLDER/fused-<method>.npz (.html) fused scores, beside the spatial score file
```

Everything else asks this module: ``RunDir(path).checkpoint``, ``.scores(task, part)``, ``load_run``,
``training_scores_for`` (the training part of a test score file, found by its metadata).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import RESUME_ONLY, load_checkpoint
from .config import Config, TaskConfig, config_from_dict
from .errors import UserError
from .fusion import check_training_scores
from .models import build_model
from .precision import autocast_dtype
from .conventions import LEGACY
from .data.splits import PARTS
from .scores import Scores, read_scores

_SCORES_PREFIX = "scores-"


def check_part(part: str) -> None:
    if part not in PARTS:
        raise UserError(f"split part must be one of {', '.join(PARTS)}, got {part!r}")


@dataclass(frozen=True)
class RunDir:
    path: Path

    def __init__(self, path: str | Path) -> None:
        object.__setattr__(self, "path", Path(path))

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    def scores(self, task: str, part: str, limit: int | None = None) -> Path:
        """The score file of ``task``'s ``part``; with ``limit``, that of a quick check of its first N
        videos (another file: a partial evaluation never replaces the full one)."""
        check_part(part)
        return self.path / f"{_SCORES_PREFIX}{task}-{part}{f'-first{limit}' if limit else ''}.npz"

    def report(self, task: str, part: str) -> Path:
        check_part(part)
        return self.path / f"report-{task}-{part}.html"

    def score_files(self, part: str) -> dict[str, Path]:
        """{task: score file} of ``part`` present in the run folder."""
        check_part(part)
        suffix = f"-{part}.npz"
        return {p.name[len(_SCORES_PREFIX):-len(suffix)]: p
                for p in sorted(self.path.glob(f"{_SCORES_PREFIX}*{suffix}")) if "-first" not in p.name}


def fused_path(folder: str | Path, method: str) -> Path:
    return Path(folder) / f"fused-{method}.npz"


def report_beside(scores_file: str | Path) -> Path:
    """The HTML report written next to a score file (fused scores)."""
    return Path(scores_file).with_suffix(".html")


def is_run(path: str | Path) -> bool:
    """Whether a path names a run (a folder, or a checkpoint file like a run's) rather than a video. A path
    that does not exist and has no extension is taken for a missing run, so that it is named as one."""
    path = Path(path)
    return path.is_dir() or path.suffix == RunDir(".").checkpoint.suffix or (not path.exists() and not path.suffix)


def run_of(run_or_checkpoint: str | Path) -> tuple[RunDir, Path]:
    """(the run folder, its checkpoint file) from either."""
    path = Path(run_or_checkpoint)
    if path.is_dir():
        return RunDir(path), RunDir(path).checkpoint
    return RunDir(path.parent), path


@dataclass
class LoadedRun:
    model: nn.Module  # in eval mode, on the device asked for
    config: Config
    checkpoint: dict[str, Any]  # its metadata: the weights are the model's, the resume-only states dropped
    checkpoint_path: Path
    run: RunDir
    convention: str  # the model's input convention (checkpoints made before it was recorded: LEGACY)

    @property
    def classes(self) -> dict[str, list[str]]:
        return self.checkpoint["classes"]

    def task(self, name: str | None, label: str) -> TaskConfig:
        """The run's task called ``name`` (None: its first); an error naming the run (``label``) if none."""
        found = next((t for t in self.config.tasks if t.name == name), None) if name else self.config.tasks[0]
        if found is None:
            raise UserError(f"{label}: no task {name!r}; tasks: {[t.name for t in self.config.tasks]}")
        return found

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast the run's config asks for on the model's device (``precision``), or None."""
        device = next(self.model.parameters()).device
        return autocast_dtype(device, self.config.run.amp, self.config.run.bf16_cpu)


def load_run(run: str | Path, device: torch.device | str = "cpu") -> LoadedRun:
    """The trained model and config of a run folder (or a checkpoint file)."""
    run_dir, path = run_of(run)
    if not Path(run).exists():
        raise UserError(f"{run}: no such run folder or checkpoint file")
    if not path.exists():
        raise UserError(f"{run}: no run there (no {path.name})")
    # mapped, not read: the optimizer's state (as large as the weights) is never read, and the weights are
    # read once, into the model (a 224 px CNN-M pair held three copies of its weights before: 2.1 GB)
    ckpt = load_checkpoint(path, mmap=True)
    model = build_model(**ckpt["model_args"])
    model.load_state_dict(ckpt.pop("model"))
    model.to(device).eval()
    for key in RESUME_ONLY:
        ckpt.pop(key, None)
    return LoadedRun(model, config_from_dict(ckpt["config"]), ckpt, path, run_dir,
                     ckpt.get("input_convention", LEGACY))


def task_cache(meta: dict[str, Any]) -> str | None:
    """The cache the task of a score file's metadata read (for the report's example videos)."""
    meta = meta.get("spatial", meta)  # fused scores carry each stream's metadata
    for task in meta.get("config", {}).get("tasks", []):
        if task.get("name") == meta.get("task"):
            return task.get("cache")
    return None


def training_scores_for(test_file: str | Path, test: Scores, part: str = "train") -> tuple[Path, Scores]:
    """The scores to fit a fusion on (``part`` train, or fusion: held-out groups) of the run and task that
    made ``test`` (a test-part score file), found by its metadata: same run folder, same task, same
    checkpoint."""
    if test.meta.get("part") != "test":
        raise UserError(f"{test_file}: its metadata says part {test.meta.get('part')!r}, not 'test'")
    task = test.meta.get("task")
    folder = test.meta.get("run") or (Path(test.meta["checkpoint"]).parent if test.meta.get("checkpoint") else None)
    if not task or not folder:
        raise UserError(f"{test_file}: its metadata names no run and task; give the training scores' file")
    path = RunDir(folder).scores(task, part)
    if not path.exists():
        raise UserError(f"{test_file}: the {part} scores of its run are not there ({path}); "
                        f"run `twostream evaluate {folder} --split {part}` first, or give the file")
    train = read_scores(path)
    if train.meta.get("checkpoint_sha256") != test.meta.get("checkpoint_sha256"):
        raise UserError(f"{path}: scored with another checkpoint than {test_file}; evaluate both again")
    check_training_scores(train, test, f"{part} scores")
    return path, train
