"""Conversations and datasets of conversations: the data model every ``mer`` component consumes.

A :class:`Conversation` holds, for ``N`` utterances, one feature matrix ``(N, d_m)`` per modality,
labels ``(N,)``, integer speaker ids ``(N,)`` and utterance ids. A :class:`ConversationDataset` is an
ordered list of conversations that share the same modalities, feature widths and task, plus disjoint
``train`` / ``valid`` / ``test`` splits given as conversation indices.

All validation happens once, in :class:`ConversationDataset`'s constructor; every error names the
conversation (index and id), the modality and the expected value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import numpy as np

from mer.data.sequences import check_sequences, standardized_steps, step_statistics
from mer.data.splits import SPLIT_NAMES, random_splits

__all__ = [
    "Conversation",
    "ConversationDataset",
    "TASKS",
    "REGRESSION_RANGE",
    "NUM_SENTIMENT_CLASSES",
    "encode_speakers",
    "sentiment_classes",
]

#: Tasks a dataset can carry.
TASKS = ("regression", "classification")

#: Label range of CMU-MOSI / CMU-MOSEI style sentiment regression.
REGRESSION_RANGE = (-3.0, 3.0)

#: Number of classes of the 7-class view of a regression label in [-3, 3].
NUM_SENTIMENT_CLASSES = 7


@dataclass(frozen=True, eq=False)
class Conversation:
    """One conversation of ``N`` utterances.

    Attributes
    ----------
    conversation_id : str
        Unique within its dataset.
    features : dict[str, np.ndarray]
        Modality name → ``(N, d_m)`` float32 matrix, in the dataset's modality order.
    labels : np.ndarray
        ``(N,)`` float32 (regression, in the dataset's ``label_range``) or int64 (classification,
        in ``[0, num_classes)``).
    speakers : np.ndarray
        ``(N,)`` int64 speaker ids ``≥ 0``; only equality within a conversation carries meaning for
        the graphs, but loaders keep one id per speaker name across the dataset.
    utterance_ids : tuple[str, ...]
        ``N`` ids, in speaking order.
    sequences : dict[str, np.ndarray], optional
        Modality → ``(N, T_m, d_m)`` float32 per-step features of each utterance, zero after its
        length (e.g. ``load_mmsa(..., sequences=True)``); ``features`` then holds their means over
        the real steps. ``None``: the dataset has utterance vectors only.
    sequence_lengths : dict[str, np.ndarray], optional
        Modality → ``(N,)`` int64 real steps of each utterance, in ``[0, T_m]``; with ``sequences``.

    Instances are built and checked by :class:`ConversationDataset`; build datasets, not
    conversations, from raw arrays (:meth:`ConversationDataset.from_arrays`).
    """

    conversation_id: str
    features: dict[str, np.ndarray]
    labels: np.ndarray
    speakers: np.ndarray
    utterance_ids: tuple[str, ...]
    sequences: dict[str, np.ndarray] | None = None
    sequence_lengths: dict[str, np.ndarray] | None = None

    @property
    def num_utterances(self) -> int:
        """``N``, the number of utterances."""
        return int(self.labels.shape[0])

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modality names in order."""
        return tuple(self.features)

    def __len__(self) -> int:
        return self.num_utterances

    def __repr__(self) -> str:
        dims = ", ".join(f"{m}: {x.shape[1]}" for m, x in self.features.items())
        return f"Conversation({self.conversation_id!r}, N={self.num_utterances}, dims={{{dims}}})"


