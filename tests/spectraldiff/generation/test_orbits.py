"""Orbit counts of 2–4-node graphlets against brute-force enumeration of induced subgraphs."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest

from spectraldiff.generation.orbits import NON_INDUCED_IN_INDUCED, NUM_ORBITS, orbit_counts, orbit_counts_from_adjacency


def _orbit_in_graphlet(nodes, edges, x) -> int | None:
    """Orbit of ``x`` in the connected graph on ``nodes`` with ``edges`` (None if not connected)."""
    g = nx.Graph()
    g.add_nodes_from(nodes)
    g.add_edges_from(edges)
    if not nx.is_connected(g):
        return None
    k, m = len(nodes), len(edges)
    degrees = sorted(d for _, d in g.degree())
    dx = g.degree(x)
    if k == 2:
        return 0
    if k == 3:
        return 3 if m == 3 else {1: 1, 2: 2}[dx]
    if m == 3:
        return {1: 4, 2: 5}[dx] if degrees == [1, 1, 2, 2] else {1: 6, 3: 7}[dx]
    if m == 4:
        return 8 if degrees == [2, 2, 2, 2] else {1: 9, 2: 10, 3: 11}[dx]
    if m == 5:
        return {2: 12, 3: 13}[dx]
    return 14


def brute_force_orbits(graph: nx.Graph) -> np.ndarray:
    index = {v: i for i, v in enumerate(graph.nodes)}
    counts = np.zeros((graph.number_of_nodes(), NUM_ORBITS), dtype=np.int64)
    for k in (2, 3, 4):
        for subset in itertools.combinations(graph.nodes, k):
            edges = list(graph.subgraph(subset).edges())
            for x in subset:
                orbit = _orbit_in_graphlet(subset, edges, x)
                if orbit is not None:
                    counts[index[x], orbit] += 1
    return counts


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("p", [0.15, 0.4, 0.8])
def test_orbit_counts_equal_brute_force_on_random_graphs(seed, p):
    graph = nx.gnp_random_graph(11, p, seed=seed)
    np.testing.assert_array_equal(orbit_counts(graph), brute_force_orbits(graph))


@pytest.mark.parametrize(
    "graph",
    [nx.path_graph(6), nx.star_graph(5), nx.cycle_graph(7), nx.complete_graph(6), nx.empty_graph(4),
     nx.grid_2d_graph(3, 4), nx.lollipop_graph(4, 3), nx.complete_bipartite_graph(3, 4)],
    ids=["path", "star", "cycle", "clique", "edgeless", "grid", "lollipop", "bipartite"],
)
def test_orbit_counts_equal_brute_force_on_structured_graphs(graph):
    np.testing.assert_array_equal(orbit_counts(graph), brute_force_orbits(graph))


def test_hand_counted_orbits_of_a_paw():
    # Triangle 0-1-2 with tail 2-3: node 3 is the tail end, 2 the degree-3 triangle node.
    paw = nx.Graph([(0, 1), (1, 2), (0, 2), (2, 3)])
    counts = orbit_counts(paw)
    assert counts[3, 9] == 1 and counts[2, 11] == 1 and counts[0, 10] == counts[1, 10] == 1
    assert counts[:, [4, 5, 6, 7, 8, 12, 13, 14]].sum() == 0
    assert counts[3].tolist()[:4] == [1, 2, 0, 0]  # degree 1, end of two induced 3-paths


def test_overlap_matrix_matches_enumeration():
    representatives = {  # orbit -> (edges of its graphlet, a node in that orbit)
        4: ([(0, 1), (1, 2), (2, 3)], 0), 5: ([(0, 1), (1, 2), (2, 3)], 1),
        6: ([(0, 1), (0, 2), (0, 3)], 1), 7: ([(0, 1), (0, 2), (0, 3)], 0),
        8: ([(0, 1), (1, 2), (2, 3), (3, 0)], 0),
        9: ([(0, 1), (1, 2), (2, 3), (3, 1)], 0), 10: ([(0, 1), (1, 2), (2, 3), (3, 1)], 2),
        11: ([(0, 1), (1, 2), (2, 3), (3, 1)], 1),
        12: ([(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)], 1), 13: ([(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)], 0),
        14: ([(0, 1), (1, 2), (2, 3), (3, 0), (0, 2), (1, 3)], 0),
    }
    derived = np.zeros_like(NON_INDUCED_IN_INDUCED)
    for j, (edges, x) in representatives.items():
        assert _orbit_in_graphlet(range(4), edges, x) == j
        for r in range(3, len(edges) + 1):
            for sub in itertools.combinations(edges, r):
                nodes = sorted(set(itertools.chain(*sub)))
                if len(nodes) == 4:
                    k = _orbit_in_graphlet(nodes, list(sub), x)
                    if k is not None:
                        derived[k - 4, j - 4] += 1
    np.testing.assert_array_equal(derived, NON_INDUCED_IN_INDUCED)


def test_self_loops_and_node_labels_are_ignored():
    graph = nx.relabel_nodes(nx.gnp_random_graph(9, 0.5, seed=3), {i: f"n{i}" for i in range(9)})
    looped = graph.copy()
    looped.add_edge("n0", "n0")
    np.testing.assert_array_equal(orbit_counts(looped), orbit_counts(graph))


def test_rejects_directed_and_asymmetric_input():
    with pytest.raises(ValueError, match="undirected"):
        orbit_counts(nx.DiGraph([(0, 1)]))
    with pytest.raises(ValueError, match="symmetric"):
        orbit_counts_from_adjacency(np.array([[0, 1], [0, 0]]))
