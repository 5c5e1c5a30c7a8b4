"""Classification metrics against hand-counted cases and, where installed, scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

import fusion
from fusion.metrics import (
    METRICS,
    accuracy,
    confusion_matrix,
    f1,
    format_confusion_matrix,
    get_metric,
    precision,
    recall,
)

# a binary case counted by hand: tp = 3 (positions 1, 2, 6), fp = 1 (5), fn = 2 (3, 7), tn = 2
Y_TRUE = [0, 1, 1, 1, 0, 0, 1, 1]
Y_PRED = [0, 1, 1, 0, 0, 1, 1, 0]


def test_binary_scores_by_hand():
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(5 / 8)
    assert precision(Y_TRUE, Y_PRED) == pytest.approx(3 / 4)
    assert recall(Y_TRUE, Y_PRED) == pytest.approx(3 / 5)
    assert f1(Y_TRUE, Y_PRED) == pytest.approx(2 * 3 / (2 * 3 + 1 + 2))
    # class 0 as the positive class: tp = 2, fp = 2, fn = 1
    assert precision(Y_TRUE, Y_PRED, pos_label=0) == pytest.approx(2 / 4)
    assert recall(Y_TRUE, Y_PRED, pos_label=0) == pytest.approx(2 / 3)
    assert confusion_matrix(Y_TRUE, Y_PRED).tolist() == [[2, 1], [2, 3]]


def test_multiclass_averages_by_hand():
    y_true = [0, 0, 1, 1, 1, 2]
    y_pred = [0, 1, 1, 1, 2, 2]
    # per class: 0 -> tp 1, predicted 1, actual 2; 1 -> tp 2, predicted 3, actual 3;
    #            2 -> tp 1, predicted 2, actual 1
    per_precision = [1 / 1, 2 / 3, 1 / 2]
    per_recall = [1 / 2, 2 / 3, 1 / 1]
    per_f1 = [2 * 1 / (1 + 2), 2 * 2 / (3 + 3), 2 * 1 / (2 + 1)]
    np.testing.assert_allclose(precision(y_true, y_pred, average=None), per_precision)
    np.testing.assert_allclose(recall(y_true, y_pred, average=None), per_recall)
    np.testing.assert_allclose(f1(y_true, y_pred, average=None), per_f1)
    assert precision(y_true, y_pred, average="macro") == pytest.approx(np.mean(per_precision))
    assert recall(y_true, y_pred, average="macro") == pytest.approx(np.mean(per_recall))
    assert f1(y_true, y_pred, average="macro") == pytest.approx(np.mean(per_f1))
    assert f1(y_true, y_pred, average="micro") == pytest.approx(4 / 6)  # = accuracy
    assert recall(y_true, y_pred, average="weighted") == pytest.approx(
        np.average(per_recall, weights=[2, 3, 1]))
    with pytest.raises(ValueError, match="average='binary' needs two classes"):
        precision(y_true, y_pred)


def test_confusion_matrix_by_hand_and_with_labels():
    y_true = [2, 0, 2, 2, 0, 1]
    y_pred = [0, 0, 2, 2, 0, 2]
    assert confusion_matrix(y_true, y_pred).tolist() == [[2, 0, 0], [0, 0, 1], [1, 0, 2]]
    assert confusion_matrix(y_true, y_pred, num_classes=4).tolist() == [
        [2, 0, 0, 0], [0, 0, 1, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    # labels choose and order the rows and columns
    assert confusion_matrix(["cat", "dog", "dog"], ["dog", "dog", "cat"],
                            labels=["dog", "cat"]).tolist() == [[1, 1], [1, 0]]
    with pytest.raises(ValueError, match=r"labels \[7\] outside"):
        confusion_matrix([0, 1, 7], [0, 1, 1], num_classes=2)
    assert confusion_matrix([], [], num_classes=2).tolist() == [[0, 0], [0, 0]]


def test_scores_and_tensors_are_accepted():
    scores = fusion.Tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert accuracy(fusion.Tensor([1, 0, 0]), scores) == pytest.approx(2 / 3)
    assert confusion_matrix(np.array([[1], [0], [0]]), scores).tolist() == [[1, 1], [0, 1]]
    with pytest.raises(ValueError, match="3 true labels but 2 predictions"):
        accuracy([0, 1, 1], [0, 1])


def test_zero_division_for_a_class_never_predicted():
    assert precision([1, 1, 0], [0, 0, 0]) == 0.0
    assert precision([1, 1, 0], [0, 0, 0], zero_division=1.0) == 1.0
    assert f1([0, 0], [0, 0]) == 0.0  # no positives at all


def test_against_scikit_learn_on_random_labels():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for classes in (2, 3, 7):
        y_true = rng.integers(0, classes, 200)
        y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, classes, 200))
        averages = ["macro", "micro", "weighted", None] + (["binary"] if classes == 2 else [])
        for average in averages:
            for ours, theirs in ((precision, sk.precision_score), (recall, sk.recall_score),
                                 (f1, sk.f1_score)):
                np.testing.assert_allclose(ours(y_true, y_pred, average=average),
                                           theirs(y_true, y_pred, average=average))
        np.testing.assert_array_equal(confusion_matrix(y_true, y_pred),
                                      sk.confusion_matrix(y_true, y_pred))
        assert accuracy(y_true, y_pred) == pytest.approx(sk.accuracy_score(y_true, y_pred))


def test_format_and_lookup():
    text = format_confusion_matrix(np.array([[12, 0], [3, 105]]), labels=["B", "M"])
    assert text.splitlines() == ["true\\pred   B   M",
                                 "        B  12   0",
                                 "        M   3 105"]
    assert get_metric("accuracy") is accuracy
    assert set(METRICS) == {"accuracy", "precision", "recall", "f1"}
    assert get_metric("f1")([0, 1, 2], [0, 1, 1]) == pytest.approx(f1([0, 1, 2], [0, 1, 1],
                                                                     average="macro"))
    with pytest.raises(ValueError, match="unknown metric"):
        get_metric("auc")
