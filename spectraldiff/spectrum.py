"""Operations on padded spectra: sorting sampled eigenvalues within each graph's own slots.

A sampler returns eigenvalues ``(B, N)`` in arbitrary order on the real slots and zeros on the
padding. Sorting the whole row would mix the padded zeros in among the real eigenvalues (negative
ones before, positive ones after), so the ``i``-th eigenvector would meet the wrong eigenvalue and the
padding would receive real values: the naive sort gives empty or broken graphs.
:func:`sort_spectrum` sorts within the mask only.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["sort_spectrum"]


def sort_spectrum(eigenvalues: Tensor, mask: Tensor, *, descending: bool = False,
                  return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Sort each row of ``eigenvalues (B, N)`` among its valid slots (``mask (B, N)`` True).

    The sorted values fill the valid slots in order (for the usual leading mask of
    :func:`spectraldiff.eigh.node_mask`: the first ``n_b`` slots, ascending like ``batched_eigh``'s
    columns); padded slots are 0. With ``return_indices`` also returns ``(B, N)`` source slot of each
    entry (padded slots point at themselves), e.g. to permute matching eigenvectors with
    ``torch.gather``.

    Examples
    --------
    >>> lam = torch.tensor([[0.5, -1.0, 2.0, 0.0], [3.0, 1.0, 0.0, 0.0]])
    >>> mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    >>> sort_spectrum(lam, mask)
    tensor([[-1.0000,  0.5000,  2.0000,  0.0000],
            [ 1.0000,  3.0000,  0.0000,  0.0000]])
    """
    if eigenvalues.shape != mask.shape or eigenvalues.dim() != 2:
        raise ValueError(f"eigenvalues and mask must both be (B, N); got {tuple(eigenvalues.shape)} and "
                         f"{tuple(mask.shape)}")
    mask = mask.to(torch.bool)
    # Padding sorts last whichever the direction, so the first n_b sorted entries are the real ones.
    fill = float("-inf") if descending else float("inf")
    values, order = torch.sort(eigenvalues.masked_fill(~mask, fill), dim=-1, descending=descending, stable=True)
    counts = mask.sum(dim=-1, keepdim=True)
    leading = torch.arange(mask.shape[-1], device=mask.device) < counts  # (B, N) first n_b slots
    out = torch.zeros_like(eigenvalues)
    out[mask] = values[leading]  # both select row by row, in slot order
    if not return_indices:
        return out
    indices = torch.arange(mask.shape[-1], device=mask.device).expand_as(mask).clone()
    indices[mask] = order[leading]
    return out, indices
