"""Resumable, sharded, parallel preprocessing: videos -> per-video cache units (RGB + flow)."""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from .cache import UnitWriter, read_manifest, remove_stale, unit_dir, verify_unit
from .errors import UserError
from .flow import DEFAULT_METHOD, build_flow, iter_flow
from .flow.base import FlowEstimator
from .flow.codec import BOUND, QUALITY, FlowCodec
from .io import atomic_write_text
from .record import ExtractionRecord
from .video import SHORT_SIDE, DecodedFrames, VideoError, check_file, check_geometry, iter_frames, output_size

# RGB frames' JPEG quality. 60, not 95: on UCF-9 the spatial stream scored no lower at 60 than at 95 (within
# the run-to-run spread of repeated trainings; README, "RGB JPEG quality") while an RGB frame takes 2.8x
# fewer bytes at 340x256 (9.9 against 27.6 KB), which brings RGB + flow under 20 KB per frame.
RGB_QUALITY = 60


@dataclass(frozen=True)
class ExtractOptions:
    """What a user asks of an extraction; ``record()`` resolves it into what a unit records."""

    flow_method: str = DEFAULT_METHOD
    flow_params: dict[str, Any] = field(default_factory=dict)  # constructor keywords of the estimator
    short_side: int = SHORT_SIDE
    bidirectional: bool = False
    bound: float = BOUND
    flow_quality: int = QUALITY
    rgb_quality: int = RGB_QUALITY
    accept_truncated: bool = False  # keep the frames of a file shorter than its container says (recorded)
    verify: bool = True  # a re-run checks every JPEG of a complete unit against its checksum

    def __post_init__(self) -> None:
        if self.short_side < 0:
            raise UserError(f"short side must be >= 0 (0 keeps the size), got {self.short_side}")
        if not 1 <= self.rgb_quality <= 100:
            raise UserError(f"RGB JPEG quality must be 1..100, got {self.rgb_quality}")
        FlowCodec(self.bound, self.flow_quality)  # checks them

    def record(self) -> ExtractionRecord:
        """What a unit made with these options records, and must match to be reused by a re-run."""
        flow = cached_estimator(self)  # the process's cached estimator: built once, not per call
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


_ESTIMATORS: dict[str, FlowEstimator] = {}


def cached_estimator(options: ExtractOptions) -> FlowEstimator:
    """The estimator of ``options``, built once per process."""
    key = json.dumps([options.flow_method, options.flow_params], sort_keys=True)
    if key not in _ESTIMATORS:  # one per process: DIS/TV-L1 objects hold buffers worth reusing
        _ESTIMATORS[key] = build_flow(options.flow_method, **options.flow_params)
    return _ESTIMATORS[key]


def source_fingerprint(path: str | Path) -> dict[str, Any]:
    """Size, modification time and a SHA-256 of the first and last MiB: enough to see a replaced source
    without reading it whole."""
    path = Path(path)
    st = path.stat()
    h = hashlib.sha256(str(st.st_size).encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        if st.st_size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read())
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "head_tail_sha256": h.hexdigest()}


def source_changed(recorded: dict[str, Any] | None, path: str | Path) -> bool:
    """Whether the source differs from the one a unit recorded (units made before fingerprints: no)."""
    if not recorded:
        return False
    st = Path(path).stat()
    if st.st_size == recorded.get("size") and st.st_mtime_ns == recorded.get("mtime_ns"):
        return False  # the cheap test first: no read
    return source_fingerprint(path)["head_tail_sha256"] != recorded.get("head_tail_sha256")


def _unit_state(out: str | Path, video_id: str, record: ExtractionRecord, path: str | Path,
                verify: bool) -> tuple[dict | None, str]:
    """(manifest, "") for a unit a re-run can keep; (None, why) for one to make again. A unit made with
    other settings is an error (``--overwrite`` replaces it)."""
    try:
        manifest = read_manifest(out, video_id)
        have = ExtractionRecord.from_manifest(manifest)
    except ValueError as exc:
        return None, f"incomplete or invalid ({exc})"
    diff = record.differences(have)
    if diff:
        raise UserError(f"cached with other settings ({', '.join(diff)}); use --overwrite")
    if source_changed(manifest.get("source_fingerprint"), path):
        return None, "its source changed"
    problems = verify_unit(out, video_id) if verify else []
    if problems:
        return None, f"corrupt ({problems[0]}{f' and {len(problems) - 1} more' if len(problems) > 1 else ''})"
    return manifest, ""


