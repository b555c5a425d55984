"""``twostream check SRC``: decode every video as extraction would, without computing flow, and list the
ones extraction would refuse (unreadable, truncated, empty, a single frame, odd geometry), with reasons.
The checks are extraction's own (``video.iter_frames``): what passes here, extract takes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from .extract import VideoResult, run_all
from .video import SHORT_SIDE, VideoError, iter_frames


def check_video(video_id: str, path: str | Path, short_side: int = SHORT_SIDE,
                accept_truncated: bool = False) -> VideoResult:
    """Decode every frame of one video; its failure, named, or ok with its frame count."""
    start = time.perf_counter()
    result = VideoResult(video_id, str(path), "ok")
    try:
        info, frames = iter_frames(path, short_side, accept_truncated)
        result.frames = sum(1 for _ in frames)
        if result.frames < 2:
            raise VideoError(f"{path}: {result.frames} frame(s); flow needs at least 2")
    except (ValueError, OSError) as exc:
        result.status, result.reason = "failed", str(exc)
    except Exception as exc:  # anything else is still this video's failure
        result.status, result.reason = "failed", f"{type(exc).__name__}: {exc}"
    result.seconds = round(time.perf_counter() - start, 3)
    return result


def _check_one(job: tuple) -> VideoResult:
    return check_video(*job)


def check_all(videos: Sequence[tuple[str, Path]], short_side: int = SHORT_SIDE, accept_truncated: bool = False,
              workers: int = 1, progress: bool = True) -> list[VideoResult]:
    """``check_video`` for every (id, path), in ``workers`` processes; results in input order."""
    jobs = [(vid, path, short_side, accept_truncated) for vid, path in videos]
    return run_all(jobs, workers, _check_one, progress)
