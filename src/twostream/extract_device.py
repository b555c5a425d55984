"""Extraction with a PyTorch flow on a device (``extract --flow brox --device cuda --batch-pairs 64``).

CPU worker processes decode and rescale the videos, and encode and write the units; this process runs the
flow on the device in batches of frame pairs, which may come from several videos (short videos fill a
batch together). Units, resume, the settings check and the report are extract's: a unit made here is
the unit ``extract`` makes with the same estimator one pair at a time, within the batch's float rounding.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .devices import pick_device
from .errors import UserError
from .extract import (ExtractOptions, Flows, Tally, VideoResult, cached_estimator, check_workers, failure_reason,
                      keep_or_clear, make_output, open_source, run_pool, worker_pool, write_unit)
from .flow import DEVICE_METHODS, to_gray
from .record import ExtractionRecord

BATCH_PAIRS = 32  # frame pairs per batch: fills a CPU's cores; a GPU wants more (--batch-pairs 64..256)


@dataclass
class Decoded:
    """A video decoded by a worker, waiting for its flow: ``frames`` ``uint8[T, H, W, 3]`` RGB, ``grey``
    ``uint8[T, H, W]``, ``info`` the manifest's source fields; the fields fill in as batches run."""

    result: VideoResult
    frames: np.ndarray
    grey: np.ndarray
    info: dict
    forward: np.ndarray | None = None  # float32[T-1, H, W, 2]
    backward: np.ndarray | None = None
    missing: int = 0  # fields still to compute


class PairBatcher:
    """Frame pairs of the videos added, run through ``estimator.batch`` ``size`` pairs at a time (pairs of
    one frame size per batch; a backward field is one more pair, next to previous)."""

    def __init__(self, estimator, size: int, bidirectional: bool) -> None:
        if size < 1:
            raise UserError(f"batch pairs must be >= 1, got {size}")
        self.estimator, self.size, self.bidirectional = estimator, size, bidirectional
        self.queues: dict[tuple[int, int], deque] = {}  # frame size -> (video, t, backward)

    def add(self, video: Decoded) -> list[Decoded]:
        """Queue ``video``'s pairs and run every full batch; returns the videos now complete (or failed:
        their status says so)."""
        t, h, w = video.grey.shape
        video.forward = np.empty((max(t - 1, 0), h, w, 2), np.float32)
        video.backward = np.empty_like(video.forward) if self.bidirectional else None
        video.missing = len(video.forward) * (2 if self.bidirectional else 1)
        if not video.missing:  # under two frames: nothing to compute; writing names the problem
            return [video]
        queue = self.queues.setdefault((h, w), deque())
        for i in range(t - 1):
            queue.append((video, i, False))
            if self.bidirectional:
                queue.append((video, i, True))
        complete = []
        while len(queue) >= self.size:
            complete += self._run(queue)
        return complete

    def flush(self) -> list[Decoded]:
        """Run what is left in partial batches; returns the videos now complete."""
        complete = []
        for queue in self.queues.values():
            while queue:
                complete += self._run(queue)
        return complete

    def _run(self, queue: deque) -> list[Decoded]:
        items = [queue.popleft() for _ in range(min(self.size, len(queue)))]
        a = np.stack([v.grey[i + back] for v, i, back in items])  # the field maps a to b
        b = np.stack([v.grey[i + 1 - back] for v, i, back in items])
        try:
            fields = self.estimator.batch(torch.from_numpy(a), torch.from_numpy(b))
            fields = fields.permute(0, 2, 3, 1).cpu().numpy()
        except Exception as exc:  # e.g. out of device memory: the failure of the videos in this batch only
            return self._fail({id(v): v for v, _, _ in items}.values(), queue, failure_reason(exc))
        complete = []
        for (video, i, back), field in zip(items, fields):
            (video.backward if back else video.forward)[i] = field
            video.missing -= 1
            if not video.missing:
                complete.append(video)
        return complete

    def _fail(self, videos: Iterable[Decoded], queue: deque, why: str) -> list[Decoded]:
        videos = list(videos)
        for video in videos:
            video.result.status, video.result.reason = "failed", f"flow on {self.estimator.device}: {why}"
        failed = {id(v) for v in videos}
        kept = [item for item in queue if id(item[0]) not in failed]  # their other pairs are not computed
        queue.clear()
        queue.extend(kept)
        return videos


