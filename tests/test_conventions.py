import numpy as np
import pytest
import torch

from twostream.conventions import CONVENTIONS, convert_first_conv
from twostream.models import build_model, input_convention, load_pretrained
from twostream.models.cnn_m import LRN_ARGS


def _frames(n=2, size=112, seed=0):
    """Smooth random RGB frames, uint8 range as float32[n, H, W, 3]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.interpolate(torch.rand(n, 3, size // 8, size // 8, generator=g), size=size, mode="bilinear")
    return (x.permute(0, 2, 3, 1).numpy() * 255).astype(np.float32)


def _inputs(frames, name):
    return torch.from_numpy(np.stack([CONVENTIONS[name].normalize(f) for f in frames]).copy())


def test_models_state_their_input_convention():
    assert input_convention("cnn_m_2048") == "caffe"  # the paper's: 0-255 minus the mean
    assert input_convention("resnet18") == "torchvision"
    assert CONVENTIONS["caffe"].typical_std == pytest.approx(57.6, abs=0.1)
    assert CONVENTIONS["torchvision"].typical_std == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("source", ["torchvision", "caffe_bgr"])
def test_weights_saved_in_one_convention_give_the_same_function_in_another(tmp_path, source):
    # "pretrained" weights the test makes: a CNN-M whose owner fed it inputs in `source`'s convention
    torch.manual_seed(1)
    donor = build_model("cnn_m_2048", {"imagenet": 10}, 3, 112, dropout=0.0).eval()
    torch.save(donor.state_dict(), tmp_path / "w.pt")
    model = build_model("cnn_m_2048", {"imagenet": 10}, 3, 112, dropout=0.0).eval()  # caffe convention
    report = load_pretrained(model, tmp_path / "w.pt", source_convention=source)
    assert report["converted"] == [f"features.0.weight ({source} -> caffe)"]
    frames = _frames()
    with torch.no_grad():
        want = donor(_inputs(frames, source))
        got = model(_inputs(frames, "caffe"))
        unconverted = build_model("cnn_m_2048", {"imagenet": 10}, 3, 112, dropout=0.0).eval()
        load_pretrained(unconverted, tmp_path / "w.pt", source_convention="caffe")  # wrongly stated
        wrong = unconverted(_inputs(frames, "caffe"))
    assert torch.allclose(got, want, rtol=1e-3, atol=1e-4)
    assert not torch.allclose(wrong, want, rtol=1e-2, atol=1e-2)


def test_a_checkpoint_records_its_convention(tmp_path):
    torch.manual_seed(2)
    donor = build_model("cnn_m_2048", {"a": 4}, 3, 112, dropout=0.0)
    torch.save({"model": donor.state_dict(), "input_convention": "torchvision"}, tmp_path / "ckpt.pt")
    model = build_model("cnn_m_2048", {"a": 4}, 3, 112, dropout=0.0)
    assert load_pretrained(model, tmp_path / "ckpt.pt")["converted"] == ["features.0.weight (torchvision -> caffe)"]
    w = convert_first_conv(donor.first_conv.weight, "torchvision", "caffe")
    assert torch.allclose(model.first_conv.weight, w)
    assert torch.allclose(convert_first_conv(w, "caffe", "torchvision"), donor.first_conv.weight, atol=1e-7)


def test_lrn_normalises_real_frames_at_the_papers_scale_shared_data(shared_data):
    # through a freshly initialised conv1: at the paper's input scale the LRN's denominator varies with
    # the local activity (ratio to the constant k^-beta scaling spread over positions); at torchvision's
    # unit scale it is a constant, and the LRN does nothing
    from twostream.video import read_video

    frames, _ = read_video(shared_data / "clips" / "ucf101" / "v_Basketball_g01_c01.avi")
    torch.manual_seed(0)
    model = build_model("cnn_m_2048", {"a": 101}, 3, 224, dropout=0.9)
    conv, relu, lrn = model.features[:3]
    spread = {}
    for name in ("caffe", "torchvision"):
        with torch.no_grad():
            a = relu(conv(_inputs(frames[40:41].astype(np.float32), name)))
            out = lrn(a)
        on = a > 0
        ratio = (out[on] / (a[on] * LRN_ARGS["k"] ** -LRN_ARGS["beta"])).numpy()
        spread[name] = np.percentile(ratio, [10, 90])
    lo, hi = spread["caffe"]
    assert lo < 0.5 and hi - lo > 0.3, spread  # normalising: strongly, and differently across positions
    assert spread["torchvision"][0] > 0.99, spread  # inert
