"""Each utterance's steps as a batch of its own: how recoverers see sequence data.

Under the MulT-style model every utterance is a sample on its own (no context from other utterances)
and a missing modality is recovered as a whole sequence. :func:`utterance_steps` turns a
:class:`~mer.data.collate.ConversationBatch` of ``B`` conversations into a batch of ``R`` rows, one
per real utterance, whose "utterances" are that utterance's time steps on a common axis
(:func:`mer.data.sequences.common_steps`). Every recoverer then runs unchanged: a modality the
utterance lacks is unobserved at every one of its steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mer.data.collate import CLASSIFICATION_PAD_LABEL, ConversationBatch
from mer.data.sequences import common_steps

__all__ = ["StepRows", "utterance_steps"]


@dataclass
class StepRows:
    """:func:`utterance_steps`'s result.

    Attributes
    ----------
    batch : ConversationBatch
        ``R`` rows of up to ``S`` steps: ``features[m]`` ``(R, S, d_m)``, ``utterance_mask`` ``(R, S)``
        (the real steps), labels broadcast over the steps, speaker 0.
    observed : Tensor
        ``(R, S, M)`` bool: the utterance's observation mask on each real step.
    rows : Tensor
        ``(R, 2)`` int64 ``(conversation, utterance)`` index of each row in the source batch.
    """

    batch: ConversationBatch
    observed: Tensor
    rows: Tensor

    def scatter(self, values: Tensor, batch_size: int, max_utterances: int) -> Tensor:
        """Per-row ``values`` ``(R, …)`` back to ``(B, N_max, …)`` (zeros on padding)."""
        out = values.new_zeros((batch_size, max_utterances, *values.shape[1:]))
        out[self.rows[:, 0], self.rows[:, 1]] = values
        return out


def utterance_steps(batch: ConversationBatch, observed: Tensor, steps: int) -> StepRows:
    """One row per real utterance of ``batch``, its steps as the row's "utterances".

    Parameters
    ----------
    batch : ConversationBatch
        With ``sequences`` (``(B, N, T_m, d_m)``); without them every utterance is one step of its
        vector.
    observed : Tensor
        ``(B, N, M)`` bool.
    steps : int
        The most steps a row keeps (``model.sequence_steps``).

    A row whose modalities have no real step at all keeps one all-zero step, so that no row is empty.
    """
    rows = batch.utterance_mask.nonzero()
    b, n = rows[:, 0], rows[:, 1]
    if batch.sequences is not None:
        seqs = {m: x[b, n] for m, x in batch.sequences.items()}
        lengths = {m: x[b, n] for m, x in batch.sequence_lengths.items()}
        features, length = common_steps(seqs, lengths, steps)
    else:
        features = {m: x[b, n][:, None, :] for m, x in batch.features.items()}
        length = torch.ones(len(rows), dtype=torch.int64, device=rows.device)
    length = length.clamp_min(1)
    width = next(iter(features.values())).shape[1]
    step_mask = torch.arange(width, device=rows.device)[None, :] < length[:, None]
    labels = batch.labels[b, n][:, None].expand(-1, width)
    pad = CLASSIFICATION_PAD_LABEL if batch.task == "classification" else 0
    labels = torch.where(step_mask, labels, torch.full_like(labels, pad))
    step_batch = ConversationBatch(
        features=features,
        availability=observed[b, n][:, None, :] & step_mask[:, :, None],
        utterance_mask=step_mask,
        labels=labels,
        speakers=torch.zeros_like(step_mask, dtype=torch.int64),
        lengths=length,
        conversation_ids=[f"{batch.conversation_ids[i]}#{j}" for i, j in rows.tolist()],
        modalities=batch.modalities,
        task=batch.task,
    )
    return StepRows(step_batch, step_batch.availability, rows)
