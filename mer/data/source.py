"""Where a run's data comes from: :class:`DataConfig` names a registered dataset and its options, and
:func:`load_data` loads it (the CLI and configs use this; the Python API takes a dataset object).

A run records the data it was given with :func:`describe_data`: the :class:`DataConfig` that
:func:`load_data` built the dataset from, or, for any other dataset (``from_arrays``, a subset, a
hand-built one), ``source: "in_memory"`` with the dataset's name and content fingerprint. An in-memory
description says what the data was; it cannot rebuild it, so :func:`load_data` refuses it.
"""

from __future__ import annotations

import copy
import inspect
import weakref
from dataclasses import dataclass, field

from mer.data.conversation import ConversationDataset
from mer.data.registry import DATASETS, available_datasets, load_dataset

__all__ = ["DataConfig", "IN_MEMORY", "describe_data", "load_data"]

#: The ``DataConfig.source`` of a dataset given in memory: recorded, never rebuilt.
IN_MEMORY = "in_memory"

# Dataset → the DataConfig load_data built it from. Weak: the record lives as long as the dataset.
_loaded_from: "weakref.WeakKeyDictionary[ConversationDataset, DataConfig]" = weakref.WeakKeyDictionary()


@dataclass
class DataConfig:
    """Where the data comes from (used by the CLI; the Python API takes a dataset object).

    Parameters
    ----------
    source : str
        A name of :func:`mer.data.available_datasets` (``"synthetic"`` by default), or
        :data:`IN_MEMORY` in a run's record of a dataset given in memory (options ``name`` and
        ``fingerprint``).
    options : dict
        Keyword arguments of that loader, e.g. ``{"seed": 0, "num_conversations": 300}`` for the
        synthetic set or ``{"path": "aligned_50.pkl"}`` for ``"mmsa"``.
    task : str, optional
        ``"classification"`` turns a regression dataset into its 7-class view.
    """

    source: str = "synthetic"
    options: dict = field(default_factory=dict)
    task: str | None = None


def load_data(data: DataConfig, *, trust_pickle: bool = False) -> ConversationDataset:
    """The dataset a :class:`DataConfig` names.

    ``trust_pickle=True`` (the CLI's ``--trust-pickle``) passes ``trust_pickle=True`` to a loader that
    reads pickles (``mmsa``, ``gcnet``): the file may then run code, so only for files you trust. It is
    not stored in the config, so a later command on the run asks for it again.

    Raises
    ------
    ValueError
        For an unknown source, an :data:`IN_MEMORY` record, options the loader does not take (listing
        those it does), or ``trust_pickle`` for a source that reads no pickle.
    """
    if data.source == IN_MEMORY:
        raise ValueError(f"the data was given in memory ({_in_memory_label(data)}) and cannot be "
                         "rebuilt from its description; load it yourself, or name a source and file")
    if data.source not in available_datasets():
        raise ValueError(f"unknown data source {data.source!r}; available: {available_datasets()}")
    options = dict(data.options)
    accepted = _options_of(DATASETS.get(data.source))
    if trust_pickle:
        if "trust_pickle" not in _parameters_of(DATASETS.get(data.source)):
            raise ValueError(f"--trust-pickle applies to pickle data (--data FILE); the {data.source!r} "
                             "source reads no pickle")
        options["trust_pickle"] = True
    if accepted is not None:
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ValueError(f"unknown data.options {unknown} for source {data.source!r}; valid: "
                             f"{sorted(accepted)}")
    dataset = load_dataset(data.source, **options)
    if data.task == "classification" and dataset.task == "regression":
        dataset = dataset.as_classification()
    elif data.task not in (None, dataset.task):
        raise ValueError(f"cannot turn a {dataset.task} dataset into a {data.task} one")
    _loaded_from[dataset] = DataConfig(data.source, copy.deepcopy(data.options), data.task)
    return dataset


def describe_data(dataset: ConversationDataset, fingerprint: str) -> DataConfig:
    """The :class:`DataConfig` a run records for ``dataset``.

    The one :func:`load_data` built it from (so a later command rebuilds the same data), or, for a
    dataset built any other way, ``DataConfig("in_memory", {"name": dataset.name, "fingerprint":
    fingerprint})``; ``fingerprint`` is :func:`mer.training.dataset_fingerprint` ``(dataset)`` (the
    data layer does not compute it).
    """
    known = _loaded_from.get(dataset)
    if known is not None:
        return DataConfig(known.source, copy.deepcopy(known.options), known.task)
    return DataConfig(IN_MEMORY, {"name": dataset.name, "fingerprint": fingerprint})


def _in_memory_label(data: DataConfig) -> str:
    """``'name', fingerprint sha256:…`` of an :data:`IN_MEMORY` record."""
    return f"{data.options.get('name')!r}, fingerprint {data.options.get('fingerprint')}"


def _parameters_of(loader) -> list[str]:
    """The keyword arguments ``loader`` names."""
    try:
        parameters = inspect.signature(loader).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        return []
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _options_of(loader) -> list[str] | None:
    """The keyword arguments ``loader`` takes; ``None`` when it takes any (``**kwargs``: it checks
    its own)."""
    try:
        parameters = inspect.signature(loader).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return _parameters_of(loader)
