"""The eigendecomposition backends behind ``batched_eigh(..., backend=name)``.

A backend is a solver ``(b, n, n) → (eigenvalues (b, n) ascending, eigenvectors (b, n, n))`` on a
symmetric batch whose padding has already been shifted; padding, validation, chunking and gradients
stay in :func:`spectraldiff.eigh.batched_eigh`. Built in: ``"torch"`` (``torch.linalg.eigh``),
``"jacobi"`` (:mod:`spectraldiff.eigh.jacobi`) and ``"cupy"`` (:mod:`spectraldiff.eigh.cupy`, CUDA
only; CuPy itself is imported on the first call). ``"auto"`` is not a backend but the choice rule of
:mod:`spectraldiff.eigh.dispatch`, so it can never be registered.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..registry import Registry, UnknownNameError
from .cupy import cupy_available, cupy_eigh
from .jacobi import jacobi_eigh

__all__ = [
    "EIGH_BACKENDS",
    "EighSolver",
    "register_eigh_backend",
    "available_eigh_backends",
    "get_eigh_backend",
    "backend_usable",
]

# A solver maps a (b, n, n) symmetric batch to ascending eigenvalues (b, n) and eigenvectors (b, n, n).
EighSolver = Callable[[Tensor], "tuple[Tensor, Tensor]"]

EIGH_BACKENDS: Registry[EighSolver] = Registry("eigh backend", reserved=("auto",))


def register_eigh_backend(name: str, solver: EighSolver) -> None:
    """Register ``solver`` under ``name`` for ``batched_eigh(..., backend=name)``.

    The solver receives an unpadded-or-shifted symmetric batch ``(b, n, n)`` (float32/float64, any
    device) and returns ``(eigenvalues (b, n) ascending, eigenvectors (b, n, n))``. Padding, validation,
    chunking and gradients stay in :func:`batched_eigh`.
    """
    EIGH_BACKENDS.register(name, solver)


def available_eigh_backends() -> list[str]:
    """Names accepted by ``batched_eigh(..., backend=...)``, ``"auto"`` included."""
    return ["auto", *EIGH_BACKENDS.names()]


def get_eigh_backend(name: str) -> EighSolver:
    """The solver registered as ``name`` (not ``"auto"``, which :mod:`.dispatch` resolves first)."""
    if name not in EIGH_BACKENDS:
        raise UnknownNameError(f"unknown eigh backend {name!r}; choose one of {available_eigh_backends()}")
    return EIGH_BACKENDS.get(name)


def backend_usable(name: str, device: torch.device) -> bool:
    """Whether backend ``name`` is registered and can run on ``device`` in this environment."""
    if name == "auto" or name not in available_eigh_backends():
        return False
    if name == "cupy":
        return device.type == "cuda" and cupy_available()
    return True


register_eigh_backend("torch", torch.linalg.eigh)
register_eigh_backend("jacobi", jacobi_eigh)
register_eigh_backend("cupy", cupy_eigh)
