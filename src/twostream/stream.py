"""Live prediction (``Recognizer.stream``, ``twostream predict RUN... --stream SOURCE``).

A reader thread decodes the source (a video file, a camera such as ``/dev/video0``, or a URL PyAV can
open) into a bounded buffer: when the models are slower than the source, the oldest waiting frames are
dropped and counted, never queued without bound. The main loop takes frames in order, resizes them as the
runs' training videos were extracted, computes one flow field per new frame with the runs' own flow method
(through the same JPEG codec, so the fields are quantised as in training), keeps the last frames and
fields (``RollingVideo``), and every ``every`` frames scores the newest position of each run with the test
protocol's ten crops: the spatial stream the newest frame, the temporal stream the newest stack of L fields.
Latency is measured from the moment a frame left the decoder to the label that includes it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from .cache import FlowPixels
from .data.datasets import TestClips
from .data.inputs import make_reader
from .errors import UserError
from .evaluate import video_scores
from .extract import ExtractOptions
from .flow import build_flow
from .video import VideoError, VideoWriter, output_size


def open_source(source: str) -> av.container.InputContainer:
    """A camera device (``/dev/videoN``, through video4linux), a URL or a file; a clear error if none opens."""
    try:
        if source.startswith("/dev/video"):
            return av.open(source, format="v4l2")
        return av.open(source)
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(f"{source}: cannot open as a video stream ({exc})") from exc


class LiveSource:
    """Frames of ``source`` decoded by a thread into a buffer of at most ``buffer`` frames. A live source
    (a camera, a URL, or a file played at its frame rate: ``pace``) does not wait: when the buffer is full
    its oldest frame is dropped (``dropped``). A file read unpaced waits for room instead: nothing is lost."""

    def __init__(self, source: str, buffer: int = 8, pace: bool = True, max_frames: int = 0) -> None:
        self.source, self.dropped, self.read = source, 0, 0
        self._container = open_source(source)
        if not self._container.streams.video:
            self._container.close()
            raise VideoError(f"{source}: no video stream")
        stream = self._container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self.fps = float(rate) if rate else 25.0
        camera = source.startswith("/dev/video")
        self._pace = pace and not camera  # a camera paces itself
        self._wait = not pace and not camera and Path(source).is_file()  # no clock to keep up with
        self._max, self._buffer = max_frames, deque(maxlen=buffer)
        self._ready, self._done, self.error = threading.Condition(), False, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start = time.perf_counter()
        try:
            for frame in self._container.decode(video=0):
                if self._stop.is_set() or (self._max and self.read >= self._max):
                    break
                if self._pace:  # a file played live: frame n is there at n / fps
                    time.sleep(max(0.0, start + self.read / self.fps - time.perf_counter()))
                rgb = frame.to_ndarray(format="rgb24")
                with self._ready:
                    while self._wait and len(self._buffer) == self._buffer.maxlen and not self._stop.is_set():
                        self._ready.wait(0.1)
                    if len(self._buffer) == self._buffer.maxlen:
                        self.dropped += 1  # the deque drops the oldest on append
                    self._buffer.append((self.read, time.perf_counter(), rgb))
                    self.read += 1
                    self._ready.notify()
        except av.error.FFmpegError as exc:
            self.error = VideoError(f"{self.source}: decoding failed after {self.read} frames ({exc})")
        finally:
            self._container.close()
            with self._ready:
                self._done = True
                self._ready.notify()

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        """(frame index in the source, arrival time, ``uint8[H, W, 3]``) in order, skipping dropped ones."""
        while True:
            with self._ready:
                while not self._buffer and not self._done:
                    self._ready.wait()
                if not self._buffer:
                    break
                item = self._buffer.popleft()
                self._ready.notify()  # room for a waiting reader
            yield item
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class RollingVideo(FlowPixels):
    """The last ``keep`` frames and flow fields of a live clip, indexed from its start as a ``CachedVideo``
    is (``frame(t)``, ``field_codes(t)``, ``flow(t)``, ``back_flow(t)``): the stream readers read it unchanged."""

    def __init__(self, options: ExtractOptions, keep: int) -> None:
        self.options, self.keep = options, keep
        self.estimator = build_flow(options.flow_method, **options.flow_params)
        self.codec = options.record().codec
        self._frames, self._fields, self._back = deque(maxlen=keep), deque(maxlen=keep), deque(maxlen=keep)
        self._grey, self.num_frames, self._size = None, 0, None

    @property
    def num_flows(self) -> int:
        return max(0, self.num_frames - 1)

    def add(self, rgb: np.ndarray) -> np.ndarray:
        """Append a source frame (resized here as extraction resizes); returns the resized frame."""
        if self._size is None:
            self._size = output_size(rgb.shape[1], rgb.shape[0], self.options.short_side)
        if (rgb.shape[1], rgb.shape[0]) != self._size:
            rgb = cv2.resize(rgb, self._size, interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if self._grey is not None:  # through the codec: the fields the model saw in training were quantised
            self._fields.append(self.codec.decode_codes(*self.codec.encode(self.estimator(self._grey, grey))))
            if self.options.bidirectional:
                self._back.append(self.codec.decode_codes(*self.codec.encode(self.estimator(grey, self._grey))))
        self._frames.append(rgb)
        self._grey, self.num_frames = grey, self.num_frames + 1
        return rgb

    def _get(self, ring: deque, t: int, total: int, what: str) -> np.ndarray:
        if not total - len(ring) <= t < total:
            raise IndexError(f"live {what} {t} is no longer kept (the last {len(ring)} of {total})")
        return ring[t - (total - len(ring))]

    def frame(self, t: int) -> np.ndarray:
        return self._get(self._frames, t, self.num_frames, "frame")

    def field_codes(self, t: int, backward: bool = False) -> np.ndarray:
        return self._get(self._back if backward else self._fields, t, self.num_flows,
                         "backward flow" if backward else "flow")


@dataclass
class StreamUpdate:
    """The state after one processed frame: the current fused prediction (None until every run has
    enough frames), whether it was made on this frame, and its latency."""

    frame: int  # index in the source
    time: float  # seconds into the source
    fps: float  # the source's frame rate
    classes: list[str]
    scores: np.ndarray | None  # float[K], fused; the last one made
    scored: bool  # scores were made on this frame
    latency: float | None  # seconds from this frame leaving the decoder to its label (when scored)
    dropped: int  # frames dropped so far
    image: np.ndarray  # the frame as the models saw it, uint8[H, W, 3]

    def top(self, k: int = 1) -> list[tuple[str, float]]:
        if self.scores is None:
            return []
        return [(self.classes[i], float(self.scores[i])) for i in np.argsort(-self.scores)[:k]]


def stream_predictions(rec, source: str, every: int = 5, pace: bool = True, max_frames: int = 0,
                       buffer: int = 8) -> Iterator[StreamUpdate]:
    """``Recognizer.stream``: one ``StreamUpdate`` per processed frame of ``source``."""
    if every < 1:
        raise UserError(f"every must be >= 1 frame, got {every}")
    # one rolling video per distinct extraction (a spatial and a temporal run share one), keeping enough
    # frames and fields for the longest stack read from it
    keys = [json.dumps(o.record().to_manifest(), sort_keys=True) for o in rec.extraction]
    keep: dict[str, int] = {}
    for key, run in zip(keys, rec.runs):
        keep[key] = max(keep.get(key, 0), run.config.input.length + 1)
    videos = {key: RollingVideo(o, keep[key]) for key, o in zip(keys, rec.extraction)}
    scorers = []
    for key, run, task in zip(keys, rec.runs, rec.tasks):
        reader = make_reader(run.config.input, run.convention)
        scorers.append((run, task, videos[key], reader, _Crops(run.config.input, reader)))
    # a run is ready once its rolling video holds a whole input: one frame, or L + 1 frames for L fields
    need = max(run.config.input.length + 1 if run.config.input.stream == "temporal" else 1 for run in rec.runs)
    live = LiveSource(source, buffer, pace, max_frames)
    scores, ready_for = None, 0
    try:
        for index, arrived, rgb in live:
            image = [v.add(rgb) for v in videos.values()][0]
            ready = all(v.num_frames >= need for v in videos.values())
            # the first label as soon as every run is ready, then one every `every` processed frames
            scored = ready and ready_for % every == 0
            ready_for += ready
            latency = None
            if scored:
                per_run = [video_scores(run.model, crops, torch_input(reader, v), task.name, dtype=run.dtype).numpy()
                           for run, task, v, reader, crops in scorers]
                scores = np.mean(per_run, axis=0)
                latency = time.perf_counter() - arrived
            yield StreamUpdate(index, index / live.fps, live.fps, rec.classes, scores, scored, latency, live.dropped,
                               image)
    finally:
        live.close()


class _Crops:
    """What ``video_scores`` needs of a ``TestClips``: its ten crops of an input (the same function)."""

    crops = TestClips.crops

    def __init__(self, options, reader) -> None:
        self.options, self.reader = options, reader


def torch_input(reader, video: RollingVideo) -> torch.Tensor:
    """The newest position of ``video`` as the reader makes it, ``Tensor[1, C, H, W]``."""
    return torch.from_numpy(reader.load(video, reader.num_positions(video) - 1, None).full()[None])


def annotate(image: np.ndarray, update: StreamUpdate) -> np.ndarray:
    """The frame with the current top class and its probability drawn in the top-left corner."""
    out = np.ascontiguousarray(image).copy()
    top = update.top(1)
    text = f"{top[0][0]} {top[0][1]:.2f}" if top else "..."
    scale = max(0.4, out.shape[0] / 400)
    cv2.putText(out, text, (6, int(22 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (6, int(22 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


@dataclass
class StreamSummary:
    frames: int  # processed
    dropped: int
    labels: int
    seconds: float
    latencies: list[float]

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def latency(self, q: float) -> float:
        return float(np.quantile(self.latencies, q)) if self.latencies else float("nan")


def run_stream(rec, source: str, every: int = 5, out: str | Path | None = None, max_frames: int = 0,
               json_lines: bool = False, pace: bool = True, echo=print) -> StreamSummary:
    """Print the top class each time it is made (JSON lines with ``json_lines``), optionally write the
    annotated video to ``out``; returns the run's figures (frames/s, drops, latencies)."""
    writer, start, frames, labels, latencies, dropped = None, time.perf_counter(), 0, 0, [], 0
    try:
        for u in stream_predictions(rec, source, every, pace, max_frames):
            frames, dropped = frames + 1, u.dropped
            if out is not None:
                writer = writer or VideoWriter(out, fps=round(u.fps, 3))
                writer.write(annotate(u.image, u))
            if u.scored:
                labels += 1
                latencies.append(u.latency)
                name, p = u.top(1)[0]
                if json_lines:
                    echo(json.dumps({"frame": u.frame, "time": round(u.time, 3), "class": name, "score": round(p, 5),
                                     "latency_ms": round(u.latency * 1000, 1), "dropped": u.dropped}))
                else:
                    echo(f"{u.time:7.2f} s  {name:<30} {p:.3f}  ({u.latency * 1000:.0f} ms)")
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
    return StreamSummary(frames, dropped, labels, time.perf_counter() - start, latencies)
