import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
from torch import nn

from twostream.cache import UnitWriter
from twostream.cli import main
from twostream.data.datasets import TestClips
from twostream.data.inputs import InputOptions
from twostream.data.splits import Sample
from twostream.data.transforms import flow_sign, ten_crop
from twostream.evaluate import evaluate, video_scores
from twostream.fusion import fuse
from twostream.metrics import top_k_accuracy
from twostream.runs import RunDir, fused_path, report_beside
from twostream.scores import read_scores, write_scores
from twostream.train import train


class MeanModel(nn.Module):
    """logits = (mean of channel 0, 0): the test can compute the expected softmax by hand."""

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, x, task=None):
        m = x[:, 0].mean(dim=(1, 2))
        return torch.stack([m, torch.zeros_like(m)], 1) + self.p


def test_video_scores_average_softmax_over_positions_and_crops(tmp_path, unit_record):
    rng = np.random.default_rng(0)
    fields = rng.uniform(-5, 5, (6, 8, 10, 2)).astype(np.float32)
    with UnitWriter(tmp_path, "v", unit_record()) as w:
        for t in range(7):
            w.add_frame(np.zeros((8, 10, 3), np.uint8))
            if t:
                w.add_flow(fields[t - 1])
        w.commit({})
    clips = TestClips([Sample("v", 0)], tmp_path, InputOptions("temporal", crop=4, length=1, test_positions=3,
                                                                mean_subtraction=False))
    stack = clips[0]["input"]  # 3 positions x one flow field (2 channels), full size
    assert stack.shape == (3, 2, 8, 10)
    got = video_scores(MeanModel(), clips, stack, "t", chunk=10)
    crops = ten_crop(stack, 4, flow_sign(1))
    expected = torch.softmax(torch.stack([crops[:, 0].mean((1, 2)), torch.zeros(30)], 1), 1).mean(0)
    assert torch.allclose(got, expected, atol=1e-6)
    # the mirrored crops carry negated x flow: their channel-0 means are the opposite of the originals'
    assert torch.allclose(crops[5:10, 0].mean((1, 2)), -crops[0:5, 0].mean((1, 2)), atol=1e-6)
    assert not torch.allclose(got, torch.softmax(torch.stack([stack[:, 0].mean((1, 2)), torch.zeros(3)], 1), 1).mean(0))


def test_evaluation_writes_score_files_for_both_splits(two_runs, synth_cache):
    test = read_scores(RunDir(two_runs["spatial"]).scores("synth", "test"))
    train_ = read_scores(RunDir(two_runs["spatial"]).scores("synth", "train"))
    assert (len(test.video_ids), len(train_.video_ids)) == (8, 16) and len(test.classes) == 4
    assert np.allclose(test.scores.sum(1), 1, atol=1e-5)  # averaged softmax
    assert test.meta["positions"] == 3 and test.meta["crops"] == 10 and len(test.meta["checkpoint_sha256"]) == 64
    assert test.meta["stream"] == "spatial" and test.meta["config"]["input"]["crop"] == 64
    assert set(test.video_ids).isdisjoint(train_.video_ids)


def test_all_fusion_methods_and_the_table(two_runs, capsys):
    s, t = (RunDir(two_runs[k]).scores("synth", "test") for k in ("spatial", "temporal"))
    for method in ("avg", "weighted", "svm", "svm-ovr"):
        assert main(["fuse", str(s), str(t), "--method", method]) == 0
        fused = read_scores(fused_path(s.parent, method))
        assert fused.scores.shape == (8, 4) and fused.meta["fusion"]["method"] == method
        assert report_beside(fused_path(s.parent, method)).exists()
    out = capsys.readouterr().out
    assert "fusion (svm)" in out and "spatial weight" in out
    assert "SVM (crammer_singer) C " in out and "SVM (ovr) C " in out
    assert f"train scores for {s}: {RunDir(two_runs['spatial']).scores('synth', 'train')}" in out
    assert main(["table", "--spatial", str(two_runs["spatial"]), "--temporal", str(two_runs["temporal"]),
                 "--no-evaluate", "--quiet"]) == 0
    table = capsys.readouterr().out
    test = [read_scores(p) for p in (s, t)]
    train_ = [read_scores(RunDir(two_runs[k]).scores("synth", "train")) for k in ("spatial", "temporal")]
    expected = {"Spatial ConvNet": test[0], "Temporal ConvNet": test[1], "Fusion by averaging": fuse("avg", test)[0],
                "Fusion by SVM": fuse("svm", test, train_)[0]}
    for row, scores in expected.items():  # one split: the split's figure and the mean are the same
        acc = f"{top_k_accuracy(scores.scores, scores.labels):.1%}"
        assert f"| {row} | {acc} | {acc} |" in table, table


