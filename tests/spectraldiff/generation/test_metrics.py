"""MMD metrics: exact values on hand-checked cases, zero on identical sets, growth under perturbation,
and the train-vs-test floor of community_small."""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pytest

from spectraldiff.generation.datasets import community_small, grid, split_graphs
from spectraldiff.generation.metrics import (
    spectral_histogram,
    METRICS,
    evaluate_graphs,
    gaussian_emd_mmd,
    gaussian_mmd,
    mmd_clustering,
    mmd_degree,
    mmd_orbit,
    mmd_spectral,
)


def test_gaussian_emd_of_two_point_masses_one_bin_apart():
    # EMD between δ_0 and δ_1 is one bin; k = exp(−1/2) across, 1 within each singleton set.
    value = gaussian_emd_mmd([np.array([3.0, 0.0])], [np.array([0.0, 5.0])], sigma=1.0)
    assert value == pytest.approx(2.0 - 2.0 * math.exp(-0.5))


def test_gaussian_emd_uses_bin_spacing_and_zero_pads_shorter_histograms():
    # δ_0 vs δ_3 with bins 0.1 apart: EMD 0.3, and [1] is padded to [1, 0, 0, 0].
    value = gaussian_emd_mmd([np.array([1.0])], [np.array([0.0, 0.0, 0.0, 2.0])], sigma=0.2, bin_spacing=0.1)
    assert value == pytest.approx(2.0 - 2.0 * math.exp(-(0.3**2) / (2 * 0.2**2)))


def test_emd_is_the_transport_cost_for_spread_histograms():
    # Moving half the mass from bin 0 to bin 2 costs 0.5 · 2 = 1.
    value = gaussian_emd_mmd([np.array([1.0, 0.0, 0.0])], [np.array([0.5, 0.0, 0.5])], sigma=1.0)
    assert value == pytest.approx(2.0 - 2.0 * math.exp(-0.5))


def test_gaussian_mmd_on_vectors():
    value = gaussian_mmd([np.array([0.0, 0.0])], [np.array([3.0, 4.0])], sigma=5.0)
    assert value == pytest.approx(2.0 - 2.0 * math.exp(-25.0 / 50.0))


def test_degree_mmd_of_path_and_star_by_hand():
    # P4 degree pmf [0, .5, .5], star K_{1,3}: [0, .75, 0, .25]; CDF gap sum = .25 + .25 = .5.
    value = mmd_degree([nx.path_graph(4)], [nx.star_graph(3)])
    assert value == pytest.approx(2.0 - 2.0 * math.exp(-0.5**2 / 2))


def test_biased_estimate_includes_self_pairs():
    # Two different graphs on one side: the within-set mean has the diagonal ones in it.
    a, b = nx.path_graph(4), nx.star_graph(3)
    k_ab = math.exp(-0.5**2 / 2)
    assert mmd_degree([a, b], [a]) == pytest.approx((2 + 2 * k_ab) / 4 + 1 - 2 * (1 + k_ab) / 2)


@pytest.mark.parametrize("name", list(METRICS))
def test_mmd_of_a_set_with_itself_is_zero(name):
    graphs = community_small(12, seed=1, fixed_communities=False)
    assert METRICS[name](graphs, graphs) == pytest.approx(0.0, abs=1e-12)
    assert METRICS[name](graphs, list(reversed(graphs))) == pytest.approx(0.0, abs=1e-12)


def _rewiring_plan(graph: nx.Graph, rng: np.random.Generator):
    edges = list(graph.edges())
    non_edges = [e for e in itertools.combinations(graph.nodes, 2) if not graph.has_edge(*e)]
    return [edges[i] for i in rng.permutation(len(edges))], [non_edges[i] for i in rng.permutation(len(non_edges))]


def _rewired(graph: nx.Graph, plan, fraction: float) -> nx.Graph:
    """Move the first ``ceil(fraction · m)`` edges of the plan to the first non-edges (nested in fraction)."""
    removed, added = plan
    k = math.ceil(fraction * len(removed))
    out = graph.copy()
    out.remove_edges_from(removed[:k])
    out.add_edges_from(added[:k])
    return out


