import numpy as np
import pytest

from twostream.metrics import confusion_matrix, mean_class_accuracy, per_class_accuracy, summary, top_k_accuracy

SCORES = np.array([[0.7, 0.2, 0.1],   # true 0, predicted 0
                   [0.1, 0.3, 0.6],   # true 1, predicted 2 (1 is second)
                   [0.5, 0.4, 0.1],   # true 1, predicted 0 (1 is second)
                   [0.2, 0.3, 0.5],   # true 2, predicted 2
                   [0.3, 0.6, 0.1]])  # true 0, predicted 1 (0 is second)
LABELS = np.array([0, 1, 1, 2, 0])


def test_counts_by_hand():
    assert top_k_accuracy(SCORES, LABELS, 1) == pytest.approx(2 / 5)
    assert top_k_accuracy(SCORES, LABELS, 2) == pytest.approx(5 / 5)
    assert top_k_accuracy(SCORES, LABELS, 5) == 1.0  # k above K is all classes
    cm = confusion_matrix(LABELS, SCORES.argmax(1), 3)
    assert cm.tolist() == [[1, 1, 0], [1, 0, 1], [0, 0, 1]]
    assert per_class_accuracy(SCORES, LABELS).tolist() == [0.5, 0.0, 1.0]
    assert mean_class_accuracy(SCORES, LABELS) == pytest.approx(0.5)
    assert summary(SCORES, LABELS)["videos"] == 5


def test_class_without_videos_is_left_out_of_the_mean():
    acc = per_class_accuracy(SCORES[:2], LABELS[:2])
    assert acc[0] == 1.0 and acc[1] == 0.0 and np.isnan(acc[2])
    assert mean_class_accuracy(SCORES[:2], LABELS[:2]) == 0.5
    with pytest.raises(ValueError, match="scores must be"):
        top_k_accuracy(SCORES, LABELS[:3])
