"""Edge probabilities to adjacency matrices: threshold, independent draws and degree budgets."""

import networkx as nx
import pytest
import torch

from spectraldiff.generation import GenerationConfig, edge_sampling
from spectraldiff.generation.edge_sampling import (EDGE_SAMPLING, bernoulli_edges, degree_budget_edges,
                                                    degree_budgets, ranked_budgets, sample_edges)
from spectraldiff.generation.spectral_vectors import SpectralVectorGenerator
from spectraldiff.generation.validity import recover_blocks


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


@pytest.mark.parametrize("triangle_bonus", [0.0, 3.0])
def test_degree_rule_output_is_a_symmetric_simple_graph_that_keeps_padding_empty(triangle_bonus):
    probabilities = torch.zeros(2, 8, 8)
    probabilities[0, :5, :5] = uniform_probabilities(1, 5, 0.6)[0]
    probabilities[1] = uniform_probabilities(1, 8, 0.4)[0]
    adjacency = degree_budget_edges(probabilities, generator=seeded(), triangle_bonus=triangle_bonus)
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


def test_a_vanishing_triangle_bonus_draws_the_plain_budget_edges(monkeypatch):
    """The bonus path (a heap re-keyed as edges are accepted) reads the same Gumbel draws as the plain
    one: with a bonus too small to reorder any pair, its greedy pass must accept exactly the same
    edges (its closing swaps, tested below, switched off here)."""
    generator = torch.Generator().manual_seed(5)
    probabilities = torch.rand(6, 30, 30, generator=generator) ** 3
    probabilities = (probabilities + probabilities.mT) / 2 * (1 - torch.eye(30))
    probabilities[:2, 24:], probabilities[:2, :, 24:] = 0.0, 0.0  # padded nodes
    plain = degree_budget_edges(probabilities, generator=seeded(7))
    monkeypatch.setattr(edge_sampling, "_fill_by_swaps", lambda adjacency, left, key: None)
    assert torch.equal(degree_budget_edges(probabilities, generator=seeded(7), triangle_bonus=1e-9), plain)
    assert not torch.equal(degree_budget_edges(probabilities, generator=seeded(7), triangle_bonus=3.0), plain)


def average_clustering(adjacency: torch.Tensor) -> float:
    return sum(nx.average_clustering(nx.from_numpy_array(a.numpy())) for a in adjacency) / len(adjacency)


def test_triangle_bonus_closes_triangles_at_the_same_degrees():
    probabilities = uniform_probabilities(20, 40, 0.2)  # budget 8 each; ER-like clustering ≈ 0.2
    plain = degree_budget_edges(probabilities, generator=seeded())
    closing = degree_budget_edges(probabilities, generator=seeded(), triangle_bonus=4.0)
    assert average_clustering(plain) < 0.3
    assert average_clustering(closing) > 0.5
    assert int(closing.sum(dim=-1).max()) == 8
    assert abs(float(closing.sum(dim=-1).mean()) - float(plain.sum(dim=-1).mean())) < 0.5


def test_triangle_closing_fills_the_budgets_it_leaves_open_by_edge_swaps():
    """Four nodes with budget 2 each: closing a triangle first strands the fourth node, which the plain
    order often does too; a swap (drop a triangle edge, attach its ends to the stranded node) gives
    the 4-cycle, so every budget is met."""
    probabilities = uniform_probabilities(50, 4, 0.5)  # budget round(1.5) = 2 everywhere
    plain = degree_budget_edges(probabilities, generator=seeded())
    closing = degree_budget_edges(probabilities, generator=seeded(), triangle_bonus=6.0)
    assert not (plain.sum(dim=-1) == 2).all()
    assert (closing.sum(dim=-1) == 2).all()
    assert torch.equal(closing, closing.mT) and float(torch.diagonal(closing, dim1=1, dim2=2).sum()) == 0.0


def test_triangle_bonus_splits_planted_blocks_into_cliques():
    """The limit the docstrings warn of (SBM in docs/generation.md): two planted blocks of 30 (0.3
    inside, 0.005 between) are recovered intact from plain budgets, but closing triangles packs each
    block's edges into cliques of about 10 nodes, which the SBM test sees as blocks of their own."""
    block = torch.arange(60) // 30
    inside = block[:, None] == block[None, :]
    probabilities = (torch.where(inside, torch.tensor(0.3), torch.tensor(0.005)) * (1 - torch.eye(60)))
    probabilities = probabilities.expand(4, 60, 60).clone()

    def block_sizes(adjacency):
        return [sorted(len(b) for b in recover_blocks(nx.from_numpy_array(a.numpy()))) for a in adjacency]

    assert block_sizes(degree_budget_edges(probabilities, generator=seeded())) == [[30, 30]] * 4
    for sizes in block_sizes(degree_budget_edges(probabilities, generator=seeded(), triangle_bonus=2.0)):
        assert len(sizes) >= 4 and min(sizes) < 15


@pytest.mark.parametrize("bonus", [-1.0, float("nan")])
def test_a_negative_or_nan_triangle_bonus_is_refused(bonus):
    with pytest.raises(ValueError, match="triangle_bonus must be ≥ 0"):
        degree_budget_edges(uniform_probabilities(1, 5, 0.5), triangle_bonus=bonus)
    with pytest.raises(ValueError, match="triangle_bonus must be ≥ 0"):
        GenerationConfig(edge_sampling="degree", triangle_bonus=bonus)


