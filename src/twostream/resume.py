"""What may change when a run resumes: ``twostream train CONFIG --resume`` compares the new config with
the one in the checkpoint. A change that would make the run not what its config says (learning rate,
schedule, batch, seed, data, model, input) is refused, naming each key; what only changes how long or how
the run executes (``SAFE``) is allowed and recorded in the checkpoint."""

from __future__ import annotations

import re
from typing import Any

from .errors import UserError

# dotted keys that may change on resume; N stands for any task's index
SAFE = ("optim.iterations", "run.workers", "run.log_every", "run.val_every", "run.val_videos",
        "run.checkpoint_every", "run.device", "run.decode", "tasks.N.cache", "tasks.N.splits")
_SAFE = [re.compile(re.escape(k).replace("N", r"\d+")) for k in SAFE]


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{dotted key: value} of nested dicts and lists (list items by index)."""
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list) and data and all(isinstance(x, dict) for x in data):
        items = ((str(i), x) for i, x in enumerate(data))
    else:
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in items:
        out |= flatten(value, f"{prefix}.{key}" if prefix else str(key))
    return out


def config_changes(old: dict, new: dict) -> list[tuple[str, Any, Any]]:
    """(key, old value, new value) of every key whose value differs, sorted by key."""
    a, b = flatten(old), flatten(new)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def check_resume(old: dict, new: dict, iteration: int) -> list[tuple[str, Any, Any]]:
    """The safe changes between the checkpoint's config ``old`` and ``new`` (to record); ``UserError``
    naming every other change."""
    changes = config_changes(old, new)
    unsafe = [(k, a, b) for k, a, b in changes if not any(p.fullmatch(k) for p in _SAFE)]
    if unsafe:
        listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in unsafe)
        raise UserError(f"--resume with a changed config would make the run not what it says ({listed}). "
                        f"Allowed on resume: {', '.join(SAFE)}; "
                        "start a new run folder for the rest")
    new_iterations = flatten(new).get("optim.iterations")
    if isinstance(new_iterations, int) and new_iterations <= iteration:
        raise UserError(f"optim.iterations: {new_iterations}, but the checkpoint is at iteration {iteration} already")
    return changes
