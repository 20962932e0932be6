"""Adjacency-space baseline: score-based diffusion directly on the adjacency entries.

The prior approach to score-based graph generation (EDP-GNN, GDSS) adds Gaussian noise to every
entry of the adjacency matrix. Here the state is the vector of the ``N(N − 1)/2`` upper-triangle
entries of ``2A − 1`` (so ``{0, 1}`` becomes ``{−1, +1}``, centred for the unit-variance prior), which is
exactly symmetric noise on the ``N × N`` matrix; pairs involving padded nodes are masked out. The
same SDE, loss, sampler and number of steps as the spectral model are used; the score network
(:class:`AdjacencyScoreNet`) is a dense GNN with a pair head, and with the default widths of
``generate`` (88 here, 64 for the spectral model) both networks have about the same parameter count.
Sampled entries are mapped back to the 0/1 scale and thresholded at 0.5, like the spectral model.
"""

from __future__ import annotations

import networkx as nx
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..eigh import node_mask
from ..losses import dsm_loss
from ..score_networks import NoiseToScore, TimeEmbedding
from .config import GenerationConfig
from .dense import graphs_to_dense
from .generator import GraphGenerator

__all__ = ["AdjacencyScoreNet", "AdjacencyGenerator", "pair_mask"]


def pair_mask(mask: Tensor) -> Tensor:
    """``(B, P)`` mask of upper-triangle pairs ``i < j`` whose both nodes are real, from ``mask (B, N)``."""
    pairs = torch.triu_indices(mask.shape[1], mask.shape[1], offset=1, device=mask.device)  # (2, P)
    return mask[:, pairs[0]] & mask[:, pairs[1]]


class AdjacencyScoreNet(nn.Module):
    r"""Noise predictor for the upper-triangle entries of a noisy adjacency matrix.

    The entries ``x (B, P)`` are placed in a symmetric matrix ``A_t (B, N, N)``. Node states start from
    ``(Σ_j A_t,ij / n, (A_t²)_ii / n, log n)`` and pass ``num_layers`` dense messages
    ``h ← h + MLP([h, A_t h / n]) + τ(t)`` (a dense GNN). Each pair is then scored by a one-hidden-layer
    head that is symmetric in ``i, j`` and costs ``O(hidden_dim)`` per pair (like the few-channel edge
    MLP of GDSS), so the ``N²`` pairs of large graphs stay affordable:

    ``ε̂_ij = w · SiLU(P h_i + P h_j + (Q h_i) ⊙ (Q h_j) + a A_t,ij + b (A_t²)_ij / n + c(τ(t)))``.

    Parameters
    ----------
    max_nodes : int
        ``N``, the padded size (``P = N (N − 1) / 2``).
    hidden_dim : int
        Width of node states and of the pair head.
    num_layers : int
        Message-passing layers.

    Shapes
    ------
    ``x`` ``(B, P)``, ``t`` ``(B,)``, ``mask`` ``(B, N)`` bool → predicted noise ``(B, P)``, zero on
    pairs with a padded node.
    """

    def __init__(self, max_nodes: int, hidden_dim: int = 64, num_layers: int = 3):
        super().__init__()
        self.max_nodes = max_nodes
        rows, cols = torch.triu_indices(max_nodes, max_nodes, offset=1)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.time = TimeEmbedding(hidden_dim)
        self.node_in = nn.Sequential(nn.Linear(3, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim))
        self.layers = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(2 * hidden_dim), nn.Linear(2 * hidden_dim, hidden_dim), nn.SiLU(),
                          nn.Linear(hidden_dim, hidden_dim))
            for _ in range(num_layers)
        )
        self.node_out = nn.Sequential(nn.LayerNorm(hidden_dim), nn.Linear(hidden_dim, 2 * hidden_dim))
        self.pair_in = nn.Linear(2, hidden_dim, bias=False)
        self.pair_time = nn.Linear(hidden_dim, hidden_dim)
        self.pair_out = nn.Linear(hidden_dim, 1)

    def dense(self, x: Tensor) -> Tensor:
        """Symmetric ``(B, N, N)`` matrix with zero diagonal from upper-triangle entries ``(B, P)``."""
        A = x.new_zeros(x.shape[0], self.max_nodes, self.max_nodes)
        A[:, self.rows, self.cols] = x
        return A + A.mT

    def forward(self, x: Tensor, t: Tensor, mask: Tensor) -> Tensor:
        node = mask.to(x.dtype)
        n = node.sum(dim=-1).clamp_min(1.0)[:, None, None]  # (B, 1, 1)
        A = self.dense(x * pair_mask(mask).to(x.dtype))
        A2 = A @ A / n
        tau = self.time(t)[:, None, :]
        stats = torch.stack([A.sum(dim=-1) / n[..., 0], torch.diagonal(A2, dim1=1, dim2=2),
                             n[..., 0].log().expand_as(node)], dim=-1)
        h = (self.node_in(stats) + tau) * node[..., None]
        for layer in self.layers:
            h = (h + layer(torch.cat([h, A @ h / n], dim=-1)) + tau) * node[..., None]
        p, q = self.node_out(h).chunk(2, dim=-1)
        edge_stats = torch.stack([x, A2[:, self.rows, self.cols]], dim=-1)
        hidden = (p[:, self.rows] + p[:, self.cols] + q[:, self.rows] * q[:, self.cols]
                  + self.pair_in(edge_stats) + self.pair_time(tau))
        return self.pair_out(F.silu(hidden)).squeeze(-1) * pair_mask(mask).to(x.dtype)


