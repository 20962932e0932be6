"""The literature's missing protocol: the composition behind the MR rows ``0.1 … 0.7`` of the IMDer,
RoHyDR and MD2N tables.

Those tables label their rows ``MR = 0.1 … 0.7`` and add an ``Average`` over them, but IMDer's
reference code does not drop a fraction ``MR`` of the (sample, modality) entries: it gives a share
``two`` of the samples two missing modalities and a share ``one`` one missing modality, by row label
(:data:`LITERATURE_COMPOSITION`). With three modalities the realised per-entry rate is
``(2 · two + one) / 3`` (:func:`realised_missing_rate`): ``0.1 … 0.6`` for the rows ``0.1 … 0.6``, and
``2/3`` for the row ``0.7``, where every sample keeps exactly one modality.

The reference code draws the composition per batch; :func:`literature_masks` draws it once over all
utterances of a split (per utterance; in the per-clip view of MOSI/MOSEI every clip is a one-utterance
conversation), with exact counts:

* ``n`` real utterances in the split (padding never counts: conversations hold only real ones);
* exactly :func:`literature_counts` ``= (round(two · n), round(one · n))`` utterances keep one and two
  modalities (halves round up; the one-missing count is clipped so the two never exceed ``n``); the
  others keep all three;
* which utterances get which is a seeded permutation, which modalities an utterance loses is uniform
  over the three (seeded).

The exact-rate protocol (:func:`mer.data.random_missing`) stays the library's default; this one is
``MissingProtocol(kind="literature", missing_rate=LABEL)`` (:mod:`mer.data.protocol`).
"""

from __future__ import annotations

import math
import numbers
import zlib
from typing import Mapping, Sequence

import numpy as np

from mer.data.conversation import ConversationDataset
from mer.data.missing import split_groups

__all__ = [
    "LITERATURE_COMPOSITION",
    "LITERATURE_LABELS",
    "LITERATURE_MODALITIES",
    "check_literature_modalities",
    "literature_label",
    "literature_counts",
    "literature_masks",
    "realised_missing_rate",
    "literature_average",
]

#: Row label → (share of samples with two modalities missing, share with one missing), from IMDer's
#: reference code; label ``0.0`` is complete data.
LITERATURE_COMPOSITION: Mapping[float, tuple[float, float]] = {
    0.0: (0.0, 0.0),
    0.1: (0.1, 0.1),
    0.2: (0.2, 0.2),
    0.3: (0.3, 0.3),
    0.4: (0.5, 0.2),
    0.5: (0.7, 0.1),
    0.6: (0.9, 0.0),
    0.7: (1.0, 0.0),
}
#: The rows the papers' ``Average`` is over.
LITERATURE_LABELS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
#: The number of modalities the composition is defined for.
LITERATURE_MODALITIES = 3

# The shares in tenths, so that the counts round exactly (0.7 · 5 is 3.4999… in floating point).
_TENTHS = {label: (round(two * 10), round(one * 10)) for label, (two, one) in LITERATURE_COMPOSITION.items()}
_LABEL_TOLERANCE = 1e-9


def _valid_labels() -> str:
    return ", ".join(f"{label:.1f}" for label in LITERATURE_COMPOSITION)


