"""One optimisation step: forward, the multi-task loss, backward over the micro-batches of a batch
(gradients accumulate), then the optimizer. ``train.py``'s loop calls it once per iteration."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .data.transforms import batch_input
from .precision import autocast


class AllHeads(nn.Module):
    """``Tensor[B, C, S, S]`` -> {task: logits ``Tensor[B, K_task]``}: every head on every row, so that
    DDP sees all parameters used in every step (rows are matched to their task in the loss)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model.forward_tasks(x)


def multitask_loss(logits: dict[str, torch.Tensor], labels: torch.Tensor, task_ids: torch.Tensor,
                   counts: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's multi-task loss: the sum over tasks of each task's mean cross-entropy over the batch,
    ``sum_t (1 / N_t) sum_{i in t} CE_i``, and the number of correct top-1 predictions (a tensor: reading
    it would wait for the GPU). ``task_ids[i]`` is the position of row i's task in ``logits``.

    ``counts[t]`` is N_t over the whole batch (all micro-batches, all processes), so that the losses of
    the micro-batches of a batch add up to the batch's loss, whatever the split; by default the rows
    given are the whole batch."""
    if counts is None:
        counts = torch.bincount(task_ids, minlength=len(logits))
    loss, correct = labels.new_zeros((), dtype=torch.float32), labels.new_zeros(())
    for t, out in enumerate(logits.values()):
        rows = task_ids == t
        if rows.any():
            ce = F.cross_entropy(out[rows].float(), labels[rows], reduction="sum")
            loss = loss + ce / counts[t].clamp(min=1)
            correct = correct + (out[rows].argmax(1) == labels[rows]).sum()
        else:
            loss = loss + 0.0 * out.sum()  # keeps the unused head in the graph (DDP)
    return loss, correct


@dataclass
class StepStats:
    """What a step saw; ``loss`` and ``correct`` stay on the device until read."""

    loss: torch.Tensor  # this process's share of the batch loss (the shares of all processes add up to it)
    correct: torch.Tensor
    seen: int


def train_step(net: nn.Module, batches: Iterator[dict], accumulate: int, task_counts: torch.Tensor,
               optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, device: torch.device,
               dtype: torch.dtype | None = None, world_size: int = 1,
               to_input: Callable[[dict, torch.device], torch.Tensor] = batch_input) -> StepStats:
    """One optimizer step over the next ``accumulate`` micro-batches of ``batches`` (dicts with the input's
    planes ``input``, ``scale``, ``offset`` (``transforms.batch_input``), ``label`` and ``task``), drawn one
    at a time so only one is in memory. ``task_counts`` ``Tensor[T]``: the rows of each task in the whole batch, over all ``world_size``
    processes. The gradient is that of the paper's multi-task loss of the whole batch, whatever the
    micro-batch size and the number of processes: each micro-batch adds its share of the loss, and under
    DDP (``net`` has ``no_sync``; it averages gradients over processes, all-reduced once, after the last
    micro-batch) the shares are scaled by ``world_size``. ``dtype``: the autocast (``precision``), if any.
    ``to_input``: a micro-batch -> the model's input on ``device`` (``device_input.decode_batch`` when the
    device decodes the JPEGs)."""
    ddp = hasattr(net, "no_sync")
    counts = task_counts.to(device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    for i in range(accumulate):
        b = next(batches)
        x = to_input(b, device)
        y, task = b["label"].to(device), b["task"].to(device)
        sync = not ddp or i == accumulate - 1
        with (nullcontext() if sync else net.no_sync()), \
                autocast(device, dtype):
            loss, right = multitask_loss(net(x), y, task, counts)
            scaler.scale(loss * world_size).backward()
        loss_sum = loss_sum + loss.detach()
        correct = correct + right
        seen += len(y)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return StepStats(loss_sum, correct, seen)
