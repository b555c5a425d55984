"""Resumable, sharded, parallel preprocessing: videos -> per-video cache units (RGB + flow)."""

from __future__ import annotations

import json
import multiprocessing as mp
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
from tqdm import tqdm

from .cache import UnitWriter, read_manifest, remove_stale, unit_dir
from .errors import UserError
from .flow import DEFAULT_METHOD, build_flow, iter_flow
from .flow.base import FlowEstimator
from .flow.codec import BOUND, QUALITY, FlowCodec
from .io import atomic_write_text
from .record import ExtractionRecord
from .video import SHORT_SIDE, VIDEO_EXTENSIONS, VideoError, iter_frames


@dataclass(frozen=True)
class ExtractOptions:
    """What a user asks of an extraction; ``record()`` resolves it into what a unit records."""

    flow_method: str = DEFAULT_METHOD
    flow_params: dict[str, Any] = field(default_factory=dict)  # constructor keywords of the estimator
    short_side: int = SHORT_SIDE
    bidirectional: bool = False
    bound: float = BOUND
    flow_quality: int = QUALITY
    rgb_quality: int = 95

    def record(self) -> ExtractionRecord:
        """What a unit made with these options records, and must match to be reused by a re-run."""
        flow = _estimator(self)  # the process's cached estimator: built once, not per call
        return ExtractionRecord(flow.name, flow.params(), self.short_side, self.bidirectional,
                                FlowCodec(self.bound, self.flow_quality), self.rgb_quality)

    @classmethod
    def from_record(cls, record: ExtractionRecord) -> ExtractOptions:
        """The options that make units like ``record``'s (e.g. a run's cache, for a new clip)."""
        return cls(flow_method=record.flow_method, flow_params=record.settings(), short_side=record.short_side,
                   bidirectional=record.bidirectional, bound=record.codec.bound, flow_quality=record.codec.quality,
                   rgb_quality=record.rgb_quality)


@dataclass
class VideoResult:
    video_id: str
    source: str
    status: str  # "ok", "skipped" (already complete) or "failed"
    reason: str = ""
    frames: int = 0
    seconds: float = 0.0


def find_videos(src: str | Path) -> list[tuple[str, Path]]:
    """(video id, path) pairs, sorted by id.

    ``src`` is a folder (searched recursively; the id is the path relative to it without extension)
    or a text file with one video path per line (relative paths are relative to the file's folder;
    the id is that relative path without extension, or the file name's stem for paths outside it).
    """
    src = Path(src)
    if src.is_dir():
        paths = [p for p in src.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()
                 and not p.name.startswith(".")]
        pairs = [(p.relative_to(src).with_suffix("").as_posix(), p) for p in paths]
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
    return sorted(pairs)


def parse_shard(text: str) -> tuple[int, int]:
    """"I/N" -> (i, n) with 0 <= i < n."""
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


_ESTIMATORS: dict[str, FlowEstimator] = {}


def _estimator(options: ExtractOptions) -> FlowEstimator:
    key = json.dumps([options.flow_method, options.flow_params], sort_keys=True)
    if key not in _ESTIMATORS:  # one per process: DIS/TV-L1 objects hold buffers worth reusing
        _ESTIMATORS[key] = build_flow(options.flow_method, **options.flow_params)
    return _ESTIMATORS[key]


def extract_video(video_id: str, path: str | Path, out: str | Path, options: ExtractOptions,
                  overwrite: bool = False) -> VideoResult:
    """Decode, rescale, compute flow, encode and write one unit. Never raises for a bad video:
    the failure is returned with its reason."""
    start = time.perf_counter()
    result = VideoResult(video_id, str(path), "ok")
    try:
        record = options.record()
        if not overwrite and unit_dir(out, video_id).exists():
            try:
                manifest = read_manifest(out, video_id)
                have = ExtractionRecord.from_manifest(manifest)
            except ValueError:
                manifest = None  # incomplete or corrupt: extract again
            if manifest is not None:
                diff = record.differences(have)
                if diff:
                    raise UserError(f"cached with other settings ({', '.join(diff)}); use --overwrite")
                result.status, result.frames = "skipped", manifest["num_frames"]
                return result
        remove_stale(out, video_id)
        info, frames = iter_frames(path, options.short_side)
        estimator = _estimator(options)
        with UnitWriter(out, video_id, record) as writer:

            def tee():  # write every frame as the flow stream consumes it
                for frame in frames:
                    writer.add_frame(frame)
                    yield frame

            for fwd, bwd in iter_flow(tee(), estimator, options.bidirectional):
                writer.add_flow(fwd)
                if bwd is not None:
                    writer.add_back_flow(bwd)
            n = len(writer.packs["rgb"].offsets) - 1
            if n < 2:
                raise VideoError(f"{path}: {n} frame(s); flow needs at least 2")
            writer.commit({"source": str(path), "fps": info.fps, "codec_name": info.codec,
                           "source_width": info.source_width, "source_height": info.source_height})
            result.frames = n
    except (VideoError, ValueError, OSError) as exc:
        result.status, result.reason = "failed", str(exc)
    result.seconds = round(time.perf_counter() - start, 3)
    return result