@pytest.mark.parametrize("name", ["degree", "clustering", "orbit"])
def test_mmd_grows_as_more_edges_are_rewired(name):
    reference = grid(16, seed=0, min_side=4, max_side=8)
    rng = np.random.default_rng(0)
    plans = [_rewiring_plan(g, rng) for g in reference]
    values = [METRICS[name](reference, [_rewired(g, p, f) for g, p in zip(reference, plans)])
              for f in (0.0, 0.03, 0.1, 0.3, 0.6)]
    assert values[0] == pytest.approx(0.0, abs=1e-12)
    assert all(b > a for a, b in zip(values, values[1:])), values


def test_spectral_mmd_grows_as_more_graphs_are_perturbed():
    # σ = 1 bin on a 200-bin spectrum is sharp: one rewired edge already makes two spectra "different",
    # so the perturbation that grows step by step is the share of perturbed graphs.
    reference = grid(16, seed=0, min_side=4, max_side=8)
    rng = np.random.default_rng(1)
    perturbed = [_rewired(g, _rewiring_plan(g, rng), 0.1) for g in reference]
    values = [mmd_spectral(reference, perturbed[:k] + reference[k:]) for k in (0, 4, 8, 12, 16)]
    assert values[0] == pytest.approx(0.0, abs=1e-12)
    assert all(b > a for a, b in zip(values, values[1:])), values


def test_train_vs_test_floor_on_community_small_is_of_the_published_order():
    # Published floor on community_small: degree ≈ 0.02, clustering 0.04–0.07, orbit ≈ 0.005.
    train, test = split_graphs(community_small(100, seed=0))
    floor = evaluate_graphs(test, train)
    assert floor["degree"] < 0.1 and floor["clustering"] < 0.1 and floor["orbit"] < 0.05, floor
    # Failing-capable: Erdős–Rényi graphs with the same sizes and densities are far from the test set.
    rng = np.random.default_rng(0)
    er = [nx.gnp_random_graph(g.number_of_nodes(), nx.density(g), seed=int(rng.integers(1 << 30))) for g in train]
    er_mmd = evaluate_graphs(test, er)
    assert er_mmd["average"] > 4 * floor["average"], (floor, er_mmd)
    assert er_mmd["clustering"] > 0.2


def test_generated_empty_graphs_are_dropped_but_empty_sets_are_rejected():
    graphs = [nx.cycle_graph(5), nx.path_graph(5)]
    assert mmd_degree(graphs, graphs + [nx.Graph()]) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="empty"):
        mmd_orbit(graphs, [])
    with pytest.raises(ValueError, match="no nodes"):
        mmd_clustering([nx.Graph()], graphs)
    with pytest.raises(ValueError, match="directed"):
        mmd_degree(graphs, [nx.DiGraph([(0, 1)])])


def test_evaluate_graphs_reports_the_average_of_degree_clustering_orbit():
    ref, pred = community_small(10, seed=2), community_small(10, seed=3)
    results = evaluate_graphs(ref, pred)
    assert set(results) == {"degree", "clustering", "orbit", "spectral", "average"}
    assert results["average"] == pytest.approx((results["degree"] + results["clustering"] + results["orbit"]) / 3)
    with pytest.raises(ValueError, match="choose from"):
        evaluate_graphs(ref, pred, metrics=["nspdk"])



def test_spectral_histogram_counts_an_eigenvalue_two_rounded_above_the_upper_edge(monkeypatch):
    # Bipartite graphs (grids, trees, even cycles) have normalised-Laplacian eigenvalue exactly 2, the
    # histogram's upper edge; the solver may return it as 2 + ε, which must still be counted.
    graph = nx.path_graph(4)
    exact = np.linalg.eigvalsh(nx.normalized_laplacian_matrix(graph).toarray())
    monkeypatch.setattr(np.linalg, "eigvalsh", lambda matrix: np.append(exact[:-1], 2.0 + 4e-16))
    hist = spectral_histogram(graph)
    assert hist.sum() == 4 and hist[-1] == 1
    assert hist[0] == 1  # and the eigenvalue 0 of a connected graph lands in the first bin
