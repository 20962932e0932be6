"""A conditional score network over utterance sequences: a 1-D U-Net with cross-attention.

Used by the IMDer recoverer (one network per modality). The target modality's noisy sequence
``x_t ∈ R^{B×N×d}`` is processed along the utterance axis; at every level of the U-Net the sequence
attends to *condition tokens* (the observed entries of the other modalities), so an utterance's
missing modality is inferred from what is observed around it.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mer.nn.attention import CrossAttention
from mer.nn.positions import sinusoidal_positions
from mer.nn.sequence_conv import SequenceConv

__all__ = ["GaussianFourierProjection", "ConditionalScoreUNet1d"]


class GaussianFourierProjection(nn.Module):
    """Random Fourier features of time: ``[sin(2π W t), cos(2π W t)]``, ``W ~ N(0, scale²)`` fixed.

    The time embedding of Song et al.'s score networks (and IMDer's). Shapes: ``(B,)`` → ``(B, dim)``.
    """

    def __init__(self, dim: int, scale: float = 30.0) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"dim must be an even integer >= 2, got {dim}")
        self.register_buffer("W", torch.randn(dim // 2) * scale)

    def forward(self, t: Tensor) -> Tensor:
        proj = t[:, None] * self.W[None, :] * 2 * math.pi
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


class _Block(nn.Module):
    """Conv (k=3) + time shift + LayerNorm + SiLU, then cross-attention to the condition."""

    def __init__(self, c_in: int, c_out: int, time_dim: int, token_dim: int, heads: int) -> None:
        super().__init__()
        self.conv = SequenceConv(c_in, c_out, 3)
        self.time = nn.Linear(time_dim, c_out)
        self.norm = nn.LayerNorm(c_out)
        self.cross = CrossAttention(c_out, token_dim, heads)

    def forward(self, x: Tensor, temb: Tensor, mask: Tensor, step: int, tokens: Tensor,
                token_mask: Tensor) -> Tensor:
        h = F.silu(self.norm(self.conv(x) + self.time(temb)[:, None, :])) * mask[:, :, None]
        # Positions in utterance units, so a coarse level attends to the right part of the condition.
        pos = sinusoidal_positions(h.shape[1] * step, h.shape[2], h.device, h.dtype)[::step]
        return self.cross(h, pos, tokens, token_mask) * mask[:, :, None]


class ConditionalScoreUNet1d(nn.Module):
    """``s_θ(x_t, t | condition)`` for one modality's utterance sequence.

    Architecture (after the U-Net score network of Song et al.'s tutorial that IMDer builds on, in
    1-D over utterances): Gaussian-Fourier time embedding; an encoder of ``len(channels)`` levels (the
    first at full length, each further one halving it); a decoder that mirrors it (nearest upsampling)
    with skip connections; cross-attention to the condition tokens at every level; the output divided
    by ``std(t)``, so the network predicts ``−z`` and the score is ``−z / std(t)``.

    Condition tokens are built here from the observed entries of the other modalities: token
    ``(j, m')`` = ``Linear_{m'}(c_{j,m'}) + PE(j) + e_{m'}``; unobserved entries are masked out.

    Parameters
    ----------
    dim : int
        Target width ``d`` (the modality's feature width).
    condition_dims : dict
        Other modality → its width ``d_{m'}``.
    channels : sequence of int
        Channels per level, e.g. ``(32, 64)``.
    token_dim : int
        Width of condition tokens.
    time_dim : int
        Width of the time embedding (even).
    heads : int
        Attention heads (must divide every channel count).

    Shapes: ``x`` ``(B, N, d)``, ``t`` ``(B,)``, ``std`` ``(B,)``, ``mask`` ``(B, N)`` bool,
    ``condition`` ``{m': (B, N, d_{m'})}`` with ``condition_mask`` ``(B, N, M')`` bool (in
    ``condition_dims`` order) → ``(B, N, d)``, zero on padding.

    Example
    -------
    >>> net = ConditionalScoreUNet1d(4, {"t": 3})
    >>> x, m = torch.randn(2, 5, 4), torch.ones(2, 5, dtype=torch.bool)
    >>> net(x, torch.rand(2), torch.ones(2), m, {"t": torch.randn(2, 5, 3)},
    ...     torch.ones(2, 5, 1, dtype=torch.bool)).shape
    torch.Size([2, 5, 4])
    """

    def __init__(self, dim: int, condition_dims: dict[str, int], channels: Sequence[int] = (32, 64),
                 token_dim: int = 32, time_dim: int = 32, heads: int = 2) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels or min(channels) < 1:
            raise ValueError(f"channels must be a non-empty sequence of positive ints, got {channels}")
        if not condition_dims:
            raise ValueError("a conditional score network needs at least one condition modality")
        self.dim, self.channels = dim, channels
        self.condition_names = tuple(condition_dims)
        self.token_dim = token_dim
        self.time_embed = nn.Sequential(
            GaussianFourierProjection(time_dim), nn.Linear(time_dim, time_dim), nn.SiLU()
        )
        self.token_proj = nn.ModuleDict(
            {m: nn.Linear(int(d), token_dim) for m, d in condition_dims.items()}
        )
        self.token_modality = nn.Parameter(torch.zeros(len(condition_dims), token_dim))
        self.down = nn.ModuleList()
        c_prev = dim
        for c in channels:
            self.down.append(_Block(c_prev, c, time_dim, token_dim, heads))
            c_prev = c
        self.up = nn.ModuleList(
            _Block(channels[level] + channels[level - 1], channels[level - 1], time_dim, token_dim, heads)
            for level in range(len(channels) - 1, 0, -1)
        )
        self.out = SequenceConv(channels[0], dim, 3)
        nn.init.normal_(self.token_modality, std=0.02)

    @property
    def multiple(self) -> int:
        """Sequence lengths are padded to a multiple of this (``2^(levels − 1)``)."""
        return 2 ** (len(self.channels) - 1)

    def tokens(self, condition: dict[str, Tensor], condition_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Condition tokens ``(B, N·M', token_dim)`` and their mask ``(B, N·M')``."""
        N = condition_mask.shape[1]
        pe = sinusoidal_positions(N, self.token_dim, condition_mask.device, self.token_modality.dtype)
        parts = [
            self.token_proj[m](condition[m]) + pe + self.token_modality[k]
            for k, m in enumerate(self.condition_names)
        ]
        return torch.cat(parts, dim=1), condition_mask.transpose(1, 2).reshape(condition_mask.shape[0], -1)

    def forward(self, x: Tensor, t: Tensor, std: Tensor, mask: Tensor, condition: dict[str, Tensor],
                condition_mask: Tensor) -> Tensor:
        B, N, _ = x.shape
        tokens, token_mask = self.tokens(condition, condition_mask)
        pad = (-N) % self.multiple
        h = F.pad(x, (0, 0, 0, pad))
        m = F.pad(mask.to(x.dtype), (0, pad))
        temb = self.time_embed(t)
        skips, masks, step = [], [], 1
        for level, block in enumerate(self.down):
            if level > 0:
                # Halve the sequence: mean of pairs (padding is zero, so a pair with one real
                # utterance keeps half its value; the mask marks the pair real).
                h = h.view(B, -1, 2, h.shape[-1]).mean(2)
                m = m.view(B, -1, 2).amax(2)
                step *= 2
            h = block(h, temb, m, step, tokens, token_mask)
            skips.append(h)
            masks.append(m)
        for k, block in enumerate(self.up):
            level = len(self.channels) - 2 - k
            step //= 2
            h = torch.cat([h.repeat_interleave(2, dim=1), skips[level]], dim=-1)
            h = block(h, temb, masks[level], step, tokens, token_mask)
        out = self.out(h)[:, :N]
        return out / std[:, None, None] * mask[:, :, None].to(out.dtype)