def extract_video(video_id: str, path: str | Path, out: str | Path, options: ExtractOptions,
                  overwrite: bool = False) -> VideoResult:
    """Decode, rescale, compute flow, encode and write one unit. Never raises for a bad video, nor for
    anything else that goes wrong with this one video: the failure is returned with its reason."""
    start = time.perf_counter()
    result = VideoResult(video_id, str(path), "ok")
    try:
        record = options.record()
        if not keep_or_clear(result, out, record, options, overwrite):
            frames, describe = open_source(path, options)
            result.frames = write_unit(out, video_id, frames, record, str(path), describe, cpu_flows(options))
    except Exception as exc:  # never the run's failure: this video's, with its reason
        result.status, result.reason = "failed", failure_reason(exc)
    result.seconds = round(time.perf_counter() - start, 3)
    return result


def failure_reason(exc: Exception) -> str:
    """What a report says of a video's failure: bad input (UserError, VideoError) and file system errors
    speak for themselves; anything else is named by its type."""
    return str(exc) if isinstance(exc, (ValueError, OSError)) else f"{type(exc).__name__}: {exc}"


def keep_or_clear(result: VideoResult, out: str | Path, record: ExtractionRecord, options: ExtractOptions,
                  overwrite: bool) -> bool:
    """True when ``result``'s unit is complete and kept (``result`` then says skipped); else the unit is
    to be made (``result.reason`` says why it is made again) and a killed run's temporaries are gone."""
    check_file(result.source)  # before its fingerprint is read
    if not overwrite and unit_dir(out, result.video_id).exists():
        manifest, why = _unit_state(out, result.video_id, record, result.source, options.verify)
        if manifest is not None:
            remove_stale(out, result.video_id)
            result.status, result.frames = "skipped", manifest["num_frames"]
            return True
        result.reason = f"made again: {why}"
    remove_stale(out, result.video_id)
    return False


def open_source(path: str | Path, options: ExtractOptions) -> tuple[DecodedFrames, Callable[[int], dict]]:
    """The frames of ``path`` at the options' size, and ``describe(frame count)``: the manifest's source
    fields (call it once the frames are decoded: it says whether the file was truncated)."""
    fingerprint = source_fingerprint(path)
    info, frames = iter_frames(path, options.short_side, options.accept_truncated)
    return frames, lambda n: {
        "source": str(path), "source_fingerprint": fingerprint, "fps": info.fps, "codec_name": info.codec,
        "source_width": info.source_width, "source_height": info.source_height, "rotation": info.rotation,
        "declared_frames": info.declared_frames, "truncated": frames.truncated}


Flows = Callable[[Iterable[np.ndarray]], Iterable[tuple[np.ndarray, np.ndarray | None]]]


def cpu_flows(options: ExtractOptions) -> Flows:
    """Flow as the frames stream past, one pair at a time with this process's estimator."""
    return lambda frames: iter_flow(frames, cached_estimator(options), options.bidirectional)


def write_unit(out: str | Path, video_id: str, frames: Iterable[np.ndarray], record: ExtractionRecord, name: str,
               info: Callable[[int], dict[str, Any]], flows: Flows) -> int:
    """Write ``frames`` (RGB ``uint8[H, W, 3]``, already at their size) and their fields
    ``flows(frames)`` (forward, backward or None) as one unit, with ``info(frame count)`` in its
    manifest; returns the frame count. ``name`` names the source in errors."""
    with UnitWriter(out, video_id, record) as writer:

        def tee():  # write every frame as the flow stream consumes it
            for frame in frames:
                writer.add_frame(frame)
                yield frame

        for fwd, bwd in flows(tee()):
            writer.add_flow(fwd)
            if bwd is not None:
                writer.add_back_flow(bwd)
        n = len(writer.packs["rgb"].offsets) - 1
        if n < 2:
            raise VideoError(f"{name}: {n} frame(s); flow needs at least 2")
        writer.commit(info(n))
    return n


def extract_frames(frames: np.ndarray, out: str | Path, options: ExtractOptions, video_id: str = "clip",
                   fps: float = 0.0) -> int:
    """One unit from frames in memory, ``uint8[T, H, W, 3]`` RGB, rescaled (bilinear) as extract rescales
    decoded video; returns the frame count."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise UserError(f"frames must be uint8[T, H, W, 3] RGB, got {frames.dtype}{list(frames.shape)}")
    width, height = output_size(frames.shape[2], frames.shape[1], options.short_side)
    check_geometry("frames", width, height)
    resized = (f if f.shape[:2] == (height, width) else cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR)
               for f in frames)
    return write_unit(out, video_id, resized, options.record(), "frames", lambda n: {
        "source": "<frames in memory>", "fps": fps, "source_width": frames.shape[2], "source_height": frames.shape[1]},
        cpu_flows(options))


def _worker_init(parent: int) -> None:
    cv2.setNumThreads(1)  # one process per core does better than threads fighting over the cores
    _exit_with_parent(parent)


def _exit_with_parent(parent: int) -> None:
    """A worker must not outlive its parent (a kill -9 of ``twostream extract`` would leave it idle
    forever): Linux kills it with its parent; elsewhere a thread watches the parent's pid."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        if libc.prctl(1, signal.SIGKILL) == 0:  # PR_SET_PDEATHSIG
            if os.getppid() != parent:  # the parent died before the call
                os._exit(1)
            return
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _run_one(args: tuple) -> VideoResult:
    return extract_video(*args)


