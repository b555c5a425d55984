import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
from torch import nn

from twostream.cli import main
from twostream.data.transforms import flow_sign, ten_crop
from twostream.evaluate import evaluate, video_scores
from twostream.scores import read_scores
from twostream.train import train
from conftest import tiny_config


class MeanModel(nn.Module):
    """logits = (mean of channel 0, 0): the test can compute the expected softmax by hand."""

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, x, task=None):
        m = x[:, 0].mean(dim=(1, 2))
        return torch.stack([m, torch.zeros_like(m)], 1) + self.p


def test_video_scores_average_softmax_over_positions_and_crops():
    torch.manual_seed(0)
    stack = torch.randn(3, 2, 8, 10)  # 3 positions, 2 channels (one flow field)
    got = video_scores(MeanModel(), stack, 4, "t", torch.from_numpy(flow_sign(1)), chunk=10)
    crops = ten_crop(stack, 4, flow_sign(1))
    assert crops.shape == (30, 2, 4, 4)
    expected = torch.softmax(torch.stack([crops[:, 0].mean((1, 2)), torch.zeros(30)], 1), 1).mean(0)
    assert torch.allclose(got, expected, atol=1e-6)
    # the mirrored crops carry negated x flow: their channel-0 means are the opposite of the originals'
    assert torch.allclose(crops[5:10, 0].mean((1, 2)), -crops[0:5, 0].mean((1, 2)), atol=1e-6)


@pytest.fixture(scope="module")
def two_runs(synth_cache, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for stream in ("spatial", "temporal"):
        runs[stream] = root / stream
        train(tiny_config(synth_cache, stream, ["optim.iterations=4"]), runs[stream], progress=False)
        for part in ("test", "train"):
            evaluate(runs[stream], part, workers=0, progress=False)
    return runs


def test_evaluation_writes_score_files_for_both_splits(two_runs, synth_cache):
    test = read_scores(two_runs["spatial"] / "scores-synth-test.npz")
    train_ = read_scores(two_runs["spatial"] / "scores-synth-train.npz")
    assert (len(test.video_ids), len(train_.video_ids)) == (8, 16) and len(test.classes) == 4
    assert np.allclose(test.scores.sum(1), 1, atol=1e-5)  # averaged softmax
    assert test.meta["positions"] == 3 and test.meta["crops"] == 10 and len(test.meta["checkpoint_sha256"]) == 64
    assert test.meta["stream"] == "spatial" and test.meta["config"]["input"]["crop"] == 64
    assert set(test.video_ids).isdisjoint(train_.video_ids)


def test_all_fusion_methods_and_the_table(two_runs, capsys):
    s, t = two_runs["spatial"] / "scores-synth-test.npz", two_runs["temporal"] / "scores-synth-test.npz"
    for method in ("avg", "weighted", "svm"):
        assert main(["fuse", str(s), str(t), "--method", method]) == 0
        fused = read_scores(s.parent / f"fused-{method}.npz")
        assert fused.scores.shape == (8, 4) and fused.meta["fusion"]["method"] == method
        assert (s.parent / f"fused-{method}.html").exists()
    out = capsys.readouterr().out
    assert "fusion (svm)" in out and "spatial weight" in out
    assert main(["table", "--spatial", str(two_runs["spatial"]), "--temporal", str(two_runs["temporal"]),
                 "--no-evaluate", "--quiet"]) == 0
    table = capsys.readouterr().out
    for row in ("Spatial ConvNet", "Temporal ConvNet", "Fusion by averaging", "Fusion by SVM"):
        assert re.search(rf"\| {row} \| \d+\.\d% \| \d+\.\d% \|", table), table


def test_html_report_renders_in_headless_chromium_browser(two_runs, synth_cache):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (CI installs Debian's chromium in .ci/run)")
    from twostream.report import write_report
    scores = read_scores(two_runs["temporal"] / "scores-synth-test.npz")
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


def test_predict_a_clip_matches_its_evaluation(two_runs, synth_cache, capsys):
    from twostream.predict import predict
    runs = [two_runs["spatial"], two_runs["temporal"]]
    evaluated = [read_scores(r / "scores-synth-test.npz") for r in runs]
    vid = evaluated[0].video_ids[0]
    clip = synth_cache["videos"] / f"{vid}.mp4"
    classes, fused, per_run = predict(clip, runs)
    assert classes == evaluated[0].classes
    # the clip went through the cache's own extraction settings and the same protocol: same scores
    for run, ev in zip(runs, evaluated):
        assert np.allclose(per_run[str(run)], ev.scores[0], atol=1e-4)
    assert np.allclose(fused, (evaluated[0].scores[0] + evaluated[1].scores[0]) / 2, atol=1e-4)
    assert main(["predict", str(clip), *map(str, runs), "--top", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("1. " + classes[int(np.argmax(fused))])
