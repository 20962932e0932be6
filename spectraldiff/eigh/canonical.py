"""A unique eigenbasis: rotate each repeated eigenvalue's eigenspace onto a fixed tie-breaker.

An eigensolver's ``U`` is unique only up to sign where eigenvalues are distinct, and arbitrary up to
any rotation inside an eigenspace of dimension ``k > 1``. Anything that reads ``U`` column by column
(``diag(Uᵀ S U)``, a spectrum of ``S`` "in the basis of ``A``") then depends on the solver, the
backend and the input order. A graph with one speaker makes this the common case: its structure
graph is all ones, eigenvalue 0 repeats ``n − 1`` times.

:func:`canonical_eigenvectors` fixes the basis inside every repeated eigenspace by a second symmetric
matrix ``T`` (the tie-breaker): with ``V`` the ``(n, k)`` columns of one eigenspace, the new columns
are ``V W``, where ``W`` holds the eigenvectors of ``Vᵀ T V`` — the basis of that space that ``T``
diagonalises, the same for any rotation ``V Q`` of the input (``(VQ)ᵀ T (VQ) = Qᵀ (Vᵀ T V) Q``).
Each column's sign is then fixed (its entries weighted by ``1 … n`` sum to a positive number, else its
largest entry is positive). ``T`` must separate the directions of each eigenspace (distinct
eigenvalues of ``Vᵀ T V``); a path graph over the nodes in order, with a small increasing diagonal,
does for the graphs this package builds (see ``mer.recoverers.gsdnet``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .solve import DEGENERACY_RTOL

__all__ = ["canonical_eigenvectors", "degenerate_groups", "path_tie_breaker"]


def path_tie_breaker(sizes: Tensor, n_max: int, *, dtype=torch.float64, device=None,
                     position_weight: float = 1e-2) -> Tensor:
    """``(B, n_max, n_max)`` tie-breakers: the path graph ``i — i+1`` over each graph's ``n_b`` nodes
    plus ``position_weight · diag(0, 1/n, 2/n, …)``, which breaks the path's mirror symmetry."""
    sizes = sizes.to(device=device)
    i = torch.arange(n_max, device=device)
    real = i[None, :] < sizes[:, None]  # (B, n_max)
    inside = real[:, :, None] & real[:, None, :]
    T = ((i[:, None] - i[None, :]).abs() == 1).to(dtype) * inside.to(dtype)
    positions = position_weight * i.to(dtype)[None, :] / sizes[:, None].clamp_min(1).to(dtype)
    return T + torch.diag_embed(positions * real.to(dtype))


def canonical_eigenvectors(eigenvalues: Tensor, eigenvectors: Tensor, sizes: Tensor, tie_breaker: Tensor,
                           *, rtol: float | None = None) -> Tensor:
    """The eigenvectors with every repeated eigenspace rotated onto ``tie_breaker`` and signs fixed.

    Parameters
    ----------
    eigenvalues : Tensor
        ``(B, N)`` ascending within each graph's ``sizes[b]`` real entries (as
        :func:`~spectraldiff.eigh.batched_eigh` returns them).
    eigenvectors : Tensor
        ``(B, N, N)``, column ``k`` belonging to ``eigenvalues[:, k]``; padded rows and columns zero.
    sizes : Tensor
        ``(B,)`` number of real nodes per graph.
    tie_breaker : Tensor
        ``(B, N, N)`` symmetric, e.g. :func:`path_tie_breaker`.
    rtol : float, optional
        Eigenvalues closer than ``rtol · max(1, max|λ|)`` form one eigenspace (default: 1000 ×
        :data:`~spectraldiff.eigh.DEGENERACY_RTOL` of the dtype, as solvers leave repeated
        eigenvalues that far apart).

    Returns
    -------
    Tensor
        ``(B, N, N)``: the same eigenspaces, a basis that depends only on the matrix and ``tie_breaker``
        (not on which rotation the solver returned). Eigenvalues are unchanged.
    """
    rtol = 1e3 * DEGENERACY_RTOL.get(eigenvalues.dtype, 1e-4) if rtol is None else float(rtol)
    U = eigenvectors.clone()
    T = tie_breaker.to(U.dtype)
    scale = eigenvalues.abs().amax(dim=-1).clamp_min(1.0)  # (B,)
    for b, n in enumerate(sizes.tolist()):
        n = int(n)
        for start, stop in degenerate_groups(eigenvalues[b], n, rtol * float(scale[b])):
            V = U[b, :n, start:stop]
            _, W = torch.linalg.eigh(V.mT @ T[b, :n, :n] @ V)
            U[b, :n, start:stop] = V @ W
    return _fix_signs(U)


def degenerate_groups(eigenvalues: Tensor, size: int, tol: float = 1e-6) -> list[tuple[int, int]]:
    """``[(start, stop), ...]``: runs of at least two equal eigenvalues (consecutive gaps ≤ ``tol``)
    among the first ``size`` of one ascending spectrum ``(N,)``."""
    groups, start = [], 0
    values = eigenvalues[:size].tolist()
    for j in range(1, size + 1):
        if j == size or values[j] - values[j - 1] > tol:
            if j - start > 1:
                groups.append((start, j))
            start = j
    return groups


def _fix_signs(U: Tensor) -> Tensor:
    """Flip each column of ``U (B, N, N)`` so that ``Σ_i (i + 1) U_ik > 0``, or, where that sum is ~0,
    its largest-magnitude entry is positive (padded rows and columns are zero and stay so)."""
    N = U.shape[-2]
    weights = torch.arange(1, N + 1, dtype=U.dtype, device=U.device)
    moment = torch.einsum("i,bik->bk", weights, U)
    largest = U.gather(-2, U.abs().argmax(dim=-2, keepdim=True))[:, 0]
    sign = torch.where(moment.abs() > 1e-6 * N, moment.sign(), largest.sign())
    return U * torch.where(sign == 0, torch.ones_like(sign), sign)[:, None, :]