@pytest.mark.parametrize("rule", ["threshold", "bernoulli"])
def test_budget_settings_are_refused_for_rules_that_do_not_read_them(rule):
    probabilities = uniform_probabilities(1, 5, 0.5)
    with pytest.raises(ValueError, match="'degree' only"):
        sample_edges(probabilities, rule, triangle_bonus=2.0)
    with pytest.raises(ValueError, match="'degree' only"):
        sample_edges(probabilities, rule, budgets=torch.ones(1, 5, dtype=torch.long))
    for setting in ({"triangle_bonus": 2.0}, {"degree_budgets": "training"}):
        with pytest.raises(ValueError, match="'degree' only"):
            GenerationConfig(model="spectral_vectors", edge_sampling=rule, **setting)
    with pytest.raises(ValueError, match="degree_budgets must be one of"):
        GenerationConfig(edge_sampling="degree", degree_budgets="train")


def test_ranked_budgets_hand_the_larger_degrees_to_the_nodes_of_larger_expected_degree():
    probabilities = torch.zeros(1, 5, 5)  # expected degrees 1.2, 0.3, 0.9, 0.6 and a padded node
    for (i, j), p in {(0, 1): 0.1, (0, 2): 0.6, (0, 3): 0.5, (2, 3): 0.1, (1, 2): 0.2}.items():
        probabilities[0, i, j] = probabilities[0, j, i] = p
    degrees = torch.tensor([[1, 3, 2, 1, 0]])  # a path of four with a chord, padded
    assert ranked_budgets(probabilities, degrees).tolist() == [[3, 1, 2, 1, 0]]
    with pytest.raises(ValueError, match="degrees must be"):
        ranked_budgets(probabilities, degrees[:, :4])
    # Given budgets are honoured, and a padded node takes no edge even with a budget.
    adjacency = degree_budget_edges(probabilities, budgets=torch.tensor([[2, 1, 2, 1, 3]]), generator=seeded())
    assert (adjacency.sum(dim=-1) <= torch.tensor([[2.0, 1.0, 2.0, 1.0, 0.0]])).all()
    assert float(adjacency.sum()) > 0
    with pytest.raises(ValueError, match="budgets must be"):
        degree_budget_edges(probabilities, budgets=torch.ones(1, 4, dtype=torch.long))


def test_sample_edges_dispatches_by_name_and_refuses_an_unknown_rule():
    probabilities = uniform_probabilities(2, 6, 0.5)
    assert sample_edges(probabilities, "threshold") is probabilities
    assert torch.equal(sample_edges(probabilities, "bernoulli", generator=seeded(3)),
                       bernoulli_edges(probabilities, generator=seeded(3)))
    assert torch.equal(sample_edges(probabilities, "degree", generator=seeded(3)),
                       degree_budget_edges(probabilities, generator=seeded(3)))
    assert torch.equal(sample_edges(probabilities, "degree", generator=seeded(3), triangle_bonus=2.0),
                       degree_budget_edges(probabilities, generator=seeded(3), triangle_bonus=2.0))
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
    # config.triangle_bonus reaches the draw: same eigenpairs and probabilities, other edges.
    model.config.triangle_bonus = 3.0
    closing = model.sample_weighted(6, generator=seeded())
    assert torch.equal(closing["probabilities"], out["probabilities"])
    assert not torch.equal(closing["adjacency"], out["adjacency"])
    assert (closing["adjacency"].sum(dim=-1) <= budgets).all()


@pytest.mark.parametrize("rule", ["bernoulli", "degree"])
def test_drawn_edges_become_graphs_whatever_the_threshold(rule):
    """The drawn 0/1 edges are the graph: a threshold of 1 (meant for ``"threshold"``) drops none."""
    config = GenerationConfig(model="spectral_vectors", epochs=20, steps=4, batch_size=8, hidden_dim=16,
                              num_layers=1, num_eigenvectors=4, decoder_dim=8, decoder_layers=0, seed=0,
                              edge_sampling=rule)
    model = SpectralVectorGenerator(config)
    model.fit([nx.cycle_graph(6), nx.path_graph(5), nx.ladder_graph(3)])
    out = model.sample_weighted(4, generator=seeded())
    drawn = [int(a.sum()) // 2 for a in out["adjacency"]]
    assert sum(drawn) > 0
    for threshold in (0.5, 1.0, 2.0):
        model.config.threshold = threshold
        assert [g.number_of_edges() for g in model.to_graphs(out)] == drawn


def test_training_degree_budgets_give_each_sample_its_source_graphs_degrees():
    """Budgets from the training graph whose size was drawn: no sample exceeds its source's degree
    sequence, node by node in rank order, and given sizes (no source) are refused."""
    graphs = [nx.cycle_graph(6), nx.star_graph(5), nx.path_graph(7), nx.ladder_graph(4)]
    config = GenerationConfig(model="spectral_vectors", epochs=30, steps=4, batch_size=4, hidden_dim=16,
                              num_layers=1, num_eigenvectors=4, decoder_dim=8, decoder_layers=1, seed=0,
                              edge_sampling="degree", degree_budgets="training", triangle_bonus=2.0)
    model = SpectralVectorGenerator(config)
    model.fit(graphs)
    out = model.sample_weighted(12, generator=seeded())
    for adjacency, source, size in zip(out["adjacency"], out["sources"], out["sizes"]):
        drawn = sorted(adjacency.sum(dim=-1)[:size].long().tolist())
        wanted = sorted(d for _, d in graphs[int(source)].degree())
        assert len(drawn) == len(wanted) and all(d <= w for d, w in zip(drawn, wanted))
        assert sum(wanted) - sum(drawn) <= 4  # nearly every budget filled
    with pytest.raises(ValueError, match="degree_budgets='expected'"):
        model.sample_weighted(2, sizes=[6, 7], generator=seeded())
