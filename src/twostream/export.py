"""Trained streams for use without twostream: ONNX (for onnxruntime and friends) or TorchScript.

``twostream export RUN... --format onnx|torchscript --out DIR`` writes, per run, ``<name>.onnx`` (or
``.pt``): ``Tensor[B, C, S, S]`` float32 -> softmax ``Tensor[B, K]``, with a dynamic batch axis; with
``--fused`` and one spatial and one temporal run, also ``fused.onnx``: (``rgb``, ``flow``) -> the average of
the two softmaxes (the paper's fusion by averaging). Beside each model, ``<name>.json`` states the input
exactly: shape, channel order and scaling, the flow method, codec and L the stream was trained on, the
crops of the test protocol, and the class names.

The exported graph is the trained network with CNN-M's fast CPU LRN replaced by the same function in
standard operators (``nn.LocalResponseNorm``; ONNX has an LRN operator) and without the inference-time
chunking of its first block: the same numbers, in a form any runtime reads.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .conventions import convention
from .errors import UserError
from .io import atomic_write, atomic_write_text
from .models.lrn import FastLRN
from .predict import run_extraction
from .runs import LoadedRun

FORMATS = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}


def exportable(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in standard operators only (see the module's docstring), in eval mode."""
    model = copy.deepcopy(model).eval()
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, FastLRN):
                setattr(parent, name, nn.LocalResponseNorm(child.size, child.alpha, child.beta, child.k))
    if hasattr(model, "stem_chunk"):
        model.stem_chunk = 0  # one pass for any batch: the graph must not depend on the batch size
    return model


class Probabilities(nn.Module):
    """One task's softmax: ``Tensor[B, C, S, S]`` -> ``Tensor[B, K]``."""

    def __init__(self, model: nn.Module, task: str) -> None:
        super().__init__()
        self.model, self.task = exportable(model), task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x, self.task).float(), dim=1)


class FusedProbabilities(nn.Module):
    """Both streams and the paper's fusion by averaging: (``Tensor[B, 3, S, S]``, ``Tensor[B, 2L, S, S]``)
    -> ``Tensor[B, K]``."""

    def __init__(self, spatial: Probabilities, temporal: Probabilities) -> None:
        super().__init__()
        self.spatial, self.temporal = spatial, temporal

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        return (self.spatial(rgb) + self.temporal(flow)) / 2


def input_spec(run: LoadedRun, task, name: str) -> dict[str, Any]:
    """What the exported network takes, exactly (the JSON beside the model)."""
    o = run.config.input
    size = o.crop
    spec: dict[str, Any] = {"name": "rgb" if o.stream == "spatial" else "flow", "dtype": "float32",
                            "layout": "NCHW", "shape": ["batch", o.channels, size, size]}
    if o.stream == "spatial":
        c = convention(run.convention)
        spec["channels"] = "B, G, R" if c.bgr else "R, G, B"
        spec["scaling"] = {"convention": c.name, "formula": "(pixel * scale - mean) / std, per channel, pixels 0-255",
                           "scale": c.scale, "mean": list(c.mean), "std": list(c.std)}
    else:
        fields = [f"x{i}, y{i}" for i in range(o.length)]
        spec["channels"] = ", ".join(fields) + (" (the first L/2 forward fields, then L/2 backward)" if o.bidirectional else "")
        spec["scaling"] = {"unit": "pixels of displacement at the frame size the flow was computed at",
                           "mean_subtraction": o.mean_subtraction, "stacking": o.stacking, "L": o.length,
                           "bidirectional": o.bidirectional}
    extraction = run_extraction(run, task, name)
    spec["extraction"] = {"flow_method": extraction.flow_method, "flow_params": extraction.flow_params,
                          "short_side": extraction.short_side, "codec": {"bound": extraction.bound,
                                                                         "jpeg_quality": extraction.flow_quality}}
    return spec


