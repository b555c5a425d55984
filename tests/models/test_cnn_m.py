import pytest
import torch
from torch import nn

from twostream.models import CNNM2048, build_model
from twostream.models.lrn import FastLRN


def _params(in_ch: int, side: int, classes: int) -> int:
    """CNN-M-2048's parameter count, layer by layer (weights + biases)."""
    convs = [(in_ch, 96, 7), (96, 256, 5), (256, 512, 3), (512, 512, 3), (512, 512, 3)]
    n = sum(i * o * k * k + o for i, o, k in convs)
    return n + (512 * side * side * 4096 + 4096) + (4096 * 2048 + 2048) + (2048 * classes + classes)


@pytest.mark.parametrize("size, side", [(224, 6), (112, 3)])
def test_shapes_and_parameter_count(size, side):
    model = CNNM2048({"ucf101": 101}, in_channels=3, image_size=size, dropout=0.5)
    x = torch.randn(2, 3, size, size)
    feats = model.forward_features(x)
    assert feats.shape == (2, 512, side, side)
    assert model.forward_head(feats, pre_logits=True).shape == (2, 2048)
    assert model(x).shape == (2, 101)
    assert sum(p.numel() for p in model.parameters()) == _params(3, side, 101)
    assert _params(3, 6, 101) == 90_627_813  # summed by hand: 6.5 M conv + 84.1 M fully connected


def test_temporal_variant_has_2L_inputs_and_one_lrn_fewer():
    spatial = build_model("cnn_m_2048", {"ucf101": 101}, 3, 112, dropout=0.5)
    temporal = build_model("cnn_m_2048", {"ucf101": 101}, 20, 112, temporal=True, dropout=0.5)
    count = lambda m: sum(isinstance(x, FastLRN) for x in m.modules())  # noqa: E731
    assert (count(spatial), count(temporal)) == (2, 1)
    assert temporal.first_conv.weight.shape == (96, 20, 7, 7)
    assert temporal(torch.randn(1, 20, 112, 112)).shape == (1, 101)
    with pytest.raises(ValueError, match="built for 112x112"):
        temporal(torch.randn(1, 20, 224, 224))


def test_every_parameter_receives_a_gradient_and_dropout_is_configurable():
    model = CNNM2048({"a": 5, "b": 7}, in_channels=4, image_size=112, dropout=0.9)
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.9, 0.9]
    x = torch.randn(3, 4, 112, 112)
    feats = model.forward_features(x)
    loss = model.forward_head(feats, "a").sum() + model.forward_head(feats, "b").sum()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    with pytest.raises(ValueError, match="name one"):
        model(x)
    with pytest.raises(ValueError, match="dropout"):
        CNNM2048({"a": 2}, dropout=1.0)


@pytest.mark.parametrize("channels, size, alpha, beta, k", [
    (96, 5, 5e-4, 0.75, 2.0), (256, 5, 1e-4, 0.75, 1.0), (16, 4, 1e-2, 0.5, 1.0), (8, 3, 1.0, 0.75, 2.0)])
def test_fast_lrn_matches_torch(channels, size, alpha, beta, k):
    torch.manual_seed(0)
    x = torch.relu(torch.randn(2, channels, 9, 11) * 20)  # post-ReLU activations of a realistic scale
    ref = nn.LocalResponseNorm(size, alpha, beta, k)(x)
    fast = FastLRN(channels, size, alpha, beta, k)
    xr = x.clone().requires_grad_()
    nn.LocalResponseNorm(size, alpha, beta, k)(xr).square().sum().backward()
    for layout in (torch.contiguous_format, torch.channels_last):  # both memory layouts, both code paths
        xl = x.contiguous(memory_format=layout)
        with torch.no_grad():
            out = fast(xl)
        assert torch.allclose(out, ref, atol=1e-5, rtol=1e-5)
        assert out.is_contiguous(memory_format=layout)
        xg = xl.clone().requires_grad_()
        y = fast(xg)
        assert torch.allclose(y, ref, atol=1e-5, rtol=1e-5)
        y.square().sum().backward()
        assert torch.allclose(xg.grad, xr.grad, atol=1e-4, rtol=1e-4)


def test_chunked_inference_matches_the_whole_batch():
    model = CNNM2048({"a": 5}, in_channels=3, image_size=112, dropout=0.5).eval()
    x = torch.randn(10, 3, 112, 112)  # more than one chunk, and a ragged last one
    with torch.no_grad():
        chunked = model(x)
    with torch.enable_grad():
        whole = model(x)  # the autograd path runs the batch in one pass
    assert torch.allclose(chunked, whole.detach(), atol=1e-5)
