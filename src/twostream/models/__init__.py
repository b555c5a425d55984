"""Models: CNN-M-2048 (``cnn_m``), torchvision backbones (``backbones``), per-task heads (``heads``).

Every model has ``forward_features(x)``, ``forward_head(features, task)``, ``forward(x, task)``,
``classifier_parameters()`` and ``first_conv``.
"""

from __future__ import annotations

from torch import nn

from .backbones import TORCHVISION_ARCHS, TorchvisionResNet, adapt_input_conv, load_pretrained
from .cnn_m import CNNM2048, init_weights
from .heads import TaskHeads

ARCHS = ("cnn_m_2048",) + TORCHVISION_ARCHS


def build_model(arch: str, num_classes: dict[str, int], in_channels: int, image_size: int = 224,
                dropout: float = 0.5, temporal: bool = False) -> nn.Module:
    """A freshly initialised model. ``temporal`` drops CNN-M's second LRN, as the paper's temporal net."""
    if arch == "cnn_m_2048":
        model = CNNM2048(num_classes, in_channels, image_size, lrn2=not temporal, dropout=dropout)
        init_weights(model)
        return model
    if arch in TORCHVISION_ARCHS:
        return TorchvisionResNet(arch, num_classes, in_channels, dropout)
    raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")


__all__ = ["ARCHS", "CNNM2048", "TaskHeads", "TorchvisionResNet", "adapt_input_conv", "build_model",
           "init_weights", "load_pretrained"]
