"""What a cache costs: the bytes of its units' packs per RGB frame and per flow field, read from their
manifests' offsets (no pack is opened)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .cache import list_cached, read_manifest


@dataclass(frozen=True)
class CacheSize:
    """Bytes of a cache's packs: ``rgb_per_frame`` and ``flow_per_field`` (x and y JPEGs of one field,
    forward and backward fields alike) are the figures to hold against the paper's ~11 KB per flow pair."""

    videos: int
    frames: int
    fields: int
    rgb_bytes: int
    flow_bytes: int

    @property
    def rgb_per_frame(self) -> float:
        return self.rgb_bytes / max(self.frames, 1)

    @property
    def flow_per_field(self) -> float:
        return self.flow_bytes / max(self.fields, 1)

    @property
    def per_frame(self) -> float:
        """RGB plus flow bytes per frame of video (what a cache costs per frame)."""
        return (self.rgb_bytes + self.flow_bytes) / max(self.frames, 1)


def cache_size(root: str | Path, ids: list[str] | None = None) -> CacheSize:
    """Sizes of the complete units ``ids`` (default: all) under ``root``, from their manifests' offsets."""
    videos = frames = fields = rgb = flow = 0
    for vid in list_cached(root) if ids is None else ids:
        m = read_manifest(root, vid)
        videos, frames = videos + 1, frames + int(m["num_frames"])
        for pack, offsets in m["offsets"].items():
            if pack == "rgb":
                rgb += offsets[-1]
            else:  # offsets run x, y, x, y, ... with the pack's length last
                flow, fields = flow + offsets[-1], fields + (len(offsets) - 1) // 2
    return CacheSize(videos, frames, fields, rgb, flow)
