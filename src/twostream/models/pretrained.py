"""Pretrained weights from local files (never downloaded): a state dict (``.pt`` / ``.safetensors``), a
twostream checkpoint, or ``imagenet`` (torchvision's cache, where torchvision itself would have put them).

The first layer is converted between input conventions (``twostream.conventions``: channel order and
scale) so that weights trained in one give the same function in the model's, and adapted to 2L flow
channels by cross-modality initialisation.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ..conventions import CONVENTIONS, convert_first_conv
from ..errors import UserError
from .backbones import TORCHVISION_ARCHS, adapt_input_conv, torchvision_cache_file


def read_state_dict(path: str | Path) -> tuple[dict[str, Tensor], str | None]:
    """Tensors from a ``.safetensors`` file or a torch file, never executing pickled code, and the input
    convention the file records (a twostream checkpoint records it; None otherwise). A twostream
    checkpoint (a dict with a ``model`` entry) gives its model weights."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file {path} not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path)), None
    from ..checkpoint import safe_load

    state, recorded = safe_load(path), None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        recorded = state.get("input_convention")
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UserError(f"{path}: not a state dict of tensors")
    return state, recorded


@torch.no_grad()
def load_pretrained(model: nn.Module, source: str | Path, arch: str | None = None,
                    source_convention: str | None = None) -> dict[str, list[str]]:
    """Load weights into ``model`` from a file, or ``"imagenet"`` (torchvision's cache; torchvision archs).

    Tensors whose name and shape match are copied. The first convolution's RGB weights are converted from
    the file's input convention (``source_convention``; else what the file records; else torchvision's
    for ``imagenet``; else the model's own) to the model's, when the model takes RGB; they are adapted
    with ``adapt_input_conv`` when it takes another number of channels (a flow stack, in pixels under
    every convention). The rest (the source's classifier) is skipped. Returns {"loaded", "adapted",
    "converted", "skipped", "missing"}.
    """
    if str(source) == "imagenet":
        if arch not in TORCHVISION_ARCHS:
            raise UserError(f"'imagenet' weights are looked up for torchvision archs {TORCHVISION_ARCHS}; "
                            f"for {arch!r} give the path of a weights file")
        path = torchvision_cache_file(arch)
        if not path.is_file():
            raise UserError(f"ImageNet weights for {arch} not found at {path} (nothing is downloaded: "
                            "copy the file there, or set model.pretrained to its path)")
        source, source_convention = path, source_convention or "torchvision"
    state, recorded = read_state_dict(source)
    target = getattr(model, "input_convention", None)
    source_convention = source_convention or recorded or target
    if source_convention is not None and source_convention not in CONVENTIONS:
        raise UserError(f"model.pretrained_convention must be one of {', '.join(CONVENTIONS)}, got {source_convention!r}")
    own = model.state_dict()
    first = next(n for n, p in model.named_parameters() if p.ndim == 4)  # the first conv's weight
    report: dict[str, list[str]] = {"loaded": [], "adapted": [], "converted": [], "skipped": [], "missing": []}
    for name, value in state.items():
        if name not in own:
            report["skipped"].append(name)
        elif name == first and value.shape == own[name].shape and value.shape[1] == 3 \
                and target is not None and source_convention != target:
            own[name].copy_(convert_first_conv(value, source_convention, target))
            report["converted"].append(f"{name} ({source_convention} -> {target})")
            report["loaded"].append(name)
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
