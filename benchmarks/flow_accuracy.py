"""Flow accuracy on the Middlebury pairs: mean end-point error per method, the extra error of the JPEG
codec, and median ms per pair. Needs ../shared/data/middlebury.

    python benchmarks/flow_accuracy.py [--json FILE] [--methods dis-fast,tvl1] [--repeats 3]
"""

from __future__ import annotations

import statistics

import cv2

from _common import FLOWS, finish, median_ms, middlebury_pairs, parser, table
from twostream.flow import build_flow
from twostream.flow.codec import FlowCodec
from twostream.flow.middlebury import endpoint_error


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--methods", default=",".join(FLOWS))
    p.add_argument("--repeats", type=int, default=3, help="timing repeats per pair (TV-L1: 1)")
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
            ms.append(median_ms(lambda: est(a, b), 1 if method == "tvl1" else args.repeats))
        fig = {"epe": statistics.mean(epe), "epe_after_codec": statistics.mean(epe_codec),
               "codec_extra": statistics.mean(epe_codec) - statistics.mean(epe),
               "ms_per_pair": statistics.median(ms), "epe_per_pair": dict(zip(figures["pairs"], epe))}
        figures["methods"][name] = fig
        rows.append([name, fig["epe"], fig["epe_after_codec"], fig["codec_extra"], f"{fig['ms_per_pair']:.1f}"])
    h, w = pairs[0][1].shape
    text = table(["method", "EPE px", f"EPE after codec (+-{codec.bound:g}, q{codec.quality})",
                  "codec adds", f"ms/pair (Middlebury ~{w}x{h}, {cv2.getNumThreads()} threads)"], rows)
    finish(args, figures, text)


if __name__ == "__main__":
    main()
