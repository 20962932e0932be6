"""A permutation-equivariant noise predictor for ``k`` eigenvectors and eigenvalues diffused together."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..score_networks import TimeEmbedding

__all__ = ["EigenpairScoreNet"]


class EigenpairScoreNet(nn.Module):
    r"""Noise predictor for a noisy truncated spectrum ``(U_t, λ_t)``, linear in the number of nodes.

    Each node ``i`` reads its row of the noisy eigenvectors, the noisy eigenvalues, the slot mask,
    ``log n`` and the Gram matrix ``G = U_tᵀ U_t / n`` (``k × k``, invariant to node order; how far the
    noisy vectors are from orthonormal): ``h_i = W_in [U_t,i, λ_t, m, log n] + W_G vec(G) + τ(t)``. Each of ``num_layers`` residual blocks
    mixes nodes through two pooled summaries, both sums over nodes and so independent of their order:

    * the mean ``ḡ = (1/n) Σ_j h_j`` (global context, as in DeepSets);
    * the spectral projection ``U_t (U_tᵀ H) / n`` (node ``i`` receives ``Σ_j (Σ_k U_ik U_jk) h_j / n``,
      a low-rank graph convolution through the eigenvectors themselves),

    ``h_i ← h_i + MLP(LN [h_i, ḡ, (U_t U_tᵀ H)_i / n]) + τ(t)``. The heads give
    ``ε̂_U,i = W_U LN(h_i) + a(t) ⊙ U_t,i`` (per node) and ``ε̂_λ = MLP([ḡ, λ_t, τ]) + b(t) ⊙ λ_t``,
    with per-slot gates ``a, b`` read from the time embedding. The skip matters: where the data are
    unpredictable from the rest, the best noise estimate is proportional to the input (``σ(t) x_t``
    for unit-variance data), which a normalised head cannot produce, and a noise estimate shrunk
    towards zero makes the reverse VP-SDE expand the state (by up to ``1/mean(T)``). A call costs ``O(n k d + n k² + n d²)``.
    Permuting the nodes permutes ``ε̂_U``'s rows and leaves ``ε̂_λ`` unchanged, exactly; sign and basis
    ambiguity is left to training (random flips and rotations of the data, :mod:`.eigenpairs`).

    Parameters
    ----------
    num_eigenvectors : int
        ``k``, the number of eigenpair slots.
    hidden_dim : int
        Width ``d`` of the node states.
    num_layers : int
        Residual blocks.

    Shapes
    ------
    ``eigenvectors`` ``(B, N, k)``, ``eigenvalues`` ``(B, k)``, ``t`` ``(B,)``, ``node_mask`` ``(B, N)``
    bool, ``slot_mask`` ``(B, k)`` bool → ``(ε̂_U (B, N, k), ε̂_λ (B, k))``, zero on padded nodes and slots.

    Example
    -------
    >>> net = EigenpairScoreNet(num_eigenvectors=4, hidden_dim=16, num_layers=1)
    >>> U, lam = torch.randn(2, 6, 4), torch.randn(2, 4)
    >>> nodes, slots = torch.ones(2, 6, dtype=torch.bool), torch.ones(2, 4, dtype=torch.bool)
    >>> [tuple(e.shape) for e in net(U, lam, torch.rand(2), nodes, slots)]
    [(2, 6, 4), (2, 4)]
    """

    def __init__(self, num_eigenvectors: int, hidden_dim: int = 64, num_layers: int = 3):
        super().__init__()
        if num_eigenvectors < 1:
            raise ValueError(f"num_eigenvectors must be ≥ 1, got {num_eigenvectors}")
        k, d = num_eigenvectors, hidden_dim
        self.num_eigenvectors = k
        self.time = TimeEmbedding(d)
        self.node_in = nn.Linear(3 * k + 1, d)
        self.gram_in = nn.Linear(k * k, d)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(3 * d), nn.Linear(3 * d, d), nn.SiLU(), nn.Linear(d, d))
            for _ in range(num_layers)
        )
        self.vector_out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, k))
        self.value_out = nn.Sequential(nn.Linear(2 * d + k, d), nn.SiLU(), nn.Linear(d, k))
        self.skip = nn.Linear(d, 2 * k)

    def forward(self, eigenvectors: Tensor, eigenvalues: Tensor, t: Tensor, node_mask: Tensor,
                slot_mask: Tensor) -> tuple[Tensor, Tensor]:
        if eigenvectors.shape[-1] != self.num_eigenvectors:
            raise ValueError(f"this network was built for k={self.num_eigenvectors} eigenvectors, got "
                             f"{eigenvectors.shape[-1]}")
        node = node_mask.to(eigenvectors.dtype)[..., None]  # (B, N, 1)
        slot = slot_mask.to(eigenvectors.dtype)  # (B, k)
        n = node.sum(dim=1).clamp_min(1.0)  # (B, 1)
        U = eigenvectors * node * slot[:, None, :]
        lam = eigenvalues * slot
        gram = (U.mT @ U / n[:, :, None]).flatten(1)  # (B, k²)
        time = self.time(t)
        tau = time + self.gram_in(gram)  # (B, d): everything one graph shares
        per_graph = torch.cat([lam, slot, n.log()], dim=-1)[:, None, :].expand(-1, U.shape[1], -1)
        h = (self.node_in(torch.cat([U, per_graph], dim=-1)) + tau[:, None, :]) * node
        for block in self.blocks:
            mean = (h.sum(dim=1) / n)[:, None, :].expand_as(h)
            spectral = U @ (U.mT @ h) / n[:, :, None]
            h = (h + block(torch.cat([h, mean, spectral], dim=-1)) + tau[:, None, :]) * node
        gate_vectors, gate_values = self.skip(time).chunk(2, dim=-1)  # (B, k) each
        eps_vectors = (self.vector_out(h) + gate_vectors[:, None, :] * U) * node * slot[:, None, :]
        eps_values = (self.value_out(torch.cat([h.sum(dim=1) / n, tau, lam], dim=-1)) + gate_values * lam) * slot
        return eps_vectors, eps_values