def _worker_init() -> None:
    cv2.setNumThreads(1)  # one process per core does better than threads fighting over the cores


def _run_one(args: tuple) -> VideoResult:
    return extract_video(*args)


def _run_pool(jobs: list[tuple], workers: int, done, run=_run_one) -> None:
    """Run jobs in worker processes, at most ``workers`` at a time. A worker that dies (a decoder crash
    on a bad file) breaks the pool: the jobs that were running are then run again one by one, so the
    crash is pinned on its own video (reported as failed) and the run goes on with a new pool."""

    def pool(n: int) -> ProcessPoolExecutor:
        # spawn, not fork: OpenCV's and FFmpeg's thread pools do not survive a fork safely
        return ProcessPoolExecutor(n, mp_context=mp.get_context("spawn"), initializer=_worker_init)

    queue, suspects = list(reversed(jobs)), []
    while queue or suspects:
        if suspects:
            job = suspects.pop()
            with pool(1) as alone:
                try:
                    done(alone.submit(run, job).result())
                except BrokenProcessPool:
                    done(VideoResult(job[0], str(job[1]), "failed", "the worker process crashed on it"))
            continue
        with pool(workers) as executor:
            running: dict = {}
            while queue or running:
                while queue and len(running) < workers:
                    job = queue.pop()
                    running[executor.submit(run, job)] = job
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                try:
                    for future in finished:
                        done(future.result())
                        del running[future]
                except BrokenProcessPool:
                    suspects.extend(running.values())
                    break


def extract_all(videos: Sequence[tuple[str, Path]], out: str | Path, options: ExtractOptions,
                workers: int = 1, overwrite: bool = False, progress: bool = True) -> list[VideoResult]:
    """Extract every video (skipping complete units unless ``overwrite``); results in input order."""
    if workers < 1:
        raise UserError(f"workers must be >= 1, got {workers}")
    options.record()  # fail now, not once per video, on a bad method or parameter
    Path(out).mkdir(parents=True, exist_ok=True)
    jobs = [(vid, path, out, options, overwrite) for vid, path in videos]
    results: dict[str, VideoResult] = {}
    bar = tqdm(total=len(jobs), unit="video", disable=not progress, dynamic_ncols=True)
    frames, start = 0, time.perf_counter()

    def done(r: VideoResult) -> None:
        nonlocal frames
        results[r.video_id] = r
        frames += r.frames if r.status == "ok" else 0
        bar.set_postfix(fps=f"{frames / max(time.perf_counter() - start, 1e-9):.0f}",
                        failed=sum(x.status == "failed" for x in results.values()))
        bar.update()

    try:
        if workers == 1:
            for job in jobs:
                done(_run_one(job))
        else:
            _run_pool(jobs, workers, done)
    finally:
        bar.close()
    return [results[vid] for vid, _ in videos if vid in results]


def write_report(results: Sequence[VideoResult], path: str | Path) -> None:
    """JSON report: a summary and, per video, status, reason, frames and seconds."""
    summary = {s: sum(r.status == s for r in results) for s in ("ok", "skipped", "failed")}
    summary["frames"] = sum(r.frames for r in results if r.status == "ok")
    summary["seconds"] = round(sum(r.seconds for r in results), 3)
    atomic_write_text(path, json.dumps({"summary": summary, "videos": [asdict(r) for r in results]},
                                       indent=1))
