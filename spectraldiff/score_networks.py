"""Reference score networks for spectral diffusion (dense batched, no DGL).

Both networks predict the standard-normal noise ``ε`` of the forward kernel; the SDE turns that into a
score (``sde.score_from_noise(ε̂, t) = −ε̂ / std(t)``), which keeps the output scale ≈ 1 at every
noise level. :class:`NoiseToScore` wraps a network and an SDE into a ``score_fn(x, t, condition)``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from .sde import SDE
from .state import accepts_mask

__all__ = ["TimeEmbedding", "EigenvalueScoreNet", "EdgeScoreNet", "SpectrumMLPScoreNet", "FeatureScoreNet",
           "NoiseToScore", "triangle_size"]


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
    attention_budget : int, optional
        Most attention scores (``B · heads · queries · N``) held at once. A call over more runs each
        layer's attention on chunks of queries, each recomputed in the backward pass instead of stored
        (``torch.utils.checkpoint``), so memory grows linearly in ``N`` instead of quadratically; the
        result equals the unchunked one up to float rounding (same parameters). ``None``: never chunk.
        Time stays quadratic in ``N`` either way.

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

    def __init__(self, hidden_dim: int = 64, num_layers: int = 3, num_heads: int = 4, condition_dim: int = 0,
                 attention_budget: int | None = None):
        super().__init__()
        if attention_budget is not None and attention_budget < 1:
            raise ValueError(f"attention_budget must be >= 1 or None, got {attention_budget}")
        self.condition_dim = condition_dim
        self.attention_budget = attention_budget
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
        B, N = eigenvalues.shape
        heads = self.layers[0].self_attn.num_heads if self.layers else 1
        chunk = None
        if self.attention_budget is not None and B * heads * N * N > self.attention_budget:
            chunk = max(1, self.attention_budget // (B * heads * N))
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=~mask) if chunk is None else _encoder_layer_chunked(layer, h, mask, chunk)
        eps = self.out(h).squeeze(-1) + self.skip(tau).squeeze(-1) * eigenvalues
        return eps * mask.to(h.dtype)


def _encoder_layer_chunked(layer: nn.TransformerEncoderLayer, h: Tensor, mask: Tensor, chunk: int) -> Tensor:
    """``layer(h, src_key_padding_mask=~mask)`` for a pre-norm, dropout-free layer, with the attention
    computed ``chunk`` queries at a time: the same parameters and the same result up to rounding, but
    at most ``B · heads · chunk · N`` scores alive (each chunk is recomputed in backward)."""
    attn = layer.self_attn
    B, N, C = h.shape
    H = attn.num_heads
    q, k, v = F.linear(layer.norm1(h), attn.in_proj_weight, attn.in_proj_bias).view(B, N, 3, H, C // H) \
        .permute(2, 0, 3, 1, 4)
    keys = mask[:, None, None, :]

    def scores(q_chunk: Tensor) -> Tensor:
        return F.scaled_dot_product_attention(q_chunk, k, v, attn_mask=keys)

    parts = [_maybe_checkpoint(scores, q_chunk) for q_chunk in q.split(chunk, dim=2)]
    out = torch.cat(parts, dim=2).transpose(1, 2).reshape(B, N, C)
    h = h + attn.out_proj(out)
    return h + layer.linear2(layer.activation(layer.linear1(layer.norm2(h))))


def _maybe_checkpoint(fn: Callable[..., Tensor], *args) -> Tensor:
    """``fn(*args)``, recomputed in the backward pass instead of storing its intermediates when autograd
    records (the memory of one call is then transient)."""
    if torch.is_grad_enabled():
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


def triangle_size(slots: int) -> int:
    """``n`` with ``n (n + 1) / 2 = slots`` (the side of a matrix whose upper triangle, diagonal
    included, has ``slots`` entries); ``ValueError`` when there is none."""
    n = int(round((math.sqrt(8 * slots + 1) - 1) / 2))
    if n * (n + 1) // 2 != slots:
        raise ValueError(f"{slots} slots are not the upper triangle of a square matrix "
                         "(expected n(n+1)/2 for some n)")
    return n


class EdgeScoreNet(nn.Module):
    r"""Noise predictor over the entries of padded symmetric matrices, linear in the number of entries.

    The slots of a sequence are the upper triangle (diagonal included, row-major, as
    ``torch.triu_indices(N, N)``) of an ``N × N`` symmetric matrix, ``T = N(N+1)/2``. Slot ``e = (i, j)``
    is embedded from ``(x_e(t), [i = j], log n)``, the time and an optional per-slot condition; each
    layer pools the real slots at each node and over the whole matrix and updates every slot from its
    two endpoints, invariant to swapping them:

    ``p_i = mean_{e ∋ i} h_e``, ``g = mean_e h_e``,
    ``h_e ← (h_e + MLP(LN[h_e, p_i + p_j, p_i ⊙ p_j, g]) + τ(t)) ⊙ m_e``,
    ``ε̂ = Linear(LN h) + a(t) x_t`` (the time-gated skip of :class:`EigenvalueScoreNet`).

    Information travels between any two entries in two layers (through a shared node or the global
    mean), and a call costs ``O(T · hidden²)`` time: quadratic in ``N``, where attention over the
    ``T`` slots (:class:`EigenvalueScoreNet`) is quartic. The per-slot MLPs run ``chunk`` slots at a
    time and are recomputed in the backward pass (``torch.utils.checkpoint``), so besides the
    ``(·, T, hidden)`` layer inputs no per-slot intermediate is stored.

    Parameters
    ----------
    hidden_dim : int
        Width of the slot embeddings (default 64).
    num_layers : int
        Pool-and-update layers (default 3).
    condition_dim : int
        Width of an optional per-graph ``(B, C)`` or per-slot ``(B, T, C)`` condition; 0 for none.
    chunk : int
        Slots per MLP call (default 4096).

    Shapes
    ------
    ``values`` ``(B, T)``, ``t`` ``(B,)``, ``mask`` ``(B, T)`` bool (real slots: both endpoints are real
    nodes) → predicted noise ``(B, T)``, zero on padded slots.

    Examples
    --------
    >>> net = EdgeScoreNet(hidden_dim=16, num_layers=1)
    >>> values, mask = torch.randn(2, 6), torch.ones(2, 6, dtype=torch.bool)  # 3 × 3 matrices
    >>> net(values, torch.rand(2), mask).shape
    torch.Size([2, 6])
    """

    def __init__(self, hidden_dim: int = 64, num_layers: int = 3, condition_dim: int = 0, chunk: int = 4096):
        super().__init__()
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.chunk = chunk
        self.embed = nn.Sequential(nn.Linear(3, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim))
        self.time = TimeEmbedding(hidden_dim)
        self.condition = nn.Linear(condition_dim, hidden_dim) if condition_dim else None
        self.layers = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(4 * hidden_dim), nn.Linear(4 * hidden_dim, hidden_dim), nn.SiLU(),
                          nn.Linear(hidden_dim, hidden_dim))
            for _ in range(num_layers)
        )
        self.out = nn.Sequential(nn.LayerNorm(hidden_dim), nn.Linear(hidden_dim, 1))
        self.skip = nn.Linear(hidden_dim, 1)

    def forward(self, values: Tensor, t: Tensor, mask: Tensor, condition: Tensor | None = None) -> Tensor:
        B, T = values.shape
        N = triangle_size(T)
        if (self.condition is None) != (condition is None):
            raise ValueError("this network was built with condition_dim="
                             f"{0 if self.condition is None else self.condition.in_features} but received "
                             f"{'no' if condition is None else 'a'} condition")
        dtype, device = values.dtype, values.device
        rows, cols = torch.triu_indices(N, N, device=device)
        slot = mask.to(dtype)  # (B, T)
        # Flat slot s = b·T + e; its endpoints are the flat nodes b·N + i and b·N + j, its sequence b.
        seq = torch.arange(B, device=device).repeat_interleave(T)
        ends_i, ends_j = seq * N + rows.repeat(B), seq * N + cols.repeat(B)
        # A diagonal slot meets its node once: its second endpoint goes to a spare row, dropped after pooling.
        second = torch.where(ends_i == ends_j, B * N, ends_j)
        flat_slot = slot.reshape(-1)
        degree = torch.zeros(B * N + 1, dtype=dtype, device=device)
        degree = degree.index_add_(0, ends_i, flat_slot).index_add_(0, second, flat_slot)[:-1]
        degree = degree.clamp_min(1.0)[:, None]
        count = slot.sum(dim=1).clamp_min(1.0)[:, None]  # (B, 1)
        size = degree.view(B, N).amax(dim=1).log()  # log n: a real node meets n real slots

        tau = self.time(t)  # (B, H)
        slot_input = torch.stack([values.reshape(-1), (rows == cols).to(dtype).repeat(B), size[seq]], dim=-1)
        condition = condition.reshape(B * T, -1) if condition is not None and condition.dim() == 3 else \
            (condition[seq] if condition is not None else None)

        def embed(x, c, s):
            h = self.embed(x) + tau[s]
            return h if c is None else h + self.condition(c.to(h.dtype))

        h = self._per_slot(embed, slot_input, condition, seq) * flat_slot[:, None]
        for layer in self.layers:
            node = torch.zeros(B * N + 1, h.shape[-1], dtype=h.dtype, device=device)
            node = node.index_add(0, ends_i, h).index_add(0, second, h)[:-1] / degree
            whole = h.view(B, T, -1).sum(dim=1) / count  # (B, H); padded slots are zero

            def update(h_e, e_i, e_j, s, m, layer=layer, node=node, whole=whole):
                p_i, p_j = node[e_i], node[e_j]
                mixed = layer(torch.cat([h_e, p_i + p_j, p_i * p_j, whole[s]], dim=-1))
                return (h_e + mixed + tau[s]) * m[:, None]

            h = self._per_slot(update, h, ends_i, ends_j, seq, flat_slot)

        def read_out(h_e, x, s):
            return self.out(h_e).squeeze(-1) + self.skip(tau[s]).squeeze(-1) * x

        eps = self._per_slot(read_out, h, values.reshape(-1), seq)
        return (eps * flat_slot).view(B, T)

    def _per_slot(self, fn: Callable[..., Tensor], *slots: Tensor | None) -> Tensor:
        """``fn`` on ``chunk`` rows of every slot tensor at a time, concatenated (``None`` passes through).

        ``split`` rather than slicing: the backward of one split assembles the input's gradient once,
        where each slice's backward would fill a zero tensor of the whole input (quadratic in slots)."""
        total = next(s for s in slots if s is not None).shape[0]
        pieces = [[None] * -(-total // self.chunk) if s is None else s.split(self.chunk) for s in slots]
        return torch.cat([_maybe_checkpoint(fn, *args) for args in zip(*pieces)], dim=0)


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
    """``score_fn(x, t, condition, mask=None)`` from a noise-predicting network and an SDE.

    ``call`` adapts the network's signature: it receives ``(network, x, t, condition)`` (and
    ``mask=`` if it declares that parameter) and returns ``ε̂``. Without ``call``, a network whose
    ``forward`` takes a ``mask`` (the eigenvalue networks here) is called
    ``network(x, t, mask=mask, condition=condition)``, with a mask of all ones (no padding) where
    none is passed, and any other network ``network(x, t, condition)``. Samplers and
    :func:`~spectraldiff.losses.dsm_loss` pass the mask they were given, so one ``NoiseToScore``
    serves batches of any padding::

        score_fn = NoiseToScore(SpectrumMLPScoreNet(max_nodes=20), sde)
        for lam, mask in batches:
            dsm_loss(score_fn, sde, lam, mask=mask).backward()
    """

    def __init__(self, network: nn.Module, sde: SDE, call=None):
        super().__init__()
        self.network = network
        self.sde = sde
        self.call = call

    def forward(self, x: Tensor, t: Tensor, condition=None, mask: Tensor | None = None) -> Tensor:
        if self.call is not None:
            eps = (self.call(self.network, x, t, condition, mask=mask) if accepts_mask(self.call)
                   else self.call(self.network, x, t, condition))
        elif accepts_mask(self.network.forward):
            if mask is None and isinstance(x, Tensor):
                mask = torch.ones_like(x, dtype=torch.bool)  # none given: no slot is padding
            eps = self.network(x, t, mask=mask, condition=condition)
        else:
            eps = self.network(x, t, condition)
        return self.sde.score_from_noise(eps, t)
