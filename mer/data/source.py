"""Where a run's data comes from: :class:`DataConfig` names a registered dataset and its options, and
:func:`load_data` loads it (the CLI and configs use this; the Python API takes a dataset object)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mer.data.conversation import ConversationDataset
from mer.data.registry import available_datasets, load_dataset

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


def load_data(data: DataConfig) -> ConversationDataset:
    """The dataset a :class:`DataConfig` names."""
    if data.source not in available_datasets():
        raise ValueError(f"unknown data source {data.source!r}; available: {available_datasets()}")
    dataset = load_dataset(data.source, **data.options)
    if data.task == "classification" and dataset.task == "regression":
        dataset = dataset.as_classification()
    elif data.task not in (None, dataset.task):
        raise ValueError(f"cannot turn a {dataset.task} dataset into a {data.task} one")
    return dataset
