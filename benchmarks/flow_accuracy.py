"""Flow accuracy on the Middlebury pairs: mean end-point error per method (and the worst pair), the extra
error of the JPEG codec, and median ms per pair; then the speed at 340x256 of OpenCV's TV-L1 one pair at a
time beside the batched PyTorch TV-L1 and Brox at batch 1, 8 and 32, over the same real UCF-101 frame
pairs (taken along the clips), in the same run, on the CPU (and on CUDA when present). Needs ../shared/data/middlebury and clips/ucf101.

    python benchmarks/flow_accuracy.py [--json FILE] [--methods dis-fast,tvl1] [--repeats 3] [--batches 1,8,32]
"""

from __future__ import annotations

import statistics
import time

import cv2
import numpy as np
import torch

from _common import FLOWS, SLOW, data_dir, finish, median_ms, middlebury_pairs, parser, table
from twostream.flow import build_flow
from twostream.flow.codec import FlowCodec
from twostream.flow.middlebury import endpoint_error
from twostream.flow.variational import BroxTorch, TVL1Torch
from twostream.sources import find_videos
from twostream.video import read_video


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--methods", default=",".join(FLOWS))
    p.add_argument("--repeats", type=int, default=3, help="timing repeats per pair (the TV-L1s: 1)")
    p.add_argument("--batches", default="1,8,32", help="tvl1-torch batch sizes to time at 340x256 ('' skips)")
    args = p.parse_args()
    codec = FlowCodec()
    pairs = middlebury_pairs()
    figures, rows = {"threads": cv2.getNumThreads(), "pairs": [name for name, *_ in pairs], "methods": {}}, []
    for name in args.methods.split(","):
        method, params = FLOWS[name]
        est = build_flow(method, **params)
        epe, epe_codec, ms = [], [], []
        for _seq, a, b, gt in pairs:
            flow = est(a, b)
            epe.append(endpoint_error(flow, gt))
            epe_codec.append(endpoint_error(codec.decode(*codec.encode(flow)), gt))
            ms.append(median_ms(lambda: est(a, b), 1 if method in SLOW else args.repeats))
        fig = {"epe": statistics.mean(epe), "epe_after_codec": statistics.mean(epe_codec),
               "codec_extra": statistics.mean(epe_codec) - statistics.mean(epe),
               "ms_per_pair": statistics.median(ms), "epe_per_pair": dict(zip(figures["pairs"], epe))}
        figures["methods"][name] = fig
        worst = max(fig["epe_per_pair"], key=fig["epe_per_pair"].get)
        rows.append([name, fig["epe"], f"{fig['epe_per_pair'][worst]:.3f} ({worst})", fig["epe_after_codec"],
                     fig["codec_extra"], f"{fig['ms_per_pair']:.1f}"])
    h, w = pairs[0][1].shape
    text = table(["method", "EPE px", "worst pair", f"EPE after codec (+-{codec.bound:g}, q{codec.quality})",
                  "codec adds", f"ms/pair (Middlebury ~{w}x{h}, {cv2.getNumThreads()} threads)"], rows)
    if args.batches:
        batches = [int(b) for b in args.batches.split(",")]
        speed = batched_speed(batches)
        figures["speed_340x256"] = speed
        text += "\n\n" + table([f"340x256, the same {max(batches)} real UCF-101 pairs", "device", "batch",
                                "ms per pair"],
                               [[r["method"], r["device"], r["batch"], f"{r['ms_per_pair']:.0f}"] for r in speed])
    finish(args, figures, text)


def real_pairs(count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` pairs of consecutive grey frames ``uint8[count, 256, 340]``, taken evenly along the real
    clips in turn (mid-clip motion: the first frames of a clip are often still, where TV-L1 stops at once)."""
    clips = [read_video(path, short_side=256)[0] for _, path in sorted(find_videos(data_dir("clips/ucf101")))]
    per_clip = -(-count // len(clips))
    firsts, seconds = [], []
    for k in range(count):
        frames = clips[k % len(clips)]
        t = (k // len(clips) + 1) * (len(frames) - 1) // (per_clip + 1)
        grey = [cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (340, 256)) for f in frames[t:t + 2]]
        firsts.append(grey[0])
        seconds.append(grey[1])
    return np.stack(firsts), np.stack(seconds)


def batched_speed(batches: list[int]) -> list[dict]:
    """ms per pair over the same ``max(batches)`` real pairs at 340x256: OpenCV's TV-L1 one pair at a time,
    beside the PyTorch TV-L1 (eager and compiled) and Brox at each batch size, in the same run, on the CPU
    (and on CUDA when present)."""
    first, second = real_pairs(max(batches))
    n = len(first)

    def per_pair(fn) -> float:
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) * 1000 / n

    ocv = build_flow("tvl1")
    rows = [{"method": "tvl1 (OpenCV)", "device": "cpu", "batch": 1,
             "ms_per_pair": per_pair(lambda: [ocv(a, b) for a, b in zip(first, second)])}]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for name, est in (("tvl1-torch", TVL1Torch(device=device)),
                          ("tvl1-torch, compiled", TVL1Torch(device=device, compile=True)),
                          ("brox", BroxTorch(device=device))):
            for b in batches:
                est.batch(first[:b], second[:b])  # warm-up at this batch size (and the one-off compilation for it)
                ms = per_pair(lambda: [est.batch(first[i:i + b], second[i:i + b]).cpu() for i in range(0, n, b)])
                rows.append({"method": name, "device": device, "batch": b, "ms_per_pair": ms})
    return rows


if __name__ == "__main__":
    main()
