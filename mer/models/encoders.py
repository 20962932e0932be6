"""Modality encoders: a temporal convolution over the utterance sequence plus position embeddings."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from mer.nn.positions import sinusoidal_positions

__all__ = ["ModalityEncoder", "ModalityEncoders"]


class ModalityEncoder(nn.Module):
    """``H = Conv1d_{l}(X) + PE``: one modality's utterance sequence to the common width ``d``.

    The convolution runs along the utterance axis with an odd kernel ``l`` and "same" padding, so
    utterance ``i`` sees utterances ``i − (l−1)/2 … i + (l−1)/2`` of its own conversation (padded
    utterances are zero on input and zeroed on output, so conversations of different lengths in one
    batch do not leak into each other).

    Parameters
    ----------
    in_dim : int
        ``d_m``.
    out_dim : int
        ``d``.
    kernel_size : int
        Odd ``l ≥ 1``.

    Shapes: ``x`` ``(B, N, d_m)``, ``utterance_mask`` ``(B, N)`` bool → ``(B, N, d)``.

    Example
    -------
    >>> enc = ModalityEncoder(24, 32, kernel_size=3)
    >>> enc(torch.randn(2, 5, 24), torch.ones(2, 5, dtype=torch.bool)).shape
    torch.Size([2, 5, 32])
    """

    def __init__(self, in_dim: int, out_dim: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd integer >= 1, got {kernel_size}")
        if in_dim < 1 or out_dim < 1:
            raise ValueError(f"widths must be >= 1, got in_dim={in_dim}, out_dim={out_dim}")
        self.in_dim, self.out_dim, self.kernel_size = in_dim, out_dim, kernel_size
        self.conv = nn.Conv1d(in_dim, out_dim, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor, utterance_mask: Tensor) -> Tensor:
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)
        h = h + sinusoidal_positions(x.shape[1], self.out_dim, x.device, h.dtype)
        return h * utterance_mask[:, :, None].to(h.dtype)


class ModalityEncoders(nn.Module):
    """One :class:`ModalityEncoder` per modality, stacked to ``(B, N, M, d)``.

    Parameters
    ----------
    feature_dims : mapping of str to int
        Modality → ``d_m`` (the order is the modality order).
    dim : int
        Common width ``d``.
    kernel_sizes : int or mapping of str to int
        ``l_m`` per modality (one value for all).

    Shapes: ``features`` ``{m: (B, N, d_m)}``, ``utterance_mask`` ``(B, N)`` → ``(B, N, M, d)``.
    """

    def __init__(
        self, feature_dims: Mapping[str, int], dim: int, kernel_sizes: int | Mapping[str, int] = 3
    ) -> None:
        super().__init__()
        self.modalities: Sequence[str] = tuple(feature_dims)
        if isinstance(kernel_sizes, Mapping):
            unknown = sorted(set(self.modalities) - set(kernel_sizes))
            if unknown:
                raise ValueError(
                    f"kernel_sizes lacks modalities {unknown}; give one per modality of "
                    f"{list(self.modalities)} or a single int"
                )
            kernels = {m: int(kernel_sizes[m]) for m in self.modalities}
        else:
            kernels = {m: int(kernel_sizes) for m in self.modalities}
        self.encoders = nn.ModuleDict(
            {m: ModalityEncoder(int(feature_dims[m]), dim, kernels[m]) for m in self.modalities}
        )
        # Tells the fusion graph's nodes apart by modality once every node has width d.
        self.modality_embedding = nn.Parameter(torch.zeros(len(self.modalities), dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.modality_embedding, std=1.0 / math.sqrt(self.modality_embedding.shape[1]))

    def forward(self, features: Mapping[str, Tensor], utterance_mask: Tensor) -> Tensor:
        h = torch.stack(
            [self.encoders[m](features[m], utterance_mask) for m in self.modalities], dim=2
        )
        return (h + self.modality_embedding) * utterance_mask[:, :, None, None].to(h.dtype)
