"""Video decoding with PyAV: every frame, in order, as uint8 RGB, rescaled so the short side is fixed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from .errors import UserError

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv")


class VideoError(UserError):
    """A video that cannot be decoded; the message names the file and the reason."""


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int  # after rescaling
    height: int
    fps: float
    codec: str
    source_width: int
    source_height: int
    declared_frames: int | None = None  # what the container says (frame count, or duration x rate)
    rotation: int = 0  # counter-clockwise degrees (0, 90, 180, 270) the frames were turned, as the file says


SHORT_SIDE = 256  # the paper: frames rescaled so that the smallest side is 256
MAX_SIDE = 65_500  # JPEG cannot store a side longer than this
MIN_SIDE = 16  # smaller frames carry no usable flow (DIS refuses below 12 px)


def check_geometry(path: str | Path, width: int, height: int) -> None:
    """Refuse, naming the file, frames (after rescaling) that the cache cannot store or flow cannot use."""
    if max(width, height) > MAX_SIDE:
        raise VideoError(f"{path}: frames would be {width}x{height} after rescaling, over JPEG's {MAX_SIDE} px "
                         "limit (an extreme aspect ratio); not stored")
    if min(width, height) < MIN_SIDE:
        raise VideoError(f"{path}: frames would be {width}x{height}, under {MIN_SIDE} px: too small for optical flow")


def is_truncated(declared: int | None, decoded: int, span: int | None = None) -> bool:
    """Whether decoding ended short of the frames the container declares (beyond rounding: 2 %, at least
    one frame). ``span``: the frames the decoded timestamps cover, first to last; when it reaches the end,
    the missing frames were skipped inside the file (XviD's not-coded frames in AVIs from UCF-101 decode
    to nothing) rather than cut off, and the file is whole."""
    def short(n: int) -> bool:
        return declared is not None and n < declared - max(1, round(0.02 * declared))

    return short(decoded) and (span is None or short(span))


def output_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) after rescaling so that min(width, height) == short_side, aspect kept.

    ``short_side`` None or 0 keeps the source size.
    """
    if width <= 0 or height <= 0:
        raise UserError(f"frame size must be positive, got {width}x{height}")
    if not short_side:
        return width, height
    if short_side < 0:
        raise UserError(f"short_side must be positive, got {short_side}")
    scale = short_side / min(width, height)
    if width <= height:
        return short_side, max(1, round(height * scale))
    return max(1, round(width * scale)), short_side


