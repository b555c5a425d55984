"""Classification metrics on score arrays ``[N, K]`` and integer labels ``[N]``."""

from __future__ import annotations

import numpy as np

from .errors import UserError


def _check(scores: np.ndarray, labels: np.ndarray) -> None:
    if scores.ndim != 2 or labels.shape != (scores.shape[0],):
        raise UserError(f"scores must be [N, K] and labels [N], got {scores.shape} and {labels.shape}")


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Share of rows whose label is among the k highest scores."""
    _check(scores, labels)
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``int64[K, K]``: row = true class, column = predicted class."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (labels, predictions), 1)
    return cm


def per_class_accuracy(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``float[K]`` top-1 accuracy of each class (NaN for a class without test videos)."""
    _check(scores, labels)
    cm = confusion_matrix(labels, scores.argmax(1), scores.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diag(cm) / cm.sum(1)


def mean_class_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean over the classes present of their top-1 accuracy."""
    return float(np.nanmean(per_class_accuracy(scores, labels)))


def summary(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {"top1": top_k_accuracy(scores, labels, 1), "top5": top_k_accuracy(scores, labels, 5),
            "mean_class": mean_class_accuracy(scores, labels), "videos": int(len(labels))}
