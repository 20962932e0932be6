"""A batch of graphs held in spectral form: ``A = U diag(λ) Uᵀ`` with a node mask."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .eigh import batched_eigh, node_mask
from .operators import graph_operator
from .spectrum import sort_spectrum

__all__ = ["SpectralGraph"]


@dataclass(frozen=True)
class SpectralGraph:
    """Eigendecomposition of a zero-padded batch of symmetric graph matrices.

    Attributes
    ----------
    eigenvalues : Tensor
        ``(B, N)``; ascending on each graph's real slots, zero on padded slots.
    eigenvectors : Tensor
        ``(B, N, N)``; columns are eigenvectors, padded rows and columns are zero.
    mask : Tensor
        ``(B, N)`` bool, True on real nodes (and on their eigenvalue slots).
    operator : str
        Which matrix was decomposed (see :data:`spectraldiff.operators.GRAPH_OPERATORS`).

    Examples
    --------
    >>> A = torch.tensor([[[0., 1., 0.], [1., 0., 0.], [0., 0., 0.]]])
    >>> g = SpectralGraph.from_dense(A, num_nodes=[2])
    >>> g.eigenvalues
    tensor([[-1.,  1.,  0.]])
    >>> torch.allclose(g.reconstruct(), A, atol=1e-6)
    True
    """

    eigenvalues: Tensor
    eigenvectors: Tensor
    mask: Tensor
    operator: str = "adjacency"

    @classmethod
    def from_dense(
        cls,
        A: Tensor,
        num_nodes: Tensor | list[int] | None = None,
        *,
        operator: str = "adjacency",
        backend: str = "auto",
    ) -> "SpectralGraph":
        """Decompose ``operator(A)`` for a padded adjacency batch ``A (B, N, N)`` with sizes ``(B,)``."""
        if A.dim() != 3:
            raise ValueError(f"expected a batch of adjacency matrices (B, N, N), got shape {tuple(A.shape)}")
        if num_nodes is None:
            num_nodes = torch.full((A.shape[0],), A.shape[-1], dtype=torch.long)
        sizes = torch.as_tensor(num_nodes, device=A.device).long()
        if sizes.shape != (A.shape[0],):
            raise ValueError(f"num_nodes must have shape ({A.shape[0]},), got {tuple(sizes.shape)}")
        mask = node_mask(sizes, A.shape[-1])
        eigenvalues, eigenvectors = batched_eigh(graph_operator(A, mask, operator), sizes, backend=backend)
        return cls(eigenvalues, eigenvectors, mask, operator)

    @classmethod
    def from_dgl(cls, graphs, *, weight: str | None = None, operator: str = "adjacency",
                 backend: str = "auto", max_nodes: int | None = None) -> "SpectralGraph":
        """Decompose DGL graphs (a list, or one possibly batched graph); edge weights from ``edata[weight]``.

        Directed edges are symmetrised as ``(A + Aᵀ) / 2``. Requires DGL.
        """
        from .dgl_adapter import dense_from_dgl

        A, sizes = dense_from_dgl(graphs, weight=weight, max_nodes=max_nodes)
        return cls.from_dense(A, sizes, operator=operator, backend=backend)

    @classmethod
    def from_networkx(cls, graphs, *, weight: str | None = None, operator: str = "adjacency",
                      backend: str = "auto", max_nodes: int | None = None) -> "SpectralGraph":
        """Decompose networkx graphs (a list, or one graph), padded to ``max_nodes`` (default: the
        largest); see :func:`spectraldiff.adapters.from_networkx`."""
        from .adapters import from_networkx

        A, sizes = from_networkx(graphs, weight=weight, max_nodes=max_nodes)
        return cls.from_dense(A, sizes, operator=operator, backend=backend)

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, batch: Tensor | None = None, num_nodes: int | None = None, *,
                        edge_weight: Tensor | None = None, operator: str = "adjacency",
                        backend: str = "auto", max_nodes: int | None = None) -> "SpectralGraph":
        """Decompose graphs given as ``edge_index (2, E)`` and ``batch (V,)`` (the PyTorch Geometric
        layout), padded to ``max_nodes`` (default: the largest); see
        :func:`spectraldiff.adapters.from_edge_index`."""
        from .adapters import from_edge_index

        A, sizes = from_edge_index(edge_index, batch, num_nodes, edge_weight=edge_weight, max_nodes=max_nodes)
        return cls.from_dense(A, sizes, operator=operator, backend=backend)

    @property
    def num_nodes(self) -> Tensor:
        """``(B,)`` true sizes."""
        return self.mask.sum(dim=-1)

    def reconstruct(self, eigenvalues: Tensor | None = None) -> Tensor:
        """``U diag(λ) Uᵀ`` ``(B, N, N)``, with ``λ`` the stored eigenvalues or the ones given."""
        lam = self.eigenvalues if eigenvalues is None else eigenvalues
        return (self.eigenvectors * lam[:, None, :]) @ self.eigenvectors.mT

    def with_eigenvalues(self, eigenvalues: Tensor, *, sort: bool = False) -> "SpectralGraph":
        """Same eigenvectors and mask, new eigenvalues ``(B, N)`` (padded slots are zeroed).

        ``sort=True`` first sorts them ascending within each graph's slots
        (:func:`spectraldiff.spectrum.sort_spectrum`), so the ``i``-th smallest sampled eigenvalue meets
        the ``i``-th eigenvector as in the decomposition; padding never mixes in.
        """
        if eigenvalues.shape != self.eigenvalues.shape:
            raise ValueError(
                f"eigenvalues must have shape {tuple(self.eigenvalues.shape)}, got {tuple(eigenvalues.shape)}"
            )
        if sort:
            eigenvalues = sort_spectrum(eigenvalues, self.mask)
        return SpectralGraph(eigenvalues * self.mask.to(eigenvalues.dtype), self.eigenvectors, self.mask,
                             self.operator)

    def to(self, *args, **kwargs) -> "SpectralGraph":
        """Move eigenvalues and eigenvectors (``Tensor.to`` arguments); the mask follows the device."""
        eigenvalues = self.eigenvalues.to(*args, **kwargs)
        return SpectralGraph(eigenvalues, self.eigenvectors.to(*args, **kwargs),
                             self.mask.to(eigenvalues.device), self.operator)

    def to_dgl(self, *, threshold: float | None = None, weight: str = "w", self_loops: bool = False,
               batched: bool = False):
        """Rebuild DGL graphs from ``reconstruct()``: a list of ``B`` graphs with edge weights in
        ``edata[weight]``, or with ``batched=True`` one batched ``DGLGraph`` (``dgl.batch`` of that list).

        With ``threshold`` the graphs are unweighted: an edge wherever the entry exceeds it. Requires DGL.
        """
        from .dgl_adapter import dgl_from_dense

        return dgl_from_dense(self.reconstruct(), self.num_nodes, threshold=threshold, weight=weight,
                              self_loops=self_loops, batched=batched)
