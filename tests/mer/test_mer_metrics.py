"""Metrics against hand-computed values, scikit-learn and NumPy."""

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from mer.metrics import CLASSIFICATION_KEYS, REGRESSION_KEYS, classification_metrics, regression_metrics


def test_regression_metrics_hand_computed():
    true = np.array([0.0, 1.2, -0.4, 2.6, -3.0, 0.0])
    pred = np.array([-0.2, 0.8, 0.3, 3.7, -2.4, 0.1])
    m = regression_metrics(pred, true)
    assert tuple(m) == REGRESSION_KEYS
    # has0: true >= 0 -> [T T F T F T]; pred >= 0 -> [F T T T F T]: 4 of 6 agree.
    assert m["acc2_has0"] == pytest.approx(4 / 6)
    # non0 drops true == 0 (indices 0, 5): true > 0 [T F T F], pred > 0 [T T T F]: 3 of 4.
    assert m["acc2_non0"] == pytest.approx(3 / 4)
    # acc7: round(clip(., -3, 3)): true [0 1 -0 3 -3 0], pred [-0 1 0 3 -2 0] -> 5 of 6.
    assert m["acc7"] == pytest.approx(5 / 6)
    # acc5: clip to [-2, 2]: true [0 1 -0 2 -2 0], pred [-0 1 0 2 -2 0] -> 6 of 6.
    assert m["acc5"] == pytest.approx(1.0)
    assert m["mae"] == pytest.approx(np.mean([0.2, 0.4, 0.7, 1.1, 0.6, 0.1]))
    assert m["corr"] == pytest.approx(np.corrcoef(pred, true)[0, 1])


def test_has0_and_non0_conventions_differ_on_zero_labels():
    true = np.array([0.0, 0.0, 1.0, -1.0])
    pred = np.array([-0.5, 0.5, 1.0, -1.0])
    m = regression_metrics(pred, true)
    assert m["acc2_has0"] == pytest.approx(3 / 4)  # true 0 counts as non-negative: -0.5 is wrong
    assert m["acc2_non0"] == pytest.approx(1.0)  # zeros dropped
    # A prediction of exactly 0 is "non-negative" for has0 but "not positive" for non0.
    m = regression_metrics(np.array([0.0, 0.0]), np.array([1.0, -1.0]))
    assert m["acc2_has0"] == pytest.approx(0.5) and m["acc2_non0"] == pytest.approx(0.5)


def test_f1_scores_match_scikit_learn_weighted_f1():
    rng = np.random.default_rng(0)
    true = np.round(rng.uniform(-3, 3, size=200) * 3) / 3
    pred = true + rng.normal(0, 1.0, size=200)
    m = regression_metrics(pred, true)
    assert m["f1_has0"] == pytest.approx(f1_score(true >= 0, pred >= 0, average="weighted"))
    nz = true != 0
    assert m["f1_non0"] == pytest.approx(f1_score(true[nz] > 0, pred[nz] > 0, average="weighted"))
    assert m["acc2_non0"] == pytest.approx(accuracy_score(true[nz] > 0, pred[nz] > 0))
    assert 0.0 < m["f1_has0"] < 1.0


def test_rounding_is_half_to_even_after_clipping():
    true = np.array([2.5, -2.5, 0.5, 3.0])
    pred = np.array([2.0, -2.0, 0.0, 9.0])  # 2.5 -> 2, -2.5 -> -2, 0.5 -> 0; 9 clips to 3
    assert regression_metrics(pred, true)["acc7"] == pytest.approx(1.0)
    # acc5 clips to [-2, 2]: 3.0 and 9.0 both become 2.
    assert regression_metrics(np.array([9.0]), np.array([3.0]))["acc5"] == 1.0


def test_masks_tensors_and_undefined_values():
    pred = torch.tensor([[0.5, 9.0], [-1.0, 9.0]])
    true = torch.tensor([[1.0, -9.0], [-2.0, -9.0]])
    mask = torch.tensor([[True, False], [True, False]])
    m = regression_metrics(pred, true, mask)
    assert m["acc2_has0"] == 1.0 and m["mae"] == pytest.approx(0.75)
    constant = regression_metrics(np.zeros(3), np.array([0.0, 0.0, 0.0]))
    assert np.isnan(constant["corr"]) and np.isnan(constant["acc2_non0"]) and np.isnan(constant["f1_non0"])
    with pytest.raises(ValueError, match="shape"):
        regression_metrics(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="NaN or Inf at position 1"):
        regression_metrics(np.array([0.0, np.nan]), np.zeros(2))
    with pytest.raises(ValueError, match="no values"):
        regression_metrics(np.zeros(2), np.zeros(2), np.zeros(2, dtype=bool))


def test_classification_metrics_from_ids_and_logits_match_scikit_learn():
    rng = np.random.default_rng(1)
    true = rng.integers(0, 6, size=300)
    pred = np.where(rng.random(300) < 0.6, true, rng.integers(0, 6, size=300))
    m = classification_metrics(pred, true)
    assert tuple(m) == CLASSIFICATION_KEYS
    assert m["acc"] == pytest.approx(accuracy_score(true, pred))
    assert m["f1_weighted"] == pytest.approx(f1_score(true, pred, average="weighted"))
    logits = torch.nn.functional.one_hot(torch.as_tensor(pred), 6).float() * 3 + torch.randn(300, 6) * 0.1
    assert classification_metrics(logits, torch.as_tensor(true)) == m
    hand = classification_metrics([0, 1, 1, 2], [0, 1, 2, 2])
    assert hand["acc"] == 0.75
    # Per class F1: 0 -> 1, 1 -> 2/3, 2 -> 2/3; support weights 1, 1, 2.
    assert hand["f1_weighted"] == pytest.approx((1 + 2 / 3 + 2 * 2 / 3) / 4)


def test_weighted_f1_matches_scikit_learn_when_predictions_use_unseen_classes():
    true = np.array([0, 1, 1, 2, 2, 2])
    pred = np.array([0, 3, 1, 2, 4, 4])
    m = classification_metrics(pred, true)
    assert m["f1_weighted"] == pytest.approx(f1_score(true, pred, average="weighted", zero_division=0))
    assert m["f1_weighted"] == pytest.approx((1 * 1 + 2 * (2 / 3) + 3 * 0.5) / 6)


def test_classification_labels_outside_the_logits_are_refused_naming_the_first():
    logits = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"true\[2\] = 9 is not a class id in \[0, 3\) \(the logits have 3 columns\)"):
        classification_metrics(logits, [0, 1, 9, 5])
    with pytest.raises(ValueError, match=r"true\[1\] = -1 is not a class id"):
        classification_metrics([0, 1, 1], [0, -1, 1])
    with pytest.raises(ValueError, match=r"true\[\(1, 0\)\] = 3"):
        classification_metrics(np.zeros((2, 2, 3)), [[0, 1], [3, 0]])
    # A masked-out bad label does not count.
    assert classification_metrics(logits, [0, 0, 9, 0], mask=[True, True, False, True])["acc"] == 1.0


def test_pad_labels_are_left_out_like_the_loss_leaves_them_out():
    from mer.data import CLASSIFICATION_PAD_LABEL

    logits = torch.tensor([[[5.0, 0.0], [0.0, 5.0]], [[5.0, 0.0], [5.0, 0.0]]])
    true = torch.tensor([[0, 1], [0, CLASSIFICATION_PAD_LABEL]])
    assert classification_metrics(logits, true) == classification_metrics(
        logits, true, mask=true != CLASSIFICATION_PAD_LABEL)
    assert classification_metrics(logits, true)["acc"] == 1.0
