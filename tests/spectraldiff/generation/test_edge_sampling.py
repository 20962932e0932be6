"""Edge probabilities to adjacency matrices: threshold, independent draws and degree budgets."""

import networkx as nx
import pytest
import torch

from spectraldiff.generation import GenerationConfig
from spectraldiff.generation.edge_sampling import (EDGE_SAMPLING, bernoulli_edges, degree_budget_edges,
                                                    degree_budgets, sample_edges)
from spectraldiff.generation.spectral_vectors import SpectralVectorGenerator


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ring_probabilities(n: int = 12, likely: float = 0.95, unlikely: float = 0.005) -> torch.Tensor:
    """``(1, n, n)``: pairs at ring distance 1 or 2 likely, every other pair unlikely (budget 4 each)."""
    ring = torch.from_numpy(nx.to_numpy_array(nx.circulant_graph(n, [1, 2]))).float()
    p = torch.where(ring > 0, torch.tensor(likely), torch.tensor(unlikely))
    return (p * (1 - torch.eye(n)))[None]


def uniform_probabilities(graphs: int, n: int, p: float) -> torch.Tensor:
    return (torch.full((n, n), p) * (1 - torch.eye(n))).expand(graphs, n, n).clone()


def test_budgets_are_the_rounded_expected_degrees():
    probabilities = ring_probabilities()  # 4 · 0.95 + 7 · 0.005 = 3.835
    assert degree_budgets(probabilities).tolist() == [[4] * 12]
    assert degree_budgets(uniform_probabilities(1, 5, 0.3)).tolist() == [[1] * 5]  # 4 · 0.3 = 1.2


def test_degree_rule_recovers_the_likely_ring_and_never_exceeds_a_budget():
    probabilities = ring_probabilities()
    adjacency = degree_budget_edges(probabilities, generator=seeded())
    expected = torch.from_numpy(nx.to_numpy_array(nx.circulant_graph(12, [1, 2]))).float()
    assert torch.equal(adjacency[0], expected)
    # Independent draws of the same probabilities miss that regular graph.
    assert not torch.equal(bernoulli_edges(probabilities, generator=seeded())[0], expected)


def test_degree_rule_narrows_the_degree_spread_of_independent_edges():
    probabilities = uniform_probabilities(20, 40, 0.2)  # expected degree 7.8, budget 8
    independent = bernoulli_edges(probabilities, generator=seeded()).sum(dim=-1)
    budgeted = degree_budget_edges(probabilities, generator=seeded()).sum(dim=-1)
    assert float(independent.std()) > 2.0  # binomial: √(39 · 0.2 · 0.8) = 2.5
    assert int(budgeted.max()) == 8
    assert float(budgeted.std()) < 0.3
    assert abs(float(budgeted.mean()) - 7.8) < 0.3


def test_degree_rule_output_is_a_symmetric_simple_graph_that_keeps_padding_empty():
    probabilities = torch.zeros(2, 8, 8)
    probabilities[0, :5, :5] = uniform_probabilities(1, 5, 0.6)[0]
    probabilities[1] = uniform_probabilities(1, 8, 0.4)[0]
    adjacency = degree_budget_edges(probabilities, generator=seeded())
    assert set(adjacency.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(adjacency, adjacency.mT)
    assert float(torch.diagonal(adjacency, dim1=1, dim2=2).abs().sum()) == 0.0
    assert float(adjacency[0, 5:].abs().sum()) == 0.0
    assert (adjacency.sum(dim=-1) <= degree_budgets(probabilities)).all()
    assert adjacency.dtype == probabilities.dtype


def test_degree_rule_is_deterministic_under_a_seed_and_random_across_seeds():
    probabilities = uniform_probabilities(4, 16, 0.3)
    first = degree_budget_edges(probabilities, generator=seeded(1))
    assert torch.equal(first, degree_budget_edges(probabilities, generator=seeded(1)))
    assert not torch.equal(first, degree_budget_edges(probabilities, generator=seeded(2)))


def test_sample_edges_dispatches_by_name_and_refuses_an_unknown_rule():
    probabilities = uniform_probabilities(2, 6, 0.5)
    assert sample_edges(probabilities, "threshold") is probabilities
    assert torch.equal(sample_edges(probabilities, "bernoulli", generator=seeded(3)),
                       bernoulli_edges(probabilities, generator=seeded(3)))
    assert torch.equal(sample_edges(probabilities, "degree", generator=seeded(3)),
                       degree_budget_edges(probabilities, generator=seeded(3)))
    with pytest.raises(ValueError, match="'threshold', 'bernoulli', 'degree'"):
        sample_edges(probabilities, "degrees")
    assert EDGE_SAMPLING == ("threshold", "bernoulli", "degree")
    with pytest.raises(ValueError, match="edge_sampling"):
        GenerationConfig(edge_sampling="degrees")


def test_spectral_vector_model_samples_within_the_decoders_degree_budgets():
    config = GenerationConfig(model="spectral_vectors", epochs=40, steps=4, batch_size=8, hidden_dim=16,
                              num_layers=1, num_eigenvectors=4, decoder_dim=8, decoder_layers=1, seed=0,
                              edge_sampling="degree")
    model = SpectralVectorGenerator(config)
    model.fit([nx.cycle_graph(6), nx.path_graph(5), nx.star_graph(5), nx.ladder_graph(3)])
    out = model.sample_weighted(6, generator=seeded())
    degrees = out["adjacency"].sum(dim=-1)
    budgets = degree_budgets(out["probabilities"])
    assert ((budgets > 0) & (budgets < out["sizes"][:, None] - 1)).any()  # sparse graphs, not all complete
    assert (degrees <= budgets).all()
    assert int((budgets - degrees).sum()) <= 6  # most nodes reach their budget
    graphs = model.to_graphs(out)
    assert [g.number_of_edges() for g in graphs] == [int(d.sum()) // 2 for d in degrees]
