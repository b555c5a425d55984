"""Flow accuracy on the Middlebury pairs: mean end-point error per method (and the worst pair), the extra
error of the JPEG codec, and median ms per pair; then the speed at 340x256 (a real UCF-101 frame pair) of
OpenCV's TV-L1 per pair beside the batched PyTorch TV-L1 and Brox at batch 1, 8 and 32, in the same run,
on the CPU (and on CUDA when present). Needs ../shared/data/middlebury and clips/ucf101.

    python benchmarks/flow_accuracy.py [--json FILE] [--methods dis-fast,tvl1] [--repeats 3] [--batches 1,8,32]
"""

from __future__ import annotations

import statistics

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
        speed = batched_speed([int(b) for b in args.batches.split(",")])
        figures["speed_340x256"] = speed
        text += "\n\n" + table(["340x256 (a real UCF-101 pair)", "device", "batch", "ms per pair"],
                                 [[r["method"], r["device"], r["batch"], f"{r['ms_per_pair']:.0f}"] for r in speed])
    finish(args, figures, text)


def batched_speed(batches: list[int]) -> list[dict]:
    """ms per pair of OpenCV's TV-L1 (one pair at a time) and of tvl1-torch at each batch size (pairs of
    consecutive frames of a real clip at 340x256), side by side."""
    frames, _ = read_video(sorted(find_videos(data_dir("clips/ucf101")))[0][1], short_side=256)
    grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames[: max(batches) + 1]])
    rows = [{"method": "tvl1 (OpenCV)", "device": "cpu", "batch": 1,
             "ms_per_pair": median_ms(lambda: build_flow("tvl1")(grey[0], grey[1]), 1)}]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for name, est in (("tvl1-torch", TVL1Torch(device=device)),
                          ("tvl1-torch, compiled", TVL1Torch(device=device, compile=True)),
                          ("brox", BroxTorch(device=device))):
            for b in batches:
                a, n = torch.from_numpy(grey[:b]), torch.from_numpy(grey[1:b + 1])
                est.batch(a, n)  # warm-up at this batch size (and the one-off compilation for it)
                ms = median_ms(lambda: est.batch(a, n).cpu(), 1 if device == "cpu" else 3)
                rows.append({"method": name, "device": device, "batch": b, "ms_per_pair": ms / b})
    return rows


if __name__ == "__main__":
    main()
