"""torchvision backbones (optional extra) and loading pretrained weights from local files.

Nothing is ever downloaded: weights come from a file the user names, or from torchvision's cache
(``torch.hub.get_dir()/checkpoints``) where torchvision itself would have put them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import UserError
from .heads import TaskHeads, TaskModel, dropout_layer

TORCHVISION_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101")


def _torchvision():
    try:
        import torchvision
    except ImportError as exc:
        raise ImportError("torchvision backbones need torchvision: pip install -e '.[torchvision]'") from exc
    return torchvision


def adapt_input_conv(weight: Tensor, in_channels: int) -> Tensor:
    """Cross-modality initialisation: RGB conv1 weights ``Tensor[O, 3, k, k]`` -> ``Tensor[O, C, k, k]``,
    the mean over the RGB channels replicated over the C input channels (2L for a flow stack)."""
    if weight.ndim != 4:
        raise UserError(f"expected conv weights [O, I, k, k], got shape {list(weight.shape)}")
    if weight.shape[1] == in_channels:
        return weight.clone()
    return weight.mean(dim=1, keepdim=True).repeat(1, in_channels, 1, 1)


class TorchvisionResNet(TaskModel):
    """A torchvision ResNet as a trunk, with ``forward_features`` / ``forward_head`` and one head per task.

    Submodules keep torchvision's names (conv1, bn1, layer1..4) so its state dicts load directly.
    """

    input_convention = "torchvision"  # what torchvision's ImageNet weights were trained on

    def __init__(self, arch: str, num_classes: dict[str, int], in_channels: int = 3, *,
                 dropout: float) -> None:
        super().__init__()
        if arch not in TORCHVISION_ARCHS:
            raise UserError(f"arch must be one of {TORCHVISION_ARCHS}, got {arch!r}")
        net = getattr(_torchvision().models, arch)(weights=None)
        self.arch, self.in_channels = arch, in_channels
        self.conv1 = net.conv1 if in_channels == 3 else nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1, self.relu, self.maxpool = net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.num_features = net.fc.in_features
        self.pre_logits = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), dropout_layer(dropout))
        self.head = TaskHeads(self.num_features, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """``Tensor[B, C, H, W]`` -> ``Tensor[B, F, H/32, W/32]``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    @property
    def first_conv(self) -> nn.Conv2d:
        return self.conv1


def torchvision_cache_file(arch: str) -> Path:
    """Where torchvision keeps the ImageNet weights of ``arch`` once downloaded (never downloaded here)."""
    tv = _torchvision()
    weights = tv.models.get_model_weights(arch).DEFAULT
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
