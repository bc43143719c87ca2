"""The one confusion matrix: a hand-checked case, ignore handling, the derived metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seglite.eval.metrics import (
    ConfusionMatrix,
    confusion_matrix,
    fw_iou,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
)

# 3 classes, ignore 255. Ground truth (rows) and prediction, worked out by hand below.
TARGET = np.array([[0, 0, 1, 1], [2, 2, 255, 1], [0, 2, 2, 255]], dtype=np.uint8)
PRED = np.array([[0, 1, 1, 1], [2, 0, 2, 2], [0, 2, 2, 0]], dtype=np.uint8)
# counted pixel by pixel (the two 255 pixels are skipped):
#   t=0: p=0,1,0           -> [2, 1, 0]
#   t=1: p=1,1,2           -> [0, 2, 1]
#   t=2: p=2,0,2,2         -> [1, 0, 3]
HAND = np.array([[2, 1, 0], [0, 2, 1], [1, 0, 3]])


def test_hand_checked_confusion_matrix():
    cm = confusion_matrix(PRED, TARGET, 3, ignore_index=255)
    np.testing.assert_array_equal(cm, HAND)
    # IoU = TP / (row + col - TP): 2/(3+3-2), 2/(3+3-2), 3/(4+4-3)
    np.testing.assert_allclose(iou_per_class(cm), [0.5, 0.5, 0.6])
    assert mean_iou(cm) == pytest.approx((0.5 + 0.5 + 0.6) / 3)
    assert pixel_accuracy(cm) == pytest.approx(7 / 10)
    assert fw_iou(cm) == pytest.approx(0.3 * 0.5 + 0.3 * 0.5 + 0.4 * 0.6)


def test_summary_in_percent_with_names():
    acc = ConfusionMatrix(3, 255)
    acc.update(PRED, TARGET)
    s = acc.summary(["a", "b", "c"])
    assert s["miou"] == 53.33 and s["pixel_acc"] == 70.0 and s["fwiou"] == 54.0
    assert s["per_class_iou"] == {"a": 50.0, "b": 50.0, "c": 60.0}
    assert s["pixels"] == 10


def test_accumulating_images_equals_one_big_image():
    rng = np.random.default_rng(0)
    acc = ConfusionMatrix(5, 255)
    preds, targets = [], []
    for _ in range(4):
        t = rng.integers(0, 6, (7, 9)).astype(np.uint8)
        t[t == 5] = 255
        p = rng.integers(0, 5, (7, 9))
        acc.update(p, t)
        preds.append(p)
        targets.append(t)
    whole = confusion_matrix(np.concatenate(preds), np.concatenate(targets), 5, 255)
    np.testing.assert_array_equal(acc.matrix, whole)


def test_absent_class_is_left_out_of_the_mean():
    t = np.array([0, 0, 1, 1])
    cm = confusion_matrix(t, t, 3)  # class 2: no ground truth, never predicted
    assert math.isnan(iou_per_class(cm)[2])
    assert mean_iou(cm) == 1.0
    assert ConfusionMatrix(3, None, cm).summary()["per_class_iou"]["2"] is None


def test_false_positives_of_an_absent_class_count():
    cm = confusion_matrix(np.array([2, 0]), np.array([0, 0]), 3)
    np.testing.assert_allclose(iou_per_class(cm)[:3:2], [0.5, 0.0])


def test_camvid_style_ignore_inside_the_class_range():
    # CamVid ignores 11 with 11 classes: values >= num_classes are skipped anyway
    t = np.array([0, 11, 11, 3])
    cm = confusion_matrix(np.array([0, 5, 7, 3]), t, 11, ignore_index=11)
    assert cm.sum() == 2 and cm[0, 0] == 1 and cm[3, 3] == 1


def test_bad_predictions_and_shapes_are_errors():
    with pytest.raises(ValueError, match="class ids"):
        confusion_matrix(np.array([3]), np.array([0]), 3)
    with pytest.raises(ValueError, match="pixels"):
        confusion_matrix(np.zeros(3), np.zeros(4), 3)