class ConversationDataset:
    """An ordered list of conversations with shared modalities, widths, task and splits.

    Parameters
    ----------
    conversations : sequence of Conversation
        At least one. Each must have every modality in ``modalities``.
    modalities : sequence of str
        ``M ≥ 2`` distinct names; fixes the modality order used by masks ``(N, M)`` and batches.
    task : {"regression", "classification"}
    splits : mapping of str to sequence of int, optional
        Conversation indices for ``"train"``, ``"valid"``, ``"test"`` (a missing key means an empty
        split). Splits must be disjoint; they need not cover every conversation. ``None`` draws a
        seeded 70/10/20 split by conversation (:func:`mer.data.splits.random_splits`).
    num_classes : int, optional
        Classification only; default ``max(label) + 1``.
    label_range : (float, float)
        Regression only: inclusive bounds for labels, ``(-3, 3)`` by default.
    feature_dims : mapping of str to int, optional
        Expected width per modality; default: the first conversation's widths.
    split_seed : int
        Seed of the default split.
    name : str
        Free-form name shown in ``repr`` and used to tell datasets apart in caches.

    Raises
    ------
    ValueError
        For an empty conversation, a missing or extra modality, a feature matrix that is not 2-D, a
        width that differs from the first conversation's (or ``feature_dims``), NaN/Inf features,
        lengths that disagree between modalities, labels or speakers of the wrong shape, labels out of
        range for the task, duplicate conversation ids, or bad split indices. Messages name the
        conversation index and id, the modality and the expected value.
    """

    def __init__(
        self,
        conversations: Sequence[Conversation],
        modalities: Sequence[str],
        task: str = "regression",
        splits: Mapping[str, Sequence[int]] | None = None,
        *,
        num_classes: int | None = None,
        label_range: tuple[float, float] = REGRESSION_RANGE,
        feature_dims: Mapping[str, int] | None = None,
        split_seed: int = 0,
        name: str = "custom",
    ) -> None:
        modalities = _check_modalities(modalities)
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        conversations = list(conversations)
        if not conversations:
            raise ValueError("a dataset needs at least one conversation, got none")
        lo, hi = float(label_range[0]), float(label_range[1])
        if not lo < hi:
            raise ValueError(f"label_range must be (low, high) with low < high, got {label_range}")

        dims = _feature_dims(conversations[0], modalities, feature_dims)
        checked = [
            _check_conversation(i, c, modalities, dims, task, (lo, hi))
            for i, c in enumerate(conversations)
        ]
        _check_unique_ids(checked)
        _check_sequences_everywhere(checked)
        if task == "classification":
            num_classes = _check_num_classes(checked, num_classes)
        elif num_classes is not None:
            raise ValueError("num_classes applies to classification only; got it for regression")

        self._conversations = checked
        self._modalities = modalities
        self._feature_dims = dims
        self._task = task
        self._num_classes = num_classes
        self._label_range = (lo, hi)
        self.name = name
        if splits is None:
            splits = random_splits(len(checked), seed=split_seed)
        self._splits = _check_splits(splits, len(checked))

    # ----------------------------------------------------------------------------------- builders
    @classmethod
    def from_arrays(
        cls,
        features: Mapping[str, Sequence[np.ndarray]],
        labels: Sequence[np.ndarray],
        speakers: Sequence[Sequence] | None = None,
        task: str = "regression",
        ids: Sequence[str] | None = None,
        splits: Mapping[str, Sequence[int]] | None = None,
        *,
        utterance_ids: Sequence[Sequence[str]] | None = None,
        num_classes: int | None = None,
        label_range: tuple[float, float] = REGRESSION_RANGE,
        split_seed: int = 0,
        name: str = "arrays",
    ) -> "ConversationDataset":
        """Build a dataset from per-conversation arrays.

        Parameters
        ----------
        features : dict[str, list of array]
            Modality → one ``(N_i, d_m)`` array per conversation (any float dtype; stored as float32).
            The dict order is the modality order.
        labels : list of array
            One ``(N_i,)`` array per conversation: floats in ``label_range`` for regression, integers
            (or integral floats) in ``[0, num_classes)`` for classification.
        speakers : list of sequences, optional
            One ``(N_i,)`` sequence per conversation of speaker names or ids (any hashable, or one-hot
            rows); encoded to int ids by :func:`encode_speakers`. ``None``: one speaker (id 0).
        task : {"regression", "classification"}
        ids : list of str, optional
            Conversation ids; default ``"conv{i}"``.
        splits : dict, optional
            Explicit ``train``/``valid``/``test`` index lists, or ``None`` for a seeded 70/10/20 split.
        utterance_ids : list of list of str, optional
            Default ``"{conversation_id}_{j}"``.

        Returns
        -------
        ConversationDataset

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> ds = ConversationDataset.from_arrays(
        ...     {"t": [rng.normal(size=(3, 4))], "a": [rng.normal(size=(3, 2))]},
        ...     labels=[np.array([0.5, -1.0, 2.0])],
        ...     splits={"train": [0]},
        ... )
        >>> ds.modalities, ds.feature_dims, len(ds[0])
        (['t', 'a'], {'t': 4, 'a': 2}, 3)
        """
        if not isinstance(features, Mapping):
            raise ValueError(
                f"features must map modality name -> list of (N_i, d_m) arrays, got {type(features)}"
            )
        modalities = _check_modalities(list(features))
        labels = list(labels)
        n = len(labels)
        for m in modalities:
            if len(features[m]) != n:
                raise ValueError(
                    f"modality {m!r}: {len(features[m])} conversations of features, expected {n} "
                    "(one per entry of labels)"
                )
        if ids is None:
            ids = [f"conv{i}" for i in range(n)]
        elif len(ids) != n:
            raise ValueError(f"ids: {len(ids)} conversation ids, expected {n} (one per conversation)")
        if speakers is not None and len(speakers) != n:
            raise ValueError(
                f"speakers: {len(speakers)} sequences, expected {n} (one per conversation)"
            )
        if utterance_ids is not None and len(utterance_ids) != n:
            raise ValueError(
                f"utterance_ids: {len(utterance_ids)} sequences, expected {n} (one per conversation)"
            )

        if speakers is None:
            speaker_ids = [np.zeros(len(np.atleast_1d(y)), dtype=np.int64) for y in labels]
        else:
            speaker_ids, _ = encode_speakers(speakers)

        conversations = []
        for i in range(n):
            cid = str(ids[i])
            feats = {m: _as_float_matrix(features[m][i], i, cid, m) for m in modalities}
            y = np.asarray(labels[i])
            if utterance_ids is None:
                uids = tuple(f"{cid}_{j}" for j in range(y.reshape(-1).shape[0]))
            else:
                uids = tuple(str(u) for u in utterance_ids[i])
            conversations.append(Conversation(cid, feats, y, speaker_ids[i], uids))
        return cls(
            conversations,
            modalities,
            task,
            splits,
            num_classes=num_classes,
            label_range=label_range,
            split_seed=split_seed,
            name=name,
        )

    # --------------------------------------------------------------------------------- properties
    @property
    def modalities(self) -> list[str]:
        """Modality names (``M ≥ 2``), in the order masks and batches use."""
        return list(self._modalities)

    @property
    def feature_dims(self) -> dict[str, int]:
        """Modality → feature width ``d_m``."""
        return dict(self._feature_dims)

    @property
    def task(self) -> str:
        """``"regression"`` or ``"classification"``."""
        return self._task

    @property
    def num_classes(self) -> int | None:
        """Number of classes (classification), ``None`` for regression."""
        return self._num_classes

    @property
    def label_range(self) -> tuple[float, float]:
        """Inclusive bounds of regression labels."""
        return self._label_range

    @property
    def splits(self) -> dict[str, list[int]]:
        """``{"train": [...], "valid": [...], "test": [...]}`` conversation indices (a copy)."""
        return {k: list(v) for k, v in self._splits.items()}

    @property
    def conversation_ids(self) -> list[str]:
        return [c.conversation_id for c in self._conversations]

    @property
    def num_utterances(self) -> int:
        """Total number of utterances over all conversations."""
        return sum(c.num_utterances for c in self._conversations)

    @property
    def has_sequences(self) -> bool:
        """Whether every conversation carries per-step sequences (:attr:`Conversation.sequences`)."""
        return self._conversations[0].sequences is not None

    @property
    def max_utterances(self) -> int:
        """Utterances of the longest conversation (0 for an empty dataset): what sizes a padded batch."""
        return max((c.num_utterances for c in self._conversations), default=0)

    def __len__(self) -> int:
        return len(self._conversations)

    def __getitem__(self, index: int) -> Conversation:
        return self._conversations[index]

    def __iter__(self) -> Iterator[Conversation]:
        return iter(self._conversations)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self._splits.items())
        return (
            f"ConversationDataset({self.name!r}, {len(self)} conversations, "
            f"{self.num_utterances} utterances, task={self._task!r}, dims={self._feature_dims}, "
            f"splits: {sizes})"
        )

    # -------------------------------------------------------------------------------- derivations
    def subset(self, indices: Sequence[int], split_name: str | None = None) -> "ConversationDataset":
        """A new dataset of the conversations at ``indices`` (in that order).

        If ``split_name`` is given, the whole subset becomes that split and the others are empty;
        otherwise the subset has no split assignment (all three empty).
        """
        indices = [int(i) for i in indices]
        for i in indices:
            if not 0 <= i < len(self):
                raise ValueError(f"subset index {i} is outside [0, {len(self)})")
        if not indices:
            raise ValueError("a subset needs at least one conversation index")
        splits = {k: [] for k in SPLIT_NAMES}
        if split_name is not None:
            if split_name not in SPLIT_NAMES:
                raise ValueError(f"unknown split {split_name!r}; valid: {SPLIT_NAMES}")
            splits[split_name] = list(range(len(indices)))
        return self._derive([self._conversations[i] for i in indices], splits=splits)

    def split(self, name: str) -> "ConversationDataset":
        """The conversations of split ``name`` as their own dataset, where they form split ``name``.

        Masks drawn by :func:`mer.data.random_missing` for this subset equal the ``name`` part of the
        masks drawn for the full dataset.
        """
        if name not in SPLIT_NAMES:
            raise ValueError(f"unknown split {name!r}; valid: {SPLIT_NAMES}")
        if not self._splits[name]:
            raise ValueError(f"split {name!r} of dataset {self.name!r} is empty")
        return self.subset(self._splits[name], split_name=name)

    def as_classification(self) -> "ConversationDataset":
        """The 7-class view of a regression dataset: ``round(clip(y, -3, 3)) + 3`` ∈ {0, …, 6}.

        Rounding is NumPy's (half to even), the same as :func:`mer.metrics.regression_metrics`'s
        ``acc7``, so classification accuracy on this view equals ``acc7`` on the original.
        """
        if self._task != "regression":
            raise ValueError(f"as_classification needs a regression dataset, got task {self._task!r}")
        convs = [
            dataclasses.replace(c, labels=sentiment_classes(c.labels)) for c in self._conversations
        ]
        return self._derive(
            convs, task="classification", num_classes=NUM_SENTIMENT_CLASSES, name=f"{self.name}-7class"
        )

    def standardized(self, reference: str = "train", eps: float = 1e-6) -> "ConversationDataset":
        """Features z-scored per modality and dimension with statistics of split ``reference``.

        ``x ← (x − mean) / max(std, eps)``, mean and std over all utterances of the reference split.
        Sequences, when present, are z-scored with their own statistics over the real steps of the
        reference split (:func:`mer.data.sequences.step_statistics`); padding stays zero.
        """
        if reference not in SPLIT_NAMES or not self._splits[reference]:
            raise ValueError(f"reference split {reference!r} is unknown or empty")
        ref = [self._conversations[i] for i in self._splits[reference]]
        stats = {}
        for m in self._modalities:
            stacked = np.concatenate([c.features[m] for c in ref], axis=0).astype(np.float64)
            stats[m] = (stacked.mean(axis=0), np.maximum(stacked.std(axis=0), eps))
        convs = [
            dataclasses.replace(
                c,
                features={
                    m: ((x - stats[m][0]) / stats[m][1]).astype(np.float32)
                    for m, x in c.features.items()
                },
            )
            for c in self._conversations
        ]
        if self.has_sequences:
            step_stats = step_statistics(ref, self._modalities, eps)
            convs = [dataclasses.replace(c, sequences=standardized_steps(c, step_stats)) for c in convs]
        return self._derive(convs)

    def _derive(self, conversations, **overrides) -> "ConversationDataset":
        kwargs = dict(
            modalities=self._modalities,
            task=self._task,
            splits=self._splits,
            num_classes=self._num_classes,
            label_range=self._label_range,
            feature_dims=self._feature_dims,
            name=self.name,
        )
        kwargs.update(overrides)
        if kwargs["task"] == "regression":
            kwargs["num_classes"] = None
        return ConversationDataset(conversations, **kwargs)


