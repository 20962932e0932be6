"""Anyone's graphs into spectraldiff (issue 17): networkx and edge_index adapters, batched DGL out,
the mask-aware spectrum sort, and the node mask passed to score functions."""

from __future__ import annotations

import networkx as nx
import pytest
import torch

import spectraldiff as sd
from spectraldiff import SpectralGraph, from_edge_index, from_networkx, sort_spectrum
from spectraldiff.eigh import node_mask
from spectraldiff.score_networks import NoiseToScore, SpectrumMLPScoreNet
from spectraldiff.sde import VPSDE


def test_from_networkx_pads_and_keeps_labels_order_weights_and_direction():
    g = nx.Graph()
    g.add_edge("b", "a", w=2.5)
    g.add_edge("a", "c")
    A, n = from_networkx([g, nx.path_graph(2)], weight="w")
    assert n.tolist() == [3, 2] and A.shape == (2, 3, 3)
    # rows follow g.nodes: b, a, c; a missing weight is 1
    assert A[0].tolist() == [[0.0, 2.5, 0.0], [2.5, 0.0, 1.0], [0.0, 1.0, 0.0]]
    assert A[1, 2].abs().sum() == 0 and A[1, :, 2].abs().sum() == 0  # padding
    d = nx.DiGraph([(0, 1)])
    (Ad,), _ = from_networkx(d)
    assert Ad.tolist() == [[0.0, 0.5], [0.5, 0.0]]  # one direction counts half, as in dense_from_dgl
    with pytest.raises(ValueError, match="no nodes"):
        from_networkx([nx.Graph()])
    with pytest.raises(ValueError, match="max_nodes"):
        from_networkx([nx.path_graph(4)], max_nodes=3)


def _pyg_layout(graphs):
    """edge_index (both directions) and batch of a list of networkx graphs, nodes 0..n-1 each."""
    edges, batch, offset = [], [], 0
    for b, g in enumerate(graphs):
        for u, v in g.edges():
            edges += [(u + offset, v + offset), (v + offset, u + offset)]
        batch += [b] * g.number_of_nodes()
        offset += g.number_of_nodes()
    return torch.tensor(edges).T, torch.tensor(batch)


