"""A synthetic action data set where both streams are needed, written as real videos (UCF-101 layout).

Each class is an (appearance, motion) pair. Appearances are colours at *equal luminance* on the same
textured disc, so optical flow (computed on luma) cannot tell them apart; every motion is shown with
every appearance, so a single frame cannot tell motions apart. Only the two streams together can
name the class. Static textured background, optional camera jitter; seeded and deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import UserError
from .io import atomic_write_text
from .video import write_video

# Motions in the order ``--motions N`` takes them. Right and Left come last: they are each other's mirror
# image, and the paper's horizontal flips (training augmentation, test crops) make them one class.
MOTIONS = ("Up", "Down", "Rotate", "Zoom", "Oscillate", "Right", "Left")
# Hue angles in the (Cb, Cr) plane at fixed luma: these four are easy to name; more get a degree name.
APPEARANCES = (("Red", 90), ("Green", 270), ("Blue", 0), ("Yellow", 180))


@dataclass(frozen=True)
class SynthOptions:
    appearances: int = 2
    motions: int = 3
    videos_per_class: int = 12
    frames: int = 32
    width: int = 160
    height: int = 128
    seed: int = 0
    camera_jitter: float = 0.0  # px std of a random whole-frame shake per frame
    speed: float = 2.0  # px per frame for translations
    fps: int = 25

    def __post_init__(self) -> None:
        if not 1 <= self.appearances <= 12:
            raise UserError(f"appearances must be 1..12, got {self.appearances}")
        if not 1 <= self.motions <= len(MOTIONS):
            raise UserError(f"motions must be 1..{len(MOTIONS)}, got {self.motions}")
        if self.frames < 2 or self.videos_per_class < 1:
            raise UserError("need frames >= 2 and videos_per_class >= 1")
        if self.width % 2 or self.height % 2 or min(self.width, self.height) < 32:
            raise UserError(f"size must be even and at least 32, got {self.width}x{self.height}")


def appearance_names(n: int) -> list[tuple[str, float]]:
    named = list(APPEARANCES)
    extra = [(f"Hue{d}", d) for d in range(45, 360, 90)] + [(f"Hue{d}", d) for d in (22, 112, 202, 292)]
    return (named + extra)[:n]


def class_names(options: SynthOptions) -> list[str]:
    """Classes in label order: appearance-major (``RedUp``, ``RedDown``, ..., ``GreenUp``, ...)."""
    return [a + m for a, _ in appearance_names(options.appearances) for m in MOTIONS[: options.motions]]


def _texture(h: int, w: int, rng: np.random.Generator, blur: float) -> np.ndarray:
    noise = rng.random((h, w)).astype(np.float32)
    t = cv2.GaussianBlur(noise, (0, 0), blur) + 0.6 * cv2.GaussianBlur(noise, (0, 0), blur * 2.5)
    return (t - t.min()) / (t.max() - t.min() + 1e-6)


def _ycbcr_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Full-range BT.601 (the luma weights OpenCV's RGB2GRAY uses), floats in [0, 255]."""
    r = y + 1.402 * (cr - 128)
    g = y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128)
    b = y + 1.772 * (cb - 128)
    return np.stack([r, g, b], -1)


def _pose(motion: str, t: int, n: int, o: SynthOptions, start: tuple[float, float]) -> tuple[float, float, float, float]:
    """(centre x, centre y, rotation in degrees, scale) of the disc at frame t."""
    x, y = start
    v = o.speed * t
    if motion == "Right":
        return x + v, y, 0.0, 1.0
    if motion == "Left":
        return x - v, y, 0.0, 1.0
    if motion == "Up":
        return x, y - v, 0.0, 1.0
    if motion == "Down":
        return x, y + v, 0.0, 1.0
    if motion == "Rotate":
        return x, y, 4.0 * t, 1.0
    if motion == "Zoom":
        return x, y, 0.0, 0.7 + 0.6 * t / max(n - 1, 1)
    if motion == "Oscillate":
        return x + 0.2 * o.width * math.sin(2 * math.pi * t / 12), y, 0.0, 1.0
    raise UserError(f"unknown motion {motion!r}")


