import pytest
import torch
from safetensors.torch import save_file

from twostream.errors import UserError
from twostream.models import adapt_input_conv, build_model, load_pretrained


def test_adapt_input_conv_averages_rgb_and_replicates():
    w = torch.arange(2 * 3 * 1 * 1, dtype=torch.float32).reshape(2, 3, 1, 1)  # [[0,1,2],[3,4,5]]
    out = adapt_input_conv(w, 20)
    assert out.shape == (2, 20, 1, 1)
    assert torch.equal(out[0, :, 0, 0], torch.full((20,), 1.0)) and torch.equal(out[1, :, 0, 0], torch.full((20,), 4.0))
    assert torch.equal(adapt_input_conv(w, 3), w)


@pytest.mark.parametrize("fmt", ["pt", "safetensors"])
def test_imagenet_style_weights_load_into_a_temporal_net(tmp_path, fmt):
    # "ImageNet" weights the test makes itself: an RGB CNN-M with a 1000-way classifier
    rgb = build_model("cnn_m_2048", {"imagenet": 1000}, 3, 112, dropout=0.5)
    path = tmp_path / f"weights.{fmt}"
    state = {k: v.contiguous() for k, v in rgb.state_dict().items()}
    torch.save(state, path) if fmt == "pt" else save_file(state, str(path))
    temporal = build_model("cnn_m_2048", {"ucf101": 101}, 20, 112, temporal=True, dropout=0.5)
    report = load_pretrained(temporal, path)
    assert report["adapted"] == ["features.0.weight"]
    assert {"head.heads.imagenet.weight", "head.heads.imagenet.bias"} <= set(report["skipped"])
    assert "head.heads.ucf101.weight" in report["missing"]
    assert torch.allclose(temporal.first_conv.weight, adapt_input_conv(rgb.first_conv.weight, 20))
    assert torch.equal(temporal.features[3 + 1].weight, rgb.features[4].weight)  # conv2 copied as is
    with pytest.raises(ValueError, match="torchvision archs"):
        load_pretrained(temporal, "imagenet", "cnn_m_2048")
    with pytest.raises(UserError, match="nope.pt"):
        load_pretrained(temporal, tmp_path / "nope.pt")


@pytest.mark.parametrize("arch, width", [("resnet18", 512), ("resnet50", 2048)])
def test_torchvision_resnets_when_installed(tmp_path, monkeypatch, arch, width):
    tv = pytest.importorskip("torchvision")
    from twostream.models.backbones import torchvision_cache_file
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # torchvision's cache, made by the test
    model = build_model(arch, {"ucf101": 101}, 20, dropout=0.5)
    with pytest.raises(UserError, match="nothing is downloaded"):
        load_pretrained(model, "imagenet", arch)
    net = getattr(tv.models, arch)(weights=None)
    cached = torchvision_cache_file(arch)
    cached.parent.mkdir(parents=True)
    torch.save(net.state_dict(), cached)
    report = load_pretrained(model, "imagenet", arch)
    assert report["adapted"] == ["conv1.weight"] and "fc.weight" in report["skipped"]
    assert torch.allclose(model.conv1.weight, adapt_input_conv(net.conv1.weight, 20))
    assert torch.equal(model.layer4[0].conv1.weight, net.layer4[0].conv1.weight)
    x = torch.randn(2, 20, 112, 112)
    assert model.forward_features(x).shape == (2, width, 4, 4) and model(x).shape == (2, 101)
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, width)
