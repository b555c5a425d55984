"""Export parity: onnxruntime and TorchScript outputs equal PyTorch's softmax within 1e-4 on the same
inputs, for CNN-M (both streams, and both fused in one graph) and a torchvision ResNet where installed."""

import importlib.util
import json

import numpy as np
import pytest
import torch

from twostream.cli import main
from twostream.export import export_runs
from twostream.runs import load_run
from twostream.train import train

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the .[export] extra (make test installs it)")


def _inputs(run, batch: int = 3, seed: int = 0) -> torch.Tensor:
    o = run.config.input
    scale = 60.0 if o.stream == "spatial" else 3.0  # RGB at the caffe convention's scale; flow in pixels
    return torch.randn(batch, o.channels, o.crop, o.crop, generator=torch.Generator().manual_seed(seed)) * scale


def _reference(run, x: torch.Tensor) -> np.ndarray:
    task = run.config.tasks[0].name
    with torch.no_grad():  # the model as evaluate runs it (fast LRN, chunked first block)
        return torch.softmax(run.model(x, task), 1).numpy()


def _onnx(path, *inputs: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {n: x.numpy() for n, x in zip(names, inputs)})[0]


def _torchscript(path, *inputs: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.jit.load(str(path))(*inputs).numpy()


@pytest.mark.parametrize("fmt, run_exported", [("onnx", _onnx), ("torchscript", _torchscript)])
def test_cnn_m_exports_match_pytorch_for_any_batch(two_runs, tmp_path, fmt, run_exported):
    runs = [load_run(two_runs["spatial"]), load_run(two_runs["temporal"])]
    names = [str(two_runs["spatial"]), str(two_runs["temporal"])]
    written = export_runs(runs, names, tmp_path, fmt, fused=True)
    suffix = ".onnx" if fmt == "onnx" else ".pt"
    assert [p.name for p in written] == [f"spatial{suffix}", f"temporal{suffix}", f"fused{suffix}"]
    for run, path in zip(runs, written):
        for batch in (1, 7):  # the batch axis is dynamic (the example had 2)
            x = _inputs(run, batch)
            ref = _reference(run, x)
            assert ref.std() > 1e-3  # not a flat output: a wrong graph would show
            assert np.abs(run_exported(path, x) - ref).max() <= 1e-4
    rgb, flow = _inputs(runs[0], 5, 1), _inputs(runs[1], 5, 2)
    fused = (_reference(runs[0], rgb) + _reference(runs[1], flow)) / 2
    assert np.abs(run_exported(written[2], rgb, flow) - fused).max() <= 1e-4
    spec = json.loads(written[1].with_suffix(".json").read_text())
    assert spec["inputs"][0]["shape"] == ["batch", 8, 64, 64] and spec["inputs"][0]["scaling"]["L"] == 4
    assert spec["inputs"][0]["extraction"]["flow_method"] == "dis" and spec["classes"] == runs[1].classes["synth"]
    assert json.loads(written[0].with_suffix(".json").read_text())["inputs"][0]["scaling"]["convention"] == "caffe"


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None, reason="torchvision is an optional extra")
def test_resnet_export_matches_pytorch(tiny_config, tmp_path):
    train(tiny_config("temporal", ["model.arch=resnet18", "optim.iterations=1"]), tmp_path / "r", progress=False)
    run = load_run(tmp_path / "r")
    run.model.eval()
    (onnx_path,) = export_runs([run], [str(tmp_path / "r")], tmp_path / "onnx", "onnx")
    x = _inputs(run, 4)
    assert np.abs(_onnx(onnx_path, x) - _reference(run, x)).max() <= 1e-4


def test_export_cli_names_a_missing_run_and_exports_the_others(two_runs, tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope"), str(two_runs["temporal"]), "--out", str(tmp_path / "x")]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == f"FAILED {tmp_path / 'nope'}: no such run folder or checkpoint file"
    assert (tmp_path / "x" / "temporal.onnx").is_file() and (tmp_path / "x" / "temporal.json").is_file()
    assert main(["export", str(two_runs["temporal"]), "--out", str(tmp_path / "y"), "--fused"]) == 2
    assert "--fused needs exactly one spatial and one temporal run" in capsys.readouterr().err