def _protocol(run: LoadedRun) -> dict[str, Any]:
    o = run.config.input
    return {"crop": o.crop, "positions": o.test_positions, "crops_per_position": 10,
            "crops": "4 corners and the centre, then the same mirrored (mirrored flow: x channels negated); "
                     "softmax averaged over positions and crops"}


def _save(module: nn.Module, examples: tuple[torch.Tensor, ...], names: list[str], path: Path, fmt: str) -> None:
    if fmt == "torchscript":
        with torch.no_grad():
            traced = torch.jit.trace(module, examples, check_trace=False)
        atomic_write(path, lambda tmp: traced.save(str(tmp)))
        return
    batch = torch.export.Dim("batch", min=1, max=1024)
    args = ["x"] if len(names) == 1 else ["rgb", "flow"]  # the forward()s' parameter names
    shapes = {n: {0: batch} for n in args}
    program = torch.onnx.export(module, examples, dynamo=True, input_names=names, output_names=["probabilities"],
                                dynamic_shapes=shapes, verbose=False, optimize=True)
    atomic_write(path, lambda tmp: program.save(str(tmp)))


def _write_spec(path: Path, fmt: str, about: dict[str, Any], inputs: list[dict[str, Any]], run: LoadedRun,
                classes: list[str]) -> Path:
    """``<model>.json`` beside the model file: what it is, its inputs exactly, its output, the test protocol."""
    spec = {"format": fmt, "file": path.name, **about, "inputs": inputs,
            "outputs": [{"name": "probabilities", "shape": ["batch", len(classes)],
                         "meaning": "softmax over the classes below"}],
            "test_protocol": _protocol(run), "classes": classes}
    atomic_write_text(path.with_suffix(".json"), json.dumps(spec, indent=1) + "\n")
    return path


def export_runs(runs: list[LoadedRun], names: list[str], out: str | Path, fmt: str = "onnx", fused: bool = False,
                task: str | None = None) -> list[Path]:
    """Export each run's network (and with ``fused``, spatial + temporal + averaging in one graph) into
    ``out``; returns the model files written (each with its ``.json`` beside it)."""
    if fmt not in FORMATS:
        raise UserError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written, probs = [], {}
    for run, name in zip(runs, names):
        t = run.task(task, name)
        o = run.config.input
        module = Probabilities(run.model.cpu(), t.name).eval()
        spec = input_spec(run, t, name)  # once: it reads the run's extraction (and may warn about it)
        stem = Path(name).name if Path(name).name not in ("", ".") else "run"
        path = out / f"{stem}{SUFFIX[fmt]}"
        _save(module, (torch.zeros(2, o.channels, o.crop, o.crop),), [spec["name"]], path, fmt)
        written.append(_write_spec(path, fmt, {"run": str(name), "task": t.name}, [spec], run, run.classes[t.name]))
        probs[o.stream] = (run, t, name, module, spec)
    if fused:
        if set(probs) != {"spatial", "temporal"} or len(runs) != 2:
            raise UserError("--fused needs exactly one spatial and one temporal run")
        (s_run, s_task, s_name, s_mod, s_spec), (t_run, t_task, t_name, t_mod, t_spec) = probs["spatial"], probs["temporal"]
        if s_run.classes[s_task.name] != t_run.classes[t_task.name]:
            raise UserError(f"{s_name} and {t_name} have different classes: they cannot be fused")
        if s_run.config.input.crop != t_run.config.input.crop:
            raise UserError(f"{s_name} and {t_name} take different crop sizes: fuse their outputs instead")
        examples = tuple(torch.zeros(2, *spec["shape"][1:]) for spec in (s_spec, t_spec))
        path = out / f"fused{SUFFIX[fmt]}"
        _save(FusedProbabilities(s_mod, t_mod).eval(), examples, [s_spec["name"], t_spec["name"]], path, fmt)
        written.append(_write_spec(path, fmt, {"runs": [str(s_name), str(t_name)], "fusion": "average of the softmaxes"},
                                   [s_spec, t_spec], s_run, s_run.classes[s_task.name]))
    return written
