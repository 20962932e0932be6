"""Sinusoidal position embeddings of utterance indices (and of discrete diffusion steps)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["sinusoidal_positions"]


def sinusoidal_positions(length: int, dim: int, device=None, dtype=torch.float32) -> Tensor:
    """Transformer position embedding ``(length, dim)``.

    ``PE(pos, 2i) = sin(pos / 10000^{2i/d})``, ``PE(pos, 2i+1) = cos(pos / 10000^{2i/d})``; for odd
    ``d`` the last column is a sine. Computed in float64, returned in ``dtype``.

    >>> sinusoidal_positions(3, 4).shape
    torch.Size([3, 4])
    """
    pos = torch.arange(length, device=device, dtype=torch.float64)[:, None]
    i = torch.arange(0, dim, 2, device=device, dtype=torch.float64)
    angle = pos / torch.pow(10000.0, i / dim)
    pe = torch.zeros(length, dim, device=device, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return pe.to(dtype)
