"""Masked multi-head attention over utterance sequences: self-attention and cross-attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CrossAttention", "SelfAttention"]


class CrossAttention(nn.Module):
    """``h ← h + W_o softmax((LN(h) + PE) W_q (T W_k)ᵀ / √C + mask) T W_v``, multi-head.

    A learned null token is always attendable, so a conversation with no observed condition token
    still gets a finite update.

    Parameters
    ----------
    channels : int
        Width ``C`` of ``h`` (divisible by ``heads``).
    token_dim : int
        Width ``D`` of the condition tokens.
    heads : int

    Shapes: ``h`` ``(B, L, C)``, ``positions`` ``(L, C)``, ``tokens`` ``(B, T, D)``, ``token_mask``
    ``(B, T)`` bool (``True`` = attend) → ``(B, L, C)``.
    """

    def __init__(self, channels: int, token_dim: int, heads: int = 2) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels {channels} must be divisible by heads {heads}")
        self.heads = heads
        self.norm = nn.LayerNorm(channels)
        self.q = nn.Linear(channels, channels)
        self.kv = nn.Linear(token_dim, 2 * channels)
        self.o = nn.Linear(channels, channels)
        self.null = nn.Parameter(torch.zeros(1, 1, token_dim))

    def forward(self, h: Tensor, positions: Tensor, tokens: Tensor, token_mask: Tensor) -> Tensor:
        B, L, C = h.shape
        keys = torch.cat([self.null.expand(B, 1, -1), tokens], dim=1)
        mask = torch.cat([token_mask.new_ones(B, 1), token_mask], dim=1)
        H = self.heads
        q = self.q(self.norm(h) + positions).view(B, L, H, C // H).transpose(1, 2)
        k, v = self.kv(keys).view(B, -1, 2, H, C // H).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        return h + self.o(out.transpose(1, 2).reshape(B, L, C))


class SelfAttention(nn.Module):
    """``h ← h + W_o MHA(LN h)`` over the real utterances of each conversation.

    Shapes: ``h`` ``(B, N, C)`` (``C`` divisible by ``heads``), ``mask`` ``(B, N)`` bool (``True`` on
    real utterances; every conversation needs at least one) → ``(B, N, C)``.
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.o = nn.Linear(width, width)

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        B, N, C = h.shape
        q, k, v = self.qkv(self.norm(h)).view(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        return h + self.o(out.transpose(1, 2).reshape(B, N, C))
