"""Mask primitives of the missing-modality protocols: fixed availability patterns and exact-rate random
masks (which of them a run uses, and with which seed, is :mod:`mer.data.protocol`).

An availability mask of a conversation is a boolean ``(N, M)`` array, ``True`` where utterance ``i``
has modality ``m`` (columns in ``dataset.modalities`` order). Every utterance keeps at least one
modality.

* **Fixed missing**: :func:`fixed_patterns` lists the ``2^M − 1`` availability sets;
  :func:`pattern_masks` applies one set to every utterance.
* **Random missing**: :func:`random_missing` drops exactly ``round(MR · E)`` of the ``E = Σ N_i · M``
  (utterance, modality) entries of each split, ``MR = 1 − Σ α / (N · M)``.
* **Evaluation masks are drawn once**: the draw for a split depends only on (the split's conversation
  sizes, split name, rate, seed), and :class:`MaskCache` memoises it as read-only arrays, so every
  method and every epoch sees the same valid/test inputs. Training masks may be redrawn per epoch by passing
  a different seed (e.g. ``seed + epoch``).
"""

from __future__ import annotations

import itertools
import numbers
import zlib
from typing import Iterable, Sequence

import numpy as np

from mer.data.conversation import Conversation, ConversationDataset
from mer.data.splits import SPLIT_NAMES

__all__ = [
    "fixed_patterns",
    "pattern_masks",
    "random_missing",
    "max_missing_rate",
    "check_missing_rate",
    "RATE_LABEL_TOLERANCE",
    "missing_rate",
    "check_masks",
    "MaskCache",
    "split_masks",
    "MaskedConversations",
]

#: Name of the group of conversations that belong to no split (they get their own draw).
UNSPLIT = "unsplit"


