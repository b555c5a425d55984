"""Score files: one ``.npz`` per (run, task, split), readable without pickle.

Arrays: ``scores`` float32[N, K] (softmax, averaged over the test crops), ``labels`` int64[N],
``video_ids`` str[N], ``classes`` str[K], and ``meta``, a JSON string (task, split part, protocol,
checkpoint path and SHA-256, config). Load with ``read_scores``; ``np.load(path)`` works as well.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError
from .io import atomic_write


@dataclass
class Scores:
    video_ids: list[str]
    labels: np.ndarray  # int64[N]
    classes: list[str]
    scores: np.ndarray  # float32[N, K]
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the file these scores were read from (named in errors), not stored

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, np.int64)
        self.scores = np.asarray(self.scores, np.float32)
        n, k = len(self.video_ids), len(self.classes)
        if self.scores.shape != (n, k) or self.labels.shape != (n,):
            raise UserError(f"scores {self.scores.shape} and labels {self.labels.shape} do not fit "
                             f"{n} videos x {k} classes")


def write_scores(path: str | Path, s: Scores) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, scores=s.scores, labels=s.labels, video_ids=np.array(s.video_ids, dtype=str),
                     classes=np.array(s.classes, dtype=str), meta=np.array(json.dumps(s.meta)))

    return atomic_write(path, write)


def read_scores(path: str | Path, complete: bool = True) -> Scores:
    """A score file; refused, naming it: a missing, truncated or foreign file, scores that are not all
    finite, and (``complete``) a quick check of the first N videos only (``evaluate --limit``)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            s = Scores([str(v) for v in z["video_ids"]], z["labels"], [str(c) for c in z["classes"]],
                       z["scores"], json.loads(str(z["meta"])), source=str(path))
    except FileNotFoundError:
        raise UserError(f"score file {path} not found") from None
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: not a twostream score file ({type(exc).__name__}: {exc})") from None
    if not isinstance(s.meta, dict):
        raise UserError(f"{path}: not a twostream score file (its meta is not a JSON object)")
    if not np.isfinite(s.scores).all():
        bad = int((~np.isfinite(s.scores)).any(axis=1).sum())
        raise UserError(f"{path}: {bad} of its {len(s.video_ids)} videos have scores that are not finite (NaN or inf)")
    if complete and s.meta.get("limit"):
        raise UserError(f"{path}: a quick check of the first {s.meta['limit']} videos (evaluate --limit), not a "
                        "full evaluation: run `twostream evaluate` without --limit")
    return s


def check_same_videos(a: Scores, b: Scores, names: tuple[str, str] = ("first", "second")) -> None:
    """Refuse to combine score files whose classes or videos differ, naming the difference."""
    if a.classes != b.classes:
        only_a = [c for c in a.classes if c not in b.classes]
        only_b = [c for c in b.classes if c not in a.classes]
        detail = (f"classes only in {names[0]}: {only_a[:5]}; only in {names[1]}: {only_b[:5]}"
                  if only_a or only_b else "the same classes in another order")
        raise UserError(f"{names[0]} and {names[1]} have different classes ({detail})")
    if a.video_ids != b.video_ids:
        sa, sb = set(a.video_ids), set(b.video_ids)
        if sa == sb:
            raise UserError(f"{names[0]} and {names[1]} list the same videos in another order")
        only_a, only_b = sorted(sa - sb), sorted(sb - sa)
        raise UserError(f"{names[0]} and {names[1]} score different videos: {len(only_a)} only in "
                         f"{names[0]} (e.g. {only_a[:3]}), {len(only_b)} only in {names[1]} (e.g. {only_b[:3]})")
    if not np.array_equal(a.labels, b.labels):
        bad = [v for v, x, y in zip(a.video_ids, a.labels, b.labels) if x != y]
        raise UserError(f"{names[0]} and {names[1]} disagree on the labels of {len(bad)} videos, e.g. {bad[:3]}")
