"""Graph generators, loaders, validation and the published split."""

from __future__ import annotations

import json
import pickle
from collections import Counter
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from spectraldiff.generation.datasets import (
    available_datasets,
    available_generators,
    community_small,
    get_generator,
    grid,
    load_graphs,
    planar,
    sbm,
    published_data_dir,
    published_graphs_path,
    register_generator,
    save_json_graphs,
    split_graphs,
    validate_graphs,
)


@pytest.mark.parametrize("fixed", [True, False])
def test_community_small_has_two_dense_equal_communities_joined_by_few_edges(fixed):
    graphs = community_small(200, seed=0, fixed_communities=fixed)
    sizes = Counter(g.number_of_nodes() for g in graphs)
    assert set(sizes) == {12, 14, 16, 18, 20}
    assert sizes[20] < min(sizes[n] for n in (12, 14, 16, 18))  # 20 is drawn half as often
    intra_density, inter = [], []
    for g in graphs:
        c = g.number_of_nodes() // 2
        cross = [(u, v) for u, v in g.edges() if (u < c) != (v < c)]
        inter.append(len(cross))
        intra_density.append((g.number_of_edges() - len(cross)) / (c * (c - 1)))
    assert min(inter) >= 1 and np.mean(inter) < 2.0
    # The fixed communities are ten particular G(c, 0.7) draws (density 0.65 on average).
    assert abs(np.mean(intra_density) - 0.7) < 0.08


def test_fixed_communities_share_their_communities_per_size():
    graphs = community_small(40, seed=3)
    by_size = {}
    for g in graphs:
        c = g.number_of_nodes() // 2
        intra = frozenset((u, v) for u, v in g.edges() if (u < c) == (v < c))
        by_size.setdefault(c, set()).add(intra)
    assert all(len(v) == 1 for v in by_size.values())
    fresh = community_small(40, seed=3, fixed_communities=False)
    assert len({frozenset(g.edges()) for g in fresh if g.number_of_nodes() == 12}) > 1


def test_generators_are_deterministic_in_the_seed():
    a, b, c = community_small(5, seed=7), community_small(5, seed=7), community_small(5, seed=8)
    assert [sorted(g.edges()) for g in a] == [sorted(g.edges()) for g in b]
    assert [sorted(g.edges()) for g in a] != [sorted(g.edges()) for g in c]


def test_grid_sizes_span_the_published_range():
    graphs = grid(60, seed=0)
    sizes = [g.number_of_nodes() for g in graphs]
    assert 100 <= min(sizes) and max(sizes) <= 361
    for g in graphs:
        degrees = Counter(d for _, d in g.degree())
        assert degrees[2] == 4 and set(degrees) <= {2, 3, 4}
        assert nx.is_connected(g) and list(g.nodes) == list(range(g.number_of_nodes()))


def test_registry_names_and_errors():
    assert available_generators() == ["community_small", "grid", "planar", "sbm"]
    assert available_datasets() == ["community_small", "grid", "planar", "sbm", "enzymes"]
    assert get_generator("grid") is grid
    with pytest.raises(ValueError, match="choose one of"):
        get_generator("ego_small")
    with pytest.raises(ValueError, match="no package generator"):  # published-only: read, never drawn
        get_generator("enzymes")
    with pytest.raises(ValueError, match="choose one of"):
        published_graphs_path("ego_small")
    with pytest.raises(ValueError, match="already registered"):
        register_generator("grid", grid)


def test_published_split_takes_the_first_fifth_as_test():
    graphs = [nx.path_graph(n) for n in range(2, 102)]
    train, test = split_graphs(graphs)
    assert [g.number_of_nodes() for g in test] == list(range(2, 22))
    assert [g.number_of_nodes() for g in train] == list(range(22, 102))
    with pytest.raises(ValueError, match=r"4 graphs are too few .* \(the first 20% are the test set, here 0 graphs\): "
                                         "give at least 5"):
        split_graphs(graphs[:4])
    assert len(split_graphs(graphs[:5])[1]) == 1  # the least it names is enough
    with pytest.raises(ValueError, match="give at least 2"):
        split_graphs(graphs[:1], test_fraction=0.5)


