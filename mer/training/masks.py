"""Availability masks of a protocol for each split: the inputs every method is compared on.

* ``valid`` / ``test`` under the random protocol: :func:`mer.data.split_masks`, drawn once per
  (dataset, split, rate, seed) and cached, so every method and every epoch sees the same entries.
* ``train`` under the random protocol: redrawn every epoch (``train_masks="per_epoch"``, seed derived
  from the mask seed and the epoch, so a resumed run redraws exactly what it would have) or drawn once
  (``"fixed"``).
* Fixed protocol: the pattern on every utterance of every split. ``none``: everything available.
* Mixed protocol: every conversation of the split draws one condition of the mixture uniformly and
  gets that condition's mask (:func:`mixed_masks`); the draws are seeded like the random protocol's
  (valid/test from (split, seed), training per epoch from :func:`epoch_seed`).
"""

from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np

from mer.config import Protocol
from mer.data import ConversationDataset, pattern_masks, random_missing, split_masks

__all__ = ["protocol_masks", "full_masks", "epoch_seed", "mixed_masks"]


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of the training masks of ``epoch`` (0-based); distinct from the valid/test draw's seed."""
    return int(seed) * 100_003 + 7_919 * (int(epoch) + 1)


def full_masks(conversations: Sequence) -> list[np.ndarray]:
    """All-available ``(N_i, M)`` masks."""
    return [np.ones((c.num_utterances, len(c.modalities)), dtype=bool) for c in conversations]


def mixed_masks(
    part: ConversationDataset, protocol: Protocol, seed: int, split: str
) -> tuple[list[np.ndarray], list[int]]:
    """Masks ``(N_i, M)`` of a mixed protocol for the conversations of ``part`` (one split), and the
    index into ``protocol.mixture`` each conversation drew.

    Conversation ``i`` (in ``part`` order) draws condition ``k_i`` uniformly from the ``K`` conditions
    with a generator seeded by ``(seed, split)``; then

    * a pattern gets :func:`mer.data.pattern_masks`;
    * a rate ``MR`` gets :func:`mer.data.random_missing` on that conversation alone, seeded by
      ``(seed, split, i)``: exactly ``round(MR · N_i · M)`` of its entries are dropped, every
      utterance keeps one modality (so the realised rate of a short conversation is rounded).

    The result depends only on (the split's conversation sizes, split name, mixture, seed).
    """
    conditions = protocol.conditions
    rng = np.random.default_rng(_mix_entropy(seed, split))
    drawn = [int(k) for k in rng.integers(len(conditions), size=len(part))]
    masks = []
    for i, k in enumerate(drawn):
        condition = conditions[k]
        one = part.subset([i], split_name=split)
        if condition.kind == "fixed":
            masks.append(pattern_masks(one, condition.pattern)[0])
        else:
            own_seed = int(np.random.SeedSequence(_mix_entropy(seed, split, i)).generate_state(1)[0])
            masks.append(random_missing(one, condition.missing_rate, seed=own_seed)[0])
    return masks, drawn


def protocol_masks(
    dataset: ConversationDataset,
    protocol: Protocol,
    split: str,
    seed: int,
    epoch: int | None = None,
    train_masks: str = "per_epoch",
) -> list[np.ndarray]:
    """Masks ``(N_i, M)`` for the conversations of ``dataset.split(split)``, in split order.

    ``epoch`` matters only for the training split of the random and mixed protocols with
    ``train_masks="per_epoch"``.
    """
    part = dataset.split(split)
    if protocol.kind == "none":
        return full_masks(part)
    if protocol.kind == "fixed":
        return pattern_masks(part, protocol.pattern)
    redraw = split == "train" and train_masks == "per_epoch" and epoch is not None
    if protocol.kind == "mixed":
        return mixed_masks(part, protocol, epoch_seed(seed, epoch) if redraw else seed, split)[0]
    if redraw:
        return random_missing(part, protocol.missing_rate, seed=epoch_seed(seed, epoch))
    return list(split_masks(dataset, split, protocol.missing_rate, seed=seed))


def _mix_entropy(seed: int, split: str, *more: int) -> list[int]:
    # crc32 rather than hash(): Python's str hash changes between processes; the "mixed" tag keeps
    # these streams apart from random_missing's, which are seeded from (seed, split, rate).
    return [int(seed) & 0xFFFFFFFF, zlib.crc32(split.encode()), zlib.crc32(b"mixed"), *map(int, more)]
