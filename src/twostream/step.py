"""One optimisation step: forward, the multi-task loss, backward over the micro-batches of a batch
(gradients accumulate), then the optimizer. ``train.py``'s loop calls it once per iteration."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class AllHeads(nn.Module):
    """``Tensor[B, C, S, S]`` -> {task: logits ``Tensor[B, K_task]``}: every head on every row, so that
    DDP sees all parameters used in every step (rows are matched to their task in the loss)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model.forward_tasks(x)


def multitask_loss(logits: dict[str, torch.Tensor], labels: torch.Tensor, task_ids: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over tasks of the mean cross-entropy of each task's own rows (the paper's multi-task loss),
    and the number of correct top-1 predictions (a tensor: reading it would wait for the GPU).
    ``task_ids[i]`` is the position of row i's task in ``logits``."""
    loss, correct = labels.new_zeros((), dtype=torch.float32), labels.new_zeros(())
    for t, out in enumerate(logits.values()):
        rows = task_ids == t
        if rows.any():
            loss = loss + F.cross_entropy(out[rows].float(), labels[rows])
            correct = correct + (out[rows].argmax(1) == labels[rows]).sum()
        else:
            loss = loss + 0.0 * out.sum()  # keeps the unused head in the graph (DDP)
    return loss, correct


@dataclass
class StepStats:
    """What a step saw; ``loss_sum`` and ``correct`` stay on the device until read."""

    loss_sum: torch.Tensor  # sum over micro-batches of (micro-batch loss x its rows)
    correct: torch.Tensor
    seen: int


def train_step(net: nn.Module, batches: Iterator[dict], accumulate: int, optimizer: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler, device: torch.device, amp: bool = False) -> StepStats:
    """One optimizer step over the next ``accumulate`` micro-batches of ``batches`` (dicts with ``input``
    ``Tensor[b, C, S, S]``, ``label`` and ``task``), drawn one at a time so only one is in memory. Each
    micro-batch's loss is divided by ``accumulate``: the gradient is the mean over micro-batches. Under
    DDP (``net`` has ``no_sync``) gradients are all-reduced once, after the last micro-batch.
    ``amp``: float16 autocast (CUDA)."""
    ddp = hasattr(net, "no_sync")
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    for i in range(accumulate):
        b = next(batches)
        x = b["input"].to(device, non_blocking=True)
        y, task = b["label"].to(device), b["task"].to(device)
        sync = not ddp or i == accumulate - 1
        with (nullcontext() if sync else net.no_sync()), \
                torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            loss, right = multitask_loss(net(x), y, task)
            scaler.scale(loss / accumulate).backward()
        loss_sum = loss_sum + loss.detach() * len(y)
        correct = correct + right
        seen += len(y)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return StepStats(loss_sum, correct, seen)
