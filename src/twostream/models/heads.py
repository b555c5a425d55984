"""Classifier heads: one linear layer per task (data set) on a shared trunk (the paper's multi-task)."""

from __future__ import annotations

from torch import Tensor, nn

from ..errors import UserError


def dropout_layer(p: float) -> nn.Dropout:
    if not 0 <= p < 1:
        raise UserError(f"dropout must be in [0, 1), got {p}")
    return nn.Dropout(p)


class TaskHeads(nn.Module):
    """``Tensor[B, F]`` -> ``Tensor[B, K_task]`` with one ``nn.Linear(F, K_task)`` per task."""

    def __init__(self, in_features: int, num_classes: dict[str, int]) -> None:
        super().__init__()
        if not num_classes:
            raise UserError("need at least one task")
        for task, k in num_classes.items():
            if k < 1:
                raise UserError(f"task {task!r} needs at least one class, got {k}")
        self.heads = nn.ModuleDict({t: nn.Linear(in_features, k) for t, k in num_classes.items()})

    @property
    def tasks(self) -> list[str]:
        return list(self.heads)

    def forward(self, x: Tensor, task: str | None = None) -> Tensor:
        if task is None:
            if len(self.heads) != 1:
                raise UserError(f"several tasks ({', '.join(self.heads)}): name one")
            task = self.tasks[0]
        if task not in self.heads:
            raise UserError(f"no head for task {task!r}; tasks: {', '.join(self.heads)}")
        return self.heads[task](x)

    def forward_all(self, x: Tensor) -> dict[str, Tensor]:
        """Every head on every row: {task: ``Tensor[B, K_task]``}."""
        return {t: head(x) for t, head in self.heads.items()}


class TaskModel(nn.Module):
    """What every model shares: ``forward_features`` (defined by the model) -> ``pre_logits`` -> ``head``.

    Subclasses set ``self.pre_logits`` (features -> ``Tensor[B, F]``) and ``self.head`` (``TaskHeads``),
    and define ``forward_features`` and ``first_conv``.
    """

    pre_logits: nn.Module
    head: TaskHeads
    input_convention: str  # how RGB pixels become the input (``twostream.conventions``)

    def forward_features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_head(self, x: Tensor, task: str | None = None, pre_logits: bool = False) -> Tensor:
        """Features -> ``Tensor[B, F]`` (``pre_logits``) or the logits of ``task``, ``Tensor[B, K_task]``."""
        x = self.pre_logits(x)
        return x if pre_logits else self.head(x, task)

    def forward(self, x: Tensor, task: str | None = None) -> Tensor:
        return self.forward_head(self.forward_features(x), task)

    def forward_tasks(self, x: Tensor) -> dict[str, Tensor]:
        """``Tensor[B, C, H, W]`` -> {task: logits ``Tensor[B, K_task]``}, every head on every row."""
        return self.head.forward_all(self.pre_logits(self.forward_features(x)))

    def classifier_parameters(self) -> list[nn.Parameter]:
        """The last layer's parameters (what "fine-tune the last layer only" trains)."""
        return list(self.head.parameters())
