"""Validity (planar, SBM), V.U.N., the score card of a sample set and the copy floor (issue 17)."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest
import torch

from spectraldiff.generation import NodeCountSampler, copy_floor, evaluate_samples
from spectraldiff.generation.datasets import planar, sbm, split_graphs
from spectraldiff.generation.evaluation import draw_copies
from spectraldiff.generation.novelty import fraction_vun, novel_flags, unique_flags
from spectraldiff.generation.validity import (
    fraction_valid,
    get_validity,
    is_planar_graph,
    is_sbm_graph,
    recover_blocks,
    sbm_p_value,
)


def test_planar_validity_needs_planar_and_connected():
    assert is_planar_graph(planar(1, seed=0)[0])
    assert not is_planar_graph(nx.complete_graph(5))  # Kuratowski
    assert not is_planar_graph(nx.complete_bipartite_graph(3, 3))
    assert not is_planar_graph(nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3)))  # planar, disconnected
    assert fraction_valid(planar(10, seed=1), "planar") == 1.0


def _two_blocks(intra_edges: int, inter_edges: int, size: int = 20) -> nx.Graph:
    """Two blocks of ``size`` nodes with the first ``intra_edges`` pairs of each block and the first
    ``inter_edges`` cross pairs as edges (deterministic densities)."""
    g = nx.Graph()
    g.add_nodes_from(range(2 * size))
    for offset in (0, size):
        pairs = itertools.combinations(range(offset, offset + size), 2)
        g.add_edges_from(itertools.islice(pairs, intra_edges))
    g.add_edges_from((i, size + i) for i in range(inter_edges))
    return g


def test_sbm_wald_test_numbers_on_a_known_partition():
    blocks = [set(range(20)), set(range(20, 40))]
    # 57 of 190 pairs (0.3) inside, 2 of 400 (0.005) across: every estimate on target, W = 0, p = 1
    p_value, k, sizes = sbm_p_value(_two_blocks(57, 2), blocks=blocks)
    assert p_value == pytest.approx(1.0) and k == 2 and sizes.tolist() == [20, 20]
    # no cross edge: W = 0.005² / 1e-6 = 25 for both ordered off-diagonal pairs, p = 1 − χ²₁(25) ≈ 5.7e-7
    p_value, _, _ = sbm_p_value(_two_blocks(57, 0), blocks=blocks)
    assert p_value == pytest.approx(0.5, abs=1e-6)
    # 4 of 400 across (0.01): W = 0.005² / (0.01 · 0.99 + 1e-6) ≈ 0.00253, p ≈ 0.9599 for those two
    p_value, _, _ = sbm_p_value(_two_blocks(57, 4), blocks=blocks)
    assert p_value == pytest.approx((2 + 2 * 0.959879) / 4, abs=1e-4)


def test_block_recovery_finds_the_planted_blocks():
    graphs = sbm(10, seed=3)
    found = [sorted(map(frozenset, recover_blocks(g))) for g in graphs]
    planted = [sorted(map(frozenset, g.graph["partition"])) for g in graphs]
    assert [len(f) for f in found] == [len(p) for p in planted]
    assert sum(f == p for f, p in zip(found, planted)) >= 8


def test_sbm_validity_accepts_the_family_and_rejects_others():
    graphs = sbm(30, seed=1)
    assert fraction_valid(graphs, "sbm") >= 0.85  # the family itself (94.5 % over 200 graphs, seed 0)
    # same sizes and mean density, no blocks: Erdős–Rényi graphs fail
    er = [nx.gnp_random_graph(g.number_of_nodes(), 2 * g.number_of_edges() / g.number_of_nodes() ** 2, seed=i)
          for i, g in enumerate(graphs)]
    assert fraction_valid(er, "sbm") == 0.0
    # blocks outside 20–40 nodes fail the size rule even with the right densities
    small = sbm(10, seed=2, min_size=8, max_size=12)
    assert not any(is_sbm_graph(g) for g in small)
    assert not is_sbm_graph(nx.empty_graph(40))


def test_families_without_a_rule_have_no_validity():
    assert get_validity("community_small") is None and get_validity(None) is None
    assert fraction_valid([nx.path_graph(3)], "grid") is None


def test_unique_novel_and_vun_flags():
    a, b, c = nx.path_graph(4), nx.star_graph(3), nx.cycle_graph(4)
    a_relabelled = nx.relabel_nodes(a, {0: 3, 1: 2, 2: 1, 3: 0})
    generated = [a, a_relabelled, b, b, c]
    assert unique_flags(generated) == [True, False, True, False, True]
    assert novel_flags(generated, [nx.path_graph(4)]) == [False, False, True, True, True]
    assert fraction_vun(generated, [a]) == pytest.approx(2 / 5)  # b (first copy) and c
    assert fraction_vun(generated, [a], valid=[True, True, False, True, True]) == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="flags"):
        fraction_vun(generated, [a], valid=[True])


def test_evaluate_samples_reports_every_score():
    train, test = split_graphs(planar(25, seed=0))
    new = planar(4, seed=99)
    broken = nx.complete_graph(6)  # not planar
    scores = evaluate_samples(new + [broken, new[0]], train, test, family="planar")
    assert scores["valid"] == pytest.approx(5 / 6)
    assert scores["unique"] == pytest.approx(5 / 6) and scores["novel"] == 1.0
    assert scores["vun"] == pytest.approx(4 / 6)
    assert scores["num_samples"] == 6 and scores["family"] == "planar"
    assert scores["average"] == pytest.approx((scores["degree"] + scores["clustering"] + scores["orbit"]) / 3)
    assert scores["degree"] > 0.0 and scores["spectral"] > 0.0
    unlabelled = evaluate_samples(new, train, test, metrics=("degree",))
    assert unlabelled["valid"] is None and unlabelled["vun"] == 1.0 and "orbit" not in unlabelled


def test_copy_floor_draws_like_the_node_count_sampler_and_scores_memorising():
    train, test = split_graphs(planar(30, seed=0))
    copies = draw_copies(train, 40, seed=3)
    indices, _ = NodeCountSampler([g.number_of_nodes() for g in train]).sample(40, torch.Generator().manual_seed(3))
    assert copies == [train[i] for i in indices.tolist()]
    floor = copy_floor(train, test, num_samples=40, seed=3, family="planar")
    assert floor["novel"] == 0.0 and floor["vun"] == 0.0 and floor["valid"] == 1.0
    assert floor["unique"] == pytest.approx(len(set(indices.tolist())) / 40) and floor["unique"] <= len(train) / 40
    again = copy_floor(train, test, num_samples=40, seed=3, family="planar")
    assert again == floor
    assert copy_floor(train, test, num_samples=40, seed=4, family="planar")["degree"] != floor["degree"]
    # copies sit at the train-vs-test level: far below a set of graphs from another family
    other = evaluate_samples(sbm(5, seed=0), train, test, family="planar")
    assert other["valid"] == 0.0 and other["degree"] > 10 * floor["degree"]


@pytest.mark.parametrize("family", [None, "planar"])
def test_generate_labels_user_graphs_by_their_file_and_scores_a_named_family(tmp_path, family, capsys):
    import json

    from spectraldiff.cli import main
    from spectraldiff.generation.datasets import save_json_graphs

    data = tmp_path / "my_triangulations.json"
    save_json_graphs(planar(10, seed=0, num_nodes=12), data)
    out = tmp_path / "run"
    args = ["generate", "--graphs", str(data), "--epochs", "1", "--steps", "2", "--hidden-dim", "8",
            "--num-layers", "1", "--no-progress", "--out", str(out)]
    assert main(args + (["--dataset", family] if family else [])) == 0
    config = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    label = family or "my_triangulations"  # not the default "community_small"
    assert config["dataset"] == metrics["dataset"] == label
    assert f"labelled '{label}'" in capsys.readouterr().out
    if family is None:
        assert metrics["valid"] is None and 0.0 <= metrics["vun"] <= 1.0
    else:
        assert 0.0 <= metrics["valid"] <= 1.0 and metrics["vun"] <= metrics["valid"]


def test_generate_without_the_published_enzymes_file_says_where_to_get_it(monkeypatch):
    from spectraldiff.generation import cli as generate_cli

    monkeypatch.setattr("spectraldiff.generation.datasets.published_graphs_path", lambda name: None)
    with pytest.raises(ValueError, match="no package generator.*enzymes.json"):
        generate_cli.load_dataset("enzymes")
    graphs, source = generate_cli.load_dataset("sbm")  # the new families fall back to their generators
    assert len(graphs) == 200 and "package generator" in source


def test_the_fallback_size_is_each_generators_own_default():
    from spectraldiff.generation.cli import FALLBACK_NUM_GRAPHS, default_num_graphs
    from spectraldiff.generation.datasets import get_generator

    sizes = {name: default_num_graphs(get_generator(name)) for name in ("community_small", "grid", "planar", "sbm")}
    assert sizes == {"community_small": 100, "grid": 100, "planar": 200, "sbm": 200}
    assert default_num_graphs(lambda num_graphs, seed: []) == FALLBACK_NUM_GRAPHS == 100
    assert default_num_graphs(lambda num_graphs=12, seed=0: []) == 12
