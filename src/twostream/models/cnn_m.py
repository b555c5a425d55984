"""CNN-M-2048 (Chatfield et al., BMVC 2014), the network of both streams in Simonyan & Zisserman 2014.

conv1 7x7/2, 96, LRN, max-pool 3/2 | conv2 5x5/2 (pad 1), 256, LRN, max-pool 3/2 | conv3, conv4, conv5
3x3/1 (pad 1), 512, max-pool 3/2 after conv5 | full6 4096 + dropout | full7 2048 + dropout | classifier.
ReLU throughout; pooling rounds up as Caffe's does (6x6 maps before full6 at 224 input). The temporal
stream takes 2L input channels and has no LRN after conv2.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import UserError
from .heads import TaskHeads, TaskModel, dropout_layer
from .lrn import FastLRN

# Caffe CNN-M's LRN: size 5, alpha 5e-4, beta 0.75, k 2.
LRN_ARGS = {"size": 5, "alpha": 5e-4, "beta": 0.75, "k": 2.0}
STEM_CHUNK = 4  # images per pass through the first block at inference (see forward_features)


def _conv_out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def _pool_out(size: int) -> int:
    return -(-(size - 3) // 2) + 1  # ceil mode


class CNNM2048(TaskModel):
    """``Tensor[B, in_channels, S, S]`` -> logits ``Tensor[B, K]`` (per task).

    Args:
        num_classes: classes per task, e.g. ``{"ucf101": 101}`` or ``{"ucf101": 101, "hmdb51": 51}``.
        in_channels: 3 (RGB) or 2L (flow stack).
        image_size: input side S the fully connected layers are sized for (224 in the paper).
        lrn2: LRN after conv2 (spatial stream: True; temporal stream: False).
        dropout: dropout ratio after full6 and full7 (the paper: 0.5 or 0.9).
    """

    input_convention = "caffe"  # the paper's: pixels 0-255 minus the mean (the LRN constants assume it)

    def __init__(self, num_classes: dict[str, int], in_channels: int = 3, image_size: int = 224,
                 lrn2: bool = True, *, dropout: float) -> None:
        super().__init__()
        self.in_channels, self.image_size = in_channels, image_size
        self.stem_chunk = STEM_CHUNK  # 0: one pass (export: a graph that does not depend on the batch size)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 96, 7, stride=2), nn.ReLU(inplace=True), FastLRN(96, **LRN_ARGS),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.Conv2d(96, 256, 5, stride=2, padding=1), nn.ReLU(inplace=True),
            FastLRN(256, **LRN_ARGS) if lrn2 else nn.Identity(), nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.Conv2d(256, 512, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(512, 512, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(512, 512, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True),
        )
        side = _pool_out(_conv_out(_pool_out(_conv_out(_pool_out(_conv_out(image_size, 7, 2, 0)), 5, 2, 1)), 3, 1, 1))
        if side < 1:
            raise UserError(f"image_size {image_size} is too small for CNN-M")
        self.feature_size = side
        self.pre_logits = nn.Sequential(
            nn.Flatten(), nn.Linear(512 * side * side, 4096), nn.ReLU(inplace=True), dropout_layer(dropout),
            nn.Linear(4096, 2048), nn.ReLU(inplace=True), dropout_layer(dropout),
        )
        self.head = TaskHeads(2048, num_classes)
        self.num_features = 2048
        # channels-last: oneDNN's convolutions and max-pooling run several times faster on CPUs in it
        self.to(memory_format=torch.channels_last)

    def forward_features(self, x: Tensor) -> Tensor:
        """``Tensor[B, C, S, S]`` -> conv5 maps ``Tensor[B, 512, s, s]`` (s = 6 at S = 224)."""
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise UserError(f"CNN-M was built for {self.image_size}x{self.image_size} inputs, got "
                             f"{x.shape[-1]}x{x.shape[-2]}")
        x = x.contiguous(memory_format=torch.channels_last)
        chunk = self.stem_chunk
        if torch.is_grad_enabled() or not chunk or len(x) <= chunk:
            return self.features(x)
        # Inference: conv1 -> ReLU -> LRN -> pool is memory-bound on conv1's large maps (96 x 109 x 109 a
        # image at 224); a few images at a time keep them in cache (1.6x faster on this block).
        stem, rest = self.features[:4], self.features[4:]
        return rest(torch.cat([stem(x[i:i + chunk]) for i in range(0, len(x), chunk)]))


    @property
    def first_conv(self) -> nn.Conv2d:
        return self.features[0]


@torch.no_grad()
def init_weights(model: CNNM2048, input_std: float = 1.0) -> None:
    """Training from scratch: He-normal convolutions and hidden linear layers, N(0, 0.01) classifiers,
    zero biases; then, for inputs of standard deviation ``input_std`` other than 1, every layer after the
    first normalisation (conv2-5, full6, full7) is scaled by one factor so that full7 starts at the scale
    He's initialisation gives for unit-scale inputs (measured on the same random probe at both scales).

    He's initialisation keeps the scale of the input. At the paper's input scale (pixels 0-255 minus the
    mean, std ~58) that is what makes conv1's outputs large enough for the LRN to normalise, as its
    constants assume; the LRNs compress the scale, but full7 would still start 10-25x larger than at unit
    scale, and training at the paper's learning rate diverges (measured). Scaling a layer's weights by f
    scales its relative gradient steps by 1/f^2, so the correction is spread evenly over the six layers
    rather than put on one or two. conv1 is left as He made it: its outputs are what the LRN sees."""
    heads = {id(m) for m in model.modules() if isinstance(m, TaskHeads) for m in m.modules()}
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if id(m) in heads:
                nn.init.normal_(m.weight, 0, 0.01)
            else:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    if input_std == 1.0:
        return
    was_training = model.training
    model.eval()
    probe = torch.randn(2, model.in_channels, model.image_size, model.image_size,
                        generator=torch.Generator().manual_seed(0))

    def rms(x: Tensor) -> float:
        return float(model.forward_head(model.forward_features(x), pre_logits=True).pow(2).mean().sqrt())

    unit, scaled = rms(probe), rms(probe * input_std)
    model.train(was_training)
    later = [m for m in list(model.features)[1:] if isinstance(m, nn.Conv2d)]
    later += [m for m in model.pre_logits if isinstance(m, nn.Linear)]
    if unit > 0 and scaled > 0:
        for layer in later:
            layer.weight.mul_((unit / scaled) ** (1 / len(later)))
