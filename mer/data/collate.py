"""Collation of conversations into zero-padded tensor batches.

Ground truth and observation are kept apart: :attr:`ConversationBatch.features` holds every feature,
including those of unavailable (missing) entries, because recoverers are trained to reconstruct them
where the protocol drops them artificially.

Reading what is observed
------------------------
This is the one statement of the rule; :mod:`mer.recoverers.base` and :class:`mer.model.MERModel`
refer here.

* :attr:`ConversationBatch.availability` is the mask the batch was *collated* with: ``False`` on
  padded utterances, ``True`` where the protocol kept the entry.
* What a model may see is an *observation mask* ``observed`` ``(B, N_max, M)``. It defaults to
  ``availability``, but :meth:`mer.model.MERModel.forward` accepts another one (and hands it to the
  recoverer), so code below the model reads the ``observed`` it is given, never ``availability``
  directly.
* Every reading goes through the three methods that take ``observed`` (default ``availability``) and
  AND it with :attr:`ConversationBatch.utterance_mask`, so a mask that is ``True`` on padding never
  makes a padded utterance look observed: :meth:`~ConversationBatch.observed_entries` (real and
  observed), :meth:`~ConversationBatch.missing_entries` (real and not observed, to be recovered) and
  :meth:`~ConversationBatch.observed_features` (the features a model may see, zero elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from mer.data.conversation import Conversation
from mer.data.missing import check_masks

__all__ = ["ConversationBatch", "collate_conversations", "CLASSIFICATION_PAD_LABEL"]

#: Label of padded utterances in classification batches (``torch.nn.CrossEntropyLoss``'s ignore index).
CLASSIFICATION_PAD_LABEL = -100


@dataclass
class ConversationBatch:
    """``B`` conversations padded to ``N_max`` utterances.

    Attributes
    ----------
    features : dict[str, Tensor]
        Modality → ``(B, N_max, d_m)`` float32 **ground truth**, zero on padded utterances. Entries that
        are unavailable under ``availability`` are *not* zeroed here; see :meth:`observed_features`.
    availability : Tensor
        ``(B, N_max, M)`` bool, ``True`` where utterance ``i`` has modality ``m`` (columns in
        ``modalities`` order); ``False`` on padding. Read it through :meth:`observed_entries` and its
        siblings (module docstring).
    utterance_mask : Tensor
        ``(B, N_max)`` bool, ``True`` on real utterances.
    labels : Tensor
        ``(B, N_max)``: float32 for regression (padding 0.0), int64 for classification (padding
        :data:`CLASSIFICATION_PAD_LABEL`).
    speakers : Tensor
        ``(B, N_max)`` int64 speaker ids (padding 0).
    lengths : Tensor
        ``(B,)`` int64 numbers of utterances.
    conversation_ids : list of str
    modalities : tuple of str
    task : str
        ``"regression"`` or ``"classification"``.
    sequences : dict[str, Tensor], optional
        Modality → ``(B, N_max, T_m, d_m)`` float32 per-step **ground truth** (zero after each
        utterance's length and on padding; ``T_m`` = the batch's longest real length) when the
        conversations carry sequences; ``None`` otherwise.
    sequence_lengths : dict[str, Tensor], optional
        Modality → ``(B, N_max)`` int64 real steps (0 on padding); with ``sequences``.
    """

    features: dict[str, Tensor]
    availability: Tensor
    utterance_mask: Tensor
    labels: Tensor
    speakers: Tensor
    lengths: Tensor
    conversation_ids: list[str]
    modalities: tuple[str, ...]
    task: str
    sequences: dict[str, Tensor] | None = None
    sequence_lengths: dict[str, Tensor] | None = None

    @property
    def batch_size(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def max_utterances(self) -> int:
        return int(self.utterance_mask.shape[1])

    def observed_entries(self, observed: Tensor | None = None) -> Tensor:
        """``(B, N_max, M)`` bool: real utterance and modality observed under ``observed``.

        ``observed`` ``(B, N_max, M)`` bool defaults to :attr:`availability` (see "Reading what is
        observed" in the module docstring).
        """
        seen = self.availability if observed is None else observed
        return self.utterance_mask[:, :, None] & seen

    def missing_entries(self, observed: Tensor | None = None) -> Tensor:
        """``(B, N_max, M)`` bool: real utterance and modality *not* observed (to be recovered)."""
        seen = self.availability if observed is None else observed
        return self.utterance_mask[:, :, None] & ~seen

    def observed_features(self, observed: Tensor | None = None) -> dict[str, Tensor]:
        """Modality → ``(B, N_max, d_m)`` features with every unobserved or padded entry zeroed: the
        only view of :attr:`features` a model may use."""
        entries = self.observed_entries(observed)
        return {
            m: x * entries[:, :, k, None].to(x.dtype) for k, (m, x) in enumerate(self.features.items())
        }

    def missing(self) -> Tensor:
        """``(B, N_max, M)`` bool: real utterance entries that are unavailable (to be recovered);
        :meth:`missing_entries` under :attr:`availability`."""
        return self.missing_entries()

    def to(self, device: torch.device | str) -> "ConversationBatch":
        """A copy with every tensor on ``device``."""
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor):
                moved[f.name] = value.to(device)
            elif f.name in ("features", "sequences", "sequence_lengths") and value is not None:
                moved[f.name] = {m: x.to(device) for m, x in value.items()}
        return replace(self, **moved)

    def __len__(self) -> int:
        return self.batch_size


def collate_conversations(
    items: Sequence[Conversation | tuple[Conversation, np.ndarray]],
    masks: Sequence[np.ndarray] | None = None,
) -> ConversationBatch:
    """Pad a list of conversations into a :class:`ConversationBatch`.

    Usable directly as ``collate_fn`` of a ``torch.utils.data.DataLoader`` over a
    :class:`~mer.data.ConversationDataset` (all modalities available) or over
    :class:`~mer.data.MaskedConversations` (items are ``(conversation, mask)`` pairs).

    Parameters
    ----------
    items : list of Conversation or (Conversation, mask) pairs
        At least one; all with the same modalities (same order), widths and label type.
    masks : list of (N_i, M) arrays, optional
        Availability per conversation (0/1 or bool); not allowed together with paired items.
        Default: everything available.

    Returns
    -------
    ConversationBatch

    Raises
    ------
    ValueError
        For an empty list, conversations with different modalities or widths, or masks with the wrong
        shape, non-0/1 values or an utterance with no modality (naming the conversation).
    """
    items = list(items)
    if not items:
        raise ValueError("cannot collate an empty list of conversations")
    paired = [isinstance(it, tuple) for it in items]
    if any(paired):
        if not all(paired):
            raise ValueError("items mix Conversations and (Conversation, mask) pairs")
        if masks is not None:
            raise ValueError("masks given twice: in the items and as the masks argument")
        convs = [it[0] for it in items]
        masks = [it[1] for it in items]
    else:
        convs = items
    _check_compatible(convs)
    modalities = convs[0].modalities
    if masks is not None:
        masks = check_masks(convs, masks)

    B = len(convs)
    lengths = np.array([c.num_utterances for c in convs], dtype=np.int64)
    n_max = int(lengths.max())
    utterance_mask = np.arange(n_max)[None, :] < lengths[:, None]

    features = {}
    for m in modalities:
        x = np.zeros((B, n_max, convs[0].features[m].shape[1]), dtype=np.float32)
        for b, c in enumerate(convs):
            x[b, : c.num_utterances] = c.features[m]
        features[m] = torch.from_numpy(x)

    availability = np.zeros((B, n_max, len(modalities)), dtype=bool)
    for b, c in enumerate(convs):
        availability[b, : c.num_utterances] = True if masks is None else masks[b]

    classification = convs[0].labels.dtype.kind in "iu"
    if classification:
        labels = np.full((B, n_max), CLASSIFICATION_PAD_LABEL, dtype=np.int64)
    else:
        labels = np.zeros((B, n_max), dtype=np.float32)
    speakers = np.zeros((B, n_max), dtype=np.int64)
    for b, c in enumerate(convs):
        labels[b, : c.num_utterances] = c.labels
        speakers[b, : c.num_utterances] = c.speakers

    sequences, sequence_lengths = _collate_sequences(convs, n_max) if convs[0].sequences is not None \
        else (None, None)
    return ConversationBatch(
        features=features,
        availability=torch.from_numpy(availability),
        utterance_mask=torch.from_numpy(utterance_mask),
        labels=torch.from_numpy(labels),
        speakers=torch.from_numpy(speakers),
        lengths=torch.from_numpy(lengths),
        conversation_ids=[c.conversation_id for c in convs],
        modalities=tuple(modalities),
        task="classification" if classification else "regression",
        sequences=sequences,
        sequence_lengths=sequence_lengths,
    )


def _collate_sequences(convs: list[Conversation], n_max: int) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Per modality ``(B, n_max, T, d_m)`` sequences cut to the batch's longest real length, and
    ``(B, n_max)`` lengths."""
    if any(c.sequences is None for c in convs):
        raise ValueError("some conversations carry sequences and others do not; collate one kind")
    sequences, lengths = {}, {}
    for m in convs[0].modalities:
        steps = max(1, max(int(c.sequence_lengths[m].max()) for c in convs))
        x = np.zeros((len(convs), n_max, steps, convs[0].sequences[m].shape[2]), dtype=np.float32)
        n = np.zeros((len(convs), n_max), dtype=np.int64)
        for b, c in enumerate(convs):
            seq = c.sequences[m][:, :steps]
            x[b, : c.num_utterances, : seq.shape[1]] = seq
            n[b, : c.num_utterances] = c.sequence_lengths[m]
        sequences[m], lengths[m] = torch.from_numpy(x), torch.from_numpy(n)
    return sequences, lengths


def _check_compatible(convs: list[Conversation]) -> None:
    first = convs[0]
    if not isinstance(first, Conversation):
        raise ValueError(f"expected Conversation items, got {type(first).__name__}")
    dims = {m: x.shape[1] for m, x in first.features.items()}
    kind = first.labels.dtype.kind in "iu"
    for b, c in enumerate(convs[1:], start=1):
        if not isinstance(c, Conversation):
            raise ValueError(f"item {b}: expected a Conversation, got {type(c).__name__}")
        if c.modalities != first.modalities:
            raise ValueError(
                f"item {b} ({c.conversation_id!r}): modalities {list(c.modalities)}, expected "
                f"{list(first.modalities)} like item 0"
            )
        for m, x in c.features.items():
            if x.shape[1] != dims[m]:
                raise ValueError(
                    f"item {b} ({c.conversation_id!r}), modality {m!r}: width {x.shape[1]}, "
                    f"expected {dims[m]} like item 0"
                )
        if (c.labels.dtype.kind in "iu") != kind:
            raise ValueError(f"item {b} ({c.conversation_id!r}): label type differs from item 0")
