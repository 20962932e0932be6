"""Data sources by name, so configs and the CLI pick a dataset with a string.

Built in: ``"synthetic"`` (:func:`~mer.data.synthetic.synthetic_conversations`, the default when no data
path is given), ``"mmsa"`` (:func:`~mer.data.mmsa.load_mmsa`), ``"gcnet"``
(:func:`~mer.data.gcnet.load_gcnet`) and ``"gaussian"``
(:func:`~mer.data.gaussian.gaussian_conversations`, the yardstick with a known optimum).
"""

from __future__ import annotations

from typing import Callable

from spectraldiff import Registry

from mer.data.conversation import ConversationDataset
from mer.data.gaussian import gaussian_conversations
from mer.data.gcnet import load_gcnet
from mer.data.mmsa import load_mmsa
from mer.data.synthetic import synthetic_conversations

__all__ = ["DATASETS", "register_dataset", "load_dataset", "available_datasets"]

DatasetLoader = Callable[..., ConversationDataset]
#: Dataset name → loader returning a :class:`~mer.data.conversation.ConversationDataset`.
DATASETS: Registry[DatasetLoader] = Registry("dataset")


def register_dataset(name: str, loader: DatasetLoader | None = None):
    """Register ``loader`` under ``name``; usable as a decorator (``@register_dataset("mine")``).

    A duplicate name is an error.
    """
    return DATASETS.register(name, loader)


def available_datasets() -> list[str]:
    """Registered dataset names, sorted."""
    return DATASETS.names()


def load_dataset(name: str, **kwargs) -> ConversationDataset:
    """Call the loader registered as ``name`` with ``kwargs``.

    >>> load_dataset("synthetic", seed=0, num_conversations=5).modalities
    ['t', 'a', 'v']
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; registered: {available_datasets()}")
    return DATASETS.get(name)(**kwargs)


register_dataset("synthetic", synthetic_conversations)
register_dataset("mmsa", load_mmsa)
register_dataset("gcnet", load_gcnet)
register_dataset("gaussian", gaussian_conversations)
