import warnings

import numpy as np
import pytest
from scipy.special import softmax

from twostream.data.splits import Sample, Split
from twostream.fusion import (C_GRID, average, choose_weight, cv_folds, fuse, groups_of, svm_features, svm_fusion,
                              weighted)
from twostream.metrics import top_k_accuracy
from twostream.scores import Scores, read_scores, write_scores

CLASSES = ["a", "b", "c"]


def _scores(rows, labels, ids=None, classes=CLASSES):
    ids = ids or [f"v{i}" for i in range(len(rows))]
    return Scores(ids, np.array(labels), list(classes), np.array(rows, np.float32), {"task": "t"})


def test_average_and_weighted_by_hand():
    a = np.array([[0.8, 0.2], [0.4, 0.6]])
    b = np.array([[0.2, 0.8], [0.6, 0.4]])
    assert average(a, b).tolist() == [[0.5, 0.5], [0.5, 0.5]]
    assert np.allclose(weighted(a, b, 0.75), [[0.65, 0.35], [0.45, 0.55]])
    with pytest.raises(ValueError, match="weight"):
        weighted(a, b, 1.5)


def test_choose_weight_trusts_the_better_stream():
    labels = np.array([0, 1, 0, 1])
    good = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]])
    bad = np.array([[0.1, 0.9], [0.9, 0.1], [0.2, 0.8], [0.8, 0.2]])  # always wrong, confidently
    w = choose_weight(good, bad, labels)
    assert top_k_accuracy(weighted(good, bad, w), labels) == 1.0 and w > 0.5
    assert choose_weight(good, good, labels) == 0.5  # ties go to plain averaging


def test_svm_learns_what_averaging_cannot():
    # the temporal stream confidently calls every "c" a "b"; spatial is unsure about "c": averaging says
    # "b", while a linear SVM learns that (spatial unsure, temporal says b) means "c"
    rng = np.random.default_rng(0)
    spatial = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.35, 0.3, 0.35]])
    temporal = np.array([[0.6, 0.2, 0.2], [0.2, 0.6, 0.2], [0.1, 0.8, 0.1]])

    def make(n):
        labels = rng.integers(0, 3, n)
        s, t = spatial[labels], temporal[labels]
        return s + rng.normal(0, 0.02, s.shape), t + rng.normal(0, 0.02, t.shape), labels

    s_tr, t_tr, y_tr = make(300)
    s_te, t_te, y_te = make(100)
    assert top_k_accuracy(average(s_te, t_te), y_te) < 0.75  # every c is lost
    fused, c = svm_fusion(s_tr, t_tr, y_tr, s_te, t_te)
    assert fused.shape == (100, 3) and top_k_accuracy(fused, y_te) > 0.95
    feats = svm_features(s_te, t_te)
    assert np.allclose(np.linalg.norm(feats[:, :3], axis=1), 1) and np.allclose(np.linalg.norm(feats[:, 3:], axis=1), 1)


def test_fuse_methods_and_mismatches(tmp_path):
    s = _scores([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]], [0, 1])
    t = _scores([[0.2, 0.2, 0.6], [0.1, 0.7, 0.2]], [0, 1])
    fused, info = fuse("avg", (s, t))
    assert np.allclose(fused.scores, [[0.4, 0.25, 0.35], [0.15, 0.6, 0.25]]) and info == {"method": "avg"}
    fused, info = fuse("weighted", (s, t), weight=1.0)
    assert np.allclose(fused.scores, s.scores) and info["weight"] == 1.0
    with pytest.raises(ValueError, match="training split"):
        fuse("svm", (s, t))
    other = _scores(s.scores, [0, 1], ids=["v0", "x9"])
    with pytest.raises(ValueError, match=r"different videos: 1 only in spatial \(e.g. \['v1'\]\), 1 only in temporal"):
        fuse("avg", (s, other))
    renamed = _scores(s.scores, [0, 1], classes=["a", "b", "z"])
    with pytest.raises(ValueError, match=r"different classes \(classes only in spatial: \['c'\]"):
        fuse("avg", (s, renamed))
    relabelled = _scores(t.scores, [0, 2])
    with pytest.raises(ValueError, match="disagree on the labels of 1 videos"):
        fuse("avg", (s, relabelled))


def test_score_file_round_trip(tmp_path):
    s = _scores([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]], [0, 1])
    s.meta = {"task": "ucf101", "config": {"optim": {"lr": 0.01}}}
    write_scores(tmp_path / "s.npz", s)
    back = read_scores(tmp_path / "s.npz")
    assert back.video_ids == s.video_ids and back.classes == CLASSES and back.meta == s.meta
    assert np.array_equal(back.scores, s.scores) and back.labels.dtype == np.int64
    assert np.load(tmp_path / "s.npz", allow_pickle=False)["video_ids"].tolist() == ["v0", "v1"]  # no pickle
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(ValueError, match="bad.npz: not a twostream score file"):
        read_scores(tmp_path / "bad.npz")


