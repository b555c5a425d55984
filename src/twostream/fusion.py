"""Late fusion of the two streams' softmax scores: average, weighted average, or a linear SVM on the
stacked L2-normalised scores (the paper's two methods, plus a weight chosen on the training split)."""

from __future__ import annotations

import numpy as np

from .metrics import top_k_accuracy
from .scores import Scores, check_same_videos

METHODS = ("avg", "weighted", "svm")


def average(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a + b) / 2


def weighted(a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
    """``weight * a + (1 - weight) * b``."""
    if not 0 <= weight <= 1:
        raise ValueError(f"fusion weight must be in [0, 1], got {weight}")
    return weight * a + (1 - weight) * b


def choose_weight(a: np.ndarray, b: np.ndarray, labels: np.ndarray, step: float = 0.05) -> float:
    """The weight of ``a`` in [0, 1] (grid of ``step``) with the best top-1 accuracy; ties go to the
    weight nearest 0.5 (plain averaging)."""
    grid = np.round(np.arange(0, 1 + step / 2, step), 6)
    acc = [top_k_accuracy(weighted(a, b, w), labels) for w in grid]
    best = max(acc)
    return float(min((w for w, x in zip(grid, acc) if x == best), key=lambda w: abs(w - 0.5)))


def svm_features(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[N, 2K]``: each stream's scores L2-normalised per video, side by side."""
    def norm(x: np.ndarray) -> np.ndarray:
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    return np.concatenate([norm(a), norm(b)], axis=1)


def svm_fusion(train_a: np.ndarray, train_b: np.ndarray, train_labels: np.ndarray, test_a: np.ndarray,
               test_b: np.ndarray, c: float = 1.0) -> np.ndarray:
    """A one-vs-rest linear SVM trained on the training split's stacked scores; returns its decision
    values ``[N_test, K]`` on the test split (columns in class order, all K classes)."""
    from sklearn.svm import LinearSVC

    k = train_a.shape[1]
    present = np.unique(train_labels)
    if len(present) < 2:
        raise ValueError("SVM fusion needs training scores of at least two classes")
    svm = LinearSVC(C=c, max_iter=20_000)
    svm.fit(svm_features(train_a, train_b), train_labels)
    decision = svm.decision_function(svm_features(test_a, test_b))
    if decision.ndim == 1:  # two classes: sklearn gives one column, the second class's margin
        decision = np.stack([-decision, decision], axis=1)
    out = np.full((len(test_a), k), -np.inf, np.float32)
    out[:, svm.classes_] = decision  # classes never seen in training can never be predicted
    return out


def fuse(method: str, test: tuple[Scores, Scores], train: tuple[Scores, Scores] | None = None,
         weight: float | None = None) -> tuple[Scores, dict]:
    """Fuse (spatial, temporal) test scores; ``train`` scores are needed for ``svm`` and for ``weighted``
    without a given weight. Returns the fused scores and what was chosen."""
    if method not in METHODS:
        raise ValueError(f"fusion method must be one of {METHODS}, got {method!r}")
    s, t = test
    check_same_videos(s, t, ("spatial", "temporal"))
    info: dict = {"method": method}
    if method == "avg":
        fused = average(s.scores, t.scores)
    elif method == "weighted":
        if weight is None:
            if train is None:
                raise ValueError("weighted fusion needs a weight or the training split's score files")
            check_same_videos(*train, ("spatial train", "temporal train"))
            weight = choose_weight(train[0].scores, train[1].scores, train[0].labels)
        info["weight"] = weight
        fused = weighted(s.scores, t.scores, weight)
    else:
        if train is None:
            raise ValueError("SVM fusion needs the training split's score files")
        check_same_videos(*train, ("spatial train", "temporal train"))
        if train[0].classes != s.classes:
            raise ValueError("training and test score files have different classes")
        fused = svm_fusion(train[0].scores, train[1].scores, train[0].labels, s.scores, t.scores)
    meta = {"fusion": info, "spatial": s.meta, "temporal": t.meta}
    return Scores(s.video_ids, s.labels, s.classes, fused, meta), info