class AdjacencyGenerator(GraphGenerator):
    """Score-based diffusion on adjacency entries (the baseline of the spectral generator).

    Node counts are drawn from the training distribution as for :class:`SpectralGenerator`; the
    adjacency among those nodes is sampled from the reverse SDE starting at pure noise.

    Example
    -------
    >>> from spectraldiff.generation.datasets import community_small
    >>> model = AdjacencyGenerator(GenerationConfig(model="adjacency", epochs=2, steps=10, hidden_dim=16, num_layers=1))
    >>> _ = model.fit(community_small(16, seed=0))
    >>> len(model.sample(3))
    3
    """

    name = "adjacency"

    def _prepare(self, graphs: list[nx.Graph]) -> None:
        A, sizes = graphs_to_dense(graphs)
        N = A.shape[-1]
        if self.network is None or self.network.max_nodes != N:
            self.network = AdjacencyScoreNet(N, hidden_dim=self.config.hidden_dim, num_layers=self.config.num_layers)
        self.mask = node_mask(sizes, N)
        rows, cols = torch.triu_indices(N, N, offset=1)
        self.pairs = pair_mask(self.mask)
        self.entries = (2.0 * A[:, rows, cols] - 1.0) * self.pairs.float()

    def _num_train(self) -> int:
        return self.entries.shape[0]

    def _score_fn(self, network, mask: Tensor) -> NoiseToScore:
        return NoiseToScore(network, self.sde, call=lambda net, x, t, c: net(x, t, mask))

    def _batch_loss(self, indices: Tensor, generator: torch.Generator) -> Tensor:
        mask = self.mask[indices]
        return dsm_loss(self._score_fn(self.network, mask), self.sde, self.entries[indices], mask=self.pairs[indices],
                        generator=generator)

    @torch.no_grad()
    def sample_weighted(self, num_graphs: int, *, steps: int | None = None, generator: torch.Generator | None = None,
                        progress: bool = False) -> dict[str, Tensor]:
        """Sampled adjacency ``(B, N, N)`` on the 0/1 scale (``"adjacency"``), ``"sizes"``, ``"sources"``."""
        self._check_fitted()
        network = self.sampling_network()
        network.eval()
        parts = []
        for sources, sizes in self._chunks(num_graphs, generator):
            mask = self.mask[sources]
            pairs = pair_mask(mask)
            x_T = self.sde.prior_sampling(pairs.shape, generator=generator)
            x = self._run_sampler(self._score_fn(self.compiled(network), mask), x_T, pairs, steps, generator, progress)
            A = network.dense((x + 1.0) / 2.0 * pairs.to(x.dtype))
            parts.append({"adjacency": A, "sizes": sizes, "sources": sources})
        return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}
