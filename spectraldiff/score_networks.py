"""Reference score networks for spectral diffusion (dense batched, no DGL).

Both networks predict the standard-normal noise ``ε`` of the forward kernel; the SDE turns that into a
score (``sde.score_from_noise(ε̂, t) = −ε̂ / std(t)``), which keeps the output scale ≈ 1 at every
noise level. :class:`NoiseToScore` wraps a network and an SDE into a ``score_fn(x, t, condition)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .sde import SDE

__all__ = ["TimeEmbedding", "EigenvalueScoreNet", "SpectrumMLPScoreNet", "FeatureScoreNet", "NoiseToScore"]


class TimeEmbedding(nn.Module):
    """Sinusoidal embedding of ``t ∈ [0, 1]`` followed by a two-layer MLP: ``(B,)`` → ``(B, dim)``."""

    def __init__(self, dim: int, frequencies: int = 32):
        super().__init__()
        self.frequencies = frequencies
        self.mlp = nn.Sequential(nn.Linear(2 * frequencies, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        # Scale t to [0, 1000] so that the lowest frequencies still resolve small t.
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(self.frequencies, device=t.device) / self.frequencies)
        angles = 1000.0 * t[:, None].float() * freqs[None, :]
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=-1))


class EigenvalueScoreNet(nn.Module):
    r"""Noise predictor over a padded set of sorted eigenvalues.

    Each real slot ``k`` of graph ``b`` is described by ``(λ_k(t), k / (n_b − 1), log n_b)`` — value,
    relative rank and graph size — embedded, shifted by the time embedding (and a condition embedding),
    and mixed across slots by masked self-attention, so padded slots never influence real ones:

    ``ε̂ = Linear(TransformerEncoder(Embed(λ, rank, log n) + τ(t) + c)) + a(t) λ_t``.

    The time-gated skip ``a(t) λ_t`` carries the input's scale past the layer norms: near the prior
    ``ε ≈ λ_t / std(t)``, which normalised features alone cannot express, and without it the reverse
    process drifts away as soon as a state's scale leaves the training distribution.

    Parameters
    ----------
    hidden_dim : int
        Width of the slot embeddings (default 64).
    num_layers : int
        Self-attention layers (default 3).
    num_heads : int
        Attention heads (default 4).
    condition_dim : int
        Width of an optional condition, either per graph ``(B, C)`` or per slot ``(B, N, C)``; 0 for none.

    Shapes
    ------
    ``eigenvalues`` ``(B, N)``, ``t`` ``(B,)``, ``mask`` ``(B, N)`` bool → predicted noise ``(B, N)``,
    zero on padded slots.

    Examples
    --------
    >>> net = EigenvalueScoreNet(hidden_dim=16, num_layers=1)
    >>> lam, mask = torch.randn(2, 5), torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    >>> net(lam, torch.rand(2), mask).shape
    torch.Size([2, 5])
    """

    def __init__(self, hidden_dim: int = 64, num_layers: int = 3, num_heads: int = 4, condition_dim: int = 0):
        super().__init__()
        self.condition_dim = condition_dim
        self.embed = nn.Sequential(nn.Linear(3, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim))
        self.time = TimeEmbedding(hidden_dim)
        self.condition = nn.Linear(condition_dim, hidden_dim) if condition_dim else None
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(hidden_dim, num_heads, dim_feedforward=2 * hidden_dim, dropout=0.0,
                                       batch_first=True, norm_first=True)
            for _ in range(num_layers)
        )
        self.out = nn.Sequential(nn.LayerNorm(hidden_dim), nn.Linear(hidden_dim, 1))
        self.skip = nn.Linear(hidden_dim, 1)

    def forward(self, eigenvalues: Tensor, t: Tensor, mask: Tensor, condition: Tensor | None = None) -> Tensor:
        sizes = mask.sum(dim=-1, keepdim=True).to(eigenvalues.dtype)  # (B, 1)
        rank = torch.arange(eigenvalues.shape[1], device=eigenvalues.device, dtype=eigenvalues.dtype)
        rank = rank[None, :] / (sizes - 1).clamp_min(1.0)
        slots = torch.stack([eigenvalues, rank, sizes.log().expand_as(eigenvalues)], dim=-1)
        tau = self.time(t)[:, None, :]
        h = self.embed(slots) + tau
        h = h + _embed_condition(self.condition, condition, h)
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=~mask)
        eps = self.out(h).squeeze(-1) + self.skip(tau).squeeze(-1) * eigenvalues
        return eps * mask.to(h.dtype)


class SpectrumMLPScoreNet(nn.Module):
    r"""Noise predictor that reads a whole padded spectrum as one vector (a residual MLP).

    The input of graph ``b`` is ``[λ(t) ⊙ m, m, log n_b]`` (``2N + 1`` numbers: values, slot mask,
    size), so slot ``k`` of a graph with ``n`` nodes is its ``k``-th smallest eigenvalue and the
    network knows ``n``. ``num_layers`` pre-norm residual blocks mix all slots at once:

    ``h₀ = SiLU(W_in x + τ(t))``, ``h ← h + W₂ SiLU(W₁ LN(h))``,
    ``ε̂ = (W_out LN(h) + a(t) λ_t) ⊙ m``,

    with the time-gated skip ``a(t) λ_t`` of :class:`EigenvalueScoreNet`. Compared with that network's
    per-slot attention it needs a fixed padded size ``N`` and costs a few matrix products per call
    instead of ``num_layers`` attention layers, which makes the reverse diffusion of small graphs
    several times cheaper per step.

    Parameters
    ----------
    max_nodes : int
        ``N``, the padded number of slots.
    hidden_dim : int
        Width of the hidden vector (default 128).
    num_layers : int
        Residual blocks (default 3).

    Shapes
    ------
    ``eigenvalues`` ``(B, N)``, ``t`` ``(B,)``, ``mask`` ``(B, N)`` bool → predicted noise ``(B, N)``,
    zero on padded slots.

    Examples
    --------
    >>> net = SpectrumMLPScoreNet(max_nodes=5, hidden_dim=16, num_layers=1)
    >>> lam, mask = torch.randn(2, 5), torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    >>> net(lam, torch.rand(2), mask).shape
    torch.Size([2, 5])
    """

    def __init__(self, max_nodes: int, hidden_dim: int = 128, num_layers: int = 3):
        super().__init__()
        if max_nodes < 1:
            raise ValueError(f"max_nodes must be ≥ 1, got {max_nodes}")
        self.max_nodes = max_nodes
        self.time = TimeEmbedding(hidden_dim)
        self.input = nn.Linear(2 * max_nodes + 1, hidden_dim)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(hidden_dim), nn.Linear(hidden_dim, hidden_dim), nn.SiLU(),
                          nn.Linear(hidden_dim, hidden_dim))
            for _ in range(num_layers)
        )
        self.out = nn.Sequential(nn.LayerNorm(hidden_dim), nn.Linear(hidden_dim, max_nodes))
        self.skip = nn.Linear(hidden_dim, 1)

    def forward(self, eigenvalues: Tensor, t: Tensor, mask: Tensor, condition: Tensor | None = None) -> Tensor:
        if eigenvalues.shape[-1] != self.max_nodes:
            raise ValueError(f"this network was built for {self.max_nodes} slots, got spectra of "
                             f"{eigenvalues.shape[-1]}; pad or rebuild with max_nodes={eigenvalues.shape[-1]}")
        if condition is not None:
            raise ValueError("SpectrumMLPScoreNet takes no condition")
        slot = mask.to(eigenvalues.dtype)
        size = slot.sum(dim=-1, keepdim=True).clamp_min(1.0).log()
        tau = self.time(t)
        h = F.silu(self.input(torch.cat([eigenvalues * slot, slot, size], dim=-1)) + tau)
        for block in self.blocks:
            h = h + block(h)
        return (self.out(h) + self.skip(tau) * eigenvalues) * slot


class FeatureScoreNet(nn.Module):
    r"""Noise predictor for node features that passes messages on the noisy graph ``A_t = U diag(λ_t) Uᵀ``.

    ``h^{l+1} = h^l + MLP([h^l, Â_t h^l]) + τ(t)`` and ``ε̂ = Linear(h^L) + a(t) ⊙ X_t`` (a time-gated
    skip that carries the input's scale past the layer norms, as in :class:`EigenvalueScoreNet`), where ``Â_t = A_t / max(1, ‖A_t‖_row)`` keeps the
    message scale bounded while ``λ_t`` is noisy. Dense batched matrices; padded nodes neither send nor
    receive (their rows and columns of ``U`` are zero).

    Parameters
    ----------
    feature_dim : int
        Node feature width ``F``.
    hidden_dim : int
        Hidden width (default 64).
    num_layers : int
        Message-passing layers (default 3).
    condition_dim : int
        Width of an optional per-node ``(B, N, C)`` or per-graph ``(B, C)`` condition; 0 for none.

    Shapes
    ------
    ``features`` ``(B, N, F)``, ``eigenvalues`` ``(B, N)``, ``eigenvectors`` ``(B, N, N)``, ``t`` ``(B,)``,
    ``mask`` ``(B, N)`` → predicted noise ``(B, N, F)``, zero on padded nodes.
    """

    def __init__(self, feature_dim: int, hidden_dim: int = 64, num_layers: int = 3, condition_dim: int = 0):
        super().__init__()
        self.input = nn.Linear(feature_dim, hidden_dim)
        self.time = TimeEmbedding(hidden_dim)
        self.condition = nn.Linear(condition_dim, hidden_dim) if condition_dim else None
        self.layers = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(2 * hidden_dim), nn.Linear(2 * hidden_dim, hidden_dim), nn.SiLU(),
                          nn.Linear(hidden_dim, hidden_dim))
            for _ in range(num_layers)
        )
        self.out = nn.Sequential(nn.LayerNorm(hidden_dim), nn.Linear(hidden_dim, feature_dim))
        self.skip = nn.Linear(hidden_dim, feature_dim)

    def forward(self, features: Tensor, eigenvalues: Tensor, eigenvectors: Tensor, t: Tensor, mask: Tensor,
                condition: Tensor | None = None) -> Tensor:
        node = mask.to(features.dtype)[..., None]
        adjacency = (eigenvectors * eigenvalues[:, None, :]) @ eigenvectors.mT
        adjacency = adjacency / adjacency.abs().sum(dim=-1, keepdim=True).clamp_min(1.0)
        tau = self.time(t)[:, None, :]
        h = self.input(features) + tau
        h = h + _embed_condition(self.condition, condition, h)
        for layer in self.layers:
            message = adjacency @ h
            h = (h + layer(torch.cat([h, message], dim=-1)) + tau) * node
        return (self.out(h) + self.skip(tau) * features) * node


def _embed_condition(projection: nn.Module | None, condition: Tensor | None, like: Tensor) -> Tensor:
    """Condition embedding broadcast to ``like (B, N, H)``; zero when the network has no condition."""
    if projection is None:
        if condition is not None:
            raise ValueError("this network was built with condition_dim=0 but received a condition")
        return torch.zeros_like(like)
    if condition is None:
        raise ValueError("this network expects a condition (condition_dim > 0) but received none")
    embedded = projection(condition.to(like.dtype))
    return embedded[:, None, :] if embedded.dim() == 2 else embedded


class NoiseToScore(nn.Module):
    """``score_fn(x, t, condition)`` from a noise-predicting network and an SDE.

    ``call`` adapts the network's signature: it receives ``(network, x, t, condition)`` and returns
    ``ε̂``; the default calls ``network(x, t, condition)``.
    """

    def __init__(self, network: nn.Module, sde: SDE, call=None):
        super().__init__()
        self.network = network
        self.sde = sde
        self.call = call

    def forward(self, x: Tensor, t: Tensor, condition=None) -> Tensor:
        eps = self.call(self.network, x, t, condition) if self.call else self.network(x, t, condition)
        return self.sde.score_from_noise(eps, t)
