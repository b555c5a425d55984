"""Which videos a run takes: a folder searched recursively or a list file, and the shard of a machine.

What looks like a video but cannot be one (a folder named ``x.mp4``, a dangling link, a link loop) is
kept aside with the reason, for the run's report.
"""

from __future__ import annotations

import errno
import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import UserError
from .video import VIDEO_EXTENSIONS


def scan_videos(src: str | Path) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """((video id, path) pairs sorted by id, [(path, why skipped)]).

    ``src`` is a folder (searched recursively, never following links to folders, so a link loop cannot
    trap it; the id is the path relative to it without extension) or a text file with one video path
    per line (relative paths are relative to the file's folder; the id is that relative path without
    extension, or the file name's stem for paths outside it).
    """
    src = Path(src)
    skipped: list[tuple[str, str]] = []
    if src.is_dir():
        pairs = []
        for folder, dirs, files in os.walk(src, followlinks=False):
            for name in sorted(dirs + files):
                p = Path(folder) / name
                if p.suffix.lower() not in VIDEO_EXTENSIONS or name.startswith("."):
                    continue
                why = _not_a_video_file(p)
                if why:
                    skipped.append((str(p), why))
                else:
                    pairs.append((p.relative_to(src).with_suffix("").as_posix(), p))
    elif src.is_file():
        pairs = []
        for line in src.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            p = Path(line) if Path(line).is_absolute() else src.parent / line
            try:
                vid = p.relative_to(src.parent).with_suffix("").as_posix()
            except ValueError:
                vid = p.stem
            pairs.append((vid, p))
    else:
        raise UserError(f"{src}: neither a folder of videos nor a list file")
    seen: dict[str, Path] = {}
    for vid, p in pairs:
        if vid in seen:
            raise UserError(f"two videos map to the id {vid!r}: {seen[vid]} and {p}")
        seen[vid] = p
    return sorted(pairs), skipped


def _not_a_video_file(p: Path) -> str:
    """Why ``p`` (named like a video) cannot be read as one, or ''."""
    if p.is_symlink():
        try:
            target = p.resolve(strict=True)
        except RuntimeError:  # Python's own loop detection
            return "a link loop"
        except OSError as exc:
            return "a link loop" if exc.errno == errno.ELOOP else "a dangling link"
        if target.is_dir():
            return "a link to a folder"
    if p.is_dir():
        return "a folder, not a file"
    if not p.is_file():
        return "not a regular file"
    return ""


def find_videos(src: str | Path) -> list[tuple[str, Path]]:
    """The (video id, path) pairs of ``scan_videos``, sorted by id."""
    return scan_videos(src)[0]


# the launchers whose processes find their share in the environment: torchrun (one process per GPU,
# several machines), then a Slurm job array (one task per array index)
SHARD_ENV = (("RANK", "WORLD_SIZE"), ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"))


def shard_from_env(env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """(i, n) of this process under torchrun (RANK, WORLD_SIZE) or a Slurm array (SLURM_ARRAY_TASK_ID,
    SLURM_ARRAY_TASK_COUNT; an array that does not start at 0 is offset by SLURM_ARRAY_TASK_MIN)."""
    env = os.environ if env is None else env
    for index, count in SHARD_ENV:
        if index in env and count in env:
            i = int(env[index]) - (int(env.get("SLURM_ARRAY_TASK_MIN", 0)) if index.startswith("SLURM") else 0)
            return parse_shard(f"{i}/{env[count]}")
    raise UserError("--shard auto: neither RANK/WORLD_SIZE (torchrun) nor SLURM_ARRAY_TASK_ID/"
                    "SLURM_ARRAY_TASK_COUNT (a Slurm array) is set; give --shard I/N")


def parse_shard(text: str) -> tuple[int, int]:
    """"I/N" -> (i, n) with 0 <= i < n; "auto" -> this process's share under its launcher (``shard_from_env``)."""
    if text == "auto":
        return shard_from_env()
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UserError(f"shard must look like I/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= i < n:
        raise UserError(f"shard I/N needs 0 <= I < N, got {text!r}")
    return i, n


def shard(videos: Sequence[tuple[str, Path]], index: int, count: int) -> list[tuple[str, Path]]:
    """Shard ``index`` of ``count``: the videos whose id hashes (CRC-32) to it. Deterministic on every
    machine, and a video keeps its shard when others are added to or removed from the list."""
    return [v for v in videos if zlib.crc32(v[0].encode()) % count == index]