def literature_label(value) -> float:
    """``value`` as the row label it names (one of ``0.0, 0.1, …, 0.7``).

    >>> literature_label(0.7), literature_label(0.1 + 0.2)
    (0.7, 0.3)

    Raises ``ValueError`` for anything else (``0.667``, ``0.8``, a bool, a string), naming the labels.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"a literature missing-rate label must be one of {_valid_labels()}, got {value!r}")
    for label in LITERATURE_COMPOSITION:
        if abs(float(value) - label) <= _LABEL_TOLERANCE:
            return label
    raise ValueError(
        f"literature missing-rate label {float(value):g} is not a row of the papers' tables; valid: "
        f"{_valid_labels()} (for another per-entry rate use the exact-rate protocol, kind='random')"
    )


def realised_missing_rate(label: float) -> float:
    """The per-entry missing rate ``(2 · two + one) / 3`` of row ``label`` (``2/3`` for ``0.7``).

    >>> [round(realised_missing_rate(l), 3) for l in (0.1, 0.4, 0.6, 0.7)]
    [0.1, 0.4, 0.6, 0.667]
    """
    two, one = LITERATURE_COMPOSITION[literature_label(label)]
    return (2 * two + one) / LITERATURE_MODALITIES


def literature_counts(label: float, n: int) -> tuple[int, int]:
    """``(utterances with two missing, utterances with one missing)`` among ``n``: ``round(two · n)``
    and ``round(one · n)``, halves rounded up, the second clipped to ``n`` minus the first.

    >>> literature_counts(0.4, 3000), literature_counts(0.7, 7), literature_counts(0.5, 5)
    ((1500, 600), (7, 0), (4, 1))
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"n must be a count of utterances (an integer >= 0), got {n!r}")
    two_tenths, one_tenths = _TENTHS[literature_label(label)]
    two = (two_tenths * int(n) + 5) // 10
    one = min((one_tenths * int(n) + 5) // 10, int(n) - two)
    return int(two), int(one)


def literature_masks(dataset: ConversationDataset, label: float, seed: int = 0) -> list[np.ndarray]:
    """Availability masks ``(N_i, 3)`` with the composition of row ``label`` in every split.

    Within one split (and separately for conversations in no split), over its ``n = Σ N_i`` utterances:
    :func:`literature_counts` utterances keep one and two modalities, the rest all three; which
    utterances is a seeded permutation, which modalities each loses is uniform over the three. Every
    utterance keeps at least one modality.

    The draw of a split depends only on the split's name, its conversation sizes, ``label`` and
    ``seed``, so masks for ``dataset.split("test")`` equal the test part of the masks for ``dataset``.

    Parameters
    ----------
    dataset : ConversationDataset
        A full dataset or one split of it, with exactly three modalities.
    label : float
        A row label, one of ``0.0, 0.1, …, 0.7`` (:data:`LITERATURE_COMPOSITION`).
    seed : int

    Returns
    -------
    list of np.ndarray
        One boolean ``(N_i, 3)`` array per conversation, in dataset order, ``True`` where available.

    Raises
    ------
    ValueError
        For a dataset without exactly three modalities, or a label that is not a row.
    """
    if not isinstance(dataset, ConversationDataset):
        raise ValueError(
            f"literature_masks needs a ConversationDataset (or one of its splits), got {type(dataset)}"
        )
    check_literature_modalities(dataset.modalities)
    label = literature_label(label)
    masks: list[np.ndarray | None] = [None] * len(dataset)
    for name, indices in split_groups(dataset):
        sizes = [dataset[i].num_utterances for i in indices]
        for i, mask in zip(indices, _draw_group(sizes, label, _group_seed(seed, name, label))):
            masks[i] = mask
    return masks  # type: ignore[return-value]


def check_literature_modalities(modalities: Sequence[str]) -> None:
    """Refuse a modality list whose length is not three: the composition is defined for three."""
    if len(modalities) != LITERATURE_MODALITIES:
        raise ValueError(
            f"the literature protocol is defined for exactly {LITERATURE_MODALITIES} modalities (its rows "
            f"give shares of samples with two and with one of three missing); this dataset has "
            f"{len(modalities)}: {list(modalities)}. Use the exact-rate protocol (kind='random') instead"
        )


def literature_average(values: Mapping[float, float], labels: Sequence[float] = LITERATURE_LABELS) -> float:
    """The papers' ``Average`` row: the mean of ``values`` (row label → metric) over ``labels``
    (default ``0.1 … 0.7``; label ``0.0`` is not part of it).

    >>> literature_average({0.1: 80.0, 0.2: 78.0, 0.3: 76.0, 0.4: 74.0, 0.5: 72.0, 0.6: 70.0, 0.7: 68.0})
    74.0

    Raises ``ValueError`` naming the labels ``values`` lacks (an Average over fewer rows is not the
    papers' Average), or for an empty ``labels``.
    """
    wanted = [literature_label(label) for label in labels]
    if not wanted:
        raise ValueError("give at least one label to average over")
    given: dict[float, float] = {}
    for key, value in values.items():
        given[literature_label(key)] = float(value)
    missing = [label for label in wanted if label not in given]
    if missing:
        raise ValueError(
            f"the Average needs a value at every label {[f'{l:.1f}' for l in wanted]}; missing: "
            f"{[f'{l:.1f}' for l in missing]}"
        )
    return float(np.mean([given[label] for label in wanted]))


# ------------------------------------------------------------------------------------- helpers
def _group_seed(seed: int, name: str, label: float) -> np.random.SeedSequence:
    # crc32 rather than hash() (stable across processes); the "literature" tag keeps these streams
    # apart from random_missing's, which are seeded from (seed, split, rate) alone.
    entropy = [int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode()), zlib.crc32(b"literature"),
               int(round(label * 10))]
    return np.random.SeedSequence(entropy)


def _draw_group(sizes: list[int], label: float, seed: np.random.SeedSequence) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    n, M = sum(sizes), LITERATURE_MODALITIES
    two, one = literature_counts(label, n)
    order = rng.permutation(n)
    drops = np.zeros(n, dtype=np.int64)
    drops[order[:two]] = 2
    drops[order[two:two + one]] = 1
    # Rank the modalities of each utterance by a random key and drop the `drops[u]` lowest: uniform
    # over which modality is kept (two missing) or dropped (one missing).
    ranks = np.argsort(np.argsort(rng.random((n, M)), axis=1), axis=1)
    available = ranks >= drops[:, None]
    bounds = np.cumsum([0, *sizes])
    return [available[bounds[k]:bounds[k + 1]].copy() for k in range(len(sizes))]
