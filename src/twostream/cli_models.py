"""The commands that use trained runs: ``twostream predict`` (clips, timelines, live streams) and
``twostream export`` (ONNX / TorchScript). ``cli.py`` adds them to its parser."""

from __future__ import annotations

import argparse
import json
import sys

from .devices import DEVICES
from .errors import UserError
from .export import FORMATS as EXPORT_FORMATS
from .flow import METHODS as FLOW_METHODS


def _cmd_predict(args: argparse.Namespace) -> int:
    from .predict import Recognizer
    from .runs import is_run
    from .timeline import Windows, plot_timelines

    runs = [p for p in args.paths if is_run(p)]
    clips = [p for p in args.paths if not is_run(p)]
    if not runs:
        raise UserError("name at least one run folder (or checkpoint file) after the clips")
    if not clips and not args.stream:
        raise UserError("name at least one clip (a video file), or --stream SOURCE")
    rec = Recognizer.load(runs, args.device, args.task, args.positions, args.force, flow_method=args.flow,
                          bound=args.bound, flow_quality=args.quality)
    if args.stream:
        from .stream import run_stream

        summary = run_stream(rec, args.stream, every=args.every, out=args.out, max_frames=args.max_frames,
                             json_lines=args.json, pace=not args.unpaced)
        print(f"{summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} frames/s), {summary.dropped} "
              f"dropped, {summary.labels} labels, latency median {summary.latency(0.5) * 1000:.0f} ms, "
              f"95th percentile {summary.latency(0.95) * 1000:.0f} ms" + (f"; annotated video -> {args.out}" if args.out else ""),
              file=sys.stderr if args.json else sys.stdout)
        return 0
    windows = Windows(args.window, args.stride, args.window_positions)
    timelines, failed = [], 0
    for clip in clips:  # one bad clip is named; the others are still done
        try:
            p = rec.predict(clip)
            tl = rec.timeline(clip, windows) if args.timeline else None
        except ValueError as exc:
            print(f"FAILED {exc}" if str(exc).startswith(clip) else f"FAILED {clip}: {exc}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            print(json.dumps({"clip": clip, "top": [{"class": c, "score": s} for c, s in p.top(args.top)],
                              "runs": {r: s.tolist() for r, s in p.per_run.items()}}
                             | ({"timeline": tl.to_dict(args.top)} if tl else {})))
        else:
            if len(clips) > 1:
                print(f"{clip}:")
            for rank, (name, score) in enumerate(p.top(args.top), 1):
                print(f"{rank}. {name:<30} {score:.3f}")
        if tl:
            timelines.append(tl)
    if timelines:
        plot_timelines(timelines, args.timeline, top=min(args.top, 3))
        if not args.json:
            print(f"timeline -> {args.timeline}")
    return 1 if failed else 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_runs
    from .runs import load_run

    runs, names, failed = [], [], 0
    for name in args.runs:  # a run that is not there is named; the others are still exported
        try:
            runs.append(load_run(name))
            names.append(name)
        except ValueError as exc:
            print(f"FAILED {exc}", file=sys.stderr)
            failed += 1
    if failed and args.fused:
        raise UserError("--fused needs both runs")
    for path in export_runs(runs, names, args.out, args.format, args.fused, args.task) if runs else []:
        print(f"{path} (input spec: {path.with_suffix('.json')})")
    return 1 if failed else 0


def add_model_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify clips with trained runs (scores of several runs averaged)")
    p.add_argument("paths", nargs="+", help="video files, then run folders (e.g. a spatial and a temporal one); "
                                             "folders and .pt files are runs, the rest clips")
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--task", help="task name, for multi-task runs")
    p.add_argument("--positions", type=int, help="frames/stacks (default: the config's, 25)")
    p.add_argument("--device", default=DEVICES[0], choices=DEVICES)
    p.add_argument("--json", action="store_true", help="print JSON (one object per clip, or per label in --stream)")
    p.add_argument("--flow", choices=sorted(FLOW_METHODS), help="flow method for the clips (default: the runs' own)")
    p.add_argument("--bound", type=float, help="flow codec bound (default: the runs' own)")
    p.add_argument("--quality", type=int, help="flow JPEG quality (default: the runs' own)")
    p.add_argument("--force", action="store_true", help="run even with another flow or codec than the runs' training")
    p.add_argument("--timeline", metavar="PNG", help="plot the top classes over sliding windows into this file")
    p.add_argument("--window", type=float, default=2.0, help="timeline window, seconds")
    p.add_argument("--stride", type=float, default=1.0, help="timeline stride, seconds")
    p.add_argument("--window-positions", type=int, default=5, help="positions scored per window (x 10 crops)")
    p.add_argument("--stream", metavar="SOURCE", help="live: a video file, a camera (/dev/video0) or a URL")
    p.add_argument("--every", type=int, default=5, help="--stream: score every K frames")
    p.add_argument("--out", help="--stream: write the video with the current label drawn on it")
    p.add_argument("--max-frames", type=int, default=0, help="--stream: stop after N frames (0: at the end)")
    p.add_argument("--unpaced", action="store_true", help="--stream: read a file as fast as it decodes, not at its "
                                                          "frame rate")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("export", help="write trained runs as ONNX or TorchScript, with their input spec in JSON")
    p.add_argument("runs", nargs="+", help="run folders (or checkpoint files)")
    p.add_argument("--format", default=EXPORT_FORMATS[0], choices=EXPORT_FORMATS)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--fused", action="store_true", help="also one graph of a spatial and a temporal run, averaged")
    p.add_argument("--task", help="task name, for multi-task runs (default: the first)")
    p.set_defaults(func=_cmd_export)
