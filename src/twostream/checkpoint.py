"""Checkpoints: plain dicts of tensors and JSON-like data, written atomically, loaded without ever
executing pickled code (``torch.load(weights_only=True)``)."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

import torch

from .errors import UserError
from .io import atomic_write

REQUIRED = ("model", "model_args", "config", "classes", "iteration")
RESUME_ONLY = ("optimizer", "scheduler", "scaler", "rng")  # what only resuming training reads (train.py writes them)


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise UserError(f"checkpoint payload lacks {', '.join(missing)}")
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # through a Python file: a full disk is an OSError (ENOSPC), not torch's
            torch.save(payload, f)  # "[enforce fail at inline_container.cc]"

    return atomic_write(path, write)


def safe_load(path: str | Path, mmap: bool = False) -> Any:
    """``torch.load`` restricted to tensors and plain data; anything else is refused with a clear error.
    ``mmap``: tensors stay in the file until read (those never read cost no memory)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"refusing to load {path}: it holds pickled objects other than tensors and plain "
                         f"data, and loading them could run code ({first})") from None
    except (RuntimeError, EOFError) as exc:
        raise UserError(f"{path}: not a readable checkpoint ({exc})") from None


def load_checkpoint(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """A twostream checkpoint: model weights, model args, config, class names per task, iteration, and
    (for resuming) optimizer, scheduler and RNG states. ``mmap``: as ``safe_load``'s."""
    ckpt = safe_load(path, mmap)
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED):
        have = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise UserError(f"{path}: not a twostream checkpoint (needs {', '.join(REQUIRED)}; has {have})")
    return ckpt


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
