"""Zero fill: a missing modality is the all-zero vector of the raw feature space."""

from __future__ import annotations

import torch
from torch import Tensor

from mer.data.collate import ConversationBatch
from mer.data.conversation import ConversationDataset
from mer.nn.scaler import FeatureScaler
from mer.recoverers.base import Recoverer, Recovery, merge_observed, register_recoverer

__all__ = ["ZeroFill"]


@register_recoverer("zero")
class ZeroFill(Recoverer):
    """``x̂_{i,m} = 0`` in the **raw** feature space, the literature's zero-fill baseline.

    In the standardised space recovery works in, raw zero is ``−μ_m / σ_m`` (set by
    :meth:`fit_statistics`); before that hook runs the fill is the standardised zero. No parameters,
    no loss terms.

    Shapes: ``recover(batch, observed)`` with ``batch.features[m]`` ``(B, N_max, d_m)`` and
    ``observed`` ``(B, N_max, M)`` → :class:`Recovery` with the same feature shapes.
    """

    def __init__(self, modalities, feature_dims, *, graph_config=None) -> None:
        super().__init__(modalities, feature_dims, graph_config=graph_config)
        for m, d in self.feature_dims.items():
            self.register_buffer(f"fill_{m}", torch.zeros(d))

    def fit_statistics(self, train: ConversationDataset, scaler: FeatureScaler) -> None:
        for m in self.modalities:
            getattr(self, f"fill_{m}").copy_(scaler.transform(m, torch.zeros_like(scaler.mean(m))))

    def recover(self, batch: ConversationBatch, observed: Tensor) -> Recovery:
        filled = {
            m: getattr(self, f"fill_{m}").expand_as(x) for m, x in batch.features.items()
        }
        return Recovery(merge_observed(batch, observed, filled))
