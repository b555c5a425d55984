import numpy as np
import pytest

from twostream.fusion import average, choose_weight, fuse, svm_features, svm_fusion, weighted
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
    fused = svm_fusion(s_tr, t_tr, y_tr, s_te, t_te)
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
