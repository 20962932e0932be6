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

  With ``triangle_bonus β > 0`` the order is updated as edges are accepted: a pair's key is its
  log-odds plus Gumbel noise plus ``β`` times the number of triangles it would close with the edges
  accepted so far (its common neighbours). This is a greedy draw from a model with a triangle term,
  as in exponential random graph models: budgets fix the degrees, the bonus puts the edges where they
  close triangles. Independent edges and plain budgets place a node's less likely edges anywhere, so
  they close too few triangles on clustered families (ENZYMES: docs/generation.md). Closing
  triangles strands more budget than the plain order, so a last pass of edge swaps fills it. Not for
  families whose dense parts are not cliques: on SBM blocks (within-block edges independent at 0.3)
  ``β = 2`` splits every block into cliques of about 10 nodes and no sample passes the SBM test.

  The budgets need not come from the decoder. :func:`ranked_budgets` hands a graph the degree
  sequence of another graph of the same size (``GenerationConfig.degree_budgets="training"``: the
  training graph whose node count was drawn), node by node in the order of the decoded expected
  degrees, so the decoder decides which node gets which degree and the degree distribution is the
  data's, as node counts already are.
"""

from __future__ import annotations

import heapq

import numpy as np
import torch
from torch import Tensor

from .config import EDGE_SAMPLING

__all__ = ["EDGE_SAMPLING", "sample_edges", "bernoulli_edges", "degree_budget_edges", "degree_budgets",
           "ranked_budgets"]

# Keeps log-odds finite at probabilities of exactly 0 or 1.
_CLAMP = 1e-7


def sample_edges(probabilities: Tensor, how: str, *, generator: torch.Generator | None = None,
                 triangle_bonus: float = 0.0, budgets: Tensor | None = None) -> Tensor:
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
    triangle_bonus : float
        ``"degree"`` only (an error with the other rules): log-odds added to a pair per triangle it
        would close (module doc); 0 gives the plain budget draw.
    budgets : Tensor, optional
        ``"degree"`` only: ``(B, N)`` degree budgets; default :func:`degree_budgets`.

    Returns
    -------
    Tensor
        ``(B, N, N)`` in the dtype of ``probabilities``: 0/1, symmetric, zero diagonal (``"bernoulli"``,
        ``"degree"``), or the probabilities themselves (``"threshold"``).
    """
    if how not in EDGE_SAMPLING:
        raise ValueError(f"edge sampling must be one of {list(EDGE_SAMPLING)}, got {how!r}")
    if (triangle_bonus or budgets is not None) and how != "degree":
        raise ValueError(f"triangle_bonus and budgets apply to edge sampling 'degree' only, got {how!r}")
    if how == "threshold":
        return probabilities
    if how == "bernoulli":
        return bernoulli_edges(probabilities, generator=generator)
    return degree_budget_edges(probabilities, generator=generator, triangle_bonus=triangle_bonus, budgets=budgets)


