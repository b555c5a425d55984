"""The end-to-end demo on generated videos: ``twostream demo OUT`` (what ``make demo`` runs).

synthetic videos -> RGB + flow cache -> spatial and temporal CNN-M-2048 -> 5 x 10-crop evaluation ->
average and SVM fusion -> HTML report. The synthetic classes are (colour, motion) pairs, so each stream
alone is capped (spatial: it sees colour, not motion; temporal: motion, not colour) and the fusion is what
names the class. Every step is resumable: a second run reuses what the first one finished.
"""

from __future__ import annotations

import time
from pathlib import Path

from .config import load_config
from .errors import UserError
from .extract import ExtractOptions, extract_all
from .sources import find_videos
from .fusion import fuse
from .report import ACCURACY_HEADERS, accuracy_rows, write_report
from .runs import RunDir, fused_path
from .scores import write_scores
from .synth import SynthOptions, generate
from .table import markdown, run_scores


def demo_overrides(out: Path, stream: str, iterations: int) -> list[str]:
    """The demo's training recipe (configs/synth_<stream>.yaml is the same, as a file)."""
    return ["tasks.0.name=synth", f"tasks.0.splits={out / 'videos'}", f"tasks.0.cache={out / 'cache'}",
            f"input.stream={stream}", "input.crop=112", "input.length=10", "input.test_positions=5",
            "model.dropout=0.5", "optim.batch_size=16", "optim.micro_batch=16",
            f"optim.milestones=[{iterations * 2 // 3}]", f"optim.iterations={iterations}", "optim.lr=0.01",
            "run.workers=2", "run.log_every=10", f"run.val_every={iterations}", f"run.checkpoint_every={iterations}"]


def run_demo(out: str | Path, iterations: int = 250, workers: int = 2) -> dict:
    from .train import train

    out = Path(out)
    start = time.perf_counter()
    synth = SynthOptions()
    print(f"[1/5] synthetic videos -> {out / 'videos'}")
    classes = generate(out / "videos", synth)
    print(f"[2/5] frames + DIS optical flow -> {out / 'cache'}")
    results = extract_all(find_videos(out / "videos"), out / "cache",
                          ExtractOptions(short_side=min(synth.width, synth.height)), workers=workers)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise UserError(f"extraction failed for {len(failed)} videos, e.g. {failed[0].source}: {failed[0].reason}")
    scores = {}
    for step, stream in ((3, "spatial"), (4, "temporal")):
        run = out / "runs" / stream
        cfg = load_config(None, demo_overrides(out, stream, iterations))
        done = RunDir(run).checkpoint.exists()
        print(f"[{step}/5] {stream} stream: {'already trained' if done else f'{iterations} iterations'} -> {run}")
        if not done:
            train(cfg, run)
        for part in ("test", "train"):  # evaluated once; a second demo run reads the score files
            scores[stream, part] = run_scores(run, part, "synth", workers=workers, progress=part == "test")
    print("[5/5] fusion and report")
    test, train_ = (scores["spatial", "test"], scores["temporal", "test"]), (scores["spatial", "train"],
                                                                             scores["temporal", "train"])
    fused = {}
    for method in ("avg", "svm"):
        fused[method], _ = fuse(method, test, train_)
        write_scores(fused_path(out, method), fused[method])
    table = accuracy_rows([("spatial", test[0]), ("temporal", test[1])] +
                          [(f"fusion ({m})", f) for m, f in fused.items()])
    headers = ACCURACY_HEADERS
    page = write_report(out / "report.html", "twostream demo: fusion by SVM", fused["svm"], out / "cache",
                        [("streams and fusion (test split)", headers, table)])
    seconds = round(time.perf_counter() - start, 1)
    print(f"\n{markdown(headers, table)}\n\n{len(classes)} classes: {', '.join(classes)}")
    print(f"report: {page}\ndone in {seconds} s")
    return {"classes": classes, "table": table, "seconds": seconds, "report": str(page)}