def test_json_round_trip(tmp_path):
    graphs = community_small(6, seed=1) + [nx.Graph([(0, 1)])]
    graphs[-1].add_node(2)  # an isolated node survives through num_nodes
    path = tmp_path / "g.json"
    save_json_graphs(graphs, path)
    loaded = load_graphs(path)
    assert [g.number_of_nodes() for g in loaded] == [g.number_of_nodes() for g in graphs]
    assert all(nx.utils.graphs_equal(a, b) for a, b in zip(loaded, graphs))


def test_pickle_and_edgelist_folder(tmp_path):
    graphs = [nx.relabel_nodes(nx.cycle_graph(5), lambda v: f"v{v}"), nx.star_graph(3)]
    pkl = tmp_path / "graphs.pkl"
    pkl.write_bytes(pickle.dumps(graphs))
    loaded = load_graphs(pkl)
    assert [sorted(d for _, d in g.degree()) for g in loaded] == [[2] * 5, [1, 1, 1, 3]]
    assert list(loaded[0].nodes) == list(range(5))

    folder = tmp_path / "edges"
    folder.mkdir()
    (folder / "a.txt").write_text("# a triangle\n0 1\n1 2\n2 0\n")
    (folder / "b.edgelist").write_text("x y 1.0\ny z 2.0\n")
    loaded = load_graphs(folder)
    assert [g.number_of_edges() for g in loaded] == [3, 2]


def test_an_edgelist_folder_reads_its_files_in_natural_order_and_refuses_other_files(tmp_path):
    folder = tmp_path / "edges"
    folder.mkdir()
    for i in (0, 1, 2, 10, 11):  # g<i> is a path with i + 1 edges
        (folder / f"g{i}.txt").write_text("".join(f"{v} {v + 1}\n" for v in range(i + 1)))
    (folder / ".hidden").write_text("not a graph")
    assert [g.number_of_edges() for g in load_graphs(folder)] == [1, 2, 3, 11, 12]  # g2 before g10
    # A README (or a run's results written into the folder) is named, not read as a graph.
    (folder / "README.md").write_text("My graphs, one per file.\nColumns: u v weight\n")
    (folder / "config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"edges: the folder holds files that are not edge lists: "
                                         r"README\.md, config\.json \(edge-list files have no suffix or one of "
                                         r"\.txt, \.edges, \.edgelist, \.el, \.tsv\); move them out"):
        load_graphs(folder)
    (folder / "README.md").unlink()
    (folder / "config.json").unlink()
    # A bad file is named by its file, not only by its position.
    (folder / "g5.txt").write_text("x x\n")
    with pytest.raises(ValueError, match=r"graph 3 \(g5\.txt\) has only self loops"):
        load_graphs(folder)


def test_rejects_directed_self_loop_only_and_empty_inputs(tmp_path):
    with pytest.raises(ValueError, match="graph 1 is directed"):
        validate_graphs([nx.path_graph(3), nx.DiGraph([(0, 1)])])
    looped = nx.Graph()
    looped.add_edges_from([(0, 0), (1, 1)])
    with pytest.raises(ValueError, match="graph 0 has only self loops"):
        validate_graphs([looped])
    with pytest.raises(ValueError, match="empty"):
        validate_graphs([])
    with pytest.raises(ValueError, match="no nodes"):
        validate_graphs([nx.Graph()])

    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"num_nodes": 3, "edges": [[0, 1]], "directed": True}]))
    with pytest.raises(ValueError, match="directed"):
        load_graphs(path)
    path.write_text(json.dumps([{"num_nodes": 2, "edges": [[0, 5]]}]))
    with pytest.raises(ValueError, match=r"graph 0 has edge \[0, 5\]"):
        load_graphs(path)
    path.write_text("[]")
    with pytest.raises(ValueError, match="empty"):
        load_graphs(path)
    pkl = tmp_path / "directed.pkl"
    pkl.write_bytes(pickle.dumps([nx.DiGraph([(0, 1)])]))
    with pytest.raises(ValueError, match="directed"):
        load_graphs(pkl)
    csv = tmp_path / "x.csv"
    csv.write_text("")
    with pytest.raises(ValueError, match="unknown graph file type"):
        load_graphs(csv)


class _RunsCode:
    """A pickle payload that calls a function on load, as a malicious graph file would."""

    def __reduce__(self):
        return (Counter, ("loaded",))