def worker_pool(n: int) -> ProcessPoolExecutor:
    """``n`` worker processes that die with this one, one OpenCV thread each."""
    # spawn, not fork: OpenCV's and FFmpeg's thread pools do not survive a fork safely
    return ProcessPoolExecutor(n, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                               initargs=(os.getpid(),))


def run_pool(jobs: list[tuple], workers: int, done, run=_run_one) -> None:
    """Run jobs in worker processes, at most ``workers`` at a time. A worker that dies (a decoder crash
    on a bad file) breaks the pool: the jobs that were running are then run again one by one, so the
    crash is pinned on its own video (reported as failed) and the run goes on with a new pool."""

    queue, suspects = list(reversed(jobs)), []
    while queue or suspects:
        if suspects:
            job = suspects.pop()
            with worker_pool(1) as alone:
                try:
                    done(alone.submit(run, job).result())
                except BrokenProcessPool:
                    done(VideoResult(job[0], str(job[1]), "failed", "the worker process crashed on it"))
            continue
        with worker_pool(workers) as executor:
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
    check_workers(workers)
    options.record()  # fail now, not once per video, on a bad method or parameter
    make_output(out)
    return run_all([(vid, path, out, options, overwrite) for vid, path in videos], workers, _run_one, progress)


def check_workers(workers: int) -> None:
    if workers < 1:
        raise UserError(f"workers must be >= 1, got {workers}")


def make_output(out: str | Path) -> None:
    """The cache folder, made if missing; a file in its place is an error."""
    if Path(out).exists() and not Path(out).is_dir():
        raise UserError(f"{out}: the output is a file, not a folder")
    Path(out).mkdir(parents=True, exist_ok=True)


class Tally:
    """Results by video id as they come, behind a progress bar with frames/s and failures."""

    def __init__(self, total: int, progress: bool) -> None:
        self.results: dict[str, VideoResult] = {}
        self.bar = tqdm(total=total, unit="video", disable=not progress, dynamic_ncols=True)
        self.frames, self.start = 0, time.perf_counter()

    def done(self, r: VideoResult) -> None:
        self.results[r.video_id] = r
        self.frames += r.frames if r.status == "ok" else 0
        self.bar.set_postfix(fps=f"{self.frames / max(time.perf_counter() - self.start, 1e-9):.0f}",
                             failed=sum(x.status == "failed" for x in self.results.values()))
        self.bar.update()

    def in_order(self, ids: Iterable[str]) -> list[VideoResult]:
        return [self.results[i] for i in ids if i in self.results]


def run_all(jobs: list[tuple], workers: int, run, progress: bool = True) -> list[VideoResult]:
    """``run(job)`` for every job (``job[0]`` is the video id) in ``workers`` processes, a progress bar
    with frames/s and failures; results in job order. Shared by extract and check."""
    check_workers(workers)
    tally = Tally(len(jobs), progress)
    try:
        if workers == 1:
            for job in jobs:
                tally.done(run(job))
        else:
            run_pool(jobs, workers, tally.done, run)
    finally:
        tally.bar.close()
    return tally.in_order(job[0] for job in jobs)


def write_report(results: Sequence[VideoResult], path: str | Path,
                 not_videos: Sequence[tuple[str, str]] = ()) -> None:
    """JSON report: a summary and, per video, status, reason, frames and seconds; and the paths named
    like videos that are not (a folder, a dangling link, a link loop), with why."""
    summary = {s: sum(r.status == s for r in results) for s in ("ok", "skipped", "failed")}
    summary["frames"] = sum(r.frames for r in results if r.status == "ok")
    summary["seconds"] = round(sum(r.seconds for r in results), 3)
    summary["not_videos"] = len(not_videos)
    atomic_write_text(path, json.dumps({"summary": summary, "videos": [asdict(r) for r in results],
                                        "not_videos": [{"path": p, "reason": why} for p, why in not_videos]},
                                       indent=1))
