"""The paper's test protocol: ``twostream evaluate RUN [--split test|train]``.

Per video: ``positions`` evenly spaced frames (spatial) or flow stacks (temporal), 10 crops each (4
corners + centre, and their mirror images), softmax scores averaged over all crops.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from .builders import load_task_split, make_dataset, pick_device
from .checkpoint import file_sha256, load_checkpoint
from .config import Config, config_from_dict
from .data.transforms import ten_crop
from .metrics import summary
from .models import build_model
from .scores import Scores, write_scores
from .train import CHECKPOINT


def load_run(run: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, Config, dict]:
    """The trained model (eval mode) and config of a run folder (or a checkpoint file), and the checkpoint."""
    path = Path(run)
    path = path / CHECKPOINT if path.is_dir() else path
    ckpt = load_checkpoint(path)
    model = build_model(**ckpt["model_args"])
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    cfg = config_from_dict(ckpt["config"])
    return model, cfg, ckpt | {"path": str(path)}


@torch.no_grad()
def video_scores(model: nn.Module, stack: torch.Tensor, crop: int, task: str, sign=None, chunk: int = 50
                 ) -> torch.Tensor:
    """``Tensor[P, C, H, W]`` (one video's test positions) -> softmax ``Tensor[K]`` averaged over the
    P x 10 crops, run through the model ``chunk`` crops at a time."""
    device = next(model.parameters()).device
    total, count = 0.0, 0
    per_chunk = max(1, chunk // 10)
    for i in range(0, len(stack), per_chunk):
        crops = ten_crop(stack[i:i + per_chunk], crop, sign).to(device)
        probs = torch.softmax(model(crops, task).float(), dim=1)
        total = total + probs.sum(0)
        count += len(probs)
    return (total / count).cpu()


def evaluate(run: str | Path, part: str = "test", positions: int | None = None, workers: int = 2,
             device: str = "auto", limit: int | None = None, progress: bool = True) -> dict[str, Path]:
    """Score every video of ``part`` for every task of the run; writes ``RUN/scores-<task>-<part>.npz``
    and returns their paths. ``limit`` scores only the first N videos (quick checks)."""
    if part not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {part!r}")
    dev = pick_device(device)
    model, cfg, ckpt = load_run(run, dev)
    run_dir = Path(ckpt["path"]).parent
    if positions:
        cfg.input.test_positions = positions
    sha = file_sha256(ckpt["path"])
    written = {}
    for task in cfg.tasks:
        split = load_task_split(task)
        if split.classes != ckpt["classes"][task.name]:
            raise ValueError(f"{task.name}: the split's classes differ from the checkpoint's")
        samples = split.samples(part)[:limit] if limit else split.samples(part)
        dataset = make_dataset(task, cfg.input, samples, "test")
        loader = DataLoader(dataset, batch_size=None, num_workers=workers)
        rows, labels, ids = [], [], []
        for item in tqdm(loader, total=len(dataset), desc=f"{task.name} {part}", unit="video",
                         disable=not progress):
            rows.append(video_scores(model, item["input"], cfg.input.crop, task.name,
                                     None if dataset.sign is None else torch.from_numpy(dataset.sign)))
            labels.append(item["label"])
            ids.append(item["video_id"])
        scores = Scores(ids, labels, split.classes, torch.stack(rows).numpy(), {
            "task": task.name, "part": part, "stream": cfg.input.stream, "positions": cfg.input.test_positions,
            "crops": 10, "checkpoint": ckpt["path"], "checkpoint_sha256": sha, "iteration": ckpt["iteration"],
            "config": ckpt["config"]})
        path = write_scores(run_dir / f"scores-{task.name}-{part}.npz", scores)
        m = summary(scores.scores, scores.labels)
        if progress:
            print(f"{task.name} {part}: top-1 {m['top1']:.1%}, top-5 {m['top5']:.1%}, "
                  f"mean class {m['mean_class']:.1%} over {m['videos']} videos -> {path}")
        written[task.name] = path
    return written
