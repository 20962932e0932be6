"""The generation models by name: ``get_model("spectral", config)``.

This module sits above the models: it imports :mod:`.spectral`, :mod:`.spectral_vectors` and
:mod:`.adjacency` and registers them, so the base class in :mod:`.generator` never imports its subclasses. A new model registers with
:func:`register_model` (a class or factory ``config → GraphGenerator``).
"""

from __future__ import annotations

from typing import Callable

from ..registry import Registry
from .adjacency import AdjacencyGenerator
from .config import GenerationConfig
from .generator import GraphGenerator
from .spectral import SpectralGenerator
from .spectral_vectors import SpectralVectorGenerator

__all__ = ["MODELS", "register_model", "get_model", "available_models"]

MODELS: Registry[Callable[[GenerationConfig], GraphGenerator]] = Registry("generation model")


def register_model(name: str, factory: Callable[[GenerationConfig], GraphGenerator]) -> None:
    """Register a generator class under ``name``; a duplicate name is an error."""
    MODELS.register(name, factory)


def available_models() -> list[str]:
    return MODELS.names()


def get_model(name: str, config: GenerationConfig) -> GraphGenerator:
    """Build the registered generator ``name`` from ``config``; unknown names list the valid ones."""
    return MODELS.get(name)(config)


register_model("adjacency", AdjacencyGenerator)
register_model("spectral", SpectralGenerator)
register_model("spectral_vectors", SpectralVectorGenerator)
