"""The generation models by name: ``get_model("spectral", config)``, and saved ones loaded back by
the name they hold (:func:`load_generator`).

This module sits above the models: it imports :mod:`.spectral`, :mod:`.spectral_vectors` and
:mod:`.adjacency` and registers them, so the base class in :mod:`.generator` never imports its subclasses. A new model registers with
:func:`register_model` (a class or factory ``config → GraphGenerator``).
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import networkx as nx

from ..registry import Registry
from .adjacency import AdjacencyGenerator
from .checkpoint import graphs_fingerprint, read_checkpoint
from .config import GenerationConfig
from .generator import GraphGenerator
from .spectral import SpectralGenerator
from .spectral_vectors import SpectralVectorGenerator

__all__ = ["MODELS", "register_model", "get_model", "available_models", "load_generator"]

MODELS: Registry[Callable[[GenerationConfig], GraphGenerator]] = Registry("generation model")


def register_model(name: str, factory: Callable[[GenerationConfig], GraphGenerator]) -> None:
    """Register a generator class under ``name``; a duplicate name is an error."""
    MODELS.register(name, factory)


def available_models() -> list[str]:
    return MODELS.names()


def get_model(name: str, config: GenerationConfig) -> GraphGenerator:
    """Build the registered generator ``name`` from ``config``; unknown names list the valid ones."""
    return MODELS.get(name)(config)


def load_generator(path: str | os.PathLike, graphs: Sequence[nx.Graph],
                   config: GenerationConfig | None = None) -> GraphGenerator:
    """The generator saved at ``path``, ready to sample or to continue (``fit(graphs, resume=True)``).

    Parameters
    ----------
    path : path
        A ``model.pt`` from :meth:`GraphGenerator.save` (:mod:`.checkpoint`) (``generate`` writes one per run).
    graphs : list of networkx.Graph
        The graphs it was trained on, in the same order (checked by :func:`.checkpoint.graphs_fingerprint`).
    config : GenerationConfig, optional
        Settings for what comes next (``epochs`` to continue for, sampling steps, ...); the network's
        own settings (model, widths, layers, ``k``) must be the saved ones. Default: the saved config.

    Raises
    ------
    ValueError
        The file cannot be read safely, the graphs are not the training graphs, or ``config`` builds a
        different network than the saved one.
    """
    payload = read_checkpoint(path)
    saved = GenerationConfig.from_dict(payload["config"])
    config = config if config is not None else saved
    if config.model != payload["model"]:
        raise ValueError(f"{path} holds a {payload['model']!r} model, the settings ask for {config.model!r}")
    if graphs_fingerprint(graphs) != payload["graphs"]:
        raise ValueError(f"{path} was trained on other graphs than the ones given ({len(graphs)} graphs); pass "
                         f"its training graphs, in the same order (its config says dataset "
                         f"{saved.dataset!r}, seed {saved.seed})")
    model = get_model(config.model, config)
    model.restore(graphs, payload, source=str(path))
    return model


register_model("adjacency", AdjacencyGenerator)
register_model("spectral", SpectralGenerator)
register_model("spectral_vectors", SpectralVectorGenerator)
