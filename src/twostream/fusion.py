"""Late fusion of the two streams' softmax scores: average, weighted average, or a linear SVM on the
stacked L2-normalised scores (the paper's two methods, plus a weight chosen on the training scores).

``svm`` is the paper's multi-class linear SVM (Crammer and Singer); ``svm-ovr`` the one-vs-rest variant.
Their C is chosen by cross-validation on the scores they are fitted on, with folds by video group where
the videos have groups (UCF-101), so that clips of one group never sit on both sides of a fold.
"""

from __future__ import annotations

import numpy as np

from .data.splits import video_group
from .errors import UserError
from .metrics import top_k_accuracy
from .scores import Scores, check_same_videos

METHODS = ("avg", "weighted", "svm", "svm-ovr")
SVM_MULTI_CLASS = {"svm": "crammer_singer", "svm-ovr": "ovr"}
FIT_PARTS = ("train", "fusion")  # what a fusion may be fitted on: never the test videos
C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


def needs_training_scores(method: str, weight: float | None = None) -> bool:
    return method in SVM_MULTI_CLASS or (method == "weighted" and weight is None)


def check_training_scores(train: Scores, test: Scores, name: str = "training scores") -> None:
    """Refuse fitting scores whose metadata says they are not a training (or held-out fusion) part or of
    another task, or that share a video with the test scores: a fusion fitted on them would be fitted on
    the test set."""
    name = f"{name} {train.source}" if train.source else name
    part = train.meta.get("part", "train")
    if part not in FIT_PARTS:
        raise UserError(f"{name}: its metadata says part {part!r}, not {' or '.join(map(repr, FIT_PARTS))}: "
                        "fusion must be fitted on the training split's scores")
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


def cv_folds(labels: np.ndarray, groups: np.ndarray | None, n_splits: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, validation rows) per fold: by group when ``groups`` is given (no group on both sides),
    else stratified by class; [] when there is too little data to cross-validate."""
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    if groups is not None:
        k = min(n_splits, len(np.unique(groups)))
        return list(GroupKFold(k).split(labels, labels, groups)) if k >= 2 else []
    k = min(n_splits, int(np.bincount(labels)[np.unique(labels)].min()))  # each class in every fold
    return list(StratifiedKFold(k, shuffle=True, random_state=0).split(labels, labels)) if k >= 2 else []


# liblinear's Crammer-Singer solver ignores max_iter and stops at its own 100,000 iterations, while
# scikit-learn warns whenever the solver took max_iter or more: any other value either warns about fits that
# did converge (it warned on UCF-9's cross-validation folds at C=100) or hides ones that did not. The
# one-vs-rest solver does honour it: for `svm-ovr` it is simply a generous cap.
LIBLINEAR_MAX_ITER = 100_000


def _svm(c: float, multi_class: str):
    from sklearn.svm import LinearSVC

    # random_state: liblinear shuffles
    return LinearSVC(C=c, multi_class=multi_class, max_iter=LIBLINEAR_MAX_ITER, random_state=0)


def choose_c(features: np.ndarray, labels: np.ndarray, groups: np.ndarray | None, multi_class: str) -> float:
    """The C of ``C_GRID`` with the best cross-validated top-1 accuracy (ties: the one nearest 1)."""
    folds = cv_folds(labels, groups)
    if not folds:
        return 1.0
    acc = []
    for c in C_GRID:
        right = 0
        for tr, va in folds:
            if len(np.unique(labels[tr])) >= 2:  # a fold whose training side has one class predicts nothing
                svm = _svm(c, multi_class).fit(features[tr], labels[tr])
                right += int((svm.predict(features[va]) == labels[va]).sum())
        acc.append(right)
    best = max(acc)
    return float(min((c for c, a in zip(C_GRID, acc) if a == best), key=lambda c: abs(np.log10(c))))


def groups_of(video_ids: list[str]) -> np.ndarray | None:
    """Each video's group (UCF-101), or None unless every video has one."""
    groups = [video_group(v) for v in video_ids]
    return None if any(g is None for g in groups) else np.asarray(groups)


def svm_fusion(train_a: np.ndarray, train_b: np.ndarray, train_labels: np.ndarray, test_a: np.ndarray,
               test_b: np.ndarray, multi_class: str = "crammer_singer", c: float | None = None,
               groups: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """A linear SVM fitted on the stacked L2-normalised fitting scores (C by cross-validation with folds by
    ``groups`` unless given); returns its decision values ``[N_test, K]`` on the test scores (columns in
    class order, all K classes) and the C used."""
    k = train_a.shape[1]
    if len(np.unique(train_labels)) < 2:
        raise UserError("SVM fusion needs training scores of at least two classes")
    features = svm_features(train_a, train_b)
    c = choose_c(features, train_labels, groups, multi_class) if c is None else c
    svm = _svm(c, multi_class).fit(features, train_labels)
    decision = svm.decision_function(svm_features(test_a, test_b))
    if decision.ndim == 1:  # two classes: sklearn gives one column, the second class's margin
        decision = np.stack([-decision, decision], axis=1)
    out = np.full((len(test_a), k), -np.inf, np.float32)
    out[:, svm.classes_] = decision  # classes never seen in training can never be predicted
    return out, c


def fuse(method: str, test: tuple[Scores, Scores], train: tuple[Scores, Scores] | None = None,
         weight: float | None = None) -> tuple[Scores, dict]:
    """Fuse (spatial, temporal) test scores; ``train`` scores (a training or held-out fusion part) are
    needed for the SVMs and for ``weighted`` without a given weight. Returns the fused scores and what
    was chosen."""
    if method not in METHODS:
        raise UserError(f"fusion method must be one of {', '.join(METHODS)}, got {method!r}")
    s, t = test
    if s.source and s.source == t.source:
        raise UserError(f"{s.source} was given as both the spatial and the temporal scores")
    for name, x in (("spatial", s), ("temporal", t)):
        if x.meta.get("part", "test") != "test":
            raise UserError(f"{name} scores {x.source}: its metadata says part {x.meta['part']!r}: give the test "
                            "part's scores to fuse (the fitting scores are found from them)")
    check_same_videos(s, t, ("spatial", "temporal"))
    info: dict = {"method": method}
    if needs_training_scores(method, weight):
        if train is None:
            raise UserError(f"{method} fusion needs the training split's score files"
                            + (" (or a weight)" if method == "weighted" else ""))
        check_training_scores(train[0], s, "spatial training scores")
        check_training_scores(train[1], t, "temporal training scores")
        check_same_videos(*train, ("spatial train", "temporal train"))
        if train[0].classes != s.classes:
            raise UserError("training and test score files have different classes")
        info["fitted_on"] = train[0].meta.get("part", "train")
    if method == "avg":
        fused = average(s.scores, t.scores)
    elif method == "weighted":
        if weight is None:
            weight = choose_weight(train[0].scores, train[1].scores, train[0].labels)
        info["weight"] = weight
        fused = weighted(s.scores, t.scores, weight)
    else:
        fused, info["C"] = svm_fusion(train[0].scores, train[1].scores, train[0].labels, s.scores, t.scores,
                                      SVM_MULTI_CLASS[method], groups=groups_of(train[0].video_ids))
        info["multi_class"] = SVM_MULTI_CLASS[method]
    meta = {"fusion": info, "spatial": s.meta, "temporal": t.meta}
    return Scores(s.video_ids, s.labels, s.classes, fused, meta), info
