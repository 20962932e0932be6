"""From decoded edge probabilities to 0/1 adjacency matrices.

Three rules, chosen by ``GenerationConfig.edge_sampling``:

* ``"threshold"`` — keep the pairs whose probability exceeds a threshold (deterministic);
* ``"bernoulli"`` — draw every pair independently with its probability;
* ``"degree"`` — draw edges under a degree budget per node. Independent draws give node ``i`` a
  degree with variance ``Σ_j p_ij (1 − p_ij)``, wider than in families whose degrees sit in a narrow
  band (proteins, molecules: most ENZYMES nodes have degree 3–5). Here node ``i`` may take at most
  ``b_i = round(Σ_j p_ij)`` edges, its expected degree under the decoder. Pairs are visited in the
  order of their log-odds plus Gumbel noise (a random order that favours likely pairs: the Gumbel
  top-k trick draws pairs without replacement in proportion to their odds), and a pair becomes an
  edge while both of its nodes have budget left. Degrees therefore never exceed the budget and reach
  it unless a node runs out of partners with budget. Not for families whose degrees are as wide as
  independent edges make them (SBM: there it doubles the degree MMD, docs/generation.md).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .config import EDGE_SAMPLING

__all__ = ["EDGE_SAMPLING", "sample_edges", "bernoulli_edges", "degree_budget_edges", "degree_budgets"]

# Keeps log-odds finite at probabilities of exactly 0 or 1.
_CLAMP = 1e-7


def sample_edges(probabilities: Tensor, how: str, *, generator: torch.Generator | None = None) -> Tensor:
    """Adjacency matrices from edge probabilities by rule ``how`` (module doc).

    Parameters
    ----------
    probabilities : Tensor
        ``(B, N, N)``, symmetric, zero on the diagonal and on padded nodes.
    how : str
        One of :data:`EDGE_SAMPLING`. ``"threshold"`` returns ``probabilities`` unchanged: the caller
        thresholds them (``dense_to_graphs``), so one threshold setting serves every model.
    generator : torch.Generator, optional
        Randomness of ``"bernoulli"`` and ``"degree"``.

    Returns
    -------
    Tensor
        ``(B, N, N)`` in the dtype of ``probabilities``: 0/1, symmetric, zero diagonal (``"bernoulli"``,
        ``"degree"``), or the probabilities themselves (``"threshold"``).
    """
    if how == "threshold":
        return probabilities
    if how == "bernoulli":
        return bernoulli_edges(probabilities, generator=generator)
    if how == "degree":
        return degree_budget_edges(probabilities, generator=generator)
    raise ValueError(f"edge sampling must be one of {list(EDGE_SAMPLING)}, got {how!r}")


def bernoulli_edges(probabilities: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Each pair ``i < j`` an edge with probability ``p_ij``, independently; ``(B, N, N)`` → same."""
    draw = torch.rand(probabilities.shape, generator=generator, dtype=probabilities.dtype)
    upper = torch.triu((draw < probabilities).to(probabilities.dtype), diagonal=1)
    return upper + upper.mT


def degree_budgets(probabilities: Tensor) -> Tensor:
    """``(B, N)`` long: each node's budget ``round(Σ_j p_ij)`` (diagonal excluded)."""
    off_diagonal = probabilities - torch.diag_embed(torch.diagonal(probabilities, dim1=-2, dim2=-1))
    return torch.round(off_diagonal.sum(dim=-1)).long()


def degree_budget_edges(probabilities: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Edges drawn in Gumbel-perturbed odds order under the budgets of :func:`degree_budgets`.

    ``(B, N, N)`` → ``(B, N, N)`` 0/1, symmetric, zero diagonal; node ``i``'s degree is at most its
    budget. Pairs of zero probability (padding) have zero budget on at least one side, so padded
    nodes stay empty. Costs ``O(N² log N)`` per graph, once per sample.
    """
    B, N, _ = probabilities.shape
    budgets = degree_budgets(probabilities)
    rows, cols = torch.triu_indices(N, N, offset=1)
    p = probabilities[:, rows, cols].double().clamp(_CLAMP, 1 - _CLAMP)  # (B, pairs)
    uniform = torch.rand(p.shape, generator=generator, dtype=torch.float64).clamp_min(1e-300)
    keys = torch.log(p) - torch.log1p(-p) - torch.log(-torch.log(uniform))
    order = torch.argsort(keys, dim=1, descending=True)
    adjacency = np.zeros((B, N, N))
    rows_np, cols_np = rows.numpy(), cols.numpy()
    for b in range(B):
        left = budgets[b].numpy().copy()
        if left.sum() < 2:
            continue
        for pair in order[b].numpy():
            i, j = rows_np[pair], cols_np[pair]
            if left[i] > 0 and left[j] > 0:
                adjacency[b, i, j] = adjacency[b, j, i] = 1.0
                left[i] -= 1
                left[j] -= 1
                if (left > 0).sum() < 2:  # no pair can take another edge
                    break
    return torch.from_numpy(adjacency).to(probabilities.dtype)
