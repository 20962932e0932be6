"""The truncated spectrum a generator diffuses: the ``k`` smallest eigenpairs of the normalised
Laplacian, and the random sign and basis changes that leave them describing the same graph.

``L = I − D^{-1/2} A D^{-1/2}`` (an isolated node keeps ``L_ii = 1``) has eigenvalues in ``[0, 2]``;
its smallest eigenvectors carry the coarse structure (components, communities, the Fiedler cut),
which is why SPECTRE (Martinkus et al. 2022) and GGSD (Minello et al. 2025) generate those first.

An eigenvector is defined only up to sign, and inside a repeated eigenvalue only up to a rotation of
its eigenspace. :func:`random_sign_flip` and :func:`random_basis_rotation` draw one of these
equivalent bases, so a model trained on them learns a distribution that does not prefer one.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..eigh import batched_eigh, degenerate_groups, node_mask  # degenerate_groups: re-exported here

__all__ = ["normalized_laplacian", "laplacian_eigenpairs", "degenerate_groups", "random_sign_flip",
           "random_basis_rotation", "nearest_orthonormal"]


def normalized_laplacian(A: Tensor, sizes: Tensor) -> Tensor:
    """``I − D^{-1/2} A D^{-1/2}`` on each graph's real nodes; ``A`` ``(B, N, N)`` zero-padded, padding
    stays zero. Returns ``(B, N, N)``."""
    degree = A.sum(dim=-1)
    inv_sqrt = torch.where(degree > 0, degree.clamp_min(1e-12).rsqrt(), torch.zeros_like(degree))
    eye = torch.diag_embed(node_mask(sizes, A.shape[-1]).to(A.dtype))
    return eye - inv_sqrt[:, :, None] * A * inv_sqrt[:, None, :]


def laplacian_eigenpairs(A: Tensor, sizes: Tensor) -> tuple[Tensor, Tensor]:
    """All eigenpairs of the normalised Laplacian, ascending on real slots.

    ``A`` ``(B, N, N)`` 0/1 zero-padded, ``sizes`` ``(B,)`` → eigenvalues ``(B, N)`` and unit
    eigenvectors ``(B, N, N)`` (column ``j`` belongs to eigenvalue ``j``); padded rows, columns and
    slots are zero.
    """
    return batched_eigh(normalized_laplacian(A.double(), sizes), sizes)


def random_sign_flip(U: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``U`` ``(B, N, k)`` with each column multiplied by an independent random sign."""
    signs = torch.randint(0, 2, (U.shape[0], 1, U.shape[2]), generator=generator).to(U.dtype) * 2 - 1
    return U * signs


def random_basis_rotation(U: Tensor, groups: list[list[tuple[int, int]]],
                          generator: torch.Generator | None = None) -> Tensor:
    """Rotate each repeated eigenvalue's eigenvectors by a Haar-random orthogonal matrix.

    ``U`` ``(B, N, N)`` full eigenvector matrices, ``groups[b]`` the :func:`degenerate_groups` of graph
    ``b``. Columns outside every group are returned unchanged. The rotation acts on the whole
    eigenspace before truncation, so a group cut by the ``k``-th slot still mixes correctly.
    """
    if not any(groups):
        return U
    U = U.clone()
    for b, spans in enumerate(groups):
        for start, stop in spans:
            m = stop - start
            q, r = torch.linalg.qr(torch.randn(m, m, generator=generator, dtype=U.dtype))
            q = q * torch.sign(torch.diagonal(r))[None, :]  # Haar measure (Mezzadri 2007)
            U[b, :, start:stop] = U[b, :, start:stop] @ q
    return U


def nearest_orthonormal(U: Tensor, slots: Tensor) -> Tensor:
    """The matrix with orthonormal columns nearest to ``U`` in Frobenius norm (its polar factor
    ``W Vᵀ`` from ``U = W S Vᵀ``), per graph over its real slots.

    Generated eigenvectors are only nearly orthonormal, true ones exactly; projecting them back
    before decoding is SPECTRE's constraint (its eigenvectors live on the Stiefel manifold) applied
    after sampling instead of during it.

    Parameters
    ----------
    U : Tensor
        ``(B, N, k)``, zero on padded nodes and on padded slots.
    slots : Tensor
        ``(B, k)`` bool, the real slots (``min(n, k)`` of them).

    Returns
    -------
    Tensor
        ``(B, N, k)`` in ``U``'s dtype: orthonormal real columns, zero on padded nodes (they lie in
        ``U``'s column space) and on padded slots (their arbitrary singular vectors are masked out).
    """
    if U.dim() != 3 or slots.shape != (U.shape[0], U.shape[2]):
        raise ValueError(f"U must be (B, N, k) and slots (B, k), got {tuple(U.shape)} and {tuple(slots.shape)}")
    W, _, Vh = torch.linalg.svd(U.double(), full_matrices=False)
    return ((W @ Vh) * slots[:, None, :].double()).to(U.dtype)
