"""The full model: standardise → recover missing modalities → encode → fuse on the graph → predict.

It sits above both :mod:`mer.recoverers` and :mod:`mer.models` (encoders, fusion, heads), the one
place the two meet.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import dgl
import torch
from torch import Tensor, nn

from mer.config import ModelConfig
from mer.data.collate import ConversationBatch
from mer.data.conversation import ConversationDataset
from mer.data.step_batch import utterance_steps
from mer.graph import SELF_LOOP, batch_graph, gather_nodes, scatter_nodes
from mer.models.encoders import ModalityEncoders
from mer.models.fusion import GraphFusion
from mer.models.heads import PredictionHead
from mer.models.mult import MulTFusion
from mer.nn.scaler import FeatureScaler
from mer.recoverers.base import Recoverer, Recovery, merge_observed

__all__ = ["MERModel", "ModelOutput"]


@dataclass
class ModelOutput:
    """What :meth:`MERModel.forward` returns.

    Attributes
    ----------
    prediction : Tensor
        ``(B, N_max)`` regression outputs or ``(B, N_max, C)`` class logits (padding: arbitrary).
    recovery : Recovery
        The recoverer's output, in standardised feature space.
    recovery_losses : dict[str, Tensor]
        Named scalar loss terms of the recoverer (empty outside training).
    batch : ConversationBatch
        The standardised batch the recoverer saw (ground truth for recovery errors): the input's
        conversations, or under ``fusion = "mult"`` one row of steps per utterance
        (:func:`mer.data.step_batch.utterance_steps`).
    observed : Tensor
        The observation mask the recoverer saw, in ``batch``'s shape ``(·, ·, M)``.
    """

    prediction: Tensor
    recovery: Recovery
    recovery_losses: dict[str, Tensor] = field(default_factory=dict)
    batch: ConversationBatch | None = None
    observed: Tensor | None = None


class MERModel(nn.Module):
    """Multimodal emotion recognition with a pluggable missing-modality recoverer.

    1. ``X̃_m = (X_m − μ_m) / σ_m`` (:class:`FeatureScaler`, training-split statistics);
    2. the recoverer fills the unobserved entries of ``X̃`` (and may return per-modality utterance
       graphs ``A_m``);
    3. :class:`ModalityEncoders`: ``H_m = Conv1d_{l_m}(X̃_m) + PE + e_m`` ``(B, N, M, d)``;
    4. :class:`GraphFusion` on the batched utterance–modality graph (:func:`mer.graph.batch_graph`),
       within-modality edges weighted by ``A_m`` when the recoverer returns it;
    5. the ``M`` fused nodes of each utterance are concatenated ``(B, N, M·d)`` and
       :class:`PredictionHead` predicts its label.

    With ``config.fusion = "mult"`` each utterance is a sample of its own: its per-step sequences
    (:func:`mer.data.step_batch.utterance_steps`, standardised with per-step statistics) are projected
    by the backbone's temporal convolutions (``recovery_space="projection"``, as IMDer), the recoverer
    fills a missing modality's whole projected sequence, and the rest of
    :class:`~mer.models.mult.MulTFusion` and the head predict; steps 3–5 are replaced. With
    ``recovery_space="features"`` the recoverer fills the standardised input sequences instead.

    Parameters
    ----------
    modalities : sequence of str
    feature_dims : dict
        Modality → ``d_m``.
    recoverer : Recoverer
        Built for the same modalities and widths.
    config : ModelConfig
    task : {"regression", "classification"}
    num_classes : int, optional

    Shapes: ``forward(batch)`` with ``batch.features[m]`` ``(B, N, d_m)`` (raw) and an optional
    ``observed`` ``(B, N, M)`` bool (default ``batch.availability``) → :class:`ModelOutput`.
    """

    def __init__(
        self,
        modalities: Sequence[str],
        feature_dims: dict[str, int],
        recoverer: Recoverer,
        config: ModelConfig | None = None,
        task: str = "regression",
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        config = config or ModelConfig()
        config.validate()
        self.modalities = tuple(modalities)
        if tuple(recoverer.modalities) != self.modalities:
            raise ValueError(
                f"recoverer was built for modalities {list(recoverer.modalities)}, expected "
                f"{list(self.modalities)}"
            )
        self.feature_dims = {m: int(feature_dims[m]) for m in self.modalities}
        expected = config.recovery_dims(self.feature_dims)
        if dict(recoverer.feature_dims) != expected:
            raise ValueError(f"recoverer was built for widths {dict(recoverer.feature_dims)}, the model "
                             f"recovers in widths {expected} (model.recovery_space="
                             f"{config.recovery_space!r}, fusion={config.fusion!r})")
        self.config = config
        self.task = task
        self.scaler = FeatureScaler(self.feature_dims)
        self.recoverer = recoverer
        if self.uses_sequences:
            mult = config.mult
            self.encoders = None
            self.fusion = MulTFusion(self.modalities, self.feature_dims, config.dim, config.kernel_sizes,
                                     heads=mult.heads, layers=mult.layers, self_layers=mult.self_layers,
                                     attn_dropout=mult.attn_dropout, relu_dropout=mult.relu_dropout,
                                     res_dropout=mult.res_dropout, embed_dropout=mult.embed_dropout,
                                     pool=mult.pool)
            fused_width = self.fusion.out_dim
        else:
            self.encoders = ModalityEncoders(self.feature_dims, config.dim, config.kernel_sizes)
            self.fusion = GraphFusion(config.dim, config.gcn_layers, config.dropout, config.residual)
            fused_width = len(self.modalities) * config.dim
        self.head = PredictionHead(fused_width, config.head_hidden, task, num_classes, config.dropout)

    @property
    def uses_sequences(self) -> bool:
        """Whether each utterance is fused on its own from its sequences (``fusion = "mult"``)."""
        return self.config.fusion == "mult"

    @property
    def recovers_projection(self) -> bool:
        """Whether the recoverer works in the MulT projection (``recovery_space = "projection"``)."""
        return self.uses_sequences and self.config.recovery_space == "projection"

    def fit_statistics(self, dataset: ConversationDataset) -> None:
        """Fit the scaler on ``dataset``'s training split (per step when the model uses sequences and
        the data has them), then the recoverer's :meth:`~Recoverer.fit_statistics`."""
        self.scaler.fit(dataset, "train", steps=self.uses_sequences and dataset.has_sequences)
        if self.recovers_projection:
            # The projection is learned, so no data statistic describes it; the fills stay at its
            # zero, the projection of the standardised mean (zero and mean fill coincide there).
            return
        self.recoverer.fit_statistics(dataset.split("train"), self.scaler)

    def estimate_memory(self, max_utterances: int, batch_size: int) -> int | None:
        """The recoverer's estimate for batches of ``batch_size`` conversations of up to
        ``max_utterances``; under ``fusion = "mult"`` it sees ``batch_size · max_utterances`` rows of
        up to ``sequence_steps`` steps."""
        if self.uses_sequences:
            return self.recoverer.estimate_memory(self.config.sequence_steps, batch_size * max_utterances)
        return self.recoverer.estimate_memory(max_utterances, batch_size)

    def forward(
        self, batch: ConversationBatch, observed: Tensor | None = None, *, with_losses: bool = False
    ) -> ModelOutput:
        """Predict every utterance of ``batch`` seeing only ``observed`` entries.

        ``with_losses=True`` (training) calls :meth:`Recoverer.training_step` and returns its loss
        terms; otherwise :meth:`Recoverer.recover`.
        """
        if tuple(batch.modalities) != self.modalities:
            raise ValueError(
                f"batch has modalities {list(batch.modalities)}, the model expects {list(self.modalities)}"
            )
        observed = batch.availability if observed is None else observed.bool()
        if self.uses_sequences:
            return self._forward_steps(batch, observed, with_losses)
        std = self.scaler(batch)
        recovery, losses = self._recover(std, observed, with_losses)
        h = self.encoders(recovery.features, std.utterance_mask)
        graph = batch_graph(replace(std, availability=observed), self.config.graph)
        weights = None
        if recovery.adjacency:
            weights = self.edge_weights(graph, recovery.adjacency)
        nodes = self.fusion(graph, gather_nodes(graph, h), weights)
        B, N = std.utterance_mask.shape
        fused = scatter_nodes(graph, nodes, B, N).flatten(2)
        return ModelOutput(self.head(fused), recovery, losses, std, observed)

    def _recover(self, std: ConversationBatch, observed: Tensor, with_losses: bool
                 ) -> tuple[Recovery, dict[str, Tensor]]:
        """The recoverer's training step (with its loss terms) or its plain recovery."""
        if with_losses:
            return self.recoverer.training_step(std, observed)
        return self.recoverer.recover(std, observed), {}

    def _forward_steps(self, batch: ConversationBatch, observed: Tensor, with_losses: bool) -> ModelOutput:
        """``fusion = "mult"``: recover and fuse every utterance from its own steps."""
        rows = utterance_steps(batch, observed, self.config.sequence_steps)
        std = self.scaler(rows.batch)
        projected = None
        if self.recovers_projection:
            projected = self.fusion.project(std.features, std.utterance_mask)
            # The recoverer sees (and learns to produce) the projection as a fixed target; recoverers
            # with their own optimisers (RoHyDR's stages) could not backpropagate into it anyway.
            std = replace(std, features={m: x.detach() for m, x in projected.items()})
        recovery, losses = self._recover(std, rows.observed, with_losses)
        if projected is not None:
            # Observed entries re-enter with their gradient, so the task loss trains the projection.
            live = merge_observed(replace(std, features=projected), rows.observed, recovery.features)
            fused = self.fusion.fuse(live, std.utterance_mask)
        else:
            fused = self.fusion(recovery.features, std.utterance_mask)
        B, N = batch.utterance_mask.shape
        prediction = rows.scatter(self.head(fused), B, N)
        return ModelOutput(prediction, recovery, losses, std, rows.observed)

    def edge_weights(self, graph: dgl.DGLGraph, adjacency: dict[str, Tensor]) -> Tensor:
        """``(E,)`` weights: ``max(A_m[b, i, j], 0)`` on the within-modality edge ``j → i`` of
        modality ``m``; 1 on cross-modal edges, self loops and modalities without ``A_m``."""
        src, dst = graph.edges()
        conv = graph.ndata["conversation"][dst]
        mod_s, mod_d = graph.ndata["modality"][src], graph.ndata["modality"][dst]
        utt_s, utt_d = graph.ndata["utterance"][src], graph.ndata["utterance"][dst]
        weights = torch.ones(graph.num_edges(), device=src.device)
        within = (mod_s == mod_d) & (graph.edata["etype"] != SELF_LOOP)
        for k, m in enumerate(self.modalities):
            if m not in adjacency:
                continue
            sel = within & (mod_d == k)
            A = adjacency[m]
            weights = torch.where(sel, A[conv, utt_d, utt_s].clamp_min(0.0).to(weights.dtype), weights)
        return weights