def bernoulli_edges(probabilities: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Each pair ``i < j`` an edge with probability ``p_ij``, independently; ``(B, N, N)`` → same."""
    draw = torch.rand(probabilities.shape, generator=generator, dtype=probabilities.dtype)
    upper = torch.triu((draw < probabilities).to(probabilities.dtype), diagonal=1)
    return upper + upper.mT


def degree_budgets(probabilities: Tensor) -> Tensor:
    """``(B, N)`` long: each node's budget ``round(Σ_j p_ij)`` (diagonal excluded)."""
    off_diagonal = probabilities - torch.diag_embed(torch.diagonal(probabilities, dim1=-2, dim2=-1))
    return torch.round(off_diagonal.sum(dim=-1)).long()


def ranked_budgets(probabilities: Tensor, degrees: Tensor) -> Tensor:
    """Budgets ``(B, N)`` long that give each graph the degree sequence ``degrees`` ``(B, N)`` (padding
    zero), the larger degrees to the nodes of larger expected degree ``Σ_j p_ij``.

    Padded nodes (expected degree exactly 0) sort first and take the zeros of the padding, so a
    sequence of ``n`` degrees lands on the ``n`` real nodes when both count ``n`` nodes.
    """
    if degrees.shape != probabilities.shape[:2]:
        raise ValueError(f"degrees must be (B, N) = {tuple(probabilities.shape[:2])}, got {tuple(degrees.shape)}")
    order = torch.argsort(probabilities.sum(dim=-1), dim=1, stable=True)
    ascending = torch.sort(degrees.long(), dim=1).values
    return torch.empty_like(ascending).scatter_(1, order, ascending)


def degree_budget_edges(probabilities: Tensor, *, generator: torch.Generator | None = None,
                        triangle_bonus: float = 0.0, budgets: Tensor | None = None) -> Tensor:
    """Edges drawn in Gumbel-perturbed odds order under ``budgets`` (default :func:`degree_budgets`).

    ``(B, N, N)`` → ``(B, N, N)`` 0/1, symmetric, zero diagonal; node ``i``'s degree is at most its
    budget. Pairs of zero probability (padding) have zero budget on at least one side, so padded
    nodes stay empty. ``triangle_bonus`` ``β ≥ 0`` raises a pair's key by ``β`` per triangle it would
    close (module doc); the same Gumbel draws are used for every ``β``, so as ``β → 0`` its greedy
    pass gives the plain draw (edge swaps then fill the budgets that pass left open). Costs ``O(N² log N)`` per graph, once per sample (more with ``β > 0``: a heap update per
    new two-path).
    """
    if not triangle_bonus >= 0.0:  # also refuses NaN
        raise ValueError(f"triangle_bonus must be ≥ 0, got {triangle_bonus}")
    B, N, _ = probabilities.shape
    if budgets is None:
        budgets = degree_budgets(probabilities)
    elif budgets.shape != (B, N):
        raise ValueError(f"budgets must be (B, N) = {(B, N)}, got {tuple(budgets.shape)}")
    else:  # a node without any probability mass (padding) takes no edge, whatever its budget
        budgets = torch.where(probabilities.sum(dim=-1) > 0, budgets.long(), 0)
    budgets = budgets.numpy()
    rows, cols = torch.triu_indices(N, N, offset=1)
    p = probabilities[:, rows, cols].double().clamp(_CLAMP, 1 - _CLAMP)  # (B, pairs)
    uniform = torch.rand(p.shape, generator=generator, dtype=torch.float64).clamp_min(1e-300)
    keys = torch.log(p) - torch.log1p(-p) - torch.log(-torch.log(uniform))
    adjacency = np.zeros((B, N, N))
    rows_np, cols_np = rows.numpy(), cols.numpy()
    for b in range(B):
        if (budgets[b] > 0).sum() < 2:
            continue
        if triangle_bonus > 0:
            _fill_closing_triangles(adjacency[b], budgets[b].copy(), keys[b].numpy(), rows_np, cols_np,
                                    triangle_bonus)
        else:
            _fill_in_order(adjacency[b], budgets[b].copy(), torch.argsort(keys[b], descending=True).numpy(),
                           rows_np, cols_np)
    return torch.from_numpy(adjacency).to(probabilities.dtype)


def _fill_in_order(adjacency: np.ndarray, left: np.ndarray, order: np.ndarray, rows: np.ndarray,
                   cols: np.ndarray) -> None:
    """Accept pairs ``(rows[q], cols[q])`` for ``q`` in ``order`` while both ends have budget ``left``;
    writes ``adjacency`` ``(N, N)`` in place."""
    for pair in order:
        i, j = rows[pair], cols[pair]
        if left[i] > 0 and left[j] > 0:
            adjacency[i, j] = adjacency[j, i] = 1.0
            left[i] -= 1
            left[j] -= 1
            if (left > 0).sum() < 2:  # no pair can take another edge
                break


def _fill_closing_triangles(adjacency: np.ndarray, left: np.ndarray, keys: np.ndarray, rows: np.ndarray,
                            cols: np.ndarray, bonus: float) -> None:
    """As :func:`_fill_in_order`, in the order of ``keys`` (per pair, ``(pairs,)``) plus ``bonus`` per
    common neighbour among the accepted edges, kept current with a max-heap: each new two-path
    ``a – c – m`` pushes pair ``(a, m)`` again with its raised key, and entries whose key was raised
    since are skipped when popped. Then :func:`_fill_by_swaps` fills the budgets left open."""
    N = adjacency.shape[0]
    key = np.zeros((N, N))
    key[rows, cols] = keys
    key = key + key.T
    closed = np.zeros((N, N), dtype=np.int64)  # common neighbours among the accepted edges
    # Built from Python lists: indexing numpy scalars pair by pair took most of the draw on ENZYMES.
    candidates = np.flatnonzero((left[rows] > 0) & (left[cols] > 0))
    heap = list(zip((-keys[candidates]).tolist(), [0] * len(candidates), rows[candidates].tolist(),
                    cols[candidates].tolist()))
    heapq.heapify(heap)
    neighbours: list[list[int]] = [[] for _ in range(N)]
    open_nodes = int((left > 0).sum())
    while heap and open_nodes >= 2:
        _, count, i, j = heapq.heappop(heap)
        if count != closed[i, j] or left[i] == 0 or left[j] == 0:
            continue  # superseded by a raised key, or an end is full
        adjacency[i, j] = adjacency[j, i] = 1.0
        for a in (i, j):
            left[a] -= 1
            open_nodes -= int(left[a] == 0)
        for a, c in ((i, j), (j, i)):  # new two-paths a – c – m: pair (a, m) would close a triangle
            if left[a] == 0:
                continue
            for m in neighbours[c]:
                if left[m] > 0 and not adjacency[a, m]:
                    closed[a, m] += 1
                    closed[m, a] += 1
                    u, v = min(a, m), max(a, m)
                    heapq.heappush(heap, (-(key[u, v] + bonus * closed[u, v]), int(closed[u, v]), u, v))
        neighbours[i].append(j)
        neighbours[j].append(i)
    _fill_by_swaps(adjacency, left, key)


def _fill_by_swaps(adjacency: np.ndarray, left: np.ndarray, key: np.ndarray) -> None:
    """Fill the budgets ``left`` ``(N,)`` that a greedy pass left open, by edge swaps that keep every
    other degree: an open node ``u`` with two open slots takes the ends of an edge ``x – y`` (neither
    adjacent to ``u``) in its place; two open nodes ``u, v`` take one end each (``u – x``, ``v – y``).
    Each time the swap of largest ``key[u, x] + key[v, y] − key[x, y]`` (``key`` ``(N, N)``, the pair
    keys) is made, until no swap is possible. Closing triangles leaves more budgets open than the
    plain order (1.2 % against 0.5 % of the budget in an ENZYMES draw), which shows in the degree MMD.
    """
    while True:
        open_nodes = np.flatnonzero(left > 0)
        x, y = np.nonzero(adjacency > 0)  # each edge in both orientations: candidate x – y to give up
        best, best_gain = None, -np.inf
        for a, u in enumerate(open_nodes):
            for v in open_nodes[a:]:
                if u == v and left[u] < 2:
                    continue
                if u != v and not adjacency[u, v]:  # the greedy pass never met them: join them
                    best, best_gain = (u, v, None, None), np.inf
                    break
                ok = (adjacency[u, x] == 0) & (adjacency[v, y] == 0) & (x != u) & (x != v) & (y != u) & (y != v)
                if not ok.any():
                    continue
                gain = np.where(ok, key[u, x] + key[v, y] - key[x, y], -np.inf)
                e = int(np.argmax(gain))
                if gain[e] > best_gain:
                    best, best_gain = (u, v, x[e], y[e]), gain[e]
            if best_gain == np.inf:
                break
        if best is None:
            return
        u, v, x, y = best
        if x is not None:
            adjacency[x, y] = adjacency[y, x] = 0.0
            adjacency[u, x] = adjacency[x, u] = 1.0
            adjacency[v, y] = adjacency[y, v] = 1.0
        else:
            adjacency[u, v] = adjacency[v, u] = 1.0
        left[u] -= 1
        left[v] -= 1
