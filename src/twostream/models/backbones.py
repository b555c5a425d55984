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


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Tensors from a ``.safetensors`` file or a torch file, never executing pickled code. A twostream
    checkpoint (a dict with a ``model`` entry) gives its model weights."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file {path} not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    from ..checkpoint import safe_load

    state = safe_load(path)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UserError(f"{path}: not a state dict of tensors")
    return state


@torch.no_grad()
def load_pretrained(model: nn.Module, source: str | Path, arch: str | None = None) -> dict[str, list[str]]:
    """Load weights into ``model`` from a file, or ``"imagenet"`` (torchvision's cache; torchvision archs).

    Tensors whose name and shape match are copied; the first convolution is adapted with
    ``adapt_input_conv`` when the model takes another number of input channels (a flow stack); the
    rest (the source's classifier) is skipped. Returns {"loaded", "adapted", "skipped", "missing"}.
    """
    if str(source) == "imagenet":
        if arch not in TORCHVISION_ARCHS:
            raise UserError(f"'imagenet' weights are looked up for torchvision archs {TORCHVISION_ARCHS}; "
                             f"for {arch!r} give the path of a weights file")
        path = torchvision_cache_file(arch)
        if not path.is_file():
            raise UserError(f"ImageNet weights for {arch} not found at {path} (nothing is downloaded: "
                                    "copy the file there, or set model.pretrained to its path)")
        source = path
    state = read_state_dict(source)
    own = model.state_dict()
    first = next(n for n, p in model.named_parameters() if p.ndim == 4)  # the first conv's weight
    report: dict[str, list[str]] = {"loaded": [], "adapted": [], "skipped": [], "missing": []}
    for name, value in state.items():
        if name not in own:
            report["skipped"].append(name)
        elif own[name].shape == value.shape:
            own[name].copy_(value)
            report["loaded"].append(name)
        elif name == first and value.shape[1] == 3 and value.shape[0] == own[name].shape[0]:
            own[name].copy_(adapt_input_conv(value, own[name].shape[1]))
            report["adapted"].append(name)
        else:
            report["skipped"].append(name)
    report["missing"] = [n for n in own if n not in state]
    if not report["loaded"]:
        raise UserError(f"{source}: no tensor matches the model (is it weights for another architecture?)")
    return report