def test_graph_pickles_load_restricted_unless_trusted(tmp_path):
    from spectraldiff.safe_pickle import UnsafePickleError

    pkl = tmp_path / "graphs.pkl"
    pkl.write_bytes(pickle.dumps([nx.path_graph(3), _RunsCode()]))
    with pytest.raises(UnsafePickleError, match=r"graphs\.pkl.*collections\.Counter"):
        load_graphs(pkl)
    # Trusted, the file loads (and runs its code); what it holds is then validated as graphs.
    with pytest.raises(ValueError, match="graph 1"):
        load_graphs(pkl, trust_pickle=True)


def test_mixed_self_loops_are_dropped():
    g = nx.Graph([(0, 0), (0, 1)])
    (clean,) = validate_graphs([g])
    assert list(clean.edges()) == [(0, 1)]


def test_published_community_small_matches_the_generator_construction():
    path = published_graphs_path("community_small")
    if path is None:
        pytest.skip("../shared/data/graphs is not present in this checkout")
    published = load_graphs(path)
    generated = {g.number_of_nodes(): g for g in community_small(50, seed=0)}
    for g in published:
        c = g.number_of_nodes() // 2
        intra = lambda h: {(u, v) for u, v in h.edges() if (u < c) == (v < c)}  # noqa: E731
        assert intra(g) == intra(generated[g.number_of_nodes()])


def test_published_data_is_looked_for_beside_the_repository():
    expected = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "graphs"
    assert published_data_dir() == (expected if expected.is_dir() else None)


def test_planar_graphs_are_delaunay_triangulations_of_64_points():
    graphs = planar(20, seed=0)
    assert len(graphs) == 20 and {g.number_of_nodes() for g in graphs} == {64}
    for g in graphs:
        assert nx.check_planarity(g)[0] and nx.is_connected(g)
        # a triangulation of n points with h on the hull has 3n − 3 − h edges: 3 ≤ h < n
        assert 2 * 64 < g.number_of_edges() <= 3 * 64 - 6
        assert min(d for _, d in g.degree()) >= 2
    assert [sorted(g.edges()) for g in planar(3, seed=5)] == [sorted(g.edges()) for g in planar(3, seed=5)]
    assert sorted(planar(1, seed=5)[0].edges()) != sorted(planar(1, seed=6)[0].edges())


def _block_densities(graphs):
    """Edge density within and between the planted blocks, pooled over ``graphs``."""
    within = between = pairs_in = pairs_out = 0
    for g in graphs:
        label = {v: i for i, block in enumerate(g.graph["partition"]) for v in block}
        same = sum(label[u] == label[v] for u, v in g.edges())
        within, between = within + same, between + g.number_of_edges() - same
        n_in = sum(len(block) * (len(block) - 1) // 2 for block in g.graph["partition"])
        pairs_in, pairs_out = pairs_in + n_in, pairs_out + g.number_of_nodes() * (g.number_of_nodes() - 1) // 2 - n_in
    return within / pairs_in, between / pairs_out


def test_sbm_graphs_have_2_to_5_blocks_of_20_to_40_nodes_and_the_family_densities():
    graphs = sbm(60, seed=0)
    assert all(nx.is_connected(g) for g in graphs)
    blocks = [g.graph["partition"] for g in graphs]
    assert {len(b) for b in blocks} == {2, 3, 4, 5}
    assert all(20 <= len(block) <= 40 for b in blocks for block in b)
    p_in, p_out = _block_densities(graphs)
    assert abs(p_in - 0.3) < 0.01 and abs(p_out - 0.005) < 0.002
    # the literal p_out; and disconnected draws are kept when asked
    assert abs(_block_densities(sbm(20, seed=0, p_out=0.05))[1] - 0.05) < 0.005
    loose = sbm(60, seed=0, min_communities=2, max_communities=2, min_size=20, max_size=20, connected=False)
    assert any(not nx.is_connected(g) for g in loose)


def test_enzymes_loads_with_the_published_split_when_present():
    path = published_graphs_path("enzymes")
    if path is None:
        pytest.skip("../shared/data/graphs is not present in this checkout")
    train, test = split_graphs(load_graphs(path))
    assert (len(train), len(test)) == (470, 117)
    sizes = [g.number_of_nodes() for g in train + test]
    assert (min(sizes), max(sizes)) == (10, 125)
