"""Real-data accuracy check on Weizmann-4 (4 actions by 9 actors, ../shared/data/weizmann4): both streams
trained from scratch with configs/weizmann4_{spatial,temporal}.yaml on each fold (actors held out
together with their mirrored strips), scored with the test protocol, fused; prints the paper's Table 4
layout. A sanity check of the whole pipeline on real video, not a reproduction of the paper's numbers.

    python benchmarks/weizmann4.py [--out weizmann4-run] [--folds 3] [--iterations 300] [--json FILE]
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from _common import data_dir, finish, parser
from twostream.config import load_config
from twostream.extract import ExtractOptions, extract_all
from twostream.sources import find_videos
from twostream.runs import RunDir
from twostream.table import markdown, splits_table
from twostream.train import train
from twostream.video import write_video

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def strips_to_videos(src: Path, out: Path) -> list[dict]:
    """Each strip (frames of 64x64 side by side) becomes ``out/<label>/<name>.mp4``; returns the rows
    of labels.csv with the video's relative path."""
    rows = list(csv.DictReader((src / "labels.csv").open()))
    for row in rows:
        rel = Path(row["label"]) / (Path(row["file"]).stem + ".mp4")
        row["video"] = rel.as_posix()
        if (out / rel).exists():
            continue
        strip = cv2.cvtColor(cv2.imread(str(src / row["file"])), cv2.COLOR_BGR2RGB)
        n = int(row["frames"])
        side = strip.shape[0]
        if strip.shape[1] != side * n:
            raise ValueError(f"{src / row['file']}: width {strip.shape[1]} is not {n} frames of {side} px")
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        write_video(out / rel, np.stack([strip[:, i * side:(i + 1) * side] for i in range(n)]), fps=25)
    return rows


def fold_runs(out: Path, folds: int, iterations: int, overrides: tuple[str, ...] = (), tag: str = ""
              ) -> tuple[list[Path], list[Path]]:
    """Videos, cache and both streams' runs of every fold under ``out`` (trained if missing), with extra
    config ``overrides``; run folders are named ``<stream>-fold<k><tag>``."""
    rows = strips_to_videos(data_dir("weizmann4"), out / "videos")
    extract_all(find_videos(out / "videos"), out / "cache", ExtractOptions(short_side=64), workers=2)
    spatial, temporal = [], []
    for fold in range(folds):
        held_out = {a for a in range(9) if a % folds == fold}
        split = out / f"split-fold{fold + 1}.csv"
        split.write_text("path,label,split\n" + "".join(
            f"{r['video']},{r['label']},{'test' if int(r['actor']) in held_out else 'train'}\n" for r in rows))
        for stream, runs in (("spatial", spatial), ("temporal", temporal)):
            run = out / "runs" / f"{stream}-fold{fold + 1}{tag}"
            cfg = load_config(CONFIGS / f"weizmann4_{stream}.yaml", [
                f"tasks.0.splits={split}", f"tasks.0.cache={out / 'cache'}", f"optim.iterations={iterations}",
                f"optim.milestones=[{iterations * 2 // 3}]", f"run.checkpoint_every={iterations}", *overrides])
            if not RunDir(run).checkpoint.exists():
                train(cfg, run)
            runs.append(run)
    return spatial, temporal


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--out", default="weizmann4-run")
    p.add_argument("--folds", type=int, default=3, help="actors 0-8 split into this many held-out groups")
    p.add_argument("--iterations", type=int, default=300)
    args = p.parse_args()
    spatial, temporal = fold_runs(Path(args.out), args.folds, args.iterations)
    headers, table_rows, acc = splits_table(spatial, temporal, workers=2, progress=False)
    finish(args, acc, markdown([h.replace("split", "fold") for h in headers], table_rows))


if __name__ == "__main__":
    main()
