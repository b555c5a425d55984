"""Does bfloat16 change accuracy? Both streams trained and evaluated in float32 and under bfloat16 autocast
(``run.bf16_cpu``), with several seeds each, on the demo's synthetic data and on Weizmann-4 (3 folds):
top-1 per stream and fused (averaging), and each precision's spread over seeds (max - min), side by side.
Needs a CPU with native bfloat16 (AVX512_BF16 or AMX; elsewhere the bfloat16 rows would be float32) and
../shared/data/weizmann4.

    python benchmarks/precision.py [--out precision-run] [--demo demo-run] [--seeds 0,1] [--json FILE]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from _common import finish, parser, table
from twostream.config import load_config
from twostream.demo import demo_overrides, run_demo
from twostream.precision import cpu_has_native_bf16
from twostream.runs import RunDir
from twostream.table import splits_table
from twostream.train import train
from weizmann4 import fold_runs

PRECISIONS = {"float32": "run.bf16_cpu=false", "bfloat16": "run.bf16_cpu=true"}
ROWS = ("Spatial ConvNet", "Temporal ConvNet", "Fusion by averaging")


def demo_runs(demo: Path, out: Path, overrides: tuple[str, ...], tag: str, iterations: int = 250
              ) -> tuple[list[Path], list[Path]]:
    """Both streams on the demo's data (made by ``run_demo`` if ``demo`` has none), trained if missing."""
    if not (demo / "cache").is_dir():
        run_demo(demo)
    runs = []
    for stream in ("spatial", "temporal"):
        run = out / f"{stream}{tag}"
        if not RunDir(run).checkpoint.exists():
            train(load_config(None, [*demo_overrides(demo, stream, iterations), *overrides]), run, progress=False)
        runs.append(run)
    return [runs[0]], [runs[1]]


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--out", default="precision-run")
    p.add_argument("--demo", default="demo-run", help="the demo's folder (its videos and cache are reused)")
    p.add_argument("--seeds", default="0,1")
    args = p.parse_args()
    if not cpu_has_native_bf16():
        raise SystemExit("this CPU has no native bfloat16: the comparison would be float32 against float32")
    out, seeds = Path(args.out), [int(s) for s in args.seeds.split(",")]
    figures, rows = {}, []
    for data in ("demo", "weizmann4"):
        for precision, setting in PRECISIONS.items():
            per_seed = []
            for seed in seeds:
                overrides, tag = (setting, f"run.seed={seed}"), f"-{precision}-seed{seed}"
                if data == "demo":
                    spatial, temporal = demo_runs(Path(args.demo), out / "demo", overrides, tag)
                else:
                    spatial, temporal = fold_runs(out / "weizmann4", 3, 300, overrides, tag)
                _, _, acc = splits_table(spatial, temporal, workers=2, progress=False)
                per_seed.append([float(np.mean(acc[r])) for r in ROWS])
            values = np.array(per_seed)  # [seeds, rows]
            figures[f"{data}/{precision}"] = {r: values[:, i].tolist() for i, r in enumerate(ROWS)}
            for i, r in enumerate(ROWS):
                rows.append([data, precision, r, ", ".join(f"{v:.1%}" for v in values[:, i]),
                             f"{values[:, i].mean():.1%}", f"{values[:, i].max() - values[:, i].min():.1%}"])
    finish(args, figures, table(["data", "precision", "scores", "top-1 per seed", "mean", "spread"], rows))


if __name__ == "__main__":
    main()
