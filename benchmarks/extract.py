"""End-to-end extraction speed (decode + resize + flow + JPEG encode + write) on the real UCF-101 clips,
for each flow method with 1 and 2 worker processes, and the cache's bytes per RGB frame and per flow field;
the PyTorch flows also through the device path (``extract --device``: batches of frame pairs), one pair at a
time beside it. Needs ../shared/data/clips/ucf101.

    python benchmarks/extract.py [--json FILE] [--methods dis-medium,farneback] [--device-methods brox]
                                 [--device auto] [--batch-pairs 32] [--rgb-qualities 75,85,95]
                                 [--videos DIR --every N] [--short-side 128]

``--rgb-qualities``: the cache's bytes per frame (RGB, and RGB + a DIS medium flow field) at each RGB JPEG
quality, on all clips at 340x256 (what the cache costs; the accuracy side is the UCF-9 benchmark's).
``--videos DIR --every N``: another folder of videos (e.g. UCF-9), every Nth of them in id order.
``--short-side``: the frames' short side (default extract's, 256; UCF-9's recipe extracts at 128): with
``--videos`` it times the flows side by side at the size a benchmark's cache was extracted at.

The slow flows (TV-L1 ~0.25 s a pair here, the PyTorch ones ~0.4) run on two clips only (frames/s is per
frame either way).
"""

from __future__ import annotations

import tempfile
import time

from _common import FLOWS, SLOW, data_dir, finish, parser, table
from twostream.cache_size import CacheSize, cache_size
from twostream.devices import DEVICES, pick_device
from twostream.extract import ExtractOptions, extract_all
from twostream.extract_device import BATCH_PAIRS, extract_on_device
from twostream.sources import find_videos


def run(videos, options: ExtractOptions, workers: int, device: str | None = None,
        batch_pairs: int = BATCH_PAIRS) -> tuple[int, float, CacheSize]:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        if device is None:
            results = extract_all(videos, out, options, workers=workers, progress=False)
        else:
            results = extract_on_device(videos, out, options, device, batch_pairs, workers=workers, progress=False)
        seconds = time.perf_counter() - start
        size = cache_size(out)
    bad = [r for r in results if r.status != "ok"]
    if bad:
        raise SystemExit(f"extraction failed: {bad}")
    return sum(r.frames for r in results), seconds, size


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--methods", default="dis-fast,dis-medium,farneback,tvl1")
    p.add_argument("--device-methods", default="brox,tvl1-torch", help="PyTorch flows, per pair and on --device")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--batch-pairs", type=int, default=BATCH_PAIRS)
    p.add_argument("--rgb-qualities", default="", help="e.g. 75,85,95: cache bytes per frame at each")
    p.add_argument("--videos", help="a folder of videos instead of ../shared/data/clips/ucf101")
    p.add_argument("--every", type=int, default=1, help="every Nth video (id order) of --videos")
    p.add_argument("--short-side", type=int, default=ExtractOptions.short_side,
                   help="the frames' short side (0 keeps the size)")
    args = p.parse_args()
    if args.every < 1:
        raise SystemExit(f"--every must be >= 1, got {args.every}")
    videos = find_videos(args.videos or data_dir("clips/ucf101"))[::args.every]
    if not videos:
        raise SystemExit(f"no videos in {args.videos}")
    device = str(pick_device(args.device))
    runs = [(name, workers, None) for name in args.methods.split(",") if name for workers in (1, 2)]
    runs += [(name, 1, where) for name in args.device_methods.split(",") if name
             for where in (None, f"{device}, batch {args.batch_pairs}")]
    figures, rows = {}, []
    for name, workers, where in runs:
        method, params = FLOWS[name]
        subset = videos[:2] if method in SLOW else videos
        options = ExtractOptions(flow_method=method, flow_params=params, short_side=args.short_side)
        frames, seconds, size = run(subset, options, workers, device if where else None, args.batch_pairs)
        figures[f"{name}/{workers}/{where or 'per pair'}"] = {
            "frames": frames, "seconds": seconds, "fps": frames / seconds, "rgb_bytes_per_frame": size.rgb_per_frame,
            "flow_bytes_per_field": size.flow_per_field}
        rows.append([name, where or "per pair (cpu)", workers, frames, frames / seconds,
                     f"{size.rgb_per_frame / 1000:.1f}", f"{size.flow_per_field / 1000:.1f}"])
    text = table(["flow", "path", "workers", "frames", "frames/s", "KB per RGB frame", "KB per flow field"],
                 rows) if rows else ""
    if args.rgb_qualities:
        sizes = []
        for quality in map(int, args.rgb_qualities.split(",")):
            method, params = FLOWS["dis-medium"]
            options = ExtractOptions(flow_method=method, flow_params=params, rgb_quality=quality,
                                     short_side=args.short_side)
            frames, _, size = run(videos, options, 2)
            figures[f"rgb_quality/{quality}"] = {"videos": len(videos), "frames": frames,
                                                 "rgb_bytes_per_frame": size.rgb_per_frame,
                                                 "flow_bytes_per_field": size.flow_per_field}
            sizes.append([quality, f"{size.rgb_per_frame / 1000:.1f}",
                          f"{(size.rgb_per_frame + size.flow_per_field) / 1000:.1f}"])
        text += ("\n\n" if text else "") + table(["RGB JPEG quality", "KB per RGB frame", "KB per frame, RGB + flow (DIS medium)"],
                                sizes)
    finish(args, figures, text)


if __name__ == "__main__":
    main()