# ------------------------------------------------------------------------------------- helpers
def sentiment_classes(labels: np.ndarray) -> np.ndarray:
    """Map regression labels ``(N,)`` in [-3, 3] to 7 classes ``round(clip(y, -3, 3)) + 3`` (int64)."""
    return (np.round(np.clip(np.asarray(labels, dtype=np.float64), -3.0, 3.0)) + 3).astype(np.int64)


def encode_speakers(speakers: Sequence[Sequence]) -> tuple[list[np.ndarray], list]:
    """Encode per-conversation speaker names as int ids shared across conversations.

    Parameters
    ----------
    speakers : list of sequences
        One sequence per conversation; entries are hashable names (``"M"``, ``"F"``, ints) or one-hot
        rows (their argmax is the speaker).

    Returns
    -------
    ids : list of np.ndarray
        One ``(N_i,)`` int64 array per conversation. Non-negative integer names keep their value;
        otherwise names are sorted (as strings) and numbered from 0, so ``"F" → 0``, ``"M" → 1``.
    names : list
        ``names[k]`` is the name of speaker id ``k`` (for integer names, the identity).
    """
    rows = []
    for seq in speakers:
        arr = np.asarray(seq, dtype=object) if not isinstance(seq, np.ndarray) else seq
        if arr.ndim == 2:
            rows.append([int(np.argmax(np.asarray(r, dtype=np.float64))) for r in arr])
        else:
            rows.append([s.item() if isinstance(s, np.generic) else s for s in list(arr)])
    flat = [s for r in rows for s in r]
    if all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in flat):
        top = max(flat, default=-1)
        return [np.asarray(r, dtype=np.int64) for r in rows], list(range(top + 1))
    names = sorted(set(flat), key=str)
    code = {s: k for k, s in enumerate(names)}
    return [np.asarray([code[s] for s in r], dtype=np.int64) for r in rows], names


