"""Real UCF-101 results on this CPU: UCF-9, every clip of the first nine classes (../shared/data/ucf9),
on the official splits. Extracts once, trains the spatial and the temporal CNN-M-2048 from scratch with
configs/ucf9_{spatial,temporal}.yaml, scores the test videos with the test protocol (25 x 10 crops) and the
training videos with --train-positions x 10 crops (for the SVM), fuses, and prints the paper's Table 4
layout (top-1 and mean class accuracy) with the time of every stage.

    python benchmarks/ucf9.py --root DIR [--out ucf9-run] [--splits 1,2,3] [--flow dis-medium] [--json FILE]
        [--splits-dir DIR] [--set KEY=VALUE ...]     # other split lists; overrides for every training
        [--set-spatial KEY=VALUE ...] [--set-temporal KEY=VALUE ...]   # overrides for one stream's trainings
        [--flows dis-ultrafast,dis-fast,farneback]   # + the flow table: temporal top-1 per flow method
        [--options]                                  # + the paper's Table 2 variants on split 1
        [--rgb-qualities 75,85,95 --seeds 2]         # + spatial top-1 against the RGB JPEG quality

--flow picks the main table's flow (and the flow table's and Table 2's base); runs on a flow other than
extract's default carry its name (temporal-split1-farneback), so one OUT holds them all. DIR is what
../shared/data/ucf9/build.sh wrote (DIR/UCF-101/<Class>/*.avi). Every stage resumes: a
complete cache unit is not extracted again, a finished run is not trained again, score files are reused,
and the time each stage took is kept in OUT/times.json so a resumed run still prints it.
--set 'tasks.0.fusion_groups=[23,24,25]' holds those groups' training videos out of both streams' training
(groups 22-25 train in every split) and scores them too: the table adds the SVM fitted on them.
"""

from __future__ import annotations

import json
import time
from argparse import Namespace
from pathlib import Path

from _common import DATA, FLOWS, finish, machine, middlebury_pairs, parser
from twostream.cache_size import cache_size
from twostream.checkpoint import load_checkpoint
from twostream.config import load_config
from twostream.data.inputs import STREAMS
from twostream.extract import ExtractOptions, extract_all
from twostream.flow import DEFAULT_METHOD, build_flow
from twostream.flow.dis import DEFAULT_PRESET
from twostream.flow.middlebury import endpoint_error
from twostream.io import atomic_write_text
from twostream.metrics import mean_class_accuracy, top_k_accuracy
from twostream.runs import RunDir
from twostream.sources import find_videos
from twostream.table import holds_out_groups, markdown, run_scores, splits_table
from twostream.train import train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SPLITS = DATA / "splits" / "ucfTrainTestlist"
SHORT_SIDE = 128  # the recipe's (configs/ucf9_*.yaml): 112 crops from frames of short side 128
RGB_QUALITY = ExtractOptions.rgb_quality  # extract's default (asked of its owner): the main table's RGB
BASE_FLOW = f"{DEFAULT_METHOD}-{DEFAULT_PRESET}"  # extract's default (asked of its owners): the main table's flow
# the paper's Table 2 variants of the temporal stream, as config overrides (the L = 10 flow-stacking run is
# the main table's); bi-directional flow needs a cache with backward flow
OPTIONS = {
    "L = 1": ["input.length=1"], "L = 5": ["input.length=5"],
    "trajectory stacking, L = 10": ["input.stacking=trajectory"],
    "bi-directional, L = 10 (5 + 5)": ["input.bidirectional=true"],
    "no mean subtraction, L = 10": ["input.mean_subtraction=false"],
}


