"""``twostream <command>``: a thin front end over the library's functions."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from pathlib import Path


from .data.splits import KINDS
from .devices import DEVICES
from .cli_models import add_model_commands
from .errors import UserError
from .extract import ExtractOptions
from .extract_device import BATCH_PAIRS
from .flow import DEVICE_METHODS, METHODS as FLOW_METHODS
from .flow.dis import DEFAULT_PRESET
from .flow.dis import PRESETS as DIS_PRESETS
from .fusion import FIT_PARTS, METHODS as FUSION_METHODS
from .runs import PARTS


def _cmd_extract(args: argparse.Namespace) -> int:
    from .extract import extract_all, write_report
    from .sources import parse_shard, scan_videos, shard

    videos, not_videos = scan_videos(args.src)
    if args.shard:
        videos = shard(videos, *parse_shard(args.shard))
    params = json.loads(args.flow_params) if args.flow_params else {}
    if args.flow == "dis" and args.preset:
        params.setdefault("preset", args.preset)
    options = ExtractOptions(flow_method=args.flow, flow_params=params, short_side=args.short_side,
                             bidirectional=args.bidirectional, bound=args.bound,
                             flow_quality=args.quality, rgb_quality=args.rgb_quality,
                             accept_truncated=args.accept_truncated, verify=not args.no_verify)
    if args.device is not None:
        from .extract_device import extract_on_device

        results = extract_on_device(videos, args.out, options, args.device,
                                    BATCH_PAIRS if args.batch_pairs is None else args.batch_pairs,
                                    workers=args.workers, overwrite=args.overwrite, progress=not args.quiet)
    elif args.batch_pairs is not None:
        raise UserError("--batch-pairs needs --device (the batched path of the PyTorch flows)")
    else:
        results = extract_all(videos, args.out, options, workers=args.workers, overwrite=args.overwrite,
                              progress=not args.quiet)
    if args.report:
        write_report(results, args.report, not_videos)
    failed = [r for r in results if r.status == "failed"]
    ok = sum(r.status == "ok" for r in results)
    skipped = sum(r.status == "skipped" for r in results)
    print(f"{ok} extracted, {skipped} already complete, {len(failed)} failed -> {args.out}")
    for r in results:
        if r.status == "ok" and r.reason:
            print(f"{r.video_id}: {r.reason}")
    return _report_problems(not_videos, failed)


def _report_problems(not_videos: list[tuple[str, str]], failed: list) -> int:
    """The paths that are not videos and the videos that failed, one line each on stderr; exit status."""
    for path, why in not_videos:
        print(f"SKIPPED {path}: {why}", file=sys.stderr)
    for r in failed:
        print(f"FAILED {r.source}: {r.reason}", file=sys.stderr)
    return 1 if failed else 0


def _cmd_check(args: argparse.Namespace) -> int:
    from .check import check_all
    from .extract import write_report
    from .sources import scan_videos

    videos, not_videos = scan_videos(args.src)
    start = time.perf_counter()
    results = check_all(videos, args.short_side, args.accept_truncated, args.workers, not args.quiet)
    seconds = time.perf_counter() - start
    if args.report:
        write_report(results, args.report, not_videos)
    failed = [r for r in results if r.status == "failed"]
    frames = sum(r.frames for r in results)
    print(f"{len(results) - len(failed)} readable, {len(failed)} not, {len(not_videos)} not videos; "
          f"{frames} frames in {seconds:.1f} s ({frames / max(seconds, 1e-9):.0f} frames/s)")
    return _report_problems(not_videos, failed)


def _cmd_info(args: argparse.Namespace) -> int:
    from .cache import leftovers, list_cached, read_manifest, verify_unit, without_manifest
    from .cache_size import cache_size

    if not Path(args.cache).is_dir():
        raise UserError(f"{args.cache}: no such cache folder")
    ids, good_ids = list_cached(args.cache), []
    bad = [f"{vid}: packs without a manifest" for vid in without_manifest(args.cache)]
    for vid in ids:  # every unit is looked at: one bad unit does not hide the others
        try:
            m = read_manifest(args.cache, vid)
        except ValueError as exc:
            bad.append(str(exc))
            continue
        problems = verify_unit(args.cache, vid) if args.verify else []
        if problems:
            bad.append(f"{problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
            continue
        good_ids.append(vid)
        if args.verbose:
            print(f"{vid}: {m['num_frames']} frames {m['width']}x{m['height']} @ {m['fps']:.2f} fps, "
                  f"flow {m['flow']['method']}")
    size = cache_size(args.cache, good_ids)
    print(f"{args.cache}: {size.videos} videos, {size.frames} frames, "
          f"{(size.rgb_bytes + size.flow_bytes) / 2**20:.1f} MiB ({size.rgb_per_frame / 1000:.1f} KB per RGB frame, "
          f"{size.flow_per_field / 1000:.1f} KB per flow field)" + (" (every JPEG checked)" if args.verify else ""))
    for line in bad:
        print(f"BAD {line}", file=sys.stderr)
    tmp = leftovers(args.cache)
    if tmp:
        print(f"{len(tmp)} temporary unit folders (a killed run's, or one being written; the next extract of "
              f"their videos removes them): {', '.join(str(p) for p in tmp[:5])}", file=sys.stderr)
    return 1 if bad else 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from .synth import SynthOptions, generate

    options = SynthOptions(appearances=args.appearances, motions=args.motions,
                           videos_per_class=args.videos_per_class, frames=args.frames,
                           width=args.size[0], height=args.size[1], seed=args.seed,
                           camera_jitter=args.camera_jitter)
    classes = generate(args.out, options, progress=not args.quiet)
    print(f"{len(classes)} classes x {options.videos_per_class} videos -> {args.out} (UCF-101 layout, split 1)")
    return 0


def _cmd_splits(args: argparse.Namespace) -> int:
    from .data.splits import available_folds, load_split, missing_videos

    folds = [args.fold] if args.fold else available_folds(args.kind, args.path) or [1]
    status = 0
    for fold in folds:
        split = load_split(args.kind, args.path, fold)
        if args.first_classes:
            split = split.restrict(split.classes[:args.first_classes])
        print(f"{split.name}: {len(split.classes)} classes, {len(split.train)} train, {len(split.test)} test")
        print(textwrap.fill(" ".join(split.classes), 100, initial_indent="  ", subsequent_indent="  "))
        if args.cache:
            for part in ("train", "test"):
                missing = missing_videos(split.samples(part), args.cache)
                if missing:
                    status = 1
                    print(f"  {len(missing)} {part} videos missing from {args.cache}:")
                    print("".join(f"    {v}\n" for v in missing), end="")
                else:
                    print(f"  every {part} video is in {args.cache}")
    return status


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out, iterations=args.iterations, workers=args.workers)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .train import train

    cfg = load_config(args.config, args.overrides)
    run = Path(args.run) if args.run else Path("runs") / Path(args.config).stem
    last = train(cfg, run, resume=args.resume, progress=not args.quiet)
    if last:
        print(f"{run}: iteration {last['iteration']}, loss {last['loss']:.4f}, accuracy {last['accuracy']:.3f}"
              + "".join(f", {k} {v:.3f}" for k, v in last.items() if k.startswith("val_")))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate
    from .report import write_report
    from .runs import run_of, task_cache
    from .scores import read_scores

    written = evaluate(args.run, args.split, positions=args.positions, workers=args.workers,
                       device=args.device, limit=args.limit, progress=not args.quiet)
    for task, path in written.items():
        if not args.no_report:
            scores = read_scores(path, complete=False)
            page = write_report(run_of(args.run)[0].report(task, args.split),
                                f"{scores.meta['stream']} stream, {task}, {args.split} split", scores,
                                task_cache(scores.meta))
            print(f"report: {page}")
    return 0


def _cmd_fuse(args: argparse.Namespace) -> int:
    from .fusion import fuse, needs_training_scores
    from .report import ACCURACY_HEADERS, accuracy_rows, write_report
    from .runs import fused_path, report_beside, task_cache, training_scores_for
    from .scores import read_scores, write_scores

    test = (read_scores(args.spatial), read_scores(args.temporal))
    train = None
    if needs_training_scores(args.method, args.weight):
        pairs = []
        for given, test_file, scores in ((args.train_spatial, args.spatial, test[0]),
                                         (args.train_temporal, args.temporal, test[1])):
            pairs.append((given, read_scores(given)) if given else training_scores_for(test_file, scores, args.fit_on))
            print(f"{args.fit_on} scores for {test_file}: {pairs[-1][0]}")
        train = (pairs[0][1], pairs[1][1])
    fused, info = fuse(args.method, test, train, args.weight)
    out = Path(args.out or fused_path(Path(args.spatial).parent, args.method))
    write_scores(out, fused)
    rows = accuracy_rows([("spatial", test[0]), ("temporal", test[1]), (f"fusion ({args.method})", fused)])
    for name, top1, top5, mean_class in rows:
        print(f"{name:>20}: top-1 {top1}  top-5 {top5}  mean class {mean_class}")
    if "weight" in info:
        print(f"spatial weight {info['weight']:.2f}")
    if "C" in info:
        print(f"SVM ({info['multi_class']}) C {info['C']:g}, chosen by cross-validation on the {info['fitted_on']} scores")
    if not args.no_report:
        page = write_report(report_beside(out), f"Fusion by {args.method}", fused, task_cache(test[0].meta),
                            [("streams and fusion", ACCURACY_HEADERS, rows)])
        print(f"report: {page}")
    print(f"fused scores: {out}")
    return 0


def _cmd_table(args: argparse.Namespace) -> int:
    from .table import markdown, splits_table

    headers, rows, _ = splits_table(args.spatial, args.temporal, args.task, not args.no_evaluate,
                                    workers=args.workers, progress=not args.quiet)
    text = markdown(headers, rows)
    print(text)
    if args.out:
        from .io import atomic_write_text

        atomic_write_text(args.out, text + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twostream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("extract", help="decode videos and cache RGB frames + optical flow per video")
    p.add_argument("src", help="folder of videos (recursive) or a text file listing video paths")
    p.add_argument("out", help="cache folder")
    p.add_argument("--flow", default=ExtractOptions.flow_method, choices=sorted(FLOW_METHODS))
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(DIS_PRESETS),
                   help=f"DIS preset (default {DEFAULT_PRESET})")
    p.add_argument("--flow-params", help='JSON of estimator parameters, e.g. \'{"winsize": 21}\'')
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.add_argument("--device", choices=DEVICES,
                   help=f"run a PyTorch flow ({', '.join(DEVICE_METHODS)}) on this device in batches of frame pairs "
                        "(auto: CUDA when present, the local rank's GPU under torchrun); workers decode, encode, write")
    p.add_argument("--batch-pairs", type=int, help=f"frame pairs per batch on --device (default {BATCH_PAIRS})")
    p.add_argument("--shard", help="I/N: process only shard I of N (0-based); auto: this process's share under "
                                   "torchrun (RANK/WORLD_SIZE) or a Slurm array (SLURM_ARRAY_TASK_ID/COUNT)")
    p.add_argument("--short-side", type=int, default=ExtractOptions.short_side,
                   help=f"rescale so the short side is this (0 keeps; default {ExtractOptions.short_side})")
    p.add_argument("--bidirectional", action="store_true", help="also store backward flow")
    p.add_argument("--bound", type=float, default=ExtractOptions.bound,
                   help=f"flow clipped to +-bound px before JPEG (default {ExtractOptions.bound:g})")
    p.add_argument("--quality", type=int, default=ExtractOptions.flow_quality, help="flow JPEG quality")
    p.add_argument("--rgb-quality", type=int, default=ExtractOptions.rgb_quality, help="RGB JPEG quality")
    p.add_argument("--overwrite", action="store_true", help="re-extract complete units too")
    p.add_argument("--accept-truncated", action="store_true",
                   help="keep the frames of files shorter than their container declares (recorded in the manifest)")
    p.add_argument("--no-verify", action="store_true",
                   help="on a re-run, do not check complete units' JPEGs against their checksums")
    p.add_argument("--report", help="write a JSON report here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser("check", help="decode every video without flow; list those extract would refuse, with why")
    p.add_argument("src", help="folder of videos (recursive) or a text file listing video paths")
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.add_argument("--short-side", type=int, default=ExtractOptions.short_side, help="as extract's")
    p.add_argument("--accept-truncated", action="store_true", help="as extract's")
    p.add_argument("--report", help="write a JSON report here (extract's format)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("info", help="summarise a cache; list its bad units (exit status 1 if any)")
    p.add_argument("cache")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--verify", action="store_true", help="check every JPEG against its checksum")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("synth", help="generate a synthetic action data set (real videos, UCF-101 layout)")
    p.add_argument("out")
    p.add_argument("--appearances", type=int, default=2, help="colours at equal luminance (default 2)")
    p.add_argument("--motions", type=int, default=3, help="first N of Up Down Rotate Zoom Oscillate Right Left")
    p.add_argument("--videos-per-class", type=int, default=12)
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--size", type=int, nargs=2, default=(160, 128), metavar=("W", "H"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--camera-jitter", type=float, default=0.0, help="px std of a per-frame camera shake")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("splits", help="print the classes and train/test counts of a split")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("path", help="split-file folder (ucf101, hmdb51), class-folder root, or CSV file")
    p.add_argument("--fold", type=int, help="1..3 (default: every fold present)")
    p.add_argument("--cache", help="also list the videos missing from this cache")
    p.add_argument("--first-classes", type=int, default=0, help="only the first N classes (e.g. 9: UCF-9)")
    p.set_defaults(func=_cmd_splits)

    p = sub.add_parser("train", help="train a stream: twostream train CONFIG [key=value ...]")
    p.add_argument("config", help="YAML config (see configs/)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optim.lr=0.001 tasks.0.fold=2")
    p.add_argument("--run-dir", dest="run", help="run folder (default runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="score a run's videos: 25 frames x 10 crops, softmax averaged")
    p.add_argument("run", help="run folder (or checkpoint file)")
    p.add_argument("--split", default="test", choices=PARTS)
    p.add_argument("--positions", type=int, help="frames/stacks per video (default: the config's, 25)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default=DEVICES[0], choices=DEVICES)
    p.add_argument("--limit", type=int, help="score only the first N videos")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("fuse", help="fuse a spatial and a temporal score file")
    p.add_argument("spatial", help="spatial stream's test score file (as `twostream evaluate` writes it)")
    p.add_argument("temporal", help="temporal stream's test score file")
    p.add_argument("--method", default=FUSION_METHODS[0], choices=FUSION_METHODS)
    p.add_argument("--weight", type=float, help="spatial weight for --method weighted (default: chosen on train)")
    p.add_argument("--train-spatial", help="training-split score file (default: the training scores of "
                   "SPATIAL's run and task, found by its metadata)")
    p.add_argument("--train-temporal", help="training-split score file (default: likewise for TEMPORAL)")
    p.add_argument("--fit-on", default=FIT_PARTS[0], choices=FIT_PARTS,
                   help="fit on the training split's scores, or on the held-out fusion groups' (tasks.N.fusion_groups)")
    p.add_argument("--out", help="fused score file (default: beside SPATIAL, named by the method)")
    p.add_argument("--no-report", action="store_true")
    p.set_defaults(func=_cmd_fuse)

    p = sub.add_parser("table", help="the paper's Table 4 over splits 1-3 (evaluates runs without scores)")
    p.add_argument("--spatial", nargs="+", required=True, help="spatial run folders, one per split")
    p.add_argument("--temporal", nargs="+", required=True, help="temporal run folders, same order")
    p.add_argument("--task", help="task name, for multi-task runs")
    p.add_argument("--no-evaluate", action="store_true", help="fail instead of evaluating missing scores")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", help="also write the Markdown table here")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_table)

    add_model_commands(sub)  # predict, export: cli_models.py

    p = sub.add_parser("demo", help="the end-to-end demo on generated videos (what `make demo` runs)")
    p.add_argument("out", nargs="?", default="demo-run")
    p.add_argument("--iterations", type=int, default=250, help="training iterations per stream")
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command. A ``UserError`` (bad input) is one line on stderr and exit status 2; any other
    exception is a bug and propagates with its traceback."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse gives a positional list only the tokens before the first option: `train CONFIG --run-dir R
    # key=value` leaves key=value over; an override is an override wherever it stands on the line
    if hasattr(args, "overrides"):
        args.overrides += [a for a in extra if "=" in a and not a.startswith("-")]
        extra = [a for a in extra if a not in args.overrides]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except UserError as exc:
        print(f"twostream {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