def _check_modalities(modalities: Sequence[str]) -> tuple[str, ...]:
    modalities = tuple(modalities)
    if len(modalities) < 2:
        raise ValueError(f"need at least 2 modalities, got {list(modalities)}")
    for m in modalities:
        if not isinstance(m, str) or not m:
            raise ValueError(f"modality names must be non-empty strings, got {m!r}")
    if len(set(modalities)) != len(modalities):
        raise ValueError(f"modality names must be distinct, got {list(modalities)}")
    return modalities


def _as_float_matrix(x, index: int, cid: str, modality: str) -> np.ndarray:
    try:
        return np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"conversation {index} ({cid!r}), modality {modality!r}: features are not a numeric "
            f"(N, d) array ({err})"
        ) from None


def _feature_dims(first: Conversation, modalities, given: Mapping[str, int] | None) -> dict[str, int]:
    if given is not None:
        dims = {m: int(given[m]) for m in modalities if m in given}
        missing = [m for m in modalities if m not in dims]
        if missing:
            raise ValueError(
                f"feature_dims lacks modalities {missing}; expected keys {list(modalities)}"
            )
        return dims
    dims = {}
    features = first.features if isinstance(first, Conversation) else {}
    for m in modalities:
        x = features.get(m)
        dims[m] = int(np.shape(x)[1]) if x is not None and np.ndim(x) == 2 else -1
    return dims


