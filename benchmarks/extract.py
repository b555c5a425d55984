"""End-to-end extraction speed (decode + resize + flow + JPEG encode + write) on the real UCF-101 clips,
for each flow method with 1 and 2 worker processes, and the cache's bytes per RGB frame and per flow field.
Needs ../shared/data/clips/ucf101.

    python benchmarks/extract.py [--json FILE] [--methods dis-medium,farneback]

TV-L1 is ~700 ms a pair here, so it runs on one clip only (frames/s is per frame either way).
"""

from __future__ import annotations

import tempfile
import time

from _common import FLOWS, data_dir, finish, parser, table
from twostream.cache import CacheSize, cache_size
from twostream.extract import ExtractOptions, extract_all
from twostream.sources import find_videos

def run(videos, options: ExtractOptions, workers: int) -> tuple[int, float, CacheSize]:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        results = extract_all(videos, out, options, workers=workers, progress=False)
        seconds = time.perf_counter() - start
        size = cache_size(out)
    bad = [r for r in results if r.status != "ok"]
    if bad:
        raise SystemExit(f"extraction failed: {bad}")
    return sum(r.frames for r in results), seconds, size


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--methods", default="dis-fast,dis-medium,farneback,tvl1")
    args = p.parse_args()
    videos = find_videos(data_dir("clips/ucf101"))
    figures, rows = {}, []
    for name in args.methods.split(","):
        method, params = FLOWS[name]
        subset = videos[:2] if method == "tvl1" else videos
        for workers in (1, 2):
            frames, seconds, size = run(subset, ExtractOptions(flow_method=method, flow_params=params), workers)
            figures[f"{name}/{workers}"] = {"frames": frames, "seconds": seconds, "fps": frames / seconds,
                                            "rgb_bytes_per_frame": size.rgb_per_frame,
                                            "flow_bytes_per_field": size.flow_per_field}
            rows.append([name, workers, frames, frames / seconds, f"{size.rgb_per_frame / 1000:.1f}",
                         f"{size.flow_per_field / 1000:.1f}"])
    finish(args, figures, table(["flow", "workers", "frames", "frames/s", "KB per RGB frame", "KB per flow field"],
                                rows))


if __name__ == "__main__":
    main()
