"""Prediction on this machine: seconds per clip with the full 25 x 10 test protocol (both streams) and the
peak resident memory of a `twostream predict` process, for the demo's models (112 px) and CNN-M at the
paper's 224 px (L = 10); live stream mode (frames/s unpaced; paced at 25 frames/s: drops and the latency
from a frame to the label that includes it); `twostream check` throughput on the real clips; and
onnxruntime against PyTorch for one position's ten crops. Needs ../shared/data/clips/ucf101.

    python benchmarks/predict.py [--json FILE] [--demo demo-run] [--stream-frames 250] [--every 5]

The demo's models come from `make demo` (trained here first if --demo has none); the 224 px runs are
trained for one iteration on generated 340x256 videos (their speed, not their accuracy, is measured).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import data_dir, finish, median_ms, parser, table
from twostream import Recognizer
from twostream.check import check_all
from twostream.config import load_config
from twostream.demo import run_demo
from twostream.export import export_runs
from twostream.extract import ExtractOptions, extract_all
from twostream.runs import RunDir, load_run
from twostream.sources import find_videos
from twostream.stream import run_stream
from twostream.synth import SynthOptions, generate
from twostream.train import train
from twostream.video import read_video, write_video


def paper_size_runs(root: Path) -> list[Path]:
    """A spatial and a temporal CNN-M at 224 px (L = 10, 25 test positions), one iteration each."""
    generate(root / "videos", SynthOptions(videos_per_class=2, frames=24, width=340, height=256), progress=False)
    extract_all(find_videos(root / "videos"), root / "cache", ExtractOptions(short_side=0), workers=2, progress=False)
    runs = []
    for stream in ("spatial", "temporal"):
        run = root / stream
        cfg = load_config(None, ["tasks.0.name=synth", f"tasks.0.splits={root / 'videos'}", f"tasks.0.cache={root / 'cache'}",
                                 f"input.stream={stream}", "input.crop=224", "input.length=10", "input.test_positions=25",
                                 "optim.batch_size=2", "optim.micro_batch=2", "optim.iterations=1", "optim.milestones=[10]",
                                 "run.workers=0", "run.val_every=0", "run.checkpoint_every=1"])
        train(cfg, run, progress=False)
        runs.append(run)
    return runs


def seconds_per_clip(runs: list[Path], clips: list[Path]) -> float:
    rec = Recognizer.load(runs, device="cpu", positions=25)
    rec.predict(clips[0])  # warm-up: the first call pays for one-off set-up
    times = []
    for clip in clips:
        start = time.perf_counter()
        rec.predict(clip)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# the child reads its own high-water mark as it exits: rusage's ru_maxrss (os.wait4) starts from the
# parent's resident size at the fork (Linux carries it over an exec), so it reported this script's size
_PEAK = ("import atexit, sys\n"
         "from pathlib import Path\n"
         "def peak():\n"
         "    hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
         "    Path(sys.argv[1]).write_text(hwm.split()[1])\n"
         "atexit.register(peak)\n"
         "from twostream.cli import main\n"
         "sys.exit(main(sys.argv[2:]))\n")


def peak_rss_mb(runs: list[Path], clip: Path) -> float:
    """Peak resident memory (VmHWM) of one `twostream predict` process on one clip."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "hwm"
        done = subprocess.run([sys.executable, "-c", _PEAK, str(report), "predict", str(clip), *map(str, runs),
                               "--device", "cpu"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if done.returncode:
            raise SystemExit(f"twostream predict failed on {clip} (exit {done.returncode})")
        return int(report.read_text()) / 1024  # kB


def onnx_vs_torch(runs: list[Path], out: Path, repeats: int) -> list[list]:
    import onnxruntime as ort

    rows = []
    for run_dir, path in zip(runs, export_runs([load_run(r) for r in runs], [str(r) for r in runs], out, "onnx")):
        run = load_run(run_dir)
        o, task = run.config.input, run.config.tasks[0].name
        x = torch.randn(10, o.channels, o.crop, o.crop)  # one position's ten crops
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        with torch.no_grad():
            torch_ms = median_ms(lambda: torch.softmax(run.model(x, task), 1), repeats)
        ort_ms = median_ms(lambda: session.run(None, {name: x.numpy()}), repeats)
        rows.append([o.stream, o.crop, f"{torch_ms:.1f}", f"{ort_ms:.1f}", f"{torch_ms / ort_ms:.2f}"])
    return rows


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--demo", default="demo-run", help="the demo's output folder (`make demo`)")
    p.add_argument("--stream-frames", type=int, default=250)
    p.add_argument("--every", type=int, default=5, help="stream mode: score every K frames")
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args()
    clips = sorted(find_videos(data_dir("clips/ucf101")), key=lambda v: v[0])
    clip_paths = [path for _, path in clips]
    demo = Path(args.demo)
    if not RunDir(demo / "runs" / "temporal").checkpoint.exists():
        run_demo(demo)
    demo_runs = [demo / "runs" / "spatial", demo / "runs" / "temporal"]
    figures: dict = {"threads": torch.get_num_threads()}
    text = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paper_runs = paper_size_runs(tmp / "paper")
        rows = []
        for name, runs in (("demo (CNN-M 112 px)", demo_runs), ("CNN-M 224 px, L = 10", paper_runs)):
            s = seconds_per_clip(runs, clip_paths[:4])
            mb = peak_rss_mb(runs, clip_paths[0])
            figures[name] = {"seconds_per_clip": s, "peak_rss_mb": mb}
            rows.append([name, f"{s:.2f}", f"{mb:.0f}"])
        text.append(table(["models (both streams, 25 x 10 crops)", "s per clip (real UCF-101 clip)",
                           "peak RSS of `twostream predict`, MB"], rows))

        frames, _ = read_video(clip_paths[0], short_side=None)
        reps = -(-args.stream_frames // len(frames))
        live = tmp / "live.mp4"  # a real clip looped to --stream-frames frames at 25 frames/s
        write_video(live, np.concatenate([frames, frames[::-1]] * reps)[:args.stream_frames], fps=25)
        rec = Recognizer.load(demo_runs, device="cpu")
        rows = []
        for paced in (False, True):
            summary = run_stream(rec, str(live), every=args.every, pace=paced, echo=lambda _: None)
            key = "paced at 25 frames/s" if paced else "unpaced (as fast as it goes)"
            figures[f"stream {key}"] = {"fps": summary.fps, "dropped": summary.dropped, "labels": summary.labels,
                                        "latency_median_ms": summary.latency(0.5) * 1000,
                                        "latency_p95_ms": summary.latency(0.95) * 1000}
            rows.append([key, summary.frames, f"{summary.fps:.1f}", summary.dropped, summary.labels,
                         f"{summary.latency(0.5) * 1000:.0f}", f"{summary.latency(0.95) * 1000:.0f}"])
        text.append(table([f"stream mode, demo models, scored every {args.every} frames", "frames", "frames/s",
                           "dropped", "labels", "latency median ms", "latency p95 ms"], rows))

        start = time.perf_counter()
        results = check_all(clips, workers=2, progress=False)
        seconds = time.perf_counter() - start
        checked = sum(r.frames for r in results)
        figures["check"] = {"frames": checked, "seconds": seconds, "fps": checked / seconds}
        text.append(table(["twostream check (2 workers)", "videos", "frames", "frames/s"],
                          [["real UCF-101 clips", len(results), checked, f"{checked / seconds:.0f}"]]))

        rows = onnx_vs_torch(paper_runs, tmp / "onnx", args.repeats)
        figures["onnx_vs_torch"] = rows
        text.append(table(["CNN-M, one position's 10 crops", "input", "PyTorch ms", "onnxruntime ms",
                           "onnxruntime speed-up"], rows))
    finish(args, figures, "\n\n".join(text))


if __name__ == "__main__":
    main()
