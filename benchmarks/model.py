"""Model speed on this machine: forward and training images/s of both streams (CNN-M-2048; ResNet-18
when torchvision is installed) at 224 and 112, in float32 and, on a CPU with native bfloat16 (AVX512_BF16,
AMX), under bfloat16 autocast (``run.bf16_cpu``), side by side; and the GFLOP/s achieved as a share of the
peak of the library the convolutions run on: oneDNN, measured in the same run (and in the same precision)
as the best of large 1x1 convolutions in channels-last. MKL's matmul peak is printed beside it (on some CPUs, e.g. this AMD EPYC, it is far below
oneDNN's, and a share of it would exceed 100 %). A share above 100 % of the reference fails the benchmark
(exit status 1): the reference would not be a peak. Needs no data.

    python benchmarks/model.py [--json FILE] [--batch 32] [--repeats 5] [--threads N]
"""

from __future__ import annotations

import importlib.util

import torch
from torch import nn

from _common import finish, median_ms, parser, table
from twostream.config import ModelConfig
from twostream.data.inputs import STREAMS, InputOptions
from twostream.models import build_model
from twostream.precision import autocast, cpu_has_native_bf16

CPU = torch.device("cpu")


def matmul_peak_gflops(n: int = 2048, repeats: int = 10) -> float:
    """The best of ``repeats`` large float32 matmuls: a peak is what the machine can reach, not its median."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    return max(2 * n**3 / median_ms(lambda: torch.mm(a, b), 1) / 1e6 for _ in range(repeats))


def onednn_peak_gflops(dtype: torch.dtype | None = None, repeats: int = 10) -> float:
    """The best of ``repeats`` large 1x1 convolutions in channels-last (oneDNN's fastest path), in float32
    or under ``dtype``'s autocast: a GEMM-shaped convolution, the reference the network's convolutions (in
    the same precision) are measured against."""
    conv = nn.Conv2d(1024, 1024, 1, bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(32, 1024, 28, 28).contiguous(memory_format=torch.channels_last)
    flop = 2 * 32 * 28 * 28 * 1024 * 1024
    with torch.no_grad(), autocast(CPU, dtype):
        conv(x)
        return max(flop / median_ms(lambda: conv(x), 1) / 1e6 for _ in range(repeats))


def forward_gflop(model: nn.Module, x: torch.Tensor) -> float:
    """Multiply-adds x 2 of the convolutions and linear layers for one forward pass of ``x``."""
    flops = []

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            flops.append(2 * out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1])
        elif isinstance(m, nn.Linear):
            flops.append(2 * out.numel() * m.in_features)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return sum(flops) / 1e9


def measure(model: nn.Module, x: torch.Tensor, repeats: int, dtype: torch.dtype | None) -> tuple[float, float]:
    """Median ms of a forward pass (eval, no grad) and of a training step (forward + backward + SGD), under
    ``dtype``'s autocast (float32 for None) as train_step and evaluate run them."""
    model.eval()
    with torch.no_grad(), autocast(CPU, dtype):
        model(x)
        fwd = median_ms(lambda: model(x), repeats)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    y = torch.zeros(len(x), dtype=torch.long)

    def step():
        opt.zero_grad()
        with autocast(CPU, dtype):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    step()
    return fwd, median_ms(step, repeats)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    precisions = {"float32": None} | ({"bfloat16": torch.bfloat16} if cpu_has_native_bf16() else {})
    peaks = {name: onednn_peak_gflops(dtype) for name, dtype in precisions.items()}
    mkl = matmul_peak_gflops()
    archs = ["cnn_m_2048"] + (["resnet18"] if importlib.util.find_spec("torchvision") else [])
    figures = {"threads": torch.get_num_threads(), "rows": []}
    rows = []
    for arch in archs:
        for stream in STREAMS:
            channels = InputOptions(stream).channels  # 3, or 2L with the default L = 10
            for size in (224, 112):
                for name, dtype in precisions.items():  # side by side: the same model, the same inputs
                    torch.manual_seed(0)
                    model = build_model(arch, {"ucf101": 101}, channels, size, dropout=ModelConfig.dropout,
                                        temporal=stream == "temporal")
                    x = torch.randn(args.batch, channels, size, size)
                    gflop = forward_gflop(model, x) / args.batch
                    fwd_ms, train_ms = measure(model, x, args.repeats, dtype)
                    fwd_ips, train_ips = args.batch / fwd_ms * 1000, args.batch / train_ms * 1000
                    figures["rows"].append({"arch": arch, "stream": stream, "size": size, "precision": name,
                                            "gflop_per_image": gflop, "forward_img_s": fwd_ips,
                                            "train_img_s": train_ips})
                    rows.append([arch, stream, size, name, f"{gflop:.2f}", f"{fwd_ips:.1f}", f"{train_ips:.1f}",
                                 f"{gflop * fwd_ips:.0f}", ""])
    for name, dtype in precisions.items():  # measured again after the models: the machine may have sped up
        peaks[name] = max(peaks[name], onednn_peak_gflops(dtype))
    mkl = max(mkl, matmul_peak_gflops())
    for row, fig in zip(rows, figures["rows"]):
        fig["forward_share_of_peak"] = fig["gflop_per_image"] * fig["forward_img_s"] / peaks[fig["precision"]]
        row[-1] = f"{100 * fig['forward_share_of_peak']:.0f} %"
    figures["onednn_peak_gflops"], figures["mkl_matmul_peak_gflops"] = peaks, mkl
    refs = ", ".join(f"{name} {peak:.0f}" for name, peak in peaks.items())
    text = table(["model", "stream", "input", "precision", "GFLOP/img", "forward img/s", "train img/s",
                  "forward GFLOP/s", f"share of oneDNN peak (GFLOP/s: {refs}; MKL float32 matmul {mkl:.0f})"], rows)
    finish(args, figures, text)
    over = [f"{r[0]} {r[1]} {r[2]} {r[3]}" for r, f in zip(rows, figures["rows"]) if f["forward_share_of_peak"] > 1]
    if over:
        raise SystemExit(f"FAILED: {', '.join(over)} above 100 % of the reference: it is not a peak")


if __name__ == "__main__":
    main()