def test_fusion_finds_training_scores_by_metadata_not_by_name(two_runs, tmp_path, capsys):
    # copies named without "-test": the training scores must still be those of the runs, never the test file
    s, t = tmp_path / "s.npz", tmp_path / "t.npz"
    for k, dst in (("spatial", s), ("temporal", t)):
        dst.write_bytes(RunDir(two_runs[k]).scores("synth", "test").read_bytes())
    assert main(["fuse", str(s), str(t), "--method", "svm", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert f"train scores for {s}: {RunDir(two_runs['spatial']).scores('synth', 'train')}" in out
    assert f"train scores for {t}: {RunDir(two_runs['temporal']).scores('synth', 'train')}" in out
    fused = read_scores(fused_path(tmp_path, "svm"))
    test = [read_scores(p) for p in (s, t)]
    train_ = [read_scores(RunDir(two_runs[k]).scores("synth", "train")) for k in ("spatial", "temporal")]
    assert np.allclose(fused.scores, fuse("svm", test, train_)[0].scores)


def test_fusion_refuses_training_scores_that_are_not(two_runs, tmp_path, capsys):
    s, t = (str(RunDir(two_runs[k]).scores("synth", "test")) for k in ("spatial", "temporal"))
    s_train = str(RunDir(two_runs["spatial"]).scores("synth", "train"))
    # the test file itself given as the training scores: its metadata says part test
    assert main(["fuse", s, t, "--method", "svm", "--train-spatial", s, "--train-temporal", t]) == 2
    assert "part 'test', not 'train'" in capsys.readouterr().err
    # a "training" file that shares videos with the test scores
    leaky = read_scores(s_train)
    test = read_scores(s)
    leaky.video_ids[:2] = test.video_ids[:2]
    write_scores(tmp_path / "leaky.npz", leaky)
    assert main(["fuse", s, t, "--method", "svm", "--train-spatial", str(tmp_path / "leaky.npz"),
                 "--train-temporal", str(RunDir(two_runs["temporal"]).scores("synth", "train"))]) == 2
    err = capsys.readouterr().err
    assert f"spatial training scores {tmp_path / 'leaky.npz'}: 2 of its videos are also test videos" in err
    # another task's training scores
    other = read_scores(s_train)
    other.meta["task"] = "hmdb51"
    write_scores(tmp_path / "other.npz", other)
    assert main(["fuse", s, t, "--method", "weighted", "--train-spatial", str(tmp_path / "other.npz"),
                 "--train-temporal", str(RunDir(two_runs["temporal"]).scores("synth", "train"))]) == 2
    assert "task 'hmdb51', but the test scores are of task 'synth'" in capsys.readouterr().err
    # a test file whose run has no training scores: named, with what to run
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    moved = read_scores(s)
    moved.meta["run"] = str(lonely)
    write_scores(lonely / "x.npz", moved)
    assert main(["fuse", str(lonely / "x.npz"), t, "--method", "svm"]) == 2
    assert "twostream evaluate" in capsys.readouterr().err


def test_html_report_renders_in_headless_chromium_browser(two_runs, synth_cache):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (CI installs Debian's chromium in .ci/run)")
    from twostream.report import write_report
    scores = read_scores(RunDir(two_runs["temporal"]).scores("synth", "test"))
    page = write_report(two_runs["temporal"] / "r.html", "temporal <test>", scores, synth_cache["cache"], videos=2)
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--disable-component-update", "--disable-sync", "--no-first-run",
                          f"--user-data-dir={page.parent / 'chrome-profile'}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert "<h1>temporal &lt;test&gt;</h1>" in dom
    assert dom.count("<table") >= 4  # accuracy, provenance, and a top-5 table per video
    loaded = re.search(r'data-images-loaded="(\d+)" data-images-total="(\d+)"', dom)
    assert loaded, "the page's load script did not run"
    # 2 plots + 2 videos x (3 frames + 3 flow images), every one decoded by the browser
    assert int(loaded.group(1)) == int(loaded.group(2)) == 14
    assert "RedUp" in dom and "true class" in dom


def test_fusion_fitted_on_held_out_groups(tiny_config, tmp_path, capsys):
    # group 1 of every class is held out of the streams' training; the SVM is fitted on its scores
    runs = {}
    for stream in ("spatial", "temporal"):
        runs[stream] = tmp_path / stream
        train(tiny_config(stream, ["optim.iterations=2", "tasks.0.fusion_groups=[1]"]), runs[stream], progress=False)
        for part in ("test", "train", "fusion"):
            evaluate(runs[stream], part, workers=0, progress=False)
    held = read_scores(RunDir(runs["spatial"]).scores("synth", "fusion"))
    trained = read_scores(RunDir(runs["spatial"]).scores("synth", "train"))
    assert held.video_ids and all("_g01_" in v for v in held.video_ids)
    assert not any("_g01_" in v for v in trained.video_ids)
    s, t = (str(RunDir(runs[k]).scores("synth", "test")) for k in ("spatial", "temporal"))
    assert main(["fuse", s, t, "--method", "svm", "--fit-on", "fusion", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert f"fusion scores for {s}: {RunDir(runs['spatial']).scores('synth', 'fusion')}" in out
    assert "cross-validation on the fusion scores" in out
    assert main(["table", "--spatial", str(runs["spatial"]), "--temporal", str(runs["temporal"]),
                 "--no-evaluate", "--quiet"]) == 0
    assert "| Fusion by SVM (fitted on held-out groups) |" in capsys.readouterr().out
