"""Batched symmetric eigendecomposition: one solver front end, interchangeable backends.

* :mod:`.solve` — :func:`batched_eigh` (padding, ordering, validation, chunking, safe backward) and
  :func:`node_mask`;
* :mod:`.backends` — the backend registry (``"torch"``, ``"jacobi"``, ``"cupy"``);
* :mod:`.canonical` — :func:`canonical_eigenvectors`: a unique basis inside repeated eigenspaces;
* :mod:`.dispatch` — how ``backend="auto"`` chooses, from a measured crossover table or a default;
* :mod:`.jacobi`, :mod:`.cupy` — the non-torch solvers;
* :mod:`.bench` — ``python -m spectraldiff bench-eigh`` (imported only when used).

Imports point one way: ``solve → dispatch → backends → jacobi, cupy``.
"""

from .backends import EIGH_BACKENDS, available_eigh_backends, backend_usable, register_eigh_backend
from .dispatch import CrossoverTable, choose_backend
from .canonical import canonical_eigenvectors, degenerate_groups, path_tie_breaker
from .solve import DEGENERACY_RTOL, batched_eigh, node_mask

__all__ = [
    "batched_eigh",
    "node_mask",
    "canonical_eigenvectors",
    "degenerate_groups",
    "path_tie_breaker",
    "available_eigh_backends",
    "register_eigh_backend",
    "backend_usable",
    "choose_backend",
    "CrossoverTable",
    "EIGH_BACKENDS",
    "DEGENERACY_RTOL",
]