def test_svm_is_crammer_singer_with_c_by_cross_validation():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(3), 20)
    a = np.eye(3)[labels] * 0.6 + rng.uniform(0, 0.4, (60, 3))
    b = np.eye(3)[(labels + rng.integers(0, 2, 60)) % 3] * 0.5 + rng.uniform(0, 0.5, (60, 3))
    ids = [f"c{y}/v_c{y}_g{i % 5 + 1:02d}_c{i:02d}" for i, y in enumerate(labels)]
    train = (_scores(a[:45], labels[:45], ids[:45]), _scores(b[:45], labels[:45], ids[:45]))
    test = (_scores(a[45:], labels[45:], ids[45:]), _scores(b[45:], labels[45:], ids[45:]))
    fused, info = fuse("svm", test, train)
    assert info["multi_class"] == "crammer_singer" and info["C"] in C_GRID and info["fitted_on"] == "train"
    _, ovr = fuse("svm-ovr", test, train)
    assert ovr["multi_class"] == "ovr"
    assert top_k_accuracy(fused.scores, fused.labels) > 0.8


def test_cross_validation_folds_never_split_a_group():
    labels = np.repeat(np.arange(2), 12)
    groups = np.tile(np.arange(1, 7), 4)
    folds = cv_folds(labels, groups)
    assert len(folds) == 5
    for tr, va in folds:
        assert set(groups[tr]).isdisjoint(groups[va])
    assert groups_of(["A/v_A_g07_c02", "B/v_B_g11_c01"]).tolist() == [7, 11]
    assert groups_of(["A/v_A_g07_c02", "mine/clip"]) is None  # no groups: stratified folds instead
    assert all(set(labels[va]) == {0, 1} for _, va in cv_folds(labels, None))


def test_held_out_groups_leave_the_training_part():
    ids = [f"A/v_A_g{g:02d}_c01" for g in range(1, 8)]
    split = Split("ucf101/1", ["A"], [Sample(v, 0) for v in ids], [Sample("A/v_A_g20_c01", 0)])
    held = split.hold_out([6, 7])
    assert [s.video_id for s in held.fusion] == ids[5:] and [s.video_id for s in held.train] == ids[:5]
    assert held.test == split.test
    with pytest.raises(ValueError, match="fusion groups need video names with a group"):
        Split("x", ["A"], [Sample("A/clip", 0)]).hold_out([1])
    with pytest.raises(ValueError, match="leaves 0 training"):
        split.hold_out(list(range(1, 8)))


def test_fitting_scores_must_not_be_test_scores():
    s = _scores([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]], [0, 1], ["v0", "v1"])
    t = _scores([[0.2, 0.2, 0.6], [0.1, 0.7, 0.2]], [0, 1], ["v0", "v1"])
    tr_s = _scores([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1]], [0, 1], ["v1", "v2"])
    tr_t = _scores([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1]], [0, 1], ["v1", "v2"])
    with pytest.raises(ValueError, match="spatial training scores: 1 of its videos are also test videos"):
        fuse("svm", (s, t), (tr_s, tr_t))
    tr_s.video_ids, tr_t.video_ids = ["v2", "v3"], ["v2", "v3"]
    tr_s.meta["part"] = "test"
    with pytest.raises(ValueError, match="part 'test', not 'train' or 'fusion'"):
        fuse("weighted", (s, t), (tr_s, tr_t))


def _confident_scores(rng, labels, k, wrong=0.03, sharpness=8.0):
    """Softmax scores ``[N, K]`` of an over-confident stream: one-hot-like, a few percent on a wrong class."""
    target = labels.copy()
    flip = rng.random(len(labels)) < wrong
    target[flip] = rng.integers(0, k, int(flip.sum()))
    logits = rng.normal(0, 1, (len(labels), k))
    logits[np.arange(len(labels)), target] += sharpness
    return softmax(logits, axis=1)


@pytest.mark.parametrize("seed, converges", [(1, True), (0, False)])
def test_svm_warns_only_when_liblinear_stops_at_its_cap(seed, converges):
    # Over-confident training scores at C=100, as UCF-9's cross-validation folds had: liblinear's
    # Crammer-Singer solver needs ~28,000 iterations for seed 1 (it used to warn then, at max_iter=20,000)
    # and stops at its own cap of 100,000 for seed 0, which must still be reported.
    from sklearn.exceptions import ConvergenceWarning

    rng, k = np.random.default_rng(seed), 9
    labels = rng.integers(0, k, 700)
    a, b = _confident_scores(rng, labels, k), _confident_scores(rng, labels, k)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fused, c = svm_fusion(a, b, labels, a, b, c=100.0)
    warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    assert warned is (not converges) and c == 100.0
    assert top_k_accuracy(fused, labels) > 0.9
