"""Where a run's data comes from: :class:`DataConfig` names a registered dataset and its options, and
:func:`load_data` loads it (the CLI and configs use this; the Python API takes a dataset object)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from mer.data.conversation import ConversationDataset
from mer.data.registry import DATASETS, available_datasets, load_dataset

__all__ = ["DataConfig", "load_data"]


@dataclass
class DataConfig:
    """Where the data comes from (used by the CLI; the Python API takes a dataset object).

    Parameters
    ----------
    source : str
        A name of :func:`mer.data.available_datasets` (``"synthetic"`` by default).
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
        For an unknown source, options the loader does not take (listing those it does), or
        ``trust_pickle`` for a source that reads no pickle.
    """
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
    return dataset


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