def _check_conversation(
    index: int,
    conv: Conversation,
    modalities: tuple[str, ...],
    dims: dict[str, int],
    task: str,
    label_range: tuple[float, float],
) -> Conversation:
    """Validate one conversation; return a copy with normalised dtypes."""
    if not isinstance(conv, Conversation):
        raise ValueError(f"conversation {index}: expected a Conversation, got {type(conv).__name__}")
    where = f"conversation {index} ({conv.conversation_id!r})"
    extra = [m for m in conv.features if m not in modalities]
    absent = [m for m in modalities if m not in conv.features]
    if absent or extra:
        raise ValueError(
            f"{where}: modalities {list(conv.features)} do not match the dataset's {list(modalities)}"
            + (f" (missing {absent})" if absent else "")
            + (f" (unexpected {extra})" if extra else "")
        )

    labels = np.asarray(conv.labels)
    if labels.ndim != 1:
        raise ValueError(f"{where}: labels must have shape (N,), got {labels.shape}")
    n = labels.shape[0]
    if n == 0:
        raise ValueError(f"{where}: empty conversation (0 utterances); expected at least 1")

    features = {}
    for m in modalities:
        x = np.asarray(conv.features[m], dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(
                f"{where}, modality {m!r}: features must be 2-D (N, d_m), got shape {x.shape}"
            )
        if x.shape[0] != n:
            raise ValueError(
                f"{where}, modality {m!r}: {x.shape[0]} utterances, expected {n} "
                "(the number of labels; every modality needs one row per utterance)"
            )
        if x.shape[1] != dims[m]:
            raise ValueError(
                f"{where}, modality {m!r}: feature width {x.shape[1]}, expected {dims[m]} "
                "(every conversation must have the same width per modality)"
            )
        finite = np.isfinite(x).all(axis=1)
        if not finite.all():
            j = int(np.flatnonzero(~finite)[0])
            raise ValueError(
                f"{where}, modality {m!r}: utterance {j} has NaN or Inf features; expected finite "
                "values (missing modalities are given by availability masks, not NaN)"
            )
        features[m] = x

    labels = _check_labels(labels, where, task, label_range)

    speakers = np.asarray(conv.speakers)
    if speakers.shape != (n,):
        raise ValueError(f"{where}: speakers must have shape ({n},), got {speakers.shape}")
    if speakers.dtype.kind not in "iu":
        raise ValueError(
            f"{where}: speakers must be integer ids, got dtype {speakers.dtype} "
            "(use encode_speakers or ConversationDataset.from_arrays for names)"
        )
    if n and speakers.min() < 0:
        raise ValueError(f"{where}: speaker ids must be >= 0, got {int(speakers.min())}")

    uids = tuple(str(u) for u in conv.utterance_ids)
    if len(uids) != n:
        raise ValueError(f"{where}: {len(uids)} utterance ids, expected {n}")
    sequences, lengths = check_sequences(conv.sequences, conv.sequence_lengths, modalities, dims, n, where)
    return Conversation(str(conv.conversation_id), features, labels, speakers.astype(np.int64), uids,
                        sequences, lengths)


def _check_sequences_everywhere(conversations: list[Conversation]) -> None:
    """Sequences are all or nothing: a batch cannot mix sequence and vector conversations."""
    has = [c.sequences is not None for c in conversations]
    if any(has) and not all(has):
        i = has.index(not has[0])
        raise ValueError(
            f"conversation {i} ({conversations[i].conversation_id!r}) "
            f"{'has' if has[i] else 'lacks'} sequences but conversation 0 "
            f"{'has' if has[0] else 'lacks'} them; every conversation must have them or none"
        )


def _check_labels(labels: np.ndarray, where: str, task: str, label_range) -> np.ndarray:
    if labels.dtype.kind not in "biuf":
        raise ValueError(f"{where}: labels must be numeric, got dtype {labels.dtype}")
    if labels.dtype.kind == "b" and task == "regression":
        raise ValueError(
            f"{where}: labels are booleans (dtype bool), not regression scores; give float labels, or "
            "task='classification' for two classes"
        )
    y = labels.astype(np.float64)
    bad = ~np.isfinite(y)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{where}: label of utterance {j} is NaN or Inf; expected a finite value")
    if task == "regression":
        lo, hi = label_range
        out = (y < lo) | (y > hi)
        if out.any():
            j = int(np.flatnonzero(out)[0])
            raise ValueError(
                f"{where}: label {y[j]:g} of utterance {j} is outside [{lo:g}, {hi:g}] "
                "expected for regression"
            )
        return y.astype(np.float32)
    frac = y != np.round(y)
    if frac.any():
        j = int(np.flatnonzero(frac)[0])
        raise ValueError(
            f"{where}: label {y[j]:g} of utterance {j} is not an integer class id, "
            "expected for classification"
        )
    if (y < 0).any():
        j = int(np.flatnonzero(y < 0)[0])
        raise ValueError(
            f"{where}: label {int(y[j])} of utterance {j} is negative; classification labels must be "
            "in [0, num_classes)"
        )
    return y.astype(np.int64)


def _check_num_classes(conversations: list[Conversation], num_classes: int | None) -> int:
    top = max(int(c.labels.max()) for c in conversations)
    if num_classes is None:
        return top + 1
    num_classes = int(num_classes)
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    for i, c in enumerate(conversations):
        over = c.labels >= num_classes
        if over.any():
            j = int(np.flatnonzero(over)[0])
            raise ValueError(
                f"conversation {i} ({c.conversation_id!r}): label {int(c.labels[j])} of utterance {j} "
                f"is outside [0, {num_classes}) expected for classification"
            )
    return num_classes


def _check_unique_ids(conversations: list[Conversation]) -> None:
    seen: dict[str, int] = {}
    for i, c in enumerate(conversations):
        if c.conversation_id in seen:
            raise ValueError(
                f"conversation {i}: id {c.conversation_id!r} already used by conversation "
                f"{seen[c.conversation_id]}; conversation ids must be unique"
            )
        seen[c.conversation_id] = i


def _check_splits(splits: Mapping[str, Sequence[int]], n: int) -> dict[str, list[int]]:
    unknown = [k for k in splits if k not in SPLIT_NAMES]
    if unknown:
        raise ValueError(f"unknown split names {unknown}; valid: {list(SPLIT_NAMES)}")
    out: dict[str, list[int]] = {}
    owner: dict[int, str] = {}
    for name in SPLIT_NAMES:
        idx = []
        for i in splits.get(name, ()):
            if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
                raise ValueError(f"split {name!r}: index {i!r} is not an integer")
            i = int(i)
            if not 0 <= i < n:
                raise ValueError(f"split {name!r}: conversation index {i} is outside [0, {n})")
            if i in owner:
                raise ValueError(
                    f"split {name!r}: conversation {i} is already in split {owner[i]!r}; "
                    "splits must be disjoint"
                )
            owner[i] = name
            idx.append(i)
        out[name] = idx
    return out
