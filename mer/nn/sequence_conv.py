"""Convolution along the utterance axis as one matrix product, for short sequences of small width."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SequenceConv"]


class SequenceConv(nn.Module):
    """``y_i = b + Σ_{k} W_k x_{i + k − (l−1)/2}``: a "same"-padded 1-D convolution over ``(B, L, C)``.

    Mathematically ``nn.Conv1d(C_in, C_out, l, padding=l // 2)`` applied along ``L``, but computed as
    the ``l`` shifted copies of ``x`` concatenated on the channel axis times one ``(l·C_in, C_out)``
    matrix. Conversations are short (tens of utterances) and widths small, where oneDNN's convolution
    spends most of its time in setup; one matrix product is several times faster on CPU and keeps the
    channels-last layout every other layer here uses.

    Parameters
    ----------
    in_dim, out_dim : int
    kernel_size : int
        Odd ``l ≥ 1``.

    Shapes: ``(B, L, C_in)`` → ``(B, L, C_out)``; positions outside ``[0, L)`` count as zero.
    """

    def __init__(self, in_dim: int, out_dim: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd integer >= 1, got {kernel_size}")
        self.in_dim, self.out_dim, self.kernel_size = in_dim, out_dim, kernel_size
        self.linear = nn.Linear(kernel_size * in_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        if self.kernel_size == 1:
            return self.linear(x)
        half = self.kernel_size // 2
        L = x.shape[1]
        padded = F.pad(x, (0, 0, half, half))
        shifted = torch.cat([padded[:, k : k + L] for k in range(self.kernel_size)], dim=-1)
        return self.linear(shifted)