def render(appearance: int, motion: int, options: SynthOptions, seed: int) -> np.ndarray:
    """One video: ``uint8[T, H, W, 3]``."""
    o, rng = options, np.random.default_rng(seed)
    h, w, n = o.height, o.width, o.frames
    radius = 0.22 * min(h, w)
    pad = int(4 * o.camera_jitter) + 2
    # background: luma texture with a faint colour wash, larger than the frame so the camera can shake
    bh, bw = h + 2 * pad, w + 2 * pad
    luma = 60 + 120 * _texture(bh, bw, rng, 3.0)
    bg = _ycbcr_to_rgb(luma, 128 + 12 * (_texture(bh, bw, rng, 8.0) - 0.5), 128 + 12 * (_texture(bh, bw, rng, 8.0) - 0.5))
    # the disc: its own luma texture (flow needs structure to track), chroma set by the appearance
    size = int(2 * radius) + 1
    disc_luma = 70 + 110 * _texture(size, size, rng, 1.5)
    _, angle = appearance_names(o.appearances)[appearance]
    chroma = 45.0
    cb = np.full_like(disc_luma, 128 + chroma * math.cos(math.radians(angle)))
    cr = np.full_like(disc_luma, 128 + chroma * math.sin(math.radians(angle)))
    disc = _ycbcr_to_rgb(disc_luma, cb, cr).astype(np.float32)
    name = MOTIONS[motion]
    margin = radius + 2
    travel = o.speed * (n - 1)
    lo_x, hi_x = margin + (travel if name == "Left" else 0), w - margin - (travel if name == "Right" else 0)
    lo_y, hi_y = margin + (travel if name == "Up" else 0), h - margin - (travel if name == "Down" else 0)
    start = (rng.uniform(lo_x, max(hi_x, lo_x)), rng.uniform(lo_y, max(hi_y, lo_y)))
    if name == "Oscillate":
        start = (w / 2, start[1])
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = np.empty((n, h, w, 3), np.uint8)
    for t in range(n):
        jx, jy = (float(v) for v in np.clip(rng.normal(0, o.camera_jitter, 2), -pad, pad)) \
            if o.camera_jitter else (0.0, 0.0)
        cx, cy, rot, scale = _pose(name, t, n, o, start)
        cx, cy = cx + jx, cy + jy
        # inverse map: frame pixel -> disc texture coordinate (rotate by -rot, scale by 1/scale)
        a = math.radians(rot)
        dx, dy = (xs - cx) / scale, (ys - cy) / scale
        u = math.cos(a) * dx + math.sin(a) * dy + radius
        v = -math.sin(a) * dx + math.cos(a) * dy + radius
        tex = cv2.remap(disc, u.astype(np.float32), v.astype(np.float32), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REFLECT)
        inside = np.clip(radius - np.hypot(dx, dy) + 0.5, 0, 1)[..., None]  # anti-aliased edge
        y0, x0 = int(round(pad + jy)), int(round(pad + jx))
        frame = inside * tex + (1 - inside) * bg[y0:y0 + h, x0:x0 + w]
        frames[t] = np.clip(frame, 0, 255).round().astype(np.uint8)
    return frames


def generate(out: str | Path, options: SynthOptions = SynthOptions(), progress: bool = True) -> list[str]:
    """Write the data set to ``out`` in the UCF-101 layout: ``<Class>/v_<Class>_gGG_c01.mp4``, with
    ``classInd.txt``, ``trainlist01.txt`` and ``testlist01.txt`` (every third video is a test video).
    Returns the class names. Existing videos are kept (a re-run completes an interrupted one)."""
    from tqdm import tqdm

    out = Path(out)
    classes = class_names(options)
    train, test = [], []
    jobs = [(c, i) for c in range(len(classes)) for i in range(options.videos_per_class)]
    for c, i in tqdm(jobs, desc="synth", unit="video", disable=not progress):
        name = classes[c]
        rel = f"{name}/v_{name}_g{i + 1:02d}_c01.mp4"
        path = out / rel
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            seed = int(np.random.SeedSequence([options.seed, c, i]).generate_state(1)[0])
            frames = render(c // options.motions, c % options.motions, options, seed)
            write_video(path, frames, fps=options.fps)
        (test if i % 3 == 2 else train).append((rel, c + 1))
    atomic_write_text(out / "classInd.txt", "".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    atomic_write_text(out / "trainlist01.txt", "".join(f"{r} {c}\n" for r, c in train))
    atomic_write_text(out / "testlist01.txt", "".join(f"{r}\n" for r, _ in test))
    return classes
