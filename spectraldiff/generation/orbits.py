"""Node orbit counts of 2–4-node graphlets (the 15 orbits ORCA counts with ``orca node 4``).

For every node ``x`` of a simple undirected graph, ``orbit_counts`` returns how many *induced*
connected graphlets on 2, 3 or 4 nodes contain ``x`` in each automorphism orbit, in the numbering
of Pržulj (2007) and ORCA (Hočevar & Demšar, 2014):

====  ==============================  ====  ==============================
 0    edge (degree)                    8    4-cycle
 1    3-path, end                      9    paw (tailed triangle), tail end
 2    3-path, middle                  10    paw, triangle node of degree 2
 3    triangle                        11    paw, triangle node of degree 3
 4    4-path, end                     12    diamond, node of degree 2
 5    4-path, inner                   13    diamond, node of degree 3
 6    claw (3-star), leaf             14    4-clique
 7    claw, centre
====  ==============================  ====  ==============================

This is the table GraphRNN/GDSS's ``orbit_stats_all`` reads from ORCA (all 15 columns), averages
over the nodes of each graph and compares with a Gaussian kernel; see :func:`spectraldiff.generation.metrics.mmd_orbit`.

Method (after ORCA): the 3-node orbits come straight from degrees and triangle counts. For the
4-node orbits we first count, with dense matrix products, the *non-induced* copies of each pattern
touching ``x`` (a 4-cycle with a chord still contains two 4-paths, ...), then undo the overlaps with
the unit upper-triangular system :data:`NON_INDUCED_IN_INDUCED`. Cost ``O(n³ + Σ_x deg(x)³)`` time and
``O(n²)`` memory, so it suits the few-hundred-node graphs of the generation benchmarks.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

__all__ = ["NUM_ORBITS", "ORBIT_NAMES", "NON_INDUCED_IN_INDUCED", "orbit_counts", "orbit_counts_from_adjacency"]

NUM_ORBITS = 15

ORBIT_NAMES = (
    "edge", "3-path end", "3-path middle", "triangle",
    "4-path end", "4-path inner", "claw leaf", "claw centre", "4-cycle",
    "paw tail end", "paw triangle degree 2", "paw triangle degree 3",
    "diamond degree 2", "diamond degree 3", "4-clique",
)

#: ``M[k − 4, j − 4]``: how many (not necessarily induced) copies of the pattern of orbit ``k``, with
#: ``x`` in orbit ``k``, lie inside one induced graphlet on the same four nodes that has ``x`` in orbit
#: ``j``. Non-induced counts ``N = O Mᵀ`` for induced counts ``O``; the test re-derives it by enumeration.
NON_INDUCED_IN_INDUCED = np.array(
    [
        #  4  5  6  7  8  9 10 11 12 13 14   <- induced orbit j
        [1, 0, 0, 0, 2, 2, 1, 0, 4, 2, 6],  # 4  4-path end
        [0, 1, 0, 0, 2, 0, 1, 2, 2, 4, 6],  # 5  4-path inner
        [0, 0, 1, 0, 0, 1, 1, 0, 2, 1, 3],  # 6  claw leaf
        [0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 1],  # 7  claw centre
        [0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 3],  # 8  4-cycle
        [0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 3],  # 9  paw tail end
        [0, 0, 0, 0, 0, 0, 1, 0, 2, 2, 6],  # 10 paw triangle degree 2
        [0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 3],  # 11 paw triangle degree 3
        [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 3],  # 12 diamond degree 2
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3],  # 13 diamond degree 3
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],  # 14 4-clique
    ],
    dtype=np.int64,
)


def _choose2(x: np.ndarray) -> np.ndarray:
    return x * (x - 1) / 2


def orbit_counts_from_adjacency(adjacency: np.ndarray) -> np.ndarray:
    """Orbit counts ``(n, 15)`` (int64) of the simple graph with 0/1 adjacency ``(n, n)``.

    The diagonal is ignored (self loops do not take part in graphlets); the matrix must be symmetric.
    """
    A = np.asarray(adjacency, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"adjacency must be a square (n, n) matrix, got shape {A.shape}")
    if not np.array_equal(A, A.T):
        raise ValueError("adjacency must be symmetric (an undirected graph)")
    A = (A != 0).astype(np.float64)
    np.fill_diagonal(A, 0.0)
    n = A.shape[0]
    if n == 0:
        return np.zeros((0, NUM_ORBITS), dtype=np.int64)

    deg = A.sum(axis=1)
    A2 = A @ A  # A2[x, y]: common neighbours of x and y (x ≠ y); A2[x, x] = deg(x)
    common_adj = A2 * A  # common neighbours, on edges only
    tri = common_adj.sum(axis=1) / 2  # triangles at each node

    orbits = np.zeros((n, NUM_ORBITS), dtype=np.float64)
    orbits[:, 0] = deg
    orbits[:, 1] = A @ (deg - 1) - 2 * tri
    orbits[:, 2] = _choose2(deg) - tri
    orbits[:, 3] = tri

    # Non-induced counts of the 4-node patterns, one column per orbit 4..14.
    neighbour_deg_sum = A @ deg
    off_diag_A2 = A2 - np.diag(np.diag(A2))
    four_clique = np.empty(n)
    for x in range(n):
        nbrs = np.flatnonzero(A[x])
        S = A[np.ix_(nbrs, nbrs)]
        four_clique[x] = ((S @ S) * S).sum() / 6  # triangles among the neighbours of x

    non_induced = np.stack(
        [
            A @ (neighbour_deg_sum - deg) - deg * (deg - 1) - common_adj.sum(axis=1),  # 4: x-a-b-c
            (deg - 1) * (A @ (deg - 1)) - common_adj.sum(axis=1),  # 5: a-x-b-c
            A @ _choose2(deg - 1),  # 6: claw leaf
            deg * (deg - 1) * (deg - 2) / 6,  # 7: claw centre
            _choose2(off_diag_A2).sum(axis=1),  # 8: 4-cycles, by the node opposite x
            A @ tri - common_adj.sum(axis=1),  # 9: x next to a triangle not containing x
            common_adj @ (deg - 2),  # 10: triangle x-w-v with the tail on w
            tri * (deg - 2),  # 11: triangle at x with the tail on x
            ((A @ (A * (A2 - 1))) * A).sum(axis=1) / 2,  # 12: x on both triangles of a diamond
            (A * _choose2(A2)).sum(axis=1),  # 13: x on the shared edge of a diamond
            four_clique,  # 14
        ],
        axis=1,
    )
    induced = np.linalg.solve(NON_INDUCED_IN_INDUCED.astype(np.float64), non_induced.T).T
    orbits[:, 4:] = induced
    return np.rint(orbits).astype(np.int64)


def orbit_counts(graph: nx.Graph) -> np.ndarray:
    """Orbit counts ``(n, 15)`` (int64) of an undirected networkx graph, rows in ``graph.nodes`` order.

    Self loops and edge multiplicities are ignored, as ORCA does.

    Example
    -------
    >>> import networkx as nx
    >>> orbit_counts(nx.complete_graph(4))[0].tolist()
    [3, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    """
    if graph.is_directed():
        raise ValueError("orbit counts are defined for undirected graphs; pass graph.to_undirected()")
    return orbit_counts_from_adjacency(nx.to_numpy_array(graph, nodelist=list(graph.nodes), weight=None))