def test_from_edge_index_matches_networkx_and_checks_its_input():
    graphs = [nx.cycle_graph(5), nx.star_graph(3), nx.empty_graph(2)]
    edge_index, batch = _pyg_layout(graphs)
    A, n = from_edge_index(edge_index, batch)
    A_nx, n_nx = from_networkx(graphs)
    assert torch.equal(A, A_nx) and n.tolist() == n_nx.tolist() == [5, 4, 2]
    # one graph without batch; isolated trailing nodes need num_nodes
    (A1,), n1 = from_edge_index(torch.tensor([[0, 1], [1, 0]]), num_nodes=3)
    assert n1.tolist() == [3] and A1.tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 0]]
    weighted, _ = from_edge_index(torch.tensor([[0, 1], [1, 0]]), edge_weight=torch.tensor([0.2, 0.4]))
    assert weighted[0, 0, 1] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="two different graphs"):
        from_edge_index(torch.tensor([[0], [3]]), torch.tensor([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="non-decreasing"):
        from_edge_index(edge_index, batch.flip(0))
    with pytest.raises(ValueError, match="num_nodes=4 but batch names"):
        from_edge_index(edge_index, batch, num_nodes=4)
    with pytest.raises(ValueError, match=r"\(2, E\)"):
        from_edge_index(torch.zeros(3, 2, dtype=torch.long))


def test_spectral_graph_from_networkx_and_edge_index_agree_and_reconstruct():
    graphs = [nx.petersen_graph(), nx.path_graph(4)]
    a = SpectralGraph.from_networkx(graphs)
    b = SpectralGraph.from_edge_index(*_pyg_layout(graphs))
    assert torch.allclose(a.eigenvalues, b.eigenvalues, atol=1e-5)
    assert a.num_nodes.tolist() == [10, 4]
    A, _ = from_networkx(graphs)
    assert torch.allclose(a.reconstruct(), A, atol=1e-5)


def test_to_dgl_batched_round_trips_and_the_list_form_stays():
    dgl = pytest.importorskip("dgl")
    graphs = [nx.cycle_graph(6), nx.path_graph(3)]
    spec = SpectralGraph.from_networkx(graphs)
    batched = spec.to_dgl(threshold=0.5, batched=True)
    assert isinstance(batched, dgl.DGLGraph) and batched.batch_size == 2
    assert batched.batch_num_nodes().tolist() == [6, 3] and batched.num_edges() == 2 * (6 + 2)
    listed = spec.to_dgl(threshold=0.5)
    assert isinstance(listed, list) and [g.num_edges() for g in listed] == [12, 4]
    # and back in: a batched DGL graph gives the same spectra
    again = SpectralGraph.from_dgl(batched)
    assert torch.allclose(again.eigenvalues, spec.eigenvalues, atol=1e-5)


def test_sort_spectrum_keeps_padding_out_and_a_naive_sort_does_not():
    spec = SpectralGraph.from_networkx([nx.cycle_graph(6), nx.path_graph(3)])
    true = spec.eigenvalues
    shuffled = torch.stack([row[torch.cat([torch.randperm(int(n)), torch.arange(int(n), 6)])]
                            for row, n in zip(true, spec.num_nodes)])
    restored = sort_spectrum(shuffled, spec.mask)
    assert torch.allclose(restored, true)
    assert torch.allclose(spec.with_eigenvalues(shuffled, sort=True).reconstruct(), spec.reconstruct(), atol=1e-5)
    # the naive sort puts the path's padded zeros between its eigenvalues −√2, 0, √2 and its +√2 on padding
    naive = torch.sort(shuffled, dim=-1).values
    assert naive[1, 2:].abs().max() > 1.0 and not torch.allclose(naive, true)
    values, indices = sort_spectrum(shuffled, spec.mask, return_indices=True)
    assert torch.equal(torch.gather(shuffled, 1, indices), values)
    descending = sort_spectrum(shuffled, spec.mask, descending=True)
    assert descending[1].tolist()[:3] == pytest.approx(true[1, :3].flip(0).tolist(), abs=1e-6)
    assert descending[1, 3:].abs().max() == 0
    # an arbitrary (non-leading) mask: values fill the valid slots in order
    arbitrary = sort_spectrum(torch.tensor([[3.0, 9.0, 1.0, 2.0]]), torch.tensor([[True, False, True, True]]))
    assert arbitrary.tolist() == [[1.0, 0.0, 2.0, 3.0]]


def test_score_functions_receive_the_mask_instead_of_capturing_it():
    sde = VPSDE()
    seen = []

    def score_fn(x, t, condition=None, mask=None):
        seen.append(mask)
        return -x * mask

    def old_score_fn(x, t, condition):  # the three-argument form keeps working
        return -x

    for n in (3, 5):  # one function, batches with different padding
        mask = node_mask(torch.tensor([n, 2]), 6)
        lam = torch.randn(2, 6) * mask
        out = sd.pc_sampler(sde, score_fn, torch.randn(2, 6), steps=3, mask=mask)
        assert seen[-1] is mask and out[:, n:].abs().max() == 0
        sd.dsm_loss(score_fn, sde, lam, mask=mask)
        assert seen[-1] is mask
        sd.ode_sampler(sde, score_fn, torch.randn(2, 6), steps=2, method="euler", mask=mask)
        assert seen[-1] is mask
        sd.pc_sampler(sde, old_score_fn, torch.randn(2, 6), steps=2, mask=mask)
    # dict states get the mask as given
    sd.pc_sampler({"a": sde}, lambda x, t, c, mask=None: seen.append(mask) or {"a": -x["a"]},
                  {"a": torch.randn(2, 3)}, steps=1, mask={"a": torch.ones(2, 3, dtype=torch.bool)})
    assert isinstance(seen[-1], dict) and set(seen[-1]) == {"a"}


def test_noise_to_score_built_once_serves_batches_of_any_padding():
    torch.manual_seed(0)
    sde = VPSDE()
    net = SpectrumMLPScoreNet(max_nodes=6, hidden_dim=16, num_layers=1)
    score_fn = NoiseToScore(net, sde)  # no closure over a mask
    for sizes in ([3, 6], [2, 4]):
        mask = node_mask(torch.tensor(sizes), 6)
        lam = torch.randn(2, 6) * mask
        t = torch.full((2,), 0.5)
        direct = sde.score_from_noise(net(lam, t, mask), t)
        assert torch.allclose(score_fn(lam, t, mask=mask), direct)
        loss = sd.dsm_loss(score_fn, sde, lam, mask=mask, generator=torch.Generator().manual_seed(1))
        closure = NoiseToScore(net, sde, call=lambda n_, x, t_, c: n_(x, t_, mask, c))
        assert torch.allclose(loss, sd.dsm_loss(closure, sde, lam, mask=mask,
                                                generator=torch.Generator().manual_seed(1)))


def test_noise_to_score_without_a_mask_treats_every_slot_as_real_and_keeps_the_condition():
    torch.manual_seed(0)
    sde = VPSDE()
    full = torch.ones(2, 6, dtype=torch.bool)
    lam, t = torch.randn(2, 6), torch.full((2,), 0.5)
    score_fn = NoiseToScore(SpectrumMLPScoreNet(max_nodes=6, hidden_dim=16, num_layers=1), sde)
    assert torch.equal(score_fn(lam, t), score_fn(lam, t, mask=full))
    unmasked = sd.pc_sampler(sde, score_fn, torch.randn(2, 6, generator=torch.Generator().manual_seed(2)),
                             steps=3, generator=torch.Generator().manual_seed(3))
    masked = sd.pc_sampler(sde, score_fn, torch.randn(2, 6, generator=torch.Generator().manual_seed(2)),
                           steps=3, mask=full, generator=torch.Generator().manual_seed(3))
    assert torch.equal(unmasked, masked)
    # A condition given without a mask reaches the network as its condition, not as its mask.
    conditioned = NoiseToScore(sd.EigenvalueScoreNet(hidden_dim=8, num_layers=1, num_heads=2, condition_dim=4), sde)
    c = torch.randn(2, 4)
    assert torch.equal(conditioned(lam, t, c), conditioned(lam, t, c, mask=full))
    assert not torch.equal(conditioned(lam, t, c), conditioned(lam, t, torch.zeros(2, 4)))


def test_dense_from_dgl_splits_batched_members_of_a_list_and_refuses_what_is_not_one_graph_type():
    dgl = pytest.importorskip("dgl")
    from spectraldiff.dgl_adapter import dense_from_dgl

    def undirected(g):
        return dgl.to_bidirected(dgl.from_networkx(g))

    cycle, pair, single = undirected(nx.cycle_graph(3)), undirected(nx.path_graph(2)), dgl.graph(([], []), num_nodes=1)
    A, n = dense_from_dgl([dgl.batch([cycle, pair]), single])
    assert n.tolist() == [3, 2, 1]  # the batched graph's two members, then the single one
    B, m = dense_from_dgl([cycle, pair, single])
    assert torch.equal(A, B) and m.tolist() == [3, 2, 1]
    padded, _ = dense_from_dgl([cycle, pair, single], max_nodes=5)
    assert padded.shape == (3, 5, 5) and torch.equal(padded[:, :3, :3], A) and padded[:, 3:].abs().sum() == 0
    with pytest.raises(ValueError, match="max_nodes=2"):
        dense_from_dgl([cycle], max_nodes=2)
    hetero = dgl.heterograph({("a", "r", "b"): ([0], [1])})
    with pytest.raises(ValueError, match=r"entry 1 is a heterograph .*dgl\.to_homogeneous"):
        dense_from_dgl([cycle, hetero])
    with pytest.raises(ValueError, match="entry 0 is not a dgl.DGLGraph but Graph"):
        dense_from_dgl([nx.path_graph(2)])


def test_spectral_graph_adapters_pad_to_a_given_size_and_name_what_is_not_a_graph():
    graphs = [nx.cycle_graph(4), nx.path_graph(3)]
    padded = SpectralGraph.from_networkx(graphs, max_nodes=6)
    assert padded.eigenvalues.shape == (2, 6) and padded.num_nodes.tolist() == [4, 3]
    assert torch.allclose(padded.eigenvalues[:, :4].sort(dim=-1).values,
                          SpectralGraph.from_networkx(graphs).eigenvalues.sort(dim=-1).values, atol=1e-5)
    edge_index, batch = _pyg_layout(graphs)
    from_pyg = SpectralGraph.from_edge_index(edge_index, batch, max_nodes=6)
    assert torch.allclose(from_pyg.eigenvalues, padded.eigenvalues, atol=1e-5)
    with pytest.raises(ValueError, match="graph 1 is not a networkx graph but dict"):
        from_networkx([nx.path_graph(2), {"edges": [(0, 1)]}])