def fixed_patterns(modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """All ``2^M − 1`` non-empty availability sets, singletons first, then pairs, …, the full set.

    Within one size, sets follow the modality order (``itertools.combinations``).

    Examples
    --------
    >>> fixed_patterns(["t", "a", "v"])
    [('t',), ('a',), ('v',), ('t', 'a'), ('t', 'v'), ('a', 'v'), ('t', 'a', 'v')]
    """
    modalities = tuple(modalities)
    if len(modalities) < 1 or len(set(modalities)) != len(modalities):
        raise ValueError(f"modalities must be distinct names, got {list(modalities)}")
    return [
        combo
        for size in range(1, len(modalities) + 1)
        for combo in itertools.combinations(modalities, size)
    ]


def pattern_masks(
    dataset: ConversationDataset | Sequence[Conversation], pattern: Iterable[str]
) -> list[np.ndarray]:
    """Per-conversation masks ``(N_i, M)`` that make exactly the modalities in ``pattern`` available.

    Raises ``ValueError`` for an empty pattern or a name that is not a modality of the dataset.
    """
    modalities = _modalities_of(dataset)
    pattern = tuple(pattern)
    if not pattern:
        raise ValueError(
            f"availability pattern is empty; every utterance must keep at least one of {modalities}"
        )
    unknown = [m for m in pattern if m not in modalities]
    if unknown:
        raise ValueError(f"pattern names unknown modalities {unknown}; valid: {list(modalities)}")
    row = np.array([m in pattern for m in modalities], dtype=bool)
    return [np.tile(row, (c.num_utterances, 1)) for c in dataset]


def max_missing_rate(num_modalities: int) -> float:
    """``(M − 1) / M``: the highest rate that leaves every utterance one modality."""
    return (num_modalities - 1) / num_modalities


#: How far a requested rate may lie from ``(M − 1)/M`` and still mean it: the tables print 2/3 as
#: ``0.667``, so typing the printed label back must select the same row.
RATE_LABEL_TOLERANCE = 5e-4


def check_missing_rate(rate: float, num_modalities: int) -> float:
    """``rate`` as a float in ``[0, (M − 1)/M]``; a rate within :data:`RATE_LABEL_TOLERANCE` of the
    ceiling (``0.667`` for ``M = 3``) becomes the ceiling itself.

    >>> check_missing_rate(0.667, 3) == 2 / 3
    True

    Raises
    ------
    ValueError
        For a bool, a non-number, NaN/Inf, a negative rate or one above the ceiling.
    """
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise ValueError(f"missing_rate must be a number, got {rate!r}")
    rate = float(rate)
    ceiling = max_missing_rate(num_modalities)
    if abs(rate - ceiling) <= RATE_LABEL_TOLERANCE:
        return ceiling
    if not np.isfinite(rate) or rate < 0.0 or rate > ceiling:
        raise ValueError(
            f"missing_rate {rate:g} is outside [0, (M-1)/M = {ceiling:.4g}] for M = {num_modalities} "
            f"modalities: every utterance must keep at least one modality (the highest rate is printed "
            f"{ceiling:.3f})"
        )
    return rate


def missing_rate(masks: Sequence[np.ndarray]) -> float:
    """Realised ``MR = 1 − Σ α / Σ (N_i · M)`` of a list of ``(N_i, M)`` masks."""
    total = sum(int(np.asarray(a).size) for a in masks)
    if total == 0:
        raise ValueError("no mask entries to measure")
    return 1.0 - sum(int(np.asarray(a, dtype=bool).sum()) for a in masks) / total


def random_missing(
    dataset: ConversationDataset, missing_rate: float, seed: int = 0
) -> list[np.ndarray]:
    """Random availability masks with exactly the requested missing rate in every split.

    Within one split (and separately for conversations in no split), ``K = round(MR · E)`` of its
    ``E = M · Σ N_i`` entries are dropped: ``K`` slots are chosen uniformly without replacement among
    the ``(M − 1)`` droppable slots of every utterance, and an utterance with ``k`` chosen slots loses
    ``k`` modalities chosen uniformly. So every utterance keeps ``≥ 1`` modality, every modality is
    dropped equally often in expectation, and the realised rate is within ``1 / (2E)`` of ``MR``.

    The draw of a split depends only on the split's name, its conversation sizes, ``MR`` and ``seed``:
    masks for ``dataset.split("test")`` equal the test part of the masks for ``dataset``.

    Parameters
    ----------
    dataset : ConversationDataset
        A full dataset or one split of it (:meth:`ConversationDataset.split`).
    missing_rate : float
        ``0 ≤ MR ≤ (M − 1) / M``. ``MR = 0`` gives all-ones masks.
    seed : int

    Returns
    -------
    list of np.ndarray
        One boolean ``(N_i, M)`` array per conversation, in dataset order.

    Raises
    ------
    ValueError
        If ``MR`` is outside ``[0, (M − 1)/M]``. With three modalities the ceiling is 2/3: a requested
        0.7 cannot keep one modality per utterance (code that accepts it silently caps it).
    """
    if not isinstance(dataset, ConversationDataset):
        raise ValueError(
            f"random_missing needs a ConversationDataset (or one of its splits), got {type(dataset)}"
        )
    M = len(dataset.modalities)
    rate = check_missing_rate(missing_rate, M)
    masks: list[np.ndarray | None] = [None] * len(dataset)
    for name, indices in split_groups(dataset):
        sizes = [dataset[i].num_utterances for i in indices]
        for i, mask in zip(indices, _draw_group(sizes, M, rate, _group_seed(seed, name, rate))):
            masks[i] = mask
    return masks  # type: ignore[return-value]


def split_groups(dataset: ConversationDataset) -> list[tuple[str, list[int]]]:
    """``(split name, conversation indices)`` per non-empty split, then :data:`UNSPLIT` for the
    conversations in no split: the groups mask draws are seeded by, so a split's masks do not depend
    on the other splits."""
    splits = dataset.splits
    assigned = {i for idx in splits.values() for i in idx}
    groups = [(name, list(splits[name])) for name in SPLIT_NAMES if splits[name]]
    rest = [i for i in range(len(dataset)) if i not in assigned]
    if rest:
        groups.append((UNSPLIT, rest))
    return groups


def check_masks(
    conversations: ConversationDataset | Sequence[Conversation],
    masks: Sequence[np.ndarray],
) -> list[np.ndarray]:
    """Validate user masks against conversations; return them as boolean ``(N_i, M)`` arrays.

    Raises ``ValueError`` naming the conversation (index and id) and, where it applies, the utterance
    and the modality, for: a count mismatch, a wrong shape, values other than 0/1, or an utterance
    with no available modality.
    """
    convs = list(conversations)
    if len(masks) != len(convs):
        raise ValueError(f"got {len(masks)} masks for {len(convs)} conversations; expected one each")
    out = []
    for i, (conv, mask) in enumerate(zip(convs, masks)):
        out.append(_check_one(i, conv, mask))
    return out


class MaskCache:
    """Memoised :func:`random_missing` draws, one per (dataset, split, rate, seed).

    The arrays are read-only and the same objects are returned on every call, so valid/test masks are
    drawn once and shared by every method and epoch. Datasets are told apart by their name, modalities,
    conversation ids and sizes.

    Examples
    --------
    >>> from mer.data import synthetic_conversations
    >>> ds = synthetic_conversations(seed=0, num_conversations=20)
    >>> cache = MaskCache()
    >>> a = cache.get(ds, "test", 0.3, seed=0)
    >>> a is cache.get(ds, "test", 0.3, seed=0)
    True
    """

    def __init__(self) -> None:
        self._store: dict[tuple, tuple[np.ndarray, ...]] = {}

    def get(
        self, dataset: ConversationDataset, split: str, missing_rate: float, seed: int = 0
    ) -> tuple[np.ndarray, ...]:
        """Masks ``(N_i, M)`` for the conversations of ``split``, in ``dataset.splits[split]`` order."""
        rate = check_missing_rate(missing_rate, len(dataset.modalities))
        key = (_fingerprint(dataset), split, round(rate, 12), int(seed))
        if key not in self._store:
            masks = random_missing(dataset.split(split), rate, seed)
            for mask in masks:
                mask.setflags(write=False)
            self._store[key] = tuple(masks)
        return self._store[key]

    def clear(self) -> None:
        self._store.clear()

    def __len__(self) -> int:
        return len(self._store)


_DEFAULT_CACHE = MaskCache()


def split_masks(
    dataset: ConversationDataset, split: str, missing_rate: float, seed: int = 0
) -> tuple[np.ndarray, ...]:
    """:meth:`MaskCache.get` on the process-wide cache: the masks every method evaluates on."""
    return _DEFAULT_CACHE.get(dataset, split, missing_rate, seed)


class MaskedConversations:
    """Map-style dataset of ``(Conversation, mask)`` pairs, ready for a ``DataLoader``.

    ``DataLoader(MaskedConversations(ds.split("test"), masks), collate_fn=collate_conversations)``
    yields :class:`~mer.data.collate.ConversationBatch` es whose availability comes from ``masks``.
    """

    def __init__(
        self, conversations: ConversationDataset | Sequence[Conversation], masks: Sequence[np.ndarray]
    ) -> None:
        self._conversations = list(conversations)
        self._masks = check_masks(self._conversations, masks)

    def __len__(self) -> int:
        return len(self._conversations)

    def __getitem__(self, index: int) -> tuple[Conversation, np.ndarray]:
        return self._conversations[index], self._masks[index]


# ------------------------------------------------------------------------------------- helpers
def _modalities_of(dataset) -> tuple[str, ...]:
    if isinstance(dataset, ConversationDataset):
        return tuple(dataset.modalities)
    convs = list(dataset)
    if not convs:
        raise ValueError("no conversations given")
    return convs[0].modalities


def _group_seed(seed: int, name: str, rate: float) -> np.random.SeedSequence:
    # crc32 rather than hash(): Python's str hash changes between processes.
    entropy = [int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode()), int(round(rate * 1e9))]
    return np.random.SeedSequence(entropy)


