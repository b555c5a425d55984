"""Helpers shared by the benchmark scripts: the real-data location, medians, tables and --json."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from twostream.table import markdown

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# the flow methods the benchmarks compare, by the name their tables print: (extract's method, its params)
FLOWS = {
    "dis-ultrafast": ("dis", {"preset": "ultrafast"}), "dis-fast": ("dis", {"preset": "fast"}),
    "dis-medium": ("dis", {"preset": "medium"}), "farneback": ("farneback", {}), "tvl1": ("tvl1", {}),
    "tvl1-torch": ("tvl1-torch", {}), "brox": ("brox", {}),
}
SLOW = ("tvl1", "tvl1-torch", "brox")  # timed once per pair, not --repeats times


def data_dir(sub: str) -> Path:
    path = DATA / sub
    if not path.is_dir():
        sys.exit(f"benchmark data not found at {path} (CI and the developers' machines have ../shared/data)")
    return path


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--json", help="also write the figures to this JSON file")
    return p


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A Markdown table, ready to paste into the README."""
    fmt = [lambda v: f"{v:.3f}" if isinstance(v, float) and abs(v) < 10 else
           (f"{v:.0f}" if isinstance(v, float) else str(v))]
    return markdown(headers, [[fmt[0](v) for v in row] for row in rows])


def finish(args: argparse.Namespace, figures: dict, text: str) -> None:
    """Prints the tables under the machine they were measured on; ``--json`` gets the figures and the machine."""
    here = machine()
    print(f"Machine: {here}\n\n{text}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": here, **figures}, indent=1))


def machine() -> str:
    """The machine the figures were measured on, as far as they depend on it: CPU model, torch's threads,
    the widest vector unit, and whether bfloat16 is native (which decides a run's precision)."""
    import platform

    import torch

    from twostream.precision import cpu_flags, cpu_has_native_bf16

    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")),
                platform.processor() or platform.machine())
    flags = cpu_flags(info)
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else None
    bf16 = "native bfloat16" if cpu_has_native_bf16() else "no native bfloat16"
    return ", ".join(x for x in (name, f"{torch.get_num_threads()} threads", vector, bf16) if x)


def middlebury_pairs() -> list[tuple[str, "np.ndarray", "np.ndarray", "np.ndarray"]]:
    """The Middlebury pairs with ground truth: (name, grey frame 10, grey frame 11, flow ``float32[H, W, 2]``)."""
    import cv2

    from twostream.flow.middlebury import read_flo

    root = data_dir("middlebury")
    seqs = sorted(d for d in root.iterdir() if (d / "flow10.flo").exists())
    return [(d.name, cv2.imread(str(d / "frame10.png"), cv2.IMREAD_GRAYSCALE),
             cv2.imread(str(d / "frame11.png"), cv2.IMREAD_GRAYSCALE), read_flo(d / "flow10.flo")) for d in seqs]
