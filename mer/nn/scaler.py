"""Per-feature standardisation with training-split statistics: the space recovery happens in."""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from mer.data.collate import ConversationBatch
from mer.data.conversation import ConversationDataset
from mer.data.sequences import step_statistics

__all__ = ["FeatureScaler", "feature_statistics"]


def feature_statistics(
    dataset: ConversationDataset, modalities: Sequence[str], split: str = "train", eps: float = 1e-6,
    *, steps: bool = False,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Modality → ``(μ_m, σ_m)``, each ``(d_m,)`` float64, over every utterance of ``split`` (with
    ``steps=True``: over every real step of the utterances' sequences).

    ``σ`` is floored at ``eps``. A dataset without ``split`` conversations uses all of them. The one
    place the training-split statistics are computed (the scaler's and mean fill's).
    """
    indices = dataset.splits.get(split) or list(range(len(dataset)))
    if steps:
        return step_statistics([dataset[i] for i in indices], modalities, eps)
    stats = {}
    for m in modalities:
        stacked = np.concatenate([dataset[i].features[m] for i in indices]).astype(np.float64)
        stats[m] = (stacked.mean(axis=0), np.maximum(stacked.std(axis=0), eps))
    return stats


class FeatureScaler(nn.Module):
    """Per-feature standardisation ``x ↦ (x − μ_m) / σ_m`` with training-split statistics.

    Parameters
    ----------
    feature_dims : mapping of str to int
        Modality → ``d_m``; the buffers ``mean_<m>`` and ``std_<m>`` ``(d_m,)`` start at 0 and 1.

    :meth:`fit` sets them from a dataset's training split, with ``σ`` floored at ``eps`` like
    :meth:`ConversationDataset.standardized`. Buffers travel with ``state_dict`` so a saved model
    standardises new data exactly as it did during training.
    """

    def __init__(self, feature_dims: Mapping[str, int], eps: float = 1e-6) -> None:
        super().__init__()
        self.modalities = tuple(feature_dims)
        self.eps = float(eps)
        self.steps = False  # fitted on per-step sequences (set by fit)
        for m, d in feature_dims.items():
            self.register_buffer(f"mean_{m}", torch.zeros(int(d)))
            self.register_buffer(f"std_{m}", torch.ones(int(d)))

    def mean(self, modality: str) -> Tensor:
        """``μ_m`` ``(d_m,)``."""
        return getattr(self, f"mean_{modality}")

    def std(self, modality: str) -> Tensor:
        """``σ_m`` ``(d_m,)``."""
        return getattr(self, f"std_{modality}")

    @torch.no_grad()
    def fit(self, dataset: ConversationDataset, split: str = "train", *, steps: bool = False) -> "FeatureScaler":
        """Statistics over every utterance of ``split`` (or of the whole dataset if it has no
        ``split`` conversations); ``steps=True``: over every real step of their sequences."""
        self.steps = bool(steps)
        for m, (mean, std) in feature_statistics(dataset, self.modalities, split, self.eps,
                                                 steps=self.steps).items():
            self.mean(m).copy_(torch.from_numpy(mean))
            self.std(m).copy_(torch.from_numpy(std))
        return self

    def transform(self, modality: str, x: Tensor) -> Tensor:
        """``(…, d_m)`` raw → standardised."""
        return (x - self.mean(modality)) / self.std(modality)

    def inverse(self, modality: str, z: Tensor) -> Tensor:
        """``(…, d_m)`` standardised → raw."""
        return z * self.std(modality) + self.mean(modality)

    def forward(self, batch: ConversationBatch) -> ConversationBatch:
        """A copy of ``batch`` with standardised features; padded utterances stay exactly zero."""
        pad = batch.utterance_mask[:, :, None].to(torch.float32)
        feats = {m: self.transform(m, x) * pad for m, x in batch.features.items()}
        return replace(batch, features=feats)