def check_file(path: str | Path) -> None:
    """Refuse, naming it, a path that is not a regular file (missing, a folder, a dangling link)."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: not a file" if path.exists() else f"{path}: no such file")


def _open(path: str | Path) -> av.container.InputContainer:
    path = Path(path)
    check_file(path)
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise VideoError(f"{path}: not a readable video ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: no video stream")
    return container


def _declared_frames(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                     fps: float) -> int | None:
    if stream.frames:
        return int(stream.frames)
    if stream.duration and stream.time_base and fps:
        return round(float(stream.duration * stream.time_base) * fps)
    if container.duration and fps:
        return round(container.duration / av.time_base * fps)
    return None  # e.g. a raw MPEG-4 stream: nothing to compare with


def iter_frames(path: str | Path, short_side: int | None = SHORT_SIDE, accept_truncated: bool = False
                ) -> tuple[VideoInfo, Iterator[np.ndarray]]:
    """Open ``path`` and return its info and an iterator over frames ``uint8[H, W, 3]`` (RGB).

    Frames come in the decoder's output order, which is presentation order; timestamps are never used
    to seek or drop frames, so files with broken or missing timestamps still yield every frame.
    Raises VideoError (naming the file) when the file cannot be opened or its frames cannot be stored
    (``check_geometry``), and while iterating when the stream is corrupt, holds no frame at all, or ends
    short of the frames its container declares (a truncated file; unless ``accept_truncated``).
    """
    container = _open(path)
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame/slice threads inside FFmpeg: decoding is rarely the bottleneck then
    ctx = stream.codec_context
    src_w, src_h = ctx.width, ctx.height
    decoded = container.decode(stream)
    try:
        if not src_w or not src_h:
            raise VideoError(f"{path}: video stream has no frame size")
        # the first frame carries the display matrix (a phone video filmed upright: -90 or 90 degrees)
        try:
            first = next(decoded, None)
        except av.error.FFmpegError as exc:
            raise VideoError(f"{path}: decoding failed at the first frame ({exc})") from exc
        if first is None:
            raise VideoError(f"{path}: no decodable video frames")
        rotation = int(round(first.rotation or 0)) % 360 // 90 * 90
        turned = rotation in (90, 270)
        width, height = output_size(*((src_h, src_w) if turned else (src_w, src_h)), short_side)
        check_geometry(path, width, height)
    except VideoError:
        container.close()
        raise
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    info = VideoInfo(str(path), width, height, fps, ctx.name, src_w, src_h, _declared_frames(container, stream, fps),
                     rotation)

    def to_rgb(frame: av.VideoFrame) -> np.ndarray:
        # swscale resizes (bilinear) and converts to RGB in one pass, in the stored orientation; then the
        # frame is turned as the display matrix says (counter-clockwise degrees)
        w, h = (height, width) if turned else (width, height)
        rgb = frame.to_ndarray(format="rgb24", width=w, height=h)
        return np.ascontiguousarray(np.rot90(rgb, rotation // 90)) if rotation else rgb

    # timestamps in frames, to tell frames skipped inside the file from a file cut short (is_truncated)
    per_frame = float(stream.time_base) * fps if stream.time_base and fps else None
    return info, DecodedFrames(path, info, first, decoded, container, to_rgb, per_frame, accept_truncated)


class DecodedFrames:
    """The frames of an opened video (``uint8[H, W, 3]`` RGB), decoded as they are iterated (once).

    Afterwards ``count`` is the number decoded and ``truncated`` whether the file ended short of what its
    container declares (raised as a VideoError while iterating unless ``accept_truncated``).
    """

    def __init__(self, path, info: VideoInfo, first: av.VideoFrame, decoded: Iterator[av.VideoFrame],
                 container: av.container.InputContainer, to_rgb: Callable[[av.VideoFrame], np.ndarray],
                 per_frame: float | None, accept_truncated: bool) -> None:
        self.path, self.info, self._first, self._decoded, self._container = path, info, first, decoded, container
        self._to_rgb, self._per_frame, self._accept = to_rgb, per_frame, accept_truncated
        self.count, self.truncated = 0, False

    def _span(self, first_pts: int | None, last_pts: int | None) -> int | None:
        if first_pts is None or last_pts is None or not self._per_frame:
            return None
        return round((last_pts - first_pts) * self._per_frame) + 1

    def __iter__(self) -> Iterator[np.ndarray]:
        first_pts = last_pts = self._first.pts
        try:
            yield self._to_rgb(self._first)
            self.count += 1
            for frame in self._decoded:
                yield self._to_rgb(frame)
                self.count, last_pts = self.count + 1, frame.pts
        except av.error.FFmpegError as exc:
            raise VideoError(f"{self.path}: decoding failed after {self.count} frames ({exc})") from exc
        finally:
            self._container.close()
        declared = self.info.declared_frames
        self.truncated = is_truncated(declared, self.count, self._span(first_pts, last_pts))
        if self.truncated and not self._accept:
            raise VideoError(f"{self.path}: truncated: {self.count} frames decoded of the {declared} its "
                             "container declares (extract --accept-truncated keeps them)")


def read_video(path: str | Path, short_side: int | None = SHORT_SIDE, accept_truncated: bool = False
               ) -> tuple[np.ndarray, VideoInfo]:
    """Decode a whole video: ``uint8[T, H, W, 3]`` RGB frames and its info."""
    info, frames = iter_frames(path, short_side, accept_truncated)
    return np.stack(list(frames)), info


class VideoWriter:
    """Frames ``uint8[H, W, 3]`` RGB appended one at a time to a video file, written under a temporary name
    and renamed on ``close()`` (a killed run leaves no half-written video); the size is the first frame's.
    ``rotation``: a display matrix turning the frames that many degrees counter-clockwise (as phones write)."""

    def __init__(self, path: str | Path, fps: float = 25.0, codec: str = "libx264", crf: int = 12,
                 rotation: int = 0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.stem}.tmp{self.path.suffix}")
        self._container = av.open(str(self._tmp), mode="w")
        options = {"crf": str(crf), "preset": "veryfast"} if codec == "libx264" else {}
        self._stream = self._container.add_stream(codec, rate=round(fps) if float(fps).is_integer() else fps,
                                                  options=options)
        self._codec, self._rotation, self._size = codec, rotation, None

    def write(self, frame: np.ndarray) -> None:
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise UserError(f"frames must be uint8[H, W, 3], got {frame.dtype}{list(frame.shape)}")
        if self._size is None:
            self._size = frame.shape[:2]
            # yuv420p needs even sides; odd ones are cropped by a pixel
            self._stream.height, self._stream.width = (self._size[0] // 2 * 2, self._size[1] // 2 * 2)
            self._stream.pix_fmt = "yuv420p"
            if self._rotation:
                self._stream.set_display_rotation(self._rotation)
            if self._codec != "libx264":
                self._stream.bit_rate = 8_000_000  # near-lossless for the small frames written here
        elif frame.shape[:2] != self._size:
            raise UserError(f"{self.path}: frame of {frame.shape[1]}x{frame.shape[0]} after frames of "
                            f"{self._size[1]}x{self._size[0]}")
        h, w = self._stream.height, self._stream.width
        self._container.mux(self._stream.encode(av.VideoFrame.from_ndarray(
            np.ascontiguousarray(frame[:h, :w]), format="rgb24")))

    def close(self) -> None:
        """Flush, close and rename into place."""
        self._container.mux(self._stream.encode())
        self._container.close()
        self._tmp.replace(self.path)

    def abort(self) -> None:
        """Close and remove the temporary file: nothing is left at the path."""
        self._container.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.abort() if exc_type else self.close()


def write_video(path: str | Path, frames: np.ndarray, fps: float = 25.0, codec: str = "libx264",
                crf: int = 12, rotation: int = 0) -> None:
    """Write ``uint8[T, H, W, 3]`` RGB frames to a video file (used by the synthetic generator and tests);
    ``rotation``: a display matrix turning them that many degrees counter-clockwise (as phones write)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise UserError(f"frames must be uint8[T, H, W, 3], got {frames.dtype}{list(frames.shape)}")
    with VideoWriter(path, fps, codec, crf, rotation) as writer:
        for frame in frames:
            writer.write(frame)
