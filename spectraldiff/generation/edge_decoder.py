"""From a truncated spectrum to edge probabilities: a learned, permutation-equivariant graph predictor."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["EigenpairEdgeDecoder"]


class EigenpairEdgeDecoder(nn.Module):
    r"""Edge logits from ``k`` eigenvectors and eigenvalues (the graph predictor of SPECTRE and GGSD).

    Pair ``(i, j)`` starts from ``d`` learned spectral filters of the eigenpairs,

    ``x_ij,c = (1/k) Σ_κ f_c(λ_κ) U_iκ U_jκ``,    ``f = MLP(λ) : R → R^d``,

    i.e. ``d`` matrices ``U f_c(Λ) Uᵀ``. Each term uses the product ``U_iκ U_jκ``, unchanged when
    eigenvector ``κ`` flips sign, and the filter depends on the eigenvalue only, so the sum is also
    unchanged by a rotation inside a repeated eigenvalue: the decoder sees the spectrum, not one basis
    of it. ``num_layers`` PPGN-style blocks (Maron et al. 2019) then let pairs talk,
    ``e ← e + MLP(LN [e, (m₁(e) m₂(e)) / n])`` with the product taken channel-wise over the node axis
    (``O(n³ d)``, one pass per graph, not per diffusion step), and a linear head gives a symmetric
    logit. Permuting nodes permutes the logits' rows and columns.

    Parameters
    ----------
    num_eigenvectors : int
        ``k``.
    hidden_dim : int
        Channels ``d`` per pair.
    num_layers : int
        PPGN blocks (0 gives a pure filter-bank edge MLP, ``O(n² k d)``).

    Shapes
    ------
    ``eigenvectors`` ``(B, N, k)`` (rows scaled by ``√n`` so entries are of order one), ``eigenvalues``
    ``(B, k)`` (data scale), ``node_mask`` ``(B, N)``, ``slot_mask`` ``(B, k)`` → logits ``(B, N, N)``,
    symmetric, ``-inf``-free; entries on padded pairs and the diagonal are meaningless and masked by
    the caller.

    Example
    -------
    >>> dec = EigenpairEdgeDecoder(num_eigenvectors=4, hidden_dim=8, num_layers=1)
    >>> U, lam = torch.randn(2, 6, 4), torch.rand(2, 4)
    >>> mask, slots = torch.ones(2, 6, dtype=torch.bool), torch.ones(2, 4, dtype=torch.bool)
    >>> dec(U, lam, mask, slots).shape
    torch.Size([2, 6, 6])
    """

    def __init__(self, num_eigenvectors: int, hidden_dim: int = 32, num_layers: int = 2):
        super().__init__()
        d = hidden_dim
        self.num_eigenvectors = num_eigenvectors
        self.filters = nn.Sequential(nn.Linear(1, d), nn.SiLU(), nn.Linear(d, d))
        # No normalisation over the N² pairs: it would dominate the cost on large graphs, and the
        # filters are already of order one (unit-scale rows, averaged over k).
        self.pair_in = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.mix = nn.ModuleList(nn.Linear(d, 2 * d) for _ in range(num_layers))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(2 * d), nn.Linear(2 * d, d), nn.SiLU(), nn.Linear(d, d))
            for _ in range(num_layers)
        )
        self.out = nn.Linear(d, 1)

    def forward(self, eigenvectors: Tensor, eigenvalues: Tensor, node_mask: Tensor, slot_mask: Tensor) -> Tensor:
        if eigenvectors.shape[-1] != self.num_eigenvectors:
            raise ValueError(f"this decoder was built for k={self.num_eigenvectors} eigenvectors, got "
                             f"{eigenvectors.shape[-1]}")
        node = node_mask.to(eigenvectors.dtype)
        slot = slot_mask.to(eigenvectors.dtype)
        pair = (node[:, :, None] * node[:, None, :])[..., None]  # (B, N, N, 1)
        n = node.sum(dim=1).clamp_min(1.0)[:, None, None, None]
        U = eigenvectors * node[..., None] * slot[:, None, :]
        f = self.filters(eigenvalues[..., None]) * (slot / self.num_eigenvectors)[..., None]  # (B, k, d)
        x = torch.einsum("bik,bkc,bjk->bijc", U, f, U)
        e = self.pair_in(x) * pair
        for mix, block in zip(self.mix, self.blocks):
            m1, m2 = (mix(e) * pair).chunk(2, dim=-1)
            product = torch.einsum("bikc,bkjc->bijc", m1, m2) / n
            e = (e + block(torch.cat([e, product], dim=-1))) * pair
        logits = self.out(e).squeeze(-1)
        return 0.5 * (logits + logits.mT)
