"""benchmarks/ucf9.py end to end on a tree shaped like UCF-9 (the real split-1 and split-2 lists cut to one
training and one test video per class, tiny generated videos for the first nine classes), with every table
it makes (the main table, the flow table, the paper's Table 2) at their smallest size, a second call
that resumes every stage instead of redoing it, and a third with the main table on another flow."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from twostream.checkpoint import load_checkpoint
from twostream.data.splits import video_group
from twostream.extract import ExtractOptions
from twostream.flow import DEFAULT_METHOD
from twostream.flow.dis import DEFAULT_PRESET
from twostream.runs import RunDir
from twostream.scores import read_scores
from twostream.table import HELD_OUT_ROW

BASE = f"{DEFAULT_METHOD}-{DEFAULT_PRESET}"  # the main table's flow: extract's default, asked of its owners
RGB = f"rgb{ExtractOptions.rgb_quality}"  # every cache folder names its RGB quality
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ucf9.py"
# 12 frames give L = 10 its 11 flow fields; every training 2 batches of 8, 2 test positions
SHRINK = ["input.crop=56", "input.test_positions=2", "optim.batch_size=8", "optim.micro_batch=8",
          "optim.iterations=2", "optim.milestones=[1]", "run.workers=0", "run.checkpoint_every=2",
          "run.bf16_cpu=false"]


def _run(args: list[str]) -> str:
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_ucf9_benchmark_makes_every_table_and_resumes_shared_data(shared_data, tmp_path, ucf101_lists,
                                                                  drifting_video):
    lists = tmp_path / "ucfTrainTestlist"
    videos = ucf101_lists(shared_data / "splits" / "ucfTrainTestlist", lists, folds=(1, 2))
    first9 = [line.split()[1] for line in (lists / "classInd.txt").read_text().splitlines()[:9]]
    rng = np.random.default_rng(0)
    ucf9 = [rel for rel in videos if rel.split("/")[0] in first9]  # the other classes' are absent, as in UCF-9
    for rel in ucf9:
        drifting_video(tmp_path / "ucf9" / "UCF-101" / rel, rng, 12, 64)
    out = tmp_path / "run"
    args = ["--root", str(tmp_path / "ucf9"), "--out", str(out), "--splits-dir", str(lists), "--splits", "2",
            "--train-positions", "1", "--flows", "dis-ultrafast", "--options", "--json", str(tmp_path / "f.json"),
            "--set", *SHRINK]
    text = _run(args)

    figures = json.loads((tmp_path / "f.json").read_text())
    assert set(figures["top-1"]) == {"Spatial ConvNet", "Temporal ConvNet", "Fusion by averaging", "Fusion by SVM"}
    assert all(len(v) == 1 and 0 <= v[0] <= 1 for v in figures["top-1"].values())
    # the flow table: the main table's flow and the one asked for, each with its Middlebury error
    assert [row[0] for row in figures["flows"]] == [BASE, "dis-ultrafast"]
    assert all(float(row[1]) > 0 for row in figures["flows"])
    # Table 2: the main run and every variant, each trained on its own (bi-directional on its own cache)
    assert len(figures["options"]) == 6 and figures["options"][0][1:] == figures["flows"][0][-3:]
    # the main table on split 2; the flow table and Table 2 compare on split 1, whatever --splits says
    assert "| method | split 2 | mean |" in text
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == sorted(["spatial-split2", "temporal-split2", "temporal-split1", "temporal-split1-dis-ultrafast", "temporal-split1-L1",
                           "temporal-split1-L5", "temporal-split1-trajectorystacking",
                           "temporal-split1-bidirectional", "temporal-split1-nomeansubtraction"])
    assert sorted(p.name for p in (out / "cache").iterdir()) == sorted(
        [f"{BASE}-{RGB}", f"dis-ultrafast-{RGB}", f"{BASE}-bidirectional-{RGB}"])
    stages = json.loads((out / "times.json").read_text())
    # each run's fit of its last training batches, as its training recorded it
    last = stages["train temporal-split1-L1"]["last_train_accuracy"]
    assert figures["options"][1][0] == "L = 1" and figures["options"][1][3] == f"{last:.0%}"
    extracted = stages[f"extract {BASE}-{RGB}"]
    assert extracted["extracted"] == len(ucf9) and not extracted["failed"]
    assert "| Fusion by SVM |" in text and "Which flow" in text and "Table 2" in text
    # each training says what it ran in (the config's bf16_cpu only asks) and how fast; every stage its machine
    trainings = {k: v for k, v in stages.items() if k.startswith("train ")}
    assert len(trainings) == len(runs) and all(v["precision"] == "float32" and v["samples_per_s"] > 0
                                               for v in trainings.values())
    assert len({v["machine"] for v in stages.values()}) == 1 and "threads" in extracted["machine"]
    assert text.count("| float32 |") == len(runs)

    # a second call resumes: nothing is extracted, trained or scored again, and the tables are the same
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "times.json"}
    assert _run(args).split("Time per stage")[0] == text.split("Time per stage")[0]
    assert json.loads((out / "times.json").read_text()) == stages
    assert {p: p.stat().st_mtime_ns for p in before} == before

    # --flow: the main table on another flow trains only its temporal runs, named by the flow, on the cache
    # the flow table made; the spatial run (RGB only) is the same
    main = [a for a in args if a not in ("--flows", "dis-ultrafast", "--options")]
    other = _run([*main, "--flow", "dis-ultrafast"])
    assert "flow dis-ultrafast;" in other and "| method | split 2 | mean |" in other
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted([*runs, "temporal-split2-dis-ultrafast"])
    assert sorted(p.name for p in (out / "cache").iterdir()) == sorted(
        [f"{BASE}-{RGB}", f"dis-ultrafast-{RGB}", f"{BASE}-bidirectional-{RGB}"])
    assert {p: p.stat().st_mtime_ns for p in before} == before  # the split-1 flow run and its cache too


def test_ucf9_benchmark_fits_the_svm_on_held_out_groups_shared_data(shared_data, tmp_path, ucf101_lists,
                                                                    drifting_video):
    """--set tasks.0.fusion_groups=[25]: both streams train without group 25, whose training videos are
    scored apart and fit the table's extra SVM row; --set-temporal reaches the temporal training alone."""
    lists = tmp_path / "ucfTrainTestlist"
    official = shared_data / "splits" / "ucfTrainTestlist"
    videos = ucf101_lists(official, lists, folds=(2,))
    first9 = [line.split()[1] for line in (lists / "classInd.txt").read_text().splitlines()[:9]]
    last = {}  # each class's last training video of split 2: group 25
    for line in (official / "trainlist02.txt").read_text().splitlines():
        if line.strip() and line.split("/")[0] in first9:
            last[line.split("/")[0]] = line.split()[0]
    held = sorted(v.removesuffix(".avi") for v in last.values())  # video ids: Class/v_Class_gGG_cCC
    assert len(held) == 9 and {video_group(v) for v in held} == {25}
    with open(lists / "trainlist02.txt", "a") as f:
        f.writelines(f"{v}\n" for v in last.values())
    rng = np.random.default_rng(1)
    for rel in [v for v in videos if v.split("/")[0] in first9] + list(last.values()):
        drifting_video(tmp_path / "ucf9" / "UCF-101" / rel, rng, 12, 64)
    out = tmp_path / "run"
    args = ["--root", str(tmp_path / "ucf9"), "--out", str(out), "--splits-dir", str(lists), "--splits", "2",
            "--train-positions", "1", "--json", str(tmp_path / "f.json"),
            "--set", *SHRINK, "tasks.0.fusion_groups=[25]",
            "--set-temporal", "optim.iterations=3", "optim.milestones=[2]"]
    text = _run(args)

    figures = json.loads((tmp_path / "f.json").read_text())
    assert set(figures["top-1"]) == {"Spatial ConvNet", "Temporal ConvNet", "Fusion by averaging", "Fusion by SVM",
                                     HELD_OUT_ROW}
    assert f"| {HELD_OUT_ROW} |" in text and "and on the held-out groups' scores" in text
    for stream in ("spatial", "temporal"):
        run = RunDir(out / "runs" / f"{stream}-split2")
        fusion, train = (read_scores(next(iter(run.score_files(part).values()))) for part in ("fusion", "train"))
        assert sorted(fusion.video_ids) == held
        assert not set(train.video_ids) & set(held) and len(train.video_ids) == 9
    # what each training ran (its checkpoint's iteration), not only what its config asked
    ran = [load_checkpoint(RunDir(out / "runs" / f"{s}-split2").checkpoint)["iteration"]
           for s in ("spatial", "temporal")]
    assert ran == [2, 3]

    # a training stopped part way (its stage unrecorded, its scores unwritten) resumes from its checkpoint, and
    # the stage says where: its minutes are that attempt's only
    stages = json.loads((out / "times.json").read_text())
    del stages["train temporal-split2"]
    (out / "times.json").write_text(json.dumps(stages))
    temporal = RunDir(out / "runs" / "temporal-split2")
    for part in ("test", "train", "fusion"):
        for f in temporal.score_files(part).values():
            f.unlink()
    text = _run([*args[:args.index("--set-temporal") + 1], "optim.iterations=4", "optim.milestones=[2]"])
    assert json.loads((out / "times.json").read_text())["train temporal-split2"]["resumed_at"] == 3
    assert load_checkpoint(temporal.checkpoint)["iteration"] == 4
    # resumed, not trained again: the first attempt's last line stays, the new one follows it
    assert [json.loads(line)["iteration"] for line in temporal.metrics.read_text().splitlines()] == [3, 4]
    assert "| train temporal-split2 (resumed at iteration 3: minutes from there) |" in text
    assert "train spatial-split2 (resumed" not in text
