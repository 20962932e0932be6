"""Mean fill: a missing modality is its training-set mean."""

from __future__ import annotations

import torch
from torch import Tensor

from mer.data.collate import ConversationBatch
from mer.data.conversation import ConversationDataset
from mer.nn.scaler import FeatureScaler, feature_statistics
from mer.recoverers.base import Recoverer, Recovery, merge_observed, register_recoverer

__all__ = ["MeanFill"]


@register_recoverer("mean")
class MeanFill(Recoverer):
    """``x̂_{i,m} = mean of x_m over the training split's utterances``.

    The mean is taken in standardised space by :meth:`fit_statistics`; when the scaler was fitted on
    the same split it is zero up to rounding, i.e. mean fill is "fill with the feature means". No
    parameters, no loss terms. It is the reference a learned recoverer's recovery error must beat:
    the mean is the best constant under squared error.

    Shapes: as :class:`~mer.recoverers.zero.ZeroFill`.
    """

    def __init__(self, modalities, feature_dims, *, graph_config=None) -> None:
        super().__init__(modalities, feature_dims, graph_config=graph_config)
        for m, d in self.feature_dims.items():
            self.register_buffer(f"fill_{m}", torch.zeros(d))

    @torch.no_grad()
    def fit_statistics(self, train: ConversationDataset, scaler: FeatureScaler) -> None:
        for m, (raw_mean, _) in feature_statistics(train, self.modalities, "train",
                                                            steps=scaler.steps).items():
            mean = torch.from_numpy(raw_mean).to(scaler.mean(m))
            getattr(self, f"fill_{m}").copy_(scaler.transform(m, mean))

    def recover(self, batch: ConversationBatch, observed: Tensor) -> Recovery:
        filled = {
            m: getattr(self, f"fill_{m}").expand_as(x) for m, x in batch.features.items()
        }
        return Recovery(merge_observed(batch, observed, filled))