def _decode(job: tuple) -> VideoResult | Decoded:
    """In a worker: a kept unit's result, a failure, or the whole video decoded for the device."""
    video_id, path, out, options, record, overwrite = job
    start = time.perf_counter()
    result = VideoResult(video_id, str(path), "ok")
    try:
        if keep_or_clear(result, out, record, options, overwrite):
            return result
        frames, describe = open_source(path, options)
        rgb = np.stack(list(frames))
        return Decoded(result, rgb, np.stack([to_gray(f) for f in rgb]), describe(len(rgb)))
    except Exception as exc:  # never the run's failure: this video's, with its reason
        result.status, result.reason = "failed", failure_reason(exc)
        return result
    finally:
        result.seconds = round(time.perf_counter() - start, 3)


def _given(video: Decoded) -> Flows:
    def flows(frames: Iterable[np.ndarray]):
        for _ in frames:  # every frame goes through the writer first
            pass
        backward = video.backward if video.backward is not None else [None] * len(video.forward)
        return zip(video.forward, backward)

    return flows


def _write(out: str | Path, video: Decoded, record: ExtractionRecord) -> VideoResult:
    """In a worker: JPEG-encode and write ``video``'s unit, its fields computed."""
    start, result = time.perf_counter(), video.result
    try:
        result.frames = write_unit(out, result.video_id, iter(video.frames), record, result.source,
                                   lambda n: video.info, _given(video))
    except Exception as exc:
        result.status, result.reason = "failed", failure_reason(exc)
    result.seconds = round(result.seconds + time.perf_counter() - start, 3)
    return result


def extract_on_device(videos: Sequence[tuple[str, Path]], out: str | Path, options: ExtractOptions, device: str,
                      batch_pairs: int = BATCH_PAIRS, workers: int = 1, overwrite: bool = False,
                      progress: bool = True) -> list[VideoResult]:
    """``extract_all`` with the flow on ``device`` in batches of ``batch_pairs`` frame pairs; ``workers``
    processes decode and as many encode and write. ``device``: one of ``devices.DEVICES``. Results in
    input order."""
    check_workers(workers)
    if options.flow_method not in DEVICE_METHODS:
        raise UserError(f"--device needs a PyTorch flow ({', '.join(DEVICE_METHODS)}), got {options.flow_method!r}")
    # one process per GPU under torchrun (with --shard auto): its local rank picks the GPU
    where = pick_device(device, int(os.environ.get("LOCAL_RANK", "0")))
    # the device is where the flow runs, not what it computes: the record is the CPU path's
    options = replace(options, flow_params=options.flow_params | {"device": str(where)})
    batcher = PairBatcher(cached_estimator(options), batch_pairs, options.bidirectional)
    record = options.record()
    make_output(out)
    tally = Tally(len(videos), progress)
    writing: dict[Future, tuple[VideoResult, ProcessPoolExecutor]] = {}
    writers = worker_pool(workers)

    def collect(block: bool) -> None:
        nonlocal writers
        finished, _ = wait(writing, return_when=FIRST_COMPLETED) if block else ([f for f in writing if f.done()], 0)
        for future in finished:
            result, pool = writing.pop(future)
            try:
                result = future.result()
            except BrokenProcessPool:  # a writer died: the videos of its pool fail (a re-run makes them)
                result.status, result.reason = "failed", "the worker process writing it crashed"
                if pool is writers:  # the first of that pool's failures: a new pool goes on
                    writers.shutdown(cancel_futures=True)
                    writers = worker_pool(workers)
            tally.done(result)

    def write(complete: list[Decoded]) -> None:
        for video in complete:
            if video.result.status == "failed":
                tally.done(video.result)
                continue
            while len(writing) >= 2 * workers:  # bounded: each waiting video holds its frames and fields
                collect(block=True)
            writing[writers.submit(_write, out, video, record)] = video.result, writers
        collect(block=False)

    def decoded(item: VideoResult | Decoded) -> None:
        if isinstance(item, VideoResult):
            tally.done(item)
        else:
            write(batcher.add(item))

    try:
        run_pool([(vid, path, out, options, record, overwrite) for vid, path in videos], workers, decoded,
                  run=_decode)
        write(batcher.flush())
        while writing:
            collect(block=True)
    finally:
        writers.shutdown(cancel_futures=True)
        tally.bar.close()
    return tally.in_order(vid for vid, _ in videos)