class Stages:
    """Seconds and figures of each stage, kept in ``OUT/times.json`` across resumed runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done = json.loads(path.read_text()) if path.exists() else {}

    def run(self, name: str, fn, skip: bool = False) -> dict:
        """Runs ``fn()`` (a dict of figures) unless ``skip`` and the stage is recorded; adds its seconds and
        the machine it ran on (a resumed run's stages may come from different machines)."""
        if not (skip and name in self.done):
            start = time.perf_counter()
            figures = fn() or {}
            self.done[name] = {**figures, "seconds": round(time.perf_counter() - start, 1), "machine": machine()}
            atomic_write_text(self.path, json.dumps(self.done, indent=1))
        return self.done[name]


def extract(stages: Stages, root: Path, out: Path, flow: str, bidirectional: bool = False,
            rgb_quality: int = RGB_QUALITY) -> Path:
    # the RGB quality is always in the name: a cache made under another default is never taken for this one's
    cache = out / "cache" / f"{flow}{'-bidirectional' if bidirectional else ''}-rgb{rgb_quality}"
    method, params = FLOWS[flow]
    options = ExtractOptions(flow_method=method, flow_params=params, short_side=SHORT_SIDE,
                             bidirectional=bidirectional, rgb_quality=rgb_quality, verify=False)

    def go() -> dict:
        results = extract_all(find_videos(root / "UCF-101"), cache, options, workers=2, progress=False)
        failed = [f"{r.video_id}: {r.reason}" for r in results if r.status == "failed"]
        made = [r for r in results if r.status == "ok"]
        size = cache_size(cache)
        return {"videos": len(results), "failed": failed, "frames": size.frames, "extracted": len(made),
                "extracted_frames": sum(r.frames for r in made), "mb": (size.rgb_bytes + size.flow_bytes) / 1e6,
                "rgb_kb_per_frame": size.rgb_per_frame / 1e3, "flow_kb_per_field": size.flow_per_field / 1e3}

    fig = stages.run(f"extract {cache.name}", go, skip=cache.is_dir())
    if fig["failed"]:
        raise SystemExit(f"{len(fig['failed'])} videos failed to extract: {fig['failed'][:3]}")
    return cache


def recipe(stream: str) -> Path:
    """The CPU recipe of ``stream`` ("spatial" or "temporal"): ``configs/ucf9_<stream>.yaml``."""
    return CONFIGS / f"ucf9_{stream}.yaml"


def stream_overrides(args: Namespace, stream: str) -> list[str]:
    """The command line's overrides for ``stream``'s trainings: ``--set``, then ``--set-<stream>``."""
    return [*args.set, *getattr(args, f"set_{stream}")]


def trained(stages: Stages, args: Namespace, name: str, stream: str, split: int, cache: Path,
            overrides=()) -> Path:
    """The run ``OUT/runs/<name>``, trained (once) with the stream's config, ``--set``, the stream's own
    ``--set-<stream>`` and ``overrides``, in that order (a later one wins)."""
    run = Path(args.out) / "runs" / name
    cfg = load_config(recipe(stream), [
        f"tasks.0.splits={args.splits_dir}", f"tasks.0.fold={split}", f"tasks.0.cache={cache}",
        *stream_overrides(args, stream), *overrides])
    last = RunDir(run)
    def go() -> dict:
        # a training stopped part way (a session's end) resumes from its checkpoint; the stage's minutes are
        # then the last attempt's only, so it records where that attempt began
        begun = load_checkpoint(last.checkpoint, mmap=True)["iteration"] if last.checkpoint.exists() else 0
        metrics = train(cfg, run, resume=begun > 0, progress=False)  # checkpoints are written from iteration 1
        # what ran, not what the config asked: run.bf16_cpu trains in float32 on a CPU without native bfloat16
        return {"iterations": cfg.optim.iterations, "last_train_accuracy": metrics.get("accuracy"),
                "precision": metrics.get("precision"), "samples_per_s": metrics.get("samples_per_s"),
                **({"resumed_at": begun} if begun else {})}

    stages.run(f"train {name}", go, skip=last.checkpoint.exists())
    return run


def run_name(stream: str, split: int, flow: str) -> str:
    """``OUT/runs/<name>`` of a main-table run: the flow is in the name unless it is the default (the
    spatial stream reads only the RGB frames, the same in every cache of one RGB quality)."""
    return f"{stream}-split{split}" + ("" if stream == "spatial" or flow == BASE_FLOW else f"-{flow}")


def scored(stages: Stages, run: Path, part: str, positions: int | None) -> None:
    stages.run(f"evaluate {run.name} {part}", lambda: {"videos": len(run_scores(run, part, positions=positions,
                                                                               progress=False).labels)},
               skip=bool(RunDir(run).score_files(part)))


def option_run(stages: Stages, args: Namespace, root: Path, name: str) -> Path:
    """The temporal run of Table 2's row ``name`` (a key of ``OPTIONS``) on split 1, trained and scored on
    the test videos; its run name is the main table's with the row's first words (``...-trajectorystacking``)."""
    overrides = OPTIONS[name]
    # the config says whether the row reads backward flow (its cache must then hold it)
    config = load_config(recipe("temporal"), [*stream_overrides(args, "temporal"), *overrides])
    cache = extract(stages, root, Path(args.out), args.flow, bidirectional=config.input.bidirectional)
    slug = name.split(",")[0].replace(" ", "").replace("=", "").replace("-", "")
    run = trained(stages, args, f"{run_name('temporal', 1, args.flow)}-{slug}", "temporal", 1, cache, overrides)
    scored(stages, run, "test", None)
    return run


def test_accuracy(run: Path) -> tuple[float, float]:
    """Top-1 and mean class accuracy of the run's test scores."""
    s = run_scores(run, "test", evaluate_missing=False)
    return top_k_accuracy(s.scores, s.labels), mean_class_accuracy(s.scores, s.labels)


ACCURACY_COLUMNS = ["top-1", "mean class", "last training batches"]  # accuracy_cells' columns


def accuracy_cells(stages: Stages, run: Path) -> list[str]:
    """A temporal run's cells in the flow table and Table 2: test top-1, mean class accuracy, and accuracy on
    its last training batches (how well the net fits: it tells underfitting from overfitting)."""
    last = stages.done[f"train {run.name}"].get("last_train_accuracy")
    return [*map("{:.1%}".format, test_accuracy(run)), "-" if last is None else f"{last:.0%}"]


def middlebury_epe(flow: str) -> float:
    method, params = FLOWS[flow]
    est = build_flow(method, **params)
    pairs = middlebury_pairs()
    return sum(endpoint_error(est(a, b), gt) for _, a, b, gt in pairs) / len(pairs)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--root", required=True, help="build.sh's OUT folder (holds UCF-101/)")
    p.add_argument("--out", default="ucf9-run")
    p.add_argument("--splits", default="1")
    p.add_argument("--flow", default=BASE_FLOW, choices=sorted(FLOWS), help="the main table's flow")
    p.add_argument("--splits-dir", default=str(SPLITS), help="UCF-101's split lists (classInd.txt, ...)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="config overrides for every training (e.g. run.device=cuda)")
    for stream in STREAMS:  # e.g. a longer temporal schedule, the spatial recipe unchanged
        p.add_argument(f"--set-{stream}", nargs="*", default=[], metavar="KEY=VALUE",
                       help=f"config overrides for the {stream} stream's trainings only (after --set)")
    p.add_argument("--train-positions", type=int, default=5, help="positions per training video for the SVM")
    p.add_argument("--flows", default="", help="comma-separated flow methods for the flow table (split 1)")
    p.add_argument("--options", action="store_true", help="the paper's Table 2 variants on split 1")
    p.add_argument("--rgb-qualities", default="", help="e.g. 75,85,95: spatial top-1 (split 1) per RGB quality")
    p.add_argument("--seeds", type=int, default=2, help="training seeds per RGB quality (their spread)")
    p.add_argument("--quality-positions", type=int, default=5, help="test positions of the quality runs")
    p.add_argument("--skip-main", action="store_true", help="only the tables asked for by the other options")
    args = p.parse_args()
    root, out = Path(args.root), Path(args.out)
    if not (root / "UCF-101").is_dir():
        raise SystemExit(f"{root}: no UCF-101/ folder (make it with ../shared/data/ucf9/build.sh GITDIR {root})")
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages(out / "times.json")
    figures, text = {"stages": stages.done}, []

    def main_run(stream: str, split: int) -> Path:
        """The main table's run of ``stream`` on ``split``, trained and scored (test, and training videos)."""
        run = trained(stages, args, run_name(stream, split, args.flow), stream, split,
                      extract(stages, root, out, args.flow))
        scored(stages, run, "test", None)
        scored(stages, run, "train", args.train_positions)
        if holds_out_groups(run):  # --set tasks.0.fusion_groups=[...]: the SVM's own videos, never trained on
            scored(stages, run, "fusion", args.train_positions)
        return run

    splits = [] if args.skip_main else [int(s) for s in args.splits.split(",")]
    spatial, temporal = [], []
    for split in splits:  # split by split: a shortened session leaves whole splits
        spatial.append(main_run("spatial", split))
        temporal.append(main_run("temporal", split))
    for metric, name in ((top_k_accuracy, "top-1"), (mean_class_accuracy, "mean class accuracy")):
        if not spatial:
            break
        headers, rows, acc = splits_table(spatial, temporal, evaluate_missing=False, metric=metric)
        figures[name] = acc
        fitted = "the training videos'" + (" and on the held-out groups'" if holds_out_groups(spatial[0]) else "")
        text.append(f"UCF-9, {name} (flow {args.flow}; SVM fitted on {fitted} scores, "
                    f"{args.train_positions} x 10 crops each; test: 25 x 10)\n\n" + markdown(headers, rows))

    if args.rgb_qualities:
        qualities = sorted({int(q) for q in args.rgb_qualities.split(",")}, reverse=True)
        caches = {q: extract(stages, root, out, args.flow, rgb_quality=q) for q in qualities}
        top1 = {q: [] for q in qualities}
        for seed in range(args.seeds):  # seed by seed: a shortened session still compares every quality
            for quality, c in caches.items():
                run = trained(stages, args, f"spatial-split1-rgb{quality}-seed{seed}", "spatial", 1, c,
                              [f"run.seed={seed}", f"input.test_positions={args.quality_positions}"])
                scored(stages, run, "test", None)
                top1[quality].append(test_accuracy(run)[0])
        rows = [[str(q), f"{stages.done[f'extract {caches[q].name}']['rgb_kb_per_frame']:.1f}",
                 ", ".join(f"{a:.1%}" for a in accs), f"{sum(accs) / len(accs):.1%}", f"{max(accs) - min(accs):.1%}"]
                for q, accs in top1.items()]
        figures["rgb_quality"] = rows
        text.append(f"Spatial stream against the RGB JPEG quality (split 1, {args.seeds} seeds, test: "
                    f"{args.quality_positions} x 10)\n\n" + markdown(
                        ["RGB quality", "KB per RGB frame", "top-1 per seed", "mean", "spread"], rows))

    # the flow table and Table 2 compare with the main temporal run on split 1, whatever --splits says
    if args.flows:
        rows = []
        for flow in [args.flow] + [f for f in args.flows.split(",") if f != args.flow]:
            c = extract(stages, root, out, flow)
            run = main_run("temporal", 1) if flow == args.flow else trained(
                stages, args, run_name("temporal", 1, flow), "temporal", 1, c)
            scored(stages, run, "test", None)
            ext = stages.done[f"extract {c.name}"]
            epe = stages.run(f"middlebury {flow}", lambda: {"epe": middlebury_epe(flow)}, skip=True)["epe"]
            rows.append([flow, f"{epe:.3f}", f"{ext['extracted_frames'] / ext['seconds']:.0f}" if ext["extracted"] else "-",
                         f"{ext['mb']:.0f}", f"{ext['flow_kb_per_field']:.1f}", *accuracy_cells(stages, run)])
        figures["flows"] = rows
        text.append("Which flow (temporal stream, split 1)\n\n" + markdown(
            ["flow", "Middlebury EPE px", "extraction frames/s (2 workers)", "cache MB", "KB per flow field",
             *ACCURACY_COLUMNS], rows))

    if args.options:
        base = main_run("temporal", 1)
        rows = [["L = 10, flow stacking, mean subtraction (main table)", *accuracy_cells(stages, base)]]
        for name in OPTIONS:
            rows.append([name, *accuracy_cells(stages, option_run(stages, args, root, name))])
        figures["options"] = rows
        text.append("The paper's Table 2 on UCF-9 (temporal stream, split 1)\n\n"
                    + markdown(["input", *ACCURACY_COLUMNS], rows))

    times = [[k + (f" (resumed at iteration {v['resumed_at']}: minutes from there)" if "resumed_at" in v else ""),
              f"{v['seconds'] / 60:.1f}", v.get("precision", ""),
              f"{v['samples_per_s']:.0f}" if v.get("samples_per_s") else "", v.get("machine", "")]
             for k, v in stages.done.items()]
    text.append("Time per stage (recorded when the stage ran)\n\n" + markdown(
        ["stage", "minutes", "precision", "training samples/s (last window)", "machine"], times))
    finish(args, figures, "\n\n".join(text))


if __name__ == "__main__":
    main()
