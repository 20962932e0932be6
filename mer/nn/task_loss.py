"""The task loss of emotion prediction: L1 / L2 for regression, cross-entropy for classification."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from mer.data.collate import CLASSIFICATION_PAD_LABEL

__all__ = ["task_loss"]


def task_loss(prediction: Tensor, labels: Tensor, mask: Tensor, task: str,
              regression_loss: str = "l1") -> Tensor:
    """Mean task loss over real utterances.

    ``prediction`` ``(B, N)`` (regression) or ``(B, N, C)`` logits, ``labels`` ``(B, N)``, ``mask``
    ``(B, N)`` bool (``True`` on real utterances). Classification ignores padded labels
    (:data:`~mer.data.collate.CLASSIFICATION_PAD_LABEL`) instead of reading ``mask``; regression
    averages ``|ŷ − y|`` (``"l1"``) or ``(ŷ − y)²`` (``"mse"``) over ``mask``.
    """
    if task == "classification":
        return F.cross_entropy(
            prediction.flatten(0, 1), labels.flatten(), ignore_index=CLASSIFICATION_PAD_LABEL
        )
    diff = (prediction - labels)[mask]
    return diff.abs().mean() if regression_loss == "l1" else diff.pow(2).mean()