def _draw_group(
    sizes: list[int], M: int, rate: float, seed: np.random.SeedSequence
) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    U = sum(sizes)
    K = int(round(rate * U * M))
    K = min(K, U * (M - 1))
    slots = rng.choice(U * (M - 1), size=K, replace=False)
    drops = np.bincount(slots // (M - 1), minlength=U)
    # Rank modalities of each utterance by a random key; drop the `drops[u]` lowest ranked.
    ranks = np.argsort(np.argsort(rng.random((U, M)), axis=1), axis=1)
    available = ranks >= drops[:, None]
    bounds = np.cumsum([0, *sizes])
    return [available[bounds[k] : bounds[k + 1]].copy() for k in range(len(sizes))]


def _check_one(index: int, conv: Conversation, mask) -> np.ndarray:
    where = f"conversation {index} ({conv.conversation_id!r})"
    arr = np.asarray(mask)
    n, M = conv.num_utterances, len(conv.modalities)
    if arr.shape != (n, M):
        raise ValueError(
            f"{where}: availability mask has shape {arr.shape}, expected ({n}, {M}) "
            f"(utterances × modalities {list(conv.modalities)})"
        )
    if arr.dtype != bool:
        if arr.dtype.kind not in "biuf" or not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{where}: availability mask must hold only 0/1 (or booleans)")
        arr = arr.astype(bool)
    empty = ~arr.any(axis=1)
    if empty.any():
        j = int(np.flatnonzero(empty)[0])
        raise ValueError(
            f"{where}: utterance {j} has no available modality; expected at least one of "
            f"{list(conv.modalities)}"
        )
    return arr


def _fingerprint(dataset: ConversationDataset) -> tuple:
    return (
        dataset.name,
        tuple(dataset.modalities),
        tuple(c.conversation_id for c in dataset),
        tuple(c.num_utterances for c in dataset),
    )
