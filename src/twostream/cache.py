"""The per-video cache: one folder per video with a handful of files, never one file per frame.

Layout of the unit for video id ``v`` under ``root``::

    root/v/manifest.json   what produced the unit (source, sizes, fps, flow method + params, codec)
                           and the byte offsets of every JPEG in the packs below
    root/v/rgb.pack        the T RGB frames, JPEG, back to back
    root/v/flow.pack       the T-1 forward flow fields: x JPEG, y JPEG, x JPEG, y JPEG, ...
    root/v/flow_back.pack  (bi-directional only) the T-1 backward fields, same layout

Frame t and flow t are one seek + one read each (O(1)). A unit is written under a temporary name in
the same folder and renamed into place once complete, so it is there whole or not at all.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from . import __version__
from .errors import UserError
from .flow.codec import FlowCodec, decode_jpeg, encode_jpeg
from .io import fsync_path
from .record import ExtractionRecord

MANIFEST = "manifest.json"
FORMAT = 1
PACKS = {"rgb": "rgb.pack", "flow": "flow.pack", "flow_back": "flow_back.pack"}
TMP_MARK = ".tmp-"


def unit_dir(root: str | Path, video_id: str) -> Path:
    if not video_id or video_id.startswith("/") or ".." in Path(video_id).parts:
        raise UserError(f"video id must be a relative path without '..', got {video_id!r}")
    return Path(root) / video_id


def _tmp_name(final: Path) -> Path:
    return final.with_name(f".{final.name}{TMP_MARK}{uuid.uuid4().hex[:8]}")


def remove_stale(root: str | Path, video_id: str) -> list[Path]:
    """Delete the temporary folders a killed run left behind for ``video_id``; returns them. (Matched by
    prefix, not glob: ids may hold ``[`` or ``]``.)"""
    final = unit_dir(root, video_id)
    if not final.parent.is_dir():
        return []
    prefix = f".{final.name}{TMP_MARK}"
    stale = [p for p in final.parent.iterdir() if p.name.startswith(prefix)]
    for tmp in stale:
        shutil.rmtree(tmp, ignore_errors=True)
    return stale


def without_manifest(root: str | Path) -> list[str]:
    """Ids of folders holding packs but no manifest (a unit whose manifest was lost)."""
    root = Path(root)
    folders, _ = _walk(root)
    packed = [f for f, files in folders if MANIFEST not in files and not files.isdisjoint(PACKS.values())]
    return sorted(f.relative_to(root).as_posix() for f in packed)


def leftovers(root: str | Path) -> list[Path]:
    """Temporary unit folders under ``root`` (a killed run's, or one still being written)."""
    return sorted(_walk(Path(root))[1])


def _walk(root: Path) -> tuple[list[tuple[Path, set[str]]], list[Path]]:
    """(folder, its file names) for every folder under ``root``, and the temporary folders met on the way.
    Temporary folders are not entered: a running extraction renames or removes them at any moment (walking
    into one raced a listing in CI), and os.walk skips a folder that vanishes before it is read."""
    folders, temporaries = [], []
    for folder, subfolders, files in os.walk(root):
        temporaries += [Path(folder) / d for d in subfolders if TMP_MARK in d]
        subfolders[:] = [d for d in subfolders if TMP_MARK not in d]
        folders.append((Path(folder), set(files)))
    return folders, temporaries


class _Pack:
    """An append-only file of JPEG blobs with their offsets and CRC-32s (a flipped byte is named at read)."""

    def __init__(self, path: Path) -> None:
        self.file: BinaryIO = open(path, "wb")
        self.offsets = [0]
        self.crcs: list[int] = []

    def add(self, blob: bytes) -> None:
        self.file.write(blob)
        self.offsets.append(self.offsets[-1] + len(blob))
        self.crcs.append(zlib.crc32(blob))


class UnitWriter:
    """Writes one video's unit; ``commit`` renames it into place. Use as a context manager::

        with UnitWriter(root, vid, codec) as w:
            w.add_frame(rgb); w.add_flow(flow); ...
            w.commit({"source": ..., "fps": ...})

    Leaving the block without ``commit`` (an exception) deletes the temporary folder. The ``record``
    (how the unit is made: flow, codec, sizes) is written into the manifest.
    """

    def __init__(self, root: str | Path, video_id: str, record: ExtractionRecord) -> None:
        self.final = unit_dir(root, video_id)
        self.video_id, self.record = video_id, record
        self.codec, self.rgb_quality = record.codec, record.rgb_quality
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = _tmp_name(self.final)
        self.tmp.mkdir()
        names = ["rgb", "flow"] + (["flow_back"] if record.bidirectional else [])
        self.packs = {n: _Pack(self.tmp / PACKS[n]) for n in names}
        self.size: tuple[int, int] | None = None  # (height, width)

    def add_frame(self, rgb: np.ndarray) -> None:
        """Append frame t: ``uint8[H, W, 3]`` RGB."""
        if self.size is None:
            self.size = rgb.shape[:2]
        elif rgb.shape[:2] != self.size:
            raise UserError(f"{self.video_id}: frame size changed from {self.size} to {rgb.shape[:2]}")
        self.packs["rgb"].add(encode_jpeg(rgb, self.rgb_quality))

    def _add_field(self, pack: str, flow: np.ndarray) -> None:
        x, y = self.codec.encode(flow)
        self.packs[pack].add(x)
        self.packs[pack].add(y)

    def add_flow(self, flow: np.ndarray) -> None:
        """Append forward flow t (frame t -> t+1): ``float32[H, W, 2]`` pixels."""
        self._add_field("flow", flow)

    def add_back_flow(self, flow: np.ndarray) -> None:
        """Append backward flow t (frame t+1 -> t): ``float32[H, W, 2]`` pixels."""
        if "flow_back" not in self.packs:
            raise UserError("this unit was opened without bidirectional=True")
        self._add_field("flow_back", flow)

    def commit(self, info: dict[str, Any]) -> Path:
        for pack in self.packs.values():
            pack.file.flush()
            os.fsync(pack.file.fileno())  # on disk before the rename makes the unit visible
            pack.file.close()
        n = len(self.packs["rgb"].offsets) - 1
        nflow = (len(self.packs["flow"].offsets) - 1) // 2
        if n == 0 or nflow != n - 1 or any((len(p.offsets) - 1) // 2 != nflow for k, p in self.packs.items()
                                           if k != "rgb"):
            raise UserError(f"{self.video_id}: {n} frames need {max(n - 1, 0)} flow fields, got {nflow}")
        manifest = {
            "format": FORMAT, "video_id": self.video_id, **info,
            "num_frames": n, "height": self.size[0], "width": self.size[1], **self.record.to_manifest(),
            "twostream_version": __version__, "offsets": {k: p.offsets for k, p in self.packs.items()},
            "crc32": {k: p.crcs for k, p in self.packs.items()},
        }
        (self.tmp / MANIFEST).write_text(json.dumps(manifest))
        fsync_path(self.tmp / MANIFEST)
        fsync_path(self.tmp)
        if self.final.exists():  # --overwrite: move the old unit aside, then swap
            old = _tmp_name(self.final)
            self.final.rename(old)
            self.tmp.rename(self.final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            self.tmp.rename(self.final)
        fsync_path(self.final.parent)
        return self.final

    def __enter__(self) -> UnitWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            for pack in self.packs.values():
                pack.file.close()  # may fail itself (a full disk at the last flush)
        finally:
            if self.tmp.exists():
                shutil.rmtree(self.tmp, ignore_errors=True)


def read_manifest(root: str | Path, video_id: str) -> dict[str, Any]:
    """The manifest of a complete, valid unit; ValueError naming the video otherwise."""
    d = unit_dir(root, video_id)
    try:
        manifest = json.loads((d / MANIFEST).read_text())
    except FileNotFoundError:
        raise UserError(f"{video_id}: not in the cache at {root}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{video_id}: corrupt manifest {d / MANIFEST} ({exc})") from None
    _check_manifest(manifest, video_id, d / MANIFEST)
    for name, offsets in manifest["offsets"].items():
        path = d / PACKS[name]
        if not path.is_file() or path.stat().st_size != offsets[-1]:
            raise UserError(f"{video_id}: {path} is missing or truncated")
    return manifest


def _check_manifest(m: Any, video_id: str, where: Path) -> None:
    """Refuse, naming the file and the key, a manifest whose structure or counts do not hold together."""
    if not isinstance(m, dict):
        raise UserError(f"{video_id}: {where} is not a manifest (a JSON {type(m).__name__})")
    if m.get("format") != FORMAT:
        raise UserError(f"{video_id}: cache format {m.get('format')}, this version reads {FORMAT}")
    offsets, n = m.get("offsets"), m.get("num_frames")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise UserError(f"{video_id}: {where}: num_frames must be a positive integer, got {n!r}")
    if not isinstance(offsets, dict) or "rgb" not in offsets or "flow" not in offsets or set(offsets) - set(PACKS):
        raise UserError(f"{video_id}: {where}: offsets must map rgb, flow (and flow_back) to lists")
    for name, off in offsets.items():
        want = n + 1 if name == "rgb" else 2 * (n - 1) + 1
        if not isinstance(off, list) or len(off) != want or any(not isinstance(o, int) for o in off) \
                or any(b < a for a, b in zip(off, off[1:])) or off[0] != 0:
            raise UserError(f"{video_id}: {where}: offsets.{name} must be {want} increasing integers from 0 "
                            f"for {n} frames")
    crcs = m.get("crc32")
    if crcs is not None and (not isinstance(crcs, dict) or any(len(crcs.get(k, [])) != len(v) - 1
                                                             for k, v in offsets.items())):
        raise UserError(f"{video_id}: {where}: crc32 must list one checksum per JPEG of each pack")


def verify_unit(root: str | Path, video_id: str) -> list[str]:
    """Every JPEG of a unit checked against its CRC-32: the problems found (empty: intact; a unit made
    before checksums were recorded can only be checked for size)."""
    try:
        return CachedVideo(root, video_id).verify()
    except ValueError as exc:
        return [str(exc)]


def is_complete(root: str | Path, video_id: str) -> bool:
    try:
        read_manifest(root, video_id)
    except ValueError:
        return False
    return True


def extraction_record(root: str | Path) -> ExtractionRecord | None:
    """How a cache was made (the record of its first unit), or None when there is no unit to read."""
    ids = list_cached(root) if Path(root).is_dir() else []
    return ExtractionRecord.from_manifest(read_manifest(root, ids[0]), str(root)) if ids else None


def list_cached(root: str | Path) -> list[str]:
    """Ids of every unit under ``root`` (sorted), found by their manifests."""
    root = Path(root)
    folders, _ = _walk(root)
    return sorted(f.relative_to(root).as_posix() for f, files in folders if MANIFEST in files)


class FlowPixels:
    """Flow in pixels from a video's stored codes (``field_codes`` and ``codec``): the cache's units and
    live clips alike."""

    codec: FlowCodec

    def field_codes(self, t: int, backward: bool = False) -> np.ndarray:
        raise NotImplementedError

    def flow(self, t: int) -> np.ndarray:
        """Forward flow t (frame t -> t+1): ``float32[H, W, 2]`` pixels."""
        return self.codec.pixels(self.field_codes(t))

    def back_flow(self, t: int) -> np.ndarray:
        """Backward flow t (frame t+1 -> t): ``float32[H, W, 2]`` pixels."""
        return self.codec.pixels(self.field_codes(t, backward=True))


class CachedVideo(FlowPixels):
    """Random access to one unit: ``frame(t)``, ``flow(t)``, ``back_flow(t)``.

    Files are opened per read (one ``pread``), so an instance is safe to share with DataLoader workers.
    """

    def __init__(self, root: str | Path, video_id: str, manifest: dict[str, Any] | None = None) -> None:
        self.video_id = video_id
        self.dir = unit_dir(root, video_id)
        self.manifest = manifest if manifest is not None else read_manifest(root, video_id)
        self.record = ExtractionRecord.from_manifest(self.manifest, f"{video_id}: {self.dir / MANIFEST}")
        self.codec = self.record.codec
        self._offsets = {k: np.asarray(v, dtype=np.int64) for k, v in self.manifest["offsets"].items()}

    @property
    def num_frames(self) -> int:
        return int(self.manifest["num_frames"])

    @property
    def num_flows(self) -> int:
        return self.num_frames - 1

    @property
    def frame_size(self) -> tuple[int, int]:
        """(height, width) of the stored frames and flow fields."""
        return int(self.manifest["height"]), int(self.manifest["width"])

    @property
    def bidirectional(self) -> bool:
        return "flow_back" in self._offsets

    def _blob(self, pack: str, i: int) -> bytes:
        offsets = self._offsets[pack]
        start, end = int(offsets[i]), int(offsets[i + 1])
        fd = os.open(self.dir / PACKS[pack], os.O_RDONLY)
        try:
            blob = os.pread(fd, end - start, start)
        finally:
            os.close(fd)
        crcs = self.manifest.get("crc32")
        if crcs is not None and zlib.crc32(blob) != crcs[pack][i]:
            what = f"frame {i}" if pack == "rgb" else f"{'backward ' if pack == 'flow_back' else ''}flow {i // 2} " \
                                                     f"({'xy'[i % 2]})"
            raise UserError(f"{self.video_id}: {what} is corrupt in {self.dir / PACKS[pack]} (checksum "
                            "mismatch): extract it again")
        return blob

    def verify(self) -> list[str]:
        """Every JPEG read and checked against its CRC-32: the problems found (empty: intact)."""
        problems = []
        for pack, offsets in self._offsets.items():
            for i in range(len(offsets) - 1):
                try:
                    self._blob(pack, i)
                except ValueError as exc:
                    problems.append(str(exc))
        return problems

    def _check(self, t: int, n: int, what: str) -> None:
        if not 0 <= t < n:
            raise IndexError(f"{self.video_id}: {what} index {t} out of range 0..{n - 1}")

    def frame_jpeg(self, t: int) -> bytes:
        """Frame t as stored: its JPEG bytes (checked against their checksum)."""
        self._check(t, self.num_frames, "frame")
        return self._blob("rgb", t)

    def frame(self, t: int) -> np.ndarray:
        """Frame t: ``uint8[H, W, 3]`` RGB."""
        blob = self.frame_jpeg(t)
        try:
            return decode_jpeg(blob, color=True)
        except ValueError as exc:
            raise UserError(f"{self.video_id}: frame {t}: {exc}") from None

    def field_jpegs(self, t: int, backward: bool = False) -> tuple[bytes, bytes]:
        """Flow t (forward: frame t -> t+1; ``backward``: t+1 -> t) as stored: the JPEG bytes of x and y."""
        if backward and not self.bidirectional:
            raise UserError(f"{self.video_id}: extracted without --bidirectional, no backward flow")
        self._check(t, self.num_flows, "flow")
        pack = "flow_back" if backward else "flow"
        return self._blob(pack, 2 * t), self._blob(pack, 2 * t + 1)

    def field_codes(self, t: int, backward: bool = False) -> np.ndarray:
        """Flow t as stored: codes ``uint8[2, H, W]`` (x, y), ``self.codec.pixels`` turning them into pixels."""
        x, y = self.field_jpegs(t, backward)
        try:
            return self.codec.decode_codes(x, y)
        except ValueError as exc:
            raise UserError(f"{self.video_id}: flow {t}: {exc}") from None
