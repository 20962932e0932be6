"""Cross-modal imagination with a cascaded residual autoencoder (MMIN / CRA style)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mer.data.collate import ConversationBatch
from mer.recoverers.base import (
    Recoverer,
    Recovery,
    dropped_mse,
    merge_observed,
    observed_only,
    register_recoverer,
)

__all__ = ["CascadedResidualAutoencoder"]


@register_recoverer("autoencoder")
class CascadedResidualAutoencoder(Recoverer):
    """Imagine missing modalities from the observed ones, utterance by utterance.

    Every utterance's modalities are concatenated, with unobserved ones zeroed, into
    ``x = [x_1 ⊙ α_1, …, x_M ⊙ α_M] ∈ R^{Σ d_m}``; the availability bits ``α`` are appended. A cascade of
    ``K`` residual autoencoders refines the estimate (Tran et al. 2017, as used by MMIN, Zhao et al.
    2021):

    ``x̂^{(0)} = x``,  ``x̂^{(k)} = x̂^{(k−1)} + AE_k([x̂^{(k−1)}, α])``,

    and ``x̂^{(K)}`` is split back into modalities; only its unobserved entries are used. The
    imagination loss is the mean squared error on the artificially dropped entries,
    ``L_rec = mean_{(i,m) dropped} ‖x̂_{i,m} − x_{i,m}‖² / d_m``, and the task loss trains the cascade end
    to end through the recovered features. (MMIN also has a cycle-consistency term on learned
    representations; here recovery works in feature space and the imagination loss plays that role.)

    Parameters
    ----------
    hidden : int
        Width of each autoencoder's hidden layers.
    bottleneck : int
        Width of each autoencoder's code.
    num_blocks : int
        ``K``.
    dropout : float

    Shapes: ``batch.features[m]`` ``(B, N, d_m)``, ``observed`` ``(B, N, M)`` → :class:`Recovery`
    with ``(B, N, d_m)`` features; ``training_losses`` → ``{"rec": ()}``.
    """

    def __init__(self, modalities, feature_dims, *, graph_config=None, hidden: int = 128,
                 bottleneck: int = 64, num_blocks: int = 3, dropout: float = 0.1) -> None:
        super().__init__(modalities, feature_dims, graph_config=graph_config)
        if min(hidden, bottleneck, num_blocks) < 1:
            raise ValueError(
                f"hidden, bottleneck and num_blocks must be >= 1, got {hidden}, {bottleneck}, {num_blocks}"
            )
        total = sum(self.feature_dims.values())
        M = len(self.modalities)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Linear(total + M, hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, bottleneck),
                nn.ReLU(),
                nn.Linear(bottleneck, hidden),
                nn.ReLU(),
                nn.Linear(hidden, total),
            )
            for _ in range(num_blocks)
        )
        self._splits = [self.feature_dims[m] for m in self.modalities]

    def imagine(self, batch: ConversationBatch, observed: Tensor) -> dict[str, Tensor]:
        """The cascade's estimate of every modality ``{m: (B, N, d_m)}`` from the observed entries."""
        seen = observed_only(batch, observed)
        alpha = batch.observed_entries(observed).to(seen[self.modalities[0]].dtype)
        x = torch.cat([seen[m] for m in self.modalities], dim=-1)
        for block in self.blocks:
            x = x + block(torch.cat([x, alpha], dim=-1))
        return dict(zip(self.modalities, torch.split(x, self._splits, dim=-1)))

    def recover(self, batch: ConversationBatch, observed: Tensor) -> Recovery:
        return Recovery(merge_observed(batch, observed, self.imagine(batch, observed)))

    def training_step(self, batch: ConversationBatch, observed: Tensor):
        imagined = self.imagine(batch, observed)
        recovery = Recovery(merge_observed(batch, observed, imagined))
        return recovery, {"rec": dropped_mse(batch, observed, imagined)}

    def training_losses(self, batch: ConversationBatch, observed: Tensor) -> dict[str, Tensor]:
        return self.training_step(batch, observed)[1]

