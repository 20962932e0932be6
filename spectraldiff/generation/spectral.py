"""Spectral graph generator: diffuse eigenvalues, borrow eigenvectors from a training graph.

After the fast spectral graph diffusion of Luo et al. (2023): a training graph ``A = U diag(λ) Uᵀ``
keeps its eigenvectors ``U``, and only its ``n`` eigenvalues are modelled, by score-based diffusion
(:mod:`spectraldiff.sde`, :func:`spectraldiff.losses.dsm_loss`, :func:`spectraldiff.sampling.pc_sampler`)
with a :class:`~spectraldiff.score_networks.SpectrumMLPScoreNet` (``spectral_network="mlp"``, the
default) or an :class:`~spectraldiff.score_networks.EigenvalueScoreNet` (``"transformer"``). Generation:

1. draw a training graph uniformly (so the node count ``n`` follows the training distribution) and take
   its eigenvectors ``U`` (``n × n``);
2. sample ``n`` eigenvalues with the reverse SDE; the network is conditioned on ``n`` through the mask
   (it sees each slot's rank ``k / (n − 1)`` and ``log n``); sort them ascending, like ``U``'s columns;
3. ``Â = U diag(λ̂) Uᵀ``, symmetrised, thresholded at 0.5, diagonal dropped.

Noise lives on ``n`` numbers per graph instead of ``n²`` adjacency entries. Eigenvalues are divided by
one dataset-wide scale (their standard deviation) so the data matches the unit-variance prior.
"""

from __future__ import annotations

import networkx as nx
import torch
from torch import Tensor, nn

from ..eigh import batched_eigh, node_mask
from ..losses import dsm_loss
from ..score_networks import EigenvalueScoreNet, NoiseToScore, SpectrumMLPScoreNet
from .config import GenerationConfig
from .dense import graphs_to_dense
from .generator import GraphGenerator

__all__ = ["SpectralGenerator", "nearest_spectrum_rmse"]


