"""Graph generation with spectral diffusion, and the adjacency-space baseline it is measured against.

* :class:`SpectralGenerator` — node count from the training distribution, eigenvectors ``U`` of a
  training graph of that size, eigenvalues sampled by score-based diffusion; ``U diag(λ) Uᵀ``
  thresholded at 0.5.
* :class:`AdjacencyGenerator` — score-based diffusion on the adjacency entries themselves.
* :func:`run_generation` — train, sample as many graphs as the test set, score with the four MMDs
  (:mod:`.metrics`) and write ``metrics.json``, ``samples.png``, ``samples.pkl``.
* ``python -m spectraldiff generate ...`` — the same from the command line.

Models are registered by name in :mod:`.models` (``get_model("spectral", config)``); configs are
:class:`GenerationConfig`. Evaluation lives here too: :func:`evaluate_samples` and :func:`copy_floor`
(:mod:`.evaluation`: the score card every generator goes through) over :mod:`.metrics` (MMDs),
:mod:`.orbits` (graphlet orbit counts), :mod:`.novelty`, :mod:`.validity` (planar, SBM), and the graph
sets in :mod:`.datasets`.
"""

import importlib

# Exports resolve on first use (PEP 562), so ``python -m spectraldiff`` can list the ``generate``
# command without importing networkx, scipy and matplotlib, which only this subpackage needs.
_EXPORTS = {
    "GenerationConfig": ".config",
    "GraphGenerator": ".generator",
    "NodeCountSampler": ".generator",
    "register_model": ".models",
    "get_model": ".models",
    "available_models": ".models",
    "load_generator": ".models",
    "SpectralGenerator": ".spectral",
    "nearest_spectrum_rmse": ".spectral",
    "AdjacencyGenerator": ".adjacency",
    "AdjacencyScoreNet": ".adjacency",
    "graphs_to_dense": ".dense",
    "dense_to_graphs": ".dense",
    "run_generation": ".pipeline",
    "train_model": ".pipeline",
    "evaluate_model": ".pipeline",
    "evaluate_samples": ".evaluation",
    "copy_floor": ".evaluation",
    "is_planar_graph": ".validity",
    "is_sbm_graph": ".validity",
    "fraction_valid": ".validity",
}

__all__ = [
    "GenerationConfig",
    "GraphGenerator",
    "NodeCountSampler",
    "SpectralGenerator",
    "nearest_spectrum_rmse",
    "AdjacencyGenerator",
    "AdjacencyScoreNet",
    "graphs_to_dense",
    "dense_to_graphs",
    "register_model",
    "get_model",
    "available_models",
    "load_generator",
    "run_generation",
    "train_model",
    "evaluate_model",
    "evaluate_samples",
    "copy_floor",
    "is_planar_graph",
    "is_sbm_graph",
    "fraction_valid",
]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
