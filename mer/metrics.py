"""The field's metrics for emotion recognition, following MMSA's conventions.

Regression (labels in [−3, 3], CMU-MOSI / MOSEI):

* ``acc2_has0`` / ``f1_has0``: negative ``y < 0`` vs non-negative ``y ≥ 0`` over all utterances;
* ``acc2_non0`` / ``f1_non0``: utterances with ``true ≠ 0`` only, positive ``y > 0`` vs negative;
* F1 is the support-weighted F1 over the true classes (scikit-learn's ``average="weighted"``);
* ``acc5`` / ``acc7``: clip predictions and truth to [−2, 2] / [−3, 3], round (NumPy, half to even),
  compare;
* ``mae``: mean absolute error; ``corr``: Pearson correlation.

Classification: ``acc`` and weighted F1.

Undefined values are NaN, never an exception: ``corr`` when either side is constant, the ``non0``
metrics when every true label is 0.
"""

from __future__ import annotations

import numpy as np

from mer.data.collate import CLASSIFICATION_PAD_LABEL

__all__ = ["regression_metrics", "classification_metrics", "REGRESSION_KEYS", "CLASSIFICATION_KEYS"]

REGRESSION_KEYS = ("acc2_has0", "acc2_non0", "f1_has0", "f1_non0", "acc5", "acc7", "mae", "corr")
CLASSIFICATION_KEYS = ("acc", "f1_weighted")


def regression_metrics(pred, true, mask=None) -> dict[str, float]:
    """MMSA-style regression metrics.

    Parameters
    ----------
    pred, true : array-like or Tensor
        Same shape (any, flattened), e.g. ``(B, N_max)`` predictions and labels.
    mask : array-like or Tensor, optional
        Bool of the same shape: only ``True`` entries count (e.g. ``batch.utterance_mask``).

    Returns
    -------
    dict
        Keys :data:`REGRESSION_KEYS`, float values (accuracies and F1 in [0, 1]).

    Examples
    --------
    >>> m = regression_metrics([0.4, -1.6, 2.2], [1.0, -2.0, 0.0])
    >>> m["acc2_has0"], m["acc2_non0"], m["acc7"]
    (1.0, 1.0, 0.3333333333333333)
    """
    p, t = _flatten(pred, true, mask)
    has0_p, has0_t = p >= 0, t >= 0
    nonzero = t != 0
    out = {
        "acc2_has0": float(np.mean(has0_p == has0_t)),
        "f1_has0": _weighted_f1(has0_t, has0_p),
    }
    if nonzero.any():
        non0_p, non0_t = p[nonzero] > 0, t[nonzero] > 0
        out["acc2_non0"] = float(np.mean(non0_p == non0_t))
        out["f1_non0"] = _weighted_f1(non0_t, non0_p)
    else:
        out["acc2_non0"] = out["f1_non0"] = float("nan")
    out["acc5"] = _clipped_round_accuracy(p, t, 2.0)
    out["acc7"] = _clipped_round_accuracy(p, t, 3.0)
    out["mae"] = float(np.mean(np.abs(p - t)))
    out["corr"] = _pearson(p, t)
    return {k: out[k] for k in REGRESSION_KEYS}


def classification_metrics(pred, true, mask=None) -> dict[str, float]:
    """Accuracy and weighted F1.

    Parameters
    ----------
    pred : array-like or Tensor
        Class ids with the shape of ``true``, or scores/logits with one more trailing axis ``C``
        (argmax taken).
    true : array-like or Tensor
        Integer class ids in ``[0, C)`` (``C``: the number of logit columns, when logits are given);
        entries equal to :data:`~mer.data.CLASSIFICATION_PAD_LABEL` (padding) are left out, as the
        loss leaves them out.
    mask : optional
        Bool with the shape of ``true``.

    Returns
    -------
    dict
        ``{"acc": ..., "f1_weighted": ...}``.

    Raises
    ------
    ValueError
        For a label below 0 (other than the pad label) or, with logits, at or above ``C``, naming the
        first such entry.
    """
    pred, true = _to_numpy(pred), _to_numpy(true)
    num_classes = None
    if pred.ndim == true.ndim + 1:
        num_classes = pred.shape[-1]
        pred = pred.argmax(axis=-1)
    keep = true != CLASSIFICATION_PAD_LABEL
    if mask is not None:
        mk = _to_numpy(mask).astype(bool)
        if mk.shape != true.shape:
            raise ValueError(f"mask has shape {mk.shape}, expected {true.shape}")
        keep = keep & mk
    _check_class_ids(true, keep, num_classes)
    p, t = _flatten(pred, true, keep)
    if np.any(t != np.round(t)) or np.any(p != np.round(p)):
        raise ValueError("classification labels and predictions must be integer class ids (or logits)")
    p, t = p.astype(np.int64), t.astype(np.int64)
    return {"acc": float(np.mean(p == t)), "f1_weighted": _weighted_f1(t, p)}


def _check_class_ids(true: np.ndarray, keep: np.ndarray, num_classes: int | None) -> None:
    bad = keep & (true < 0)
    if num_classes is not None:
        bad |= keep & (true >= num_classes)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        at = index[0] if len(index) == 1 else index
        bound = f"[0, {num_classes}) (the logits have {num_classes} columns)" if num_classes else "[0, C)"
        raise ValueError(f"true[{at}] = {true[index]:g} is not a class id in {bound}")


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _flatten(pred, true, mask) -> tuple[np.ndarray, np.ndarray]:
    p, t = _to_numpy(pred), _to_numpy(true)
    if p.shape != t.shape:
        raise ValueError(f"pred has shape {p.shape}, expected the shape of true {t.shape}")
    if mask is not None:
        mk = _to_numpy(mask).astype(bool)
        if mk.shape != t.shape:
            raise ValueError(f"mask has shape {mk.shape}, expected {t.shape}")
        p, t = p[mk], t[mk]
    p, t = p.reshape(-1).astype(np.float64), t.reshape(-1).astype(np.float64)
    if p.size == 0:
        raise ValueError("no values to evaluate (empty input or all-False mask)")
    for name, v in (("pred", p), ("true", t)):
        if not np.isfinite(v).all():
            first = int(np.flatnonzero(~np.isfinite(v))[0])
            raise ValueError(f"{name} holds NaN or Inf at position {first}")
    return p, t


def _weighted_f1(true: np.ndarray, pred: np.ndarray) -> float:
    """Support-weighted mean of per-class F1 ``2 TP / (2 TP + FP + FN)`` over the classes of ``true``.

    Equal to scikit-learn's ``f1_score(true, pred, average="weighted", zero_division=0)`` (classes that
    occur only in ``pred`` have zero weight); written out so ``mer`` does not need scikit-learn.
    """
    classes, support = np.unique(true, return_counts=True)
    f1 = np.empty(len(classes))
    for k, c in enumerate(classes):
        tp = np.sum((pred == c) & (true == c))
        denom = 2 * tp + np.sum((pred == c) & (true != c)) + np.sum((pred != c) & (true == c))
        f1[k] = 2 * tp / denom if denom > 0 else 0.0
    return float(np.sum(f1 * support) / support.sum())


def _clipped_round_accuracy(p: np.ndarray, t: np.ndarray, bound: float) -> float:
    return float(np.mean(np.round(np.clip(p, -bound, bound)) == np.round(np.clip(t, -bound, bound))))


def _pearson(p: np.ndarray, t: np.ndarray) -> float:
    pc, tc = p - p.mean(), t - t.mean()
    denom = np.sqrt((pc * pc).sum() * (tc * tc).sum())
    return float((pc * tc).sum() / denom) if denom > 0 else float("nan")
