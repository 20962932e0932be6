"""The missing-modality protocol of a run and the masks it gives each split, in one place.

* :class:`MissingProtocol` says *which* condition a run is under (none, a random rate, a fixed
  availability set, a mixture of those, or a row of the literature's tables) and parses every form a
  user may give it (dict, float, tuple of names, ``"literature:0.7"``, the CLI's options).
* :class:`MaskPlan` turns a protocol, a dataset and a seed into availability masks: the valid and test
  masks are built once per run, the training masks per epoch (``plan.train(epoch)``).
* :func:`protocol_masks` is the one rule behind the plan (the masks of one split), and
  :func:`benchmark_conditions` / :func:`mixture_of` list the conditions of a benchmark and their
  uniform mixture.

The mask primitives (exact-rate random draws, fixed patterns, the per-split cache) live in
:mod:`mer.data.missing`; this module decides which of them a split gets and with which seed:

* ``valid`` / ``test`` under the random protocol: :func:`mer.data.split_masks`, drawn once per
  (dataset, split, rate, seed) and cached, so every method and every epoch sees the same entries.
* ``train`` under the random protocol: redrawn every epoch (``train_masks="per_epoch"``, seed
  :func:`epoch_seed`, so a resumed run redraws exactly what it would have) or drawn once (``"fixed"``).
* ``train`` with ``train_masks="complete"``, under any protocol: every entry observed (complete data in
  training, missing modalities only at validation and test: MD2N's protocol).
* Fixed protocol: the pattern on every utterance of every split. ``none``: everything available.
* Mixed protocol: every conversation of the split draws one condition of the mixture uniformly and
  gets that condition's mask (:func:`mixed_masks`); the draws are seeded like the random protocol's.
* Literature protocol: the composition of a row of the IMDer / RoHyDR / MD2N tables (shares of
  utterances with two and with one modality missing, :mod:`mer.data.literature`), drawn like the random
  protocol: valid/test once per (split, label, seed), train per epoch or once.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import zlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from mer.data.conversation import ConversationDataset
from mer.data.literature import (
    LITERATURE_LABELS,
    check_literature_modalities,
    literature_label,
    literature_masks,
)
from mer.data.missing import (
    check_missing_rate,
    fixed_patterns,
    max_missing_rate,
    pattern_masks,
    random_missing,
    split_masks,
)

__all__ = [
    "MissingProtocol",
    "Protocol",
    "MaskPlan",
    "PROTOCOL_KINDS",
    "TRAIN_MASK_MODES",
    "CONDITION_SETS",
    "LITERATURE_PREFIXES",
    "protocol_masks",
    "full_masks",
    "epoch_seed",
    "mixed_masks",
    "parse_mixture",
    "protocol_from_options",
    "default_missing_rates",
    "benchmark_conditions",
    "mixture_of",
]

PROTOCOL_KINDS = ("none", "random", "fixed", "mixed", "literature")
#: How the training split's masks are drawn: anew every epoch, once, or not at all (``"complete"``:
#: every entry observed in training, the condition applies to validation and test only, as in MD2N).
TRAIN_MASK_MODES = ("per_epoch", "fixed", "complete")
#: Which conditions a benchmark runs: the random rates, the fixed sets, both, or the literature's
#: rows ``0.1 … 0.7`` (:mod:`mer.data.literature`).
CONDITION_SETS = ("random", "fixed", "both", "literature")
#: The string form of a literature condition: ``"literature:0.7"`` (or its table label ``"lit0.7"``).
LITERATURE_PREFIXES = ("literature:", "lit")


@dataclass
class MissingProtocol:
    """A missing-modality condition, applied alike to train, valid and test.

    Parameters
    ----------
    kind : {"none", "random", "fixed", "mixed", "literature"}
        ``none``: everything available; ``random``: exact-rate random masks
        (:func:`mer.data.random_missing`); ``fixed``: one availability set for every utterance;
        ``mixed``: the uniform mixture of the conditions in ``mixture`` — every conversation draws one
        of them (:func:`mixed_masks` says how); ``literature``: the composition of a row of the
        papers' tables (:func:`mer.data.literature.literature_masks`), three modalities only.
    missing_rate : float
        Random protocol: ``0 ≤ MR ≤ (M − 1)/M``. Literature protocol: the row label, one of
        ``0.0, 0.1, …, 0.7`` (its realised per-entry rate is
        :func:`mer.data.literature.realised_missing_rate`: ``2/3`` for ``0.7``).
    pattern : tuple of str, optional
        Fixed protocol: the available modalities.
    seed : int, optional
        Seed of the mask draws; ``None`` uses the run's seed. Valid/test masks depend only on
        (split, condition, seed), so every method evaluated with one seed sees the same inputs.
    mixture : tuple, optional
        Mixed protocol: the conditions, each a float (a random missing rate) or a tuple of modality
        names (a fixed availability set), e.g. ``(0.0, 0.3, ("t",), ("t", "a"))``. Non-empty, without
        repeats.

    Examples
    --------
    >>> MissingProtocol.parse({"kind": "mixed", "mixture": [0.3, ["t", "a"]]}).mixture
    (0.3, ('t', 'a'))
    >>> MissingProtocol.parse("literature:0.7").condition
    'lit0.7'
    """

    kind: str = "random"
    missing_rate: float = 0.0
    pattern: tuple[str, ...] | None = None
    seed: int | None = None
    mixture: tuple | None = None

    def __post_init__(self) -> None:
        if isinstance(self.pattern, str):
            # "t,a" (a config or --set value) names modalities by comma, not character by character.
            self.pattern = tuple(name.strip() for name in self.pattern.split(",") if name.strip())
        if self.pattern is not None:
            self.pattern = tuple(self.pattern)
        if self.mixture is not None and isinstance(self.mixture, (list, tuple)):
            # JSON turns the tuples into lists; a plain tuple of floats / tuples compares and hashes.
            self.mixture = tuple(_mixture_item(item) for item in self.mixture)

    def validate(self, modalities: list[str] | None = None) -> None:
        """Refuse a setting that cannot run. With ``modalities``, a missing rate (here or in the
        mixture) must lie in ``[0, (M − 1)/M]``, and one within rounding of the ceiling (``0.667``,
        as the tables print 2/3) is set to the ceiling itself; without them, in ``[0, 1)``.
        A literature protocol needs a row label (``0.0 … 0.7``) and, with ``modalities``, exactly
        three of them."""
        if self.kind not in PROTOCOL_KINDS:
            raise ValueError(f"unknown protocol kind {self.kind!r}; valid: {list(PROTOCOL_KINDS)}")
        if self.pattern and self.kind != "fixed":  # it would be kept in the config and mask nothing
            raise ValueError(f"a pattern ({', '.join(self.pattern)}) applies to the fixed protocol, not to "
                             f"kind {self.kind!r}: set kind fixed (--set protocol.kind=fixed), or leave the "
                             "pattern out")
        if self.kind == "random":
            if modalities is not None:
                self.missing_rate = check_missing_rate(self.missing_rate, len(modalities))
            elif isinstance(self.missing_rate, bool) or not isinstance(self.missing_rate, numbers.Real):
                raise ValueError(f"missing_rate must be a number, got {self.missing_rate!r}")
            elif not (math.isfinite(self.missing_rate) and 0.0 <= self.missing_rate < 1.0):
                raise ValueError(f"missing_rate must be in [0, (M-1)/M], below 1, got {self.missing_rate}")
        if self.kind == "fixed":
            if not self.pattern:
                raise ValueError("a fixed protocol needs a non-empty pattern of available modalities")
            if modalities is not None:
                unknown = [m for m in self.pattern if m not in modalities]
                if unknown:
                    raise ValueError(
                        f"pattern names unknown modalities {unknown}; valid: {list(modalities)}"
                    )
        if self.kind == "mixed":
            self._validate_mixture(modalities)
        if self.kind == "literature":
            self.missing_rate = literature_label(self.missing_rate)
            if modalities is not None:
                check_literature_modalities(modalities)

    def _validate_mixture(self, modalities: list[str] | None) -> None:
        if not isinstance(self.mixture, tuple) or not self.mixture:
            raise ValueError(
                "a mixed protocol needs a non-empty mixture of conditions, e.g. "
                f"mixture=(0.0, 0.3, ('t',)); got {self.mixture!r}"
            )
        seen: dict = {}
        items = list(self.mixture)
        for i, item in enumerate(items):
            if isinstance(item, float):
                if modalities is not None:
                    try:
                        item = items[i] = check_missing_rate(item, len(modalities))
                    except ValueError as err:
                        raise ValueError(f"mixture[{i}]: {err}") from None
                elif not (math.isfinite(item) and 0.0 <= item < 1.0):
                    raise ValueError(
                        f"mixture[{i}]: missing rate {item:g} is outside [0, (M-1)/M]: every utterance "
                        "must keep at least one modality"
                    )
            elif not isinstance(item, tuple) or not item or not all(isinstance(m, str) for m in item):
                raise ValueError(
                    f"mixture[{i}] = {item!r} must be a missing rate (float) or a non-empty tuple of "
                    "available modality names"
                )
            elif modalities is not None:
                unknown = [m for m in item if m not in modalities]
                if unknown:
                    raise ValueError(
                        f"mixture[{i}] names unknown modalities {unknown}; valid: {list(modalities)}"
                    )
            if item in seen:
                raise ValueError(f"mixture[{i}] = {item!r} repeats mixture[{seen[item]}]")
            seen[item] = i
        self.mixture = tuple(items)

    @property
    def conditions(self) -> list["MissingProtocol"]:
        """Mixed protocol: its conditions as ``random`` / ``fixed`` protocols with this seed, in
        mixture order."""
        if self.kind != "mixed":
            raise ValueError(f"only a mixed protocol has conditions, this one is {self.kind!r}")
        return [
            MissingProtocol(kind="random", missing_rate=item, seed=self.seed)
            if isinstance(item, float)
            else MissingProtocol(kind="fixed", pattern=item, seed=self.seed)
            for item in self.mixture or ()
        ]

    @property
    def condition(self) -> str:
        """Table label: ``"0.0"``, ``"0.3"``, ``"0.667"`` (random, rate to at most 3 decimals),
        ``"{t,a}"`` (fixed), ``"mixed"``, ``"lit0.7"`` (literature: its row label, never confused
        with the random rate of the same number), ``"full"`` (none)."""
        if self.kind == "random":
            text = f"{float(self.missing_rate):.3f}".rstrip("0")
            return text + "0" if text.endswith(".") else text
        if self.kind == "fixed":
            return "{" + ",".join(self.pattern or ()) + "}"
        if self.kind == "mixed":
            return "mixed"
        if self.kind == "literature":
            return f"lit{float(self.missing_rate):.1f}"
        return "full"

    @classmethod
    def parse(cls, value: Any, modalities: list[str] | None = None) -> "MissingProtocol":
        """Accept a :class:`MissingProtocol`, a dict of its fields (``{"kind": "mixed", "mixture":
        [...]}`` for a mixture), ``None`` or ``"none"`` (everything available), a float (random rate),
        a tuple/list of modality names (fixed pattern), or ``"literature:0.7"`` / ``"lit0.7"`` (a row
        of the literature's tables; ``{"kind": "literature", "missing_rate": 0.7}`` as a dict)."""
        if isinstance(value, MissingProtocol):
            out = dataclasses.replace(value)
        elif value is None or (isinstance(value, str) and value == "none"):
            out = cls(kind="none")
        elif isinstance(value, str) and value.strip().startswith(LITERATURE_PREFIXES):
            out = cls(kind="literature", missing_rate=_literature_text(value))
        elif isinstance(value, Mapping):
            out = cls.from_dict(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out = cls(kind="random", missing_rate=float(value))
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            out = cls(kind="fixed", pattern=tuple(value))
        else:
            raise ValueError(
                "masks must be a Protocol, a dict of its fields, None or 'none', a missing rate (float), "
                "a tuple of available modality names such as ('t',), or a literature row such as "
                f"'literature:0.7'; got {value!r}"
            )
        out.validate(modalities)
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> "MissingProtocol":
        """The protocol a dict of its fields describes; unknown keys raise ``ValueError`` listing
        the valid ones."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{cls.__name__} needs a mapping of its fields, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} settings {unknown}; valid: {sorted(names)}")
        return cls(**data)


#: The name this class had before it moved here; ``mer.Protocol`` keeps working.
Protocol = MissingProtocol


def _literature_text(text: str) -> float:
    """``"literature:0.7"`` or ``"lit0.7"`` → ``0.7`` (checked by :meth:`MissingProtocol.validate`)."""
    body = text.strip()
    body = body[len("literature:"):] if body.startswith("literature:") else body[len("lit"):]
    try:
        return float(body)
    except ValueError:
        raise ValueError(
            f"masks {text!r}: a literature condition is 'literature:LABEL' (or 'litLABEL'), LABEL one "
            f"of 0.0, 0.1, ..., 0.7, e.g. 'literature:0.7'"
        ) from None


def _mixture_item(item: Any) -> Any:
    """A mixture entry in canonical form: a float rate or a tuple of names (others kept for
    :meth:`MissingProtocol.validate` to reject)."""
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        return float(item)
    if isinstance(item, (list, tuple)):
        return tuple(item)
    return item


# ------------------------------------------------------------------------ command-line forms
def parse_mixture(text: str) -> list[float | tuple[str, ...]]:
    """``"0.0;0.3;t,a"`` → ``[0.0, 0.3, ("t", "a")]``: an item that reads as a number is a rate.

    An empty item (``"0.1;;0.2"``, a trailing ``;``, ``"t,,a"``) raises ``ValueError``: it is a typo,
    and dropping it would run a different mixture than the one asked for.
    """
    items: list[float | tuple[str, ...]] = []
    for k, item in enumerate(part.strip() for part in text.split(";")):
        if not item:
            raise ValueError(f"mixture {text!r}: item {k} is empty; separate the conditions with "
                             "single ';', e.g. '0.0;0.3;t,a'")
        try:
            items.append(float(item))
        except ValueError:
            names = [v.strip() for v in item.split(",")]
            if not all(names):
                raise ValueError(f"mixture {text!r}: item {k} ({item!r}) has an empty modality name; "
                                 "separate the names with single ',', e.g. 't,a'") from None
            items.append(tuple(names))
    return items


#: The command-line option each protocol kind reads.
_PROTOCOL_OPTIONS = {"random": ("--missing-rate",), "literature": ("--missing-rate",), "fixed": ("--pattern",),
                     "mixed": ("--mixture",), "none": ()}


def protocol_from_options(
    base: MissingProtocol,
    kind: str | None = None,
    missing_rate: float | None = None,
    pattern: Sequence[str] | None = None,
    mixture: Sequence | None = None,
) -> MissingProtocol:
    """``base`` with the command line's protocol options applied (``--protocol``, ``--missing-rate``,
    ``--pattern``, ``--mixture``); the kind, when not given, follows from which option is set.
    ``--protocol literature`` reads ``--missing-rate`` as the row label (``0.0 … 0.7``). An option the
    protocol does not use (``--pattern`` with a random protocol, a rate with ``none``, two of them
    without ``--protocol``) is refused rather than ignored."""
    given = [flag for flag, value in (("--missing-rate", missing_rate), ("--pattern", pattern),
                                      ("--mixture", mixture)) if value is not None and value != []]
    if kind is None and len(given) > 1:
        raise ValueError(f"{' and '.join(given)} name different protocols; give one of them")
    if kind is not None:
        unused = [flag for flag in given if flag not in _PROTOCOL_OPTIONS.get(kind, ())]
        if unused:
            raise ValueError(f"--protocol {kind} does not use {', '.join(unused)}; leave it out")
    kind = kind or ("mixed" if mixture else "fixed" if pattern
                    else "random" if missing_rate is not None else None)
    if kind is None:
        return base
    if kind == "mixed":
        mixture = mixture or base.mixture
        if not mixture:
            raise ValueError("--protocol mixed needs --mixture, e.g. --mixture '0.0;0.3;t,a'")
        return MissingProtocol("mixed", seed=base.seed, mixture=tuple(mixture))
    if kind == "random":
        rate = missing_rate if missing_rate is not None else base.missing_rate
        return MissingProtocol("random", float(rate), None, base.seed)
    if kind == "literature":
        if missing_rate is None and base.kind != "literature":
            raise ValueError("--protocol literature needs --missing-rate LABEL, the table row: one of "
                             "0.0, 0.1, ..., 0.7 (e.g. --missing-rate 0.7)")
        label = missing_rate if missing_rate is not None else base.missing_rate
        return MissingProtocol("literature", float(label), None, base.seed)
    if kind == "fixed":
        pattern = pattern or base.pattern
        if not pattern:
            raise ValueError("--protocol fixed needs --pattern, e.g. --pattern t,a")
        return MissingProtocol("fixed", 0.0, tuple(pattern), base.seed)
    return MissingProtocol("none", seed=base.seed)


# ------------------------------------------------------------------------------- benchmark
def default_missing_rates(num_modalities: int = 3) -> list[float]:
    """``0.0, 0.1, …`` up to the ceiling ``(M − 1)/M``, plus the ceiling itself.

    With ``M = 3`` the literature's grid ``0.0 … 0.7`` cannot keep one modality per utterance above
    ``2/3``, so the grid is ``0.0 … 0.6`` and ``2/3`` (labelled ``0.667``).
    """
    ceiling = max_missing_rate(num_modalities)
    rates = [round(0.1 * k, 1) for k in range(int(math.floor(ceiling * 10 + 1e-9)) + 1)]
    if ceiling - rates[-1] > 1e-9:
        rates.append(ceiling)
    return rates


def benchmark_conditions(
    modalities: Sequence[str],
    which: str,
    missing_rates: Sequence[float] | None = None,
    patterns: Sequence[Sequence[str]] | None = None,
) -> list[MissingProtocol]:
    """The conditions of a benchmark: ``which="random"`` the rates (default
    :func:`default_missing_rates`), ``"fixed"`` the availability sets (default all ``2^M − 1``),
    ``"both"`` the rates then the sets, ``"literature"`` the literature's rows (``missing_rates``
    holds their labels; default ``0.1 … 0.7``, :data:`mer.data.literature.LITERATURE_LABELS`; three
    modalities only)."""
    if which not in CONDITION_SETS:
        raise ValueError(f"protocol must be one of {list(CONDITION_SETS)}, got {which!r}")
    modalities = list(modalities)
    conditions = []
    if which in ("random", "both"):
        rates = default_missing_rates(len(modalities)) if missing_rates is None else missing_rates
        conditions += [MissingProtocol.parse(float(r), modalities) for r in rates]
    if which in ("fixed", "both"):
        chosen = fixed_patterns(modalities) if patterns is None else patterns
        conditions += [MissingProtocol.parse(tuple(p), modalities) for p in chosen]
    if which == "literature":
        labels = LITERATURE_LABELS if missing_rates is None else missing_rates
        conditions += [MissingProtocol.parse({"kind": "literature", "missing_rate": float(label)}, modalities)
                       for label in labels]
    if not conditions:
        raise ValueError("give at least one missing rate or pattern")
    return conditions


def mixture_of(conditions: Sequence[MissingProtocol]) -> MissingProtocol:
    """The uniform mixture of random / fixed ``conditions`` (the benchmark's shared training).

    Literature conditions are refused: a mixture draws a condition per conversation, and a
    composition drawn over one short conversation would not be the row's composition."""
    refused = [c.condition for c in conditions if c.kind not in ("random", "fixed")]
    if refused:
        raise ValueError(f"a mixture takes random and fixed conditions only, got {refused}; train the "
                         "literature's rows one model per condition (training='per_condition')")
    items = [float(c.missing_rate) if c.kind == "random" else tuple(c.pattern) for c in conditions]
    return MissingProtocol(kind="mixed", mixture=tuple(items))


# ----------------------------------------------------------------------------------- masks
def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of the training masks of ``epoch`` (0-based); distinct from the valid/test draw's seed."""
    return int(seed) * 100_003 + 7_919 * (int(epoch) + 1)


def full_masks(conversations: Sequence) -> list[np.ndarray]:
    """All-available ``(N_i, M)`` masks."""
    return [np.ones((c.num_utterances, len(c.modalities)), dtype=bool) for c in conversations]


def mixed_masks(
    part: ConversationDataset, protocol: MissingProtocol, seed: int, split: str
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
    protocol: MissingProtocol,
    split: str,
    seed: int,
    epoch: int | None = None,
    train_masks: str = "per_epoch",
) -> list[np.ndarray]:
    """Masks ``(N_i, M)`` for the conversations of ``dataset.split(split)``, in split order.

    ``epoch`` matters only for the training split of the random, mixed and literature protocols with
    ``train_masks="per_epoch"``; ``train_masks="complete"`` gives the training split every entry
    whatever the protocol. A run asks its :class:`MaskPlan` instead.
    """
    part = dataset.split(split)
    if protocol.kind == "none" or (split == "train" and train_masks == "complete"):
        return full_masks(part)
    if protocol.kind == "fixed":
        return pattern_masks(part, protocol.pattern)
    redraw = split == "train" and train_masks == "per_epoch" and epoch is not None
    if protocol.kind == "mixed":
        return mixed_masks(part, protocol, epoch_seed(seed, epoch) if redraw else seed, split)[0]
    if protocol.kind == "literature":
        return literature_masks(part, protocol.missing_rate, seed=epoch_seed(seed, epoch) if redraw else seed)
    if redraw:
        return random_missing(part, protocol.missing_rate, seed=epoch_seed(seed, epoch))
    return list(split_masks(dataset, split, protocol.missing_rate, seed=seed))


def _mix_entropy(seed: int, split: str, *more: int) -> list[int]:
    # crc32 rather than hash(): Python's str hash changes between processes; the "mixed" tag keeps
    # these streams apart from random_missing's, which are seeded from (seed, split, rate).
    return [int(seed) & 0xFFFFFFFF, zlib.crc32(split.encode()), zlib.crc32(b"mixed"), *map(int, more)]


class MaskPlan:
    """The masks one run sees: valid and test built once, training masks per epoch.

    Parameters
    ----------
    dataset : ConversationDataset
    protocol : MissingProtocol
    seed : int
        The mask seed (the run's seed unless the protocol sets its own).
    train_masks : {"per_epoch", "fixed", "complete"}
        Random, mixed and literature protocols: redraw the training masks every epoch (seed
        :func:`epoch_seed`) or draw them once. ``"complete"``: the training split is complete under
        every protocol (the protocol's condition applies to validation and test only).

    Every mask is a boolean ``(N_i, M)`` array, one per conversation of the split, in split order.

    >>> from mer.data import synthetic_conversations
    >>> plan = MaskPlan(synthetic_conversations(seed=0, num_conversations=10), MissingProtocol.parse(0.3), 0)
    >>> len(plan.valid) == len(plan.dataset.split("valid"))
    True
    """

    def __init__(self, dataset: ConversationDataset, protocol: MissingProtocol, seed: int,
                 train_masks: str = "per_epoch") -> None:
        if train_masks not in TRAIN_MASK_MODES:
            raise ValueError(f"unknown train_masks {train_masks!r}; valid: {list(TRAIN_MASK_MODES)}")
        self.dataset = dataset
        self.protocol = protocol
        self.seed = int(seed)
        self.train_masks = train_masks
        self._fixed: dict[str, list[np.ndarray]] = {}

    def split(self, name: str) -> list[np.ndarray]:
        """The masks of split ``name`` that do not depend on the epoch (valid, test; train when
        drawn once), built on first use and kept."""
        if name not in self._fixed:
            self._fixed[name] = protocol_masks(self.dataset, self.protocol, name, self.seed)
        return self._fixed[name]

    @property
    def valid(self) -> list[np.ndarray]:
        return self.split("valid")

    @property
    def test(self) -> list[np.ndarray]:
        return self.split("test")

    def train(self, epoch: int) -> list[np.ndarray]:
        """The training masks of ``epoch`` (0-based)."""
        if self.train_masks == "complete":
            return protocol_masks(self.dataset, self.protocol, "train", self.seed, epoch, "complete")
        if self.train_masks == "fixed" or self.protocol.kind in ("none", "fixed"):
            return self.split("train")
        return protocol_masks(self.dataset, self.protocol, "train", self.seed, epoch, self.train_masks)

    def __repr__(self) -> str:
        return (f"MaskPlan({self.dataset.name!r}, {self.protocol.condition!r}, seed={self.seed}, "
                f"train_masks={self.train_masks!r})")