class SpectralGenerator(GraphGenerator):
    """Eigenvalue diffusion with eigenvectors of training graphs.

    Parameters
    ----------
    config : GenerationConfig
        Uses ``spectral_network``, ``hidden_dim``, ``num_layers``, ``sde``, the sampler settings,
        ``node_counts``, ``threshold``.

    Shapes
    ------
    After :meth:`fit`: ``eigenvalues`` ``(M, N)`` (scaled, padding zero), ``eigenvectors`` ``(M, N, N)``,
    ``mask`` ``(M, N)`` for the ``M`` training graphs padded to ``N`` nodes.

    Example
    -------
    >>> from spectraldiff.generation.datasets import community_small
    >>> model = SpectralGenerator(GenerationConfig(epochs=2, steps=10, hidden_dim=16, num_layers=1))
    >>> _ = model.fit(community_small(16, seed=0))
    >>> len(model.sample(3))
    3
    """

    name = "spectral"

    def __init__(self, config: GenerationConfig):
        super().__init__(config)
        self.scale = 1.0

    def _build_network(self, max_nodes: int) -> nn.Module:
        cfg = self.config
        if cfg.spectral_network == "transformer":
            return EigenvalueScoreNet(hidden_dim=cfg.hidden_dim, num_layers=cfg.num_layers)
        return SpectrumMLPScoreNet(max_nodes, hidden_dim=cfg.hidden_dim, num_layers=cfg.num_layers)

    def _prepare(self, graphs: list[nx.Graph]) -> None:
        A, sizes = graphs_to_dense(graphs, dtype=torch.float64)
        if self.network is None or getattr(self.network, "max_nodes", A.shape[-1]) != A.shape[-1]:
            self.network = self._build_network(A.shape[-1])
        eigenvalues, eigenvectors = batched_eigh(A, sizes)
        self.mask = node_mask(sizes, A.shape[-1])
        self.scale = float(eigenvalues[self.mask].std().clamp_min(1e-6))
        self.eigenvalues = (eigenvalues / self.scale).float()
        self.eigenvectors = eigenvectors

    def _num_train(self) -> int:
        return self.eigenvalues.shape[0]

    def _score_fn(self, network, mask: Tensor) -> NoiseToScore:
        return NoiseToScore(network, self.sde, call=lambda net, x, t, c: net(x, t, mask, c))

    def _batch_loss(self, indices: Tensor, generator: torch.Generator) -> Tensor:
        mask = self.mask[indices]
        return dsm_loss(self._score_fn(self.network, mask), self.sde, self.eigenvalues[indices], mask=mask,
                        generator=generator)

    @torch.no_grad()
    def sample_weighted(self, num_graphs: int, *, steps: int | None = None, generator: torch.Generator | None = None,
                        progress: bool = False) -> dict[str, Tensor]:
        """Sampled spectra on borrowed eigenvectors.

        Returns ``"adjacency"`` ``U diag(λ̂) Uᵀ`` ``(B, N, N)``, ``"eigenvalues"`` ``λ̂`` ``(B, N)``
        (ascending on real slots, zero on padding, data scale), ``"eigenvectors"`` ``U`` ``(B, N, N)`` of
        the source training graphs, ``"sizes"`` ``(B,)`` and ``"sources"`` ``(B,)``.
        """
        self._check_fitted()
        network = self.sampling_network()
        network.eval()
        parts = []
        for sources, sizes in self._chunks(num_graphs, generator):
            mask = self.mask[sources]
            x_T = self.sde.prior_sampling(mask.shape, generator=generator)
            lam = self._run_sampler(self._score_fn(network, mask), x_T, mask, steps, generator, progress)
            # Pair the i-th smallest sampled eigenvalue with U's i-th column; padding sorts last.
            lam = torch.sort(lam.masked_fill(~mask, float("inf")), dim=-1).values.masked_fill(~mask, 0.0)
            lam = lam.double() * self.scale
            U = self.eigenvectors[sources]
            parts.append({"adjacency": (U * lam[:, None, :]) @ U.mT, "eigenvalues": lam, "eigenvectors": U,
                          "sizes": sizes, "sources": sources})
        return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}

    def diagnostics(self, sampled: dict[str, Tensor]) -> dict[str, float]:
        """``spectrum_rmse``: mean over samples of :func:`nearest_spectrum_rmse` to the training
        spectra (data scale) — how well the eigenvalue model itself samples, which the thresholded
        graphs alone can hide (see docs/generation.md)."""
        train = self.eigenvalues.double() * self.scale  # (M, N), padding zero
        distances = nearest_spectrum_rmse(sampled["eigenvalues"], sampled["sizes"], train, self.mask.sum(dim=-1))
        return {"spectrum_rmse": float(distances.mean())}


def nearest_spectrum_rmse(eigenvalues: Tensor, sizes: Tensor, reference: Tensor, reference_sizes: Tensor, *,
                          exclude_self: bool = False) -> Tensor:
    """RMS distance from each spectrum to the nearest reference spectrum with the same node count.

    ``eigenvalues`` ``(B, N)`` and ``reference`` ``(M, N)`` are sorted spectra zero-padded to the same
    ``N``; ``sizes`` ``(B,)`` and ``reference_sizes`` ``(M,)`` their node counts. With
    ``exclude_self`` (``eigenvalues`` is ``reference``) a spectrum is not its own neighbour. Returns
    ``(B,)``; ``inf`` where no reference spectrum has that node count.
    """
    squared = ((eigenvalues[:, None, :] - reference[None, :, :]) ** 2).sum(dim=-1) / sizes[:, None]  # (B, M)
    squared = squared.masked_fill(sizes[:, None] != reference_sizes[None, :], float("inf"))
    if exclude_self:
        squared.fill_diagonal_(float("inf"))
    return squared.min(dim=1).values.sqrt()
