"""The paper's flow storage trick: each component clipped to +-bound, mapped linearly to [0, 255], JPEG.

Zero flow maps to 127.5 and is stored as 128, i.e. decodes to +bound/255 (0.08 px at bound 20): below
JPEG's own error, and mean-flow subtraction removes it anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import UserError


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """``uint8[H, W]`` grey or ``uint8[H, W, 3]`` RGB -> JPEG bytes."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for an image of shape {image.shape}")
    return buf.tobytes()


def decode_jpeg(data: bytes, color: bool) -> np.ndarray:
    """JPEG bytes -> ``uint8[H, W, 3]`` RGB (``color``) or ``uint8[H, W]`` grey."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise UserError("corrupt JPEG data")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if color else image


BOUND = 20.0  # px: the clip range of x and y before the linear map to [0, 255] (the paper gives none)
QUALITY = 95  # JPEG quality of the flow planes


@dataclass(frozen=True)
class FlowCodec:
    bound: float = BOUND
    quality: int = QUALITY

    def __post_init__(self) -> None:
        if not self.bound > 0:
            raise UserError(f"codec bound must be > 0 px, got {self.bound}")
        if not 1 <= self.quality <= 100:
            raise UserError(f"JPEG quality must be 1..100, got {self.quality}")

    def quantize(self, flow: np.ndarray) -> np.ndarray:
        """``float32[...]`` pixels -> ``uint8[...]``, -bound -> 0 and +bound -> 255."""
        scaled = (np.clip(flow, -self.bound, self.bound) + self.bound) * (255.0 / (2 * self.bound))
        return np.rint(scaled).astype(np.uint8)

    @property
    def step(self) -> float:
        """Pixels per code: ``dequantize(c) = c * step - bound``."""
        return 2 * self.bound / 255.0

    def dequantize(self, code: np.ndarray) -> np.ndarray:
        """``uint8[...]`` -> ``float32[...]`` pixels."""
        return code.astype(np.float32, order="C") * np.float32(self.step) - np.float32(self.bound)

    def pixels(self, codes: np.ndarray) -> np.ndarray:
        """Fields as stored, codes ``uint8[..., 2, H, W]`` (x, y planes) -> ``float32[..., H, W, 2]`` pixels."""
        return self.dequantize(np.moveaxis(codes, -3, -1))

    def encode(self, flow: np.ndarray) -> tuple[bytes, bytes]:
        """``float32[H, W, 2]`` -> (JPEG of x, JPEG of y)."""
        q = self.quantize(flow)
        return encode_jpeg(np.ascontiguousarray(q[..., 0]), self.quality), \
            encode_jpeg(np.ascontiguousarray(q[..., 1]), self.quality)

    def decode(self, x_jpeg: bytes, y_jpeg: bytes) -> np.ndarray:
        """(JPEG of x, JPEG of y) -> ``float32[H, W, 2]`` pixels."""
        return self.pixels(self.decode_codes(x_jpeg, y_jpeg))

    @staticmethod
    def decode_codes(x_jpeg: bytes, y_jpeg: bytes) -> np.ndarray:
        """(JPEG of x, JPEG of y) -> their codes ``uint8[2, H, W]`` (``pixels`` makes them pixels)."""
        return np.stack([decode_jpeg(x_jpeg, False), decode_jpeg(y_jpeg, False)])

    def to_dict(self) -> dict:
        return {"bound": self.bound, "quality": self.quality}
