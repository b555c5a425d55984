"""The end-to-end demo on generated videos: ``twostream demo OUT`` (what ``make demo`` runs)."""

from __future__ import annotations

import time
from pathlib import Path

from .cache import list_cached, read_manifest
from .extract import ExtractOptions, extract_all, find_videos
from .synth import SynthOptions, generate


def run_demo(out: str | Path, workers: int = 2) -> dict:
    """Generate a small synthetic data set, extract RGB + flow, and report what was made.

    Every step is resumable: a second run reuses what the first one finished.
    """
    out = Path(out)
    start = time.perf_counter()
    print(f"[1/2] generating synthetic videos in {out / 'videos'}")
    synth = SynthOptions()
    classes = generate(out / "videos", synth)
    print(f"[2/2] extracting frames and DIS optical flow to {out / 'cache'}")
    options = ExtractOptions(short_side=min(synth.width, synth.height))
    results = extract_all(find_videos(out / "videos"), out / "cache", options, workers=workers)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise RuntimeError(f"extraction failed for {len(failed)} videos, e.g. {failed[0].source}: {failed[0].reason}")
    ids = list_cached(out / "cache")
    frames = sum(read_manifest(out / "cache", v)["num_frames"] for v in ids)
    summary = {"classes": classes, "videos": len(ids), "frames": frames,
               "seconds": round(time.perf_counter() - start, 1)}
    print(f"done in {summary['seconds']} s: {len(classes)} classes ({', '.join(classes)}), "
          f"{len(ids)} videos, {frames} frames cached in {out / 'cache'}")
    return summary
