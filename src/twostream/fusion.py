"""Late fusion of the two streams' softmax scores: average, weighted average, or a linear SVM on the
stacked L2-normalised scores (the paper's two methods, plus a weight chosen on the training split)."""

from __future__ import annotations

import numpy as np

from .errors import UserError
from .metrics import top_k_accuracy
from .scores import Scores, check_same_videos

METHODS = ("avg", "weighted", "svm")
NEEDS_TRAINING = ("svm",)  # and "weighted" without a given weight


def needs_training_scores(method: str, weight: float | None = None) -> bool:
    return method in NEEDS_TRAINING or (method == "weighted" and weight is None)


def check_training_scores(train: Scores, test: Scores, name: str = "training scores") -> None:
    """Refuse training scores whose metadata says they are not a training part or of another task, or
    that share a video with the test scores: a fusion fitted on them would be fitted on the test set."""
    name = f"{name} {train.source}" if train.source else name
    part = train.meta.get("part", "train")
    if part != "train":
        raise UserError(f"{name}: its metadata says part {part!r}, not 'train': fusion must be fitted on the "
                        "training split's scores")
    if "task" in train.meta and "task" in test.meta and train.meta["task"] != test.meta["task"]:
        raise UserError(f"{name}: task {train.meta['task']!r}, but the test scores are of task {test.meta['task']!r}")
    shared = sorted(set(train.video_ids) & set(test.video_ids))
    if shared:
        raise UserError(f"{name}: {len(shared)} of its videos are also test videos (e.g. {shared[:3]}): a "
                        "fusion fitted on them would be fitted on the test set")


def average(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a + b) / 2


def weighted(a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
    """``weight * a + (1 - weight) * b``."""
    if not 0 <= weight <= 1:
        raise UserError(f"fusion weight must be in [0, 1], got {weight}")
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
        raise UserError("SVM fusion needs training scores of at least two classes")
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
        raise UserError(f"fusion method must be one of {METHODS}, got {method!r}")
    s, t = test
    check_same_videos(s, t, ("spatial", "temporal"))
    info: dict = {"method": method}
    if train is not None and needs_training_scores(method, weight):
        check_training_scores(train[0], s, "spatial training scores")
        check_training_scores(train[1], t, "temporal training scores")
        check_same_videos(*train, ("spatial train", "temporal train"))
    if method == "avg":
        fused = average(s.scores, t.scores)
    elif method == "weighted":
        if weight is None:
            if train is None:
                raise UserError("weighted fusion needs a weight or the training split's score files")
            weight = choose_weight(train[0].scores, train[1].scores, train[0].labels)
        info["weight"] = weight
        fused = weighted(s.scores, t.scores, weight)
    else:
        if train is None:
            raise UserError("SVM fusion needs the training split's score files")
        if train[0].classes != s.classes:
            raise UserError("training and test score files have different classes")
        fused = svm_fusion(train[0].scores, train[1].scores, train[0].labels, s.scores, t.scores)
    meta = {"fusion": info, "spatial": s.meta, "temporal": t.meta}
    return Scores(s.video_ids, s.labels, s.classes, fused, meta), info
