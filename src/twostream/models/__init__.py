"""Models: CNN-M-2048 (``cnn_m``), torchvision backbones (``backbones``), per-task heads (``heads``).

Every model has ``forward_features(x)``, ``forward_head(features, task)``, ``forward(x, task)``,
``classifier_parameters()`` and ``first_conv``.
"""

from __future__ import annotations

from torch import nn

from ..conventions import convention

from ..errors import UserError
from .backbones import TORCHVISION_ARCHS, TorchvisionResNet, adapt_input_conv
from .cnn_m import CNNM2048, init_weights
from .heads import TaskHeads
from .pretrained import load_pretrained

ARCHS = ("cnn_m_2048",) + TORCHVISION_ARCHS


TRAIN_LAYERS = ("all", "last")  # fine-tune everything, or the classifier only (the paper's two)


def build_model(arch: str, num_classes: dict[str, int], in_channels: int, image_size: int = 224, *,
                dropout: float, temporal: bool = False) -> nn.Module:
    """A freshly initialised model. ``temporal`` drops CNN-M's second LRN, as the paper's temporal net.
    ``dropout`` has no default here: the config owns it (``model.dropout``)."""
    if arch == "cnn_m_2048":
        model = CNNM2048(num_classes, in_channels, image_size, lrn2=not temporal, dropout=dropout)
        # flow is in pixels (unit scale); RGB in the paper's convention, 0-255 minus the mean
        init_weights(model, 1.0 if temporal else convention(CNNM2048.input_convention).typical_std)
        return model
    if arch in TORCHVISION_ARCHS:
        return TorchvisionResNet(arch, num_classes, in_channels, dropout=dropout)
    raise UserError(f"arch must be one of {ARCHS}, got {arch!r}")


def input_convention(arch: str) -> str:
    """How RGB pixels become ``arch``'s input (``twostream.conventions``): the paper's (0-255 minus the
    mean) for CNN-M, whose LRN constants assume that scale; torchvision's for torchvision's nets."""
    if arch == "cnn_m_2048":
        return CNNM2048.input_convention
    if arch in TORCHVISION_ARCHS:
        return TorchvisionResNet.input_convention
    raise UserError(f"arch must be one of {ARCHS}, got {arch!r}")


def set_trainable(model: nn.Module, train_layers: str) -> None:
    """``all``: every parameter trains; ``last``: only the classifier heads (the rest frozen)."""
    if train_layers not in TRAIN_LAYERS:
        raise UserError(f"train_layers must be one of {', '.join(TRAIN_LAYERS)}, got {train_layers!r}")
    trainable = {id(p) for p in (model.classifier_parameters() if train_layers == "last" else model.parameters())}
    for p in model.parameters():
        p.requires_grad_(id(p) in trainable)


__all__ = ["ARCHS", "TRAIN_LAYERS", "input_convention", "set_trainable", "CNNM2048", "TaskHeads", "TorchvisionResNet", "adapt_input_conv", "build_model",
           "init_weights", "load_pretrained"]
