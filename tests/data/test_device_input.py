"""The GPU input path on its CPU twin: workers read JPEG bytes, the batch is decoded and cropped, mirrored,
mean-subtracted and scaled where the model runs; it must give the workers' path's input, and a training
run through it the same weights."""

import numpy as np
import pytest
import torch

from twostream.cache import list_cached
from twostream.data import device_input
from twostream.data.datasets import TrainClips
from twostream.data.device_input import (EncodedTrainClips, collate_encoded, decode_batch, opencv_decode,
                                         torchvision_decoder, where_to_decode)
from twostream.data.inputs import InputOptions
from twostream.data.splits import Sample
from twostream.data.transforms import batch_input
from twostream.errors import UserError
from twostream.train import train

CPU = torch.device("cpu")
OPTIONS = {
    "spatial, jitter": InputOptions(stream="spatial", crop=48, jitter=0.1),
    "flow stacking, L = 4": InputOptions(stream="temporal", crop=48, length=4),
    "no mean subtraction": InputOptions(stream="temporal", crop=48, length=4, mean_subtraction=False),
    "bi-directional": InputOptions(stream="temporal", crop=48, length=4, bidirectional=True),
}


def _both_paths(synth_cache, options, decode):
    samples = [Sample(v, i % 4) for i, v in enumerate(list_cached(synth_cache["cache"]))]
    keys = [(i, 1000 + 7 * i) for i in range(len(samples))]  # every video; flips both ways among them
    workers = TrainClips(samples, synth_cache["cache"], options, "caffe")
    encoded = EncodedTrainClips(samples, synth_cache["cache"], options, "caffe")
    expected = batch_input(torch.utils.data.default_collate([workers[k] for k in keys]), CPU)
    batch = collate_encoded([encoded[k] for k in keys])
    assert {int(f) for f in batch["box"][:, 3]} == {0, 1}
    return expected, decode_batch(batch, CPU, decode)


def test_device_path_refuses_multi_scale_crops_it_would_not_resize(synth_cache):
    samples = [Sample(v, 0) for v in list_cached(synth_cache["cache"])]
    with pytest.raises(UserError, match="crop_scales resize the crops on the CPU"):
        EncodedTrainClips(samples, synth_cache["cache"], InputOptions(crop=48, crop_scales=[1.0, 0.75]), "caffe")


@pytest.mark.parametrize("name", list(OPTIONS))
def test_device_path_gives_the_workers_input(synth_cache, name):
    # the same decoder (OpenCV's): equal but for the float rounding of the flow means
    expected, got = _both_paths(synth_cache, OPTIONS[name], opencv_decode)
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()


@pytest.mark.skipif(torchvision_decoder() is None, reason="torchvision is not installed (an optional extra)")
@pytest.mark.parametrize("name", list(OPTIONS))
def test_torchvision_decoder_gives_the_workers_input_within_jpeg_rounding(synth_cache, name):
    expected, got = _both_paths(synth_cache, OPTIONS[name], torchvision_decoder())
    # libjpeg-turbo in both, but built apart: codes may differ by one step (flow: 40/255 px; RGB: 1 / std)
    step = 40 / 255 if OPTIONS[name].stream == "temporal" else 1.0
    assert (got - expected).abs().max() <= 2 * step + 1e-4


def test_where_to_decode_follows_the_device_and_says_what_is_missing(monkeypatch):
    flow, traj = InputOptions(stream="temporal"), InputOptions(stream="temporal", stacking="trajectory")
    assert where_to_decode("auto", CPU, flow) is None  # on a CPU the workers decode
    assert where_to_decode("workers", torch.device("cuda"), flow) is None
    assert where_to_decode("auto", torch.device("cuda"), traj) is None  # resampled on the CPU
    with pytest.raises(UserError, match="trajectory stacking resamples the flow on the CPU"):
        where_to_decode("device", CPU, traj)
    scaled = InputOptions(stream="spatial", crop_scales=[1.0, 0.75])
    assert where_to_decode("auto", torch.device("cuda"), scaled) is None  # resized by the workers
    with pytest.raises(UserError, match="crop_scales resize the crops on the CPU"):
        where_to_decode("device", CPU, scaled)
    with pytest.raises(UserError, match="run.decode must be one of"):
        where_to_decode("gpu", CPU, flow)
    monkeypatch.setattr(device_input, "torchvision_decoder", lambda: None)
    with pytest.raises(UserError, match="needs torchvision"):
        where_to_decode("device", CPU, flow)
    assert where_to_decode("auto", torch.device("cuda"), flow) is None  # auto falls back to the workers
    monkeypatch.setattr(device_input, "torchvision_decoder", lambda: opencv_decode)
    assert where_to_decode("auto", torch.device("cuda"), flow) is opencv_decode


@pytest.mark.parametrize("stream", ["spatial", "temporal"])
def test_training_through_the_device_path_gives_the_workers_weights(tiny_config, tmp_path, monkeypatch, stream):
    monkeypatch.setattr(device_input, "torchvision_decoder", lambda: opencv_decode)  # the CPU twin
    weights = {}
    for where in ("workers", "device"):
        train(tiny_config(stream, ["optim.iterations=2", f"run.decode={where}", "input.jitter=0.1"]),
              tmp_path / where, progress=False)
        weights[where] = torch.load(tmp_path / where / "checkpoint.pt", weights_only=True)["model"]
    for key, w in weights["workers"].items():
        assert torch.allclose(weights["device"][key], w, atol=1e-5), key
    assert any(not torch.equal(w, torch.zeros_like(w)) for w in weights["device"].values())
