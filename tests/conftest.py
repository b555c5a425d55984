"""Shared fixtures. Tests that read the real data in ../shared/data say so in their name
(``shared_data``) and are skipped where it is absent (a user's machine)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"real data not found at {SHARED}")
    return SHARED


def _texture(height: int, width: int, seed: int = 0, blur: float = 2.0) -> np.ndarray:
    """A smooth random grey texture, uint8[H, W], with structure at several scales (good for flow)."""
    rng = np.random.default_rng(seed)
    noise = rng.random((height, width)).astype(np.float32)
    img = cv2.GaussianBlur(noise, (0, 0), blur) + 0.5 * cv2.GaussianBlur(noise, (0, 0), blur * 3)
    img = (img - img.min()) / (img.max() - img.min())
    return (img * 255).astype(np.uint8)


def _shift(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """The image translated by (dx, dy) px with bilinear interpolation: flow from image to it is (dx, dy)."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, m, image.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _moving_frames(n: int, height: int = 48, width: int = 64, dx: float = 1.0, dy: float = 0.0,
                  seed: int = 0) -> np.ndarray:
    """uint8[n, H, W, 3]: a colour texture translating by (dx, dy) px per frame."""
    base = np.stack([_texture(height, width, seed + c) for c in range(3)], axis=-1)
    return np.stack([_shift(base, dx * t, dy * t) for t in range(n)])


@pytest.fixture(scope="session")
def texture():
    """``texture(height, width, seed=0, blur=2.0)``: a smooth random grey texture, uint8[H, W]."""
    return _texture


@pytest.fixture(scope="session")
def shift():
    """``shift(image, dx, dy)``: the image translated by (dx, dy) px; flow from image to it is (dx, dy)."""
    return _shift


@pytest.fixture(scope="session")
def moving_frames():
    """``moving_frames(n, height=48, width=64, dx=1.0, dy=0.0, seed=0)``: uint8[n, H, W, 3], a colour
    texture translating by (dx, dy) px per frame."""
    return _moving_frames


def _ucf101_lists(official: Path, out: Path, folds: tuple[int, ...] = (1,)) -> list[str]:
    """Writes ``out``: the real classInd.txt and the split lists of ``official`` for ``folds``, each cut to
    the first training and the first test video of every class; returns those videos (relative paths,
    ``Class/v_...avi``, each once)."""
    out.mkdir(parents=True)
    (out / "classInd.txt").write_text((official / "classInd.txt").read_text())
    chosen = {}
    for name in (f"{part}list0{fold}.txt" for fold in folds for part in ("train", "test")):
        first = {}
        for line in (official / name).read_text().splitlines():
            if line.strip():
                first.setdefault(line.split("/")[0], line.strip())
        (out / name).write_text("\n".join(first.values()) + "\n")
        chosen.update((line.split()[0], None) for line in first.values())
    return list(chosen)


@pytest.fixture(scope="session")
def ucf101_lists():
    """``ucf101_lists(official, out, folds=(1,)) -> videos``: UCF-101's split lists cut to one training and
    one test video per class (see ``_ucf101_lists``)."""
    return _ucf101_lists


def _drifting_video(path: Path, rng: np.random.Generator, frames: int, size: int) -> None:
    """Writes an MPEG-4 video of ``frames`` frames, ``size`` px square: a random texture drifting by a
    random step of -1, 0 or 1 px per frame in x and y (for tests where the content does not matter)."""
    from twostream.video import write_video

    base = rng.integers(0, 256, (size + 2 * frames, size + 2 * frames, 3), dtype=np.uint8)
    dx, dy = rng.integers(-1, 2, 2)
    write_video(path, np.stack([base[frames + t * dy: frames + t * dy + size, frames + t * dx: frames + t * dx + size]
                                for t in range(frames)]), codec="mpeg4")


@pytest.fixture(scope="session")
def drifting_video():
    """``drifting_video(path, rng, frames, size)``: writes a tiny random drifting video (``_drifting_video``)."""
    return _drifting_video


@pytest.fixture(scope="session")
def unit_record():
    """``unit_record(bidirectional=False)``: an extraction record for units a test writes by hand."""
    from twostream.flow.codec import FlowCodec
    from twostream.record import ExtractionRecord

    def make(bidirectional: bool = False) -> ExtractionRecord:
        return ExtractionRecord("hand-made", {}, 0, bidirectional, FlowCodec(), 95)

    return make


@pytest.fixture
def tiny_videos(tmp_path: Path):
    """Write tiny real video files: ``make(name, frames=12, **kw) -> Path``."""
    from twostream.video import write_video

    def make(name: str, frames: int = 12, **kw) -> Path:
        path = tmp_path / "videos" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, _moving_frames(frames, **kw), fps=25, codec="mpeg4" if path.suffix == ".avi" else "libx264")
        return path

    return make


@pytest.fixture(scope="session")
def synth_cache(tmp_path_factory) -> dict:
    """A tiny synthetic data set (4 classes x 6 videos, 12 frames of 80x64), extracted once per session."""
    from twostream.extract import ExtractOptions, extract_all
    from twostream.sources import find_videos
    from twostream.synth import SynthOptions, generate

    root = tmp_path_factory.mktemp("synth")
    generate(root / "videos", SynthOptions(appearances=2, motions=2, videos_per_class=6, frames=12,
                                           width=80, height=64), progress=False)
    results = extract_all(find_videos(root / "videos"), root / "cache",
                          ExtractOptions(short_side=0, bidirectional=True), progress=False)
    assert all(r.status == "ok" for r in results)
    return {"videos": root / "videos", "cache": root / "cache"}


@pytest.fixture(scope="session")
def tiny_config(synth_cache):
    """``tiny_config(stream="temporal", overrides=())``: a CPU-sized config on ``synth_cache``: 64 px
    crops, L = 4, batch 8, 6 iterations."""
    from twostream.config import load_config

    def make(stream: str = "temporal", overrides: list[str] = ()):
        return load_config(None, _tiny_overrides(synth_cache, stream) + list(overrides))

    return make


def _tiny_overrides(synth: dict, stream: str) -> list[str]:
    return [f"tasks.0.splits={synth['videos']}", f"tasks.0.cache={synth['cache']}", "tasks.0.name=synth",
            f"input.stream={stream}", "input.crop=64", "input.length=4", "input.test_positions=3",
            "model.dropout=0.0", "optim.batch_size=8", "optim.micro_batch=8", "optim.milestones=[1000]",
            "optim.iterations=6", "optim.lr=0.01", "run.workers=0", "run.log_every=1", "run.val_every=0",
            "run.checkpoint_every=3"]


@pytest.fixture(scope="session")
def two_runs(synth_cache, tmp_path_factory, tiny_config):
    """A spatial and a temporal run on ``synth_cache`` (4 iterations), scored on test and train."""
    from twostream.evaluate import evaluate
    from twostream.train import train

    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for stream in ("spatial", "temporal"):
        runs[stream] = root / stream
        train(tiny_config(stream, ["optim.iterations=4"]), runs[stream], progress=False)
        for part in ("test", "train"):
            evaluate(runs[stream], part, workers=0, progress=False)
    return runs
