"""Conversation graphs: hand-checked edge sets, missing flags, batching and batched_eigh-ready matrices."""

import dgl
import numpy as np
import pytest
import torch

from mer.data import ConversationDataset, collate_conversations, random_missing, synthetic_conversations
from mer.graph import (
    CROSS_MODAL,
    SELF_LOOP,
    SPEAKER,
    TEMPORAL,
    GraphConfig,
    batch_graph,
    gather_nodes,
    modality_similarities,
    scatter_nodes,
    similarity_adjacency,
    structure_adjacency,
    utterance_modality_graph,
)
from spectraldiff import batched_eigh


def _edges(g):
    src, dst = g.edges()
    return {(int(s), int(d), int(t)) for s, d, t in zip(src, dst, g.edata["etype"])}


def test_edge_sets_match_the_hand_built_graph():
    # 4 utterances, speakers A B A B, window 1/1, 2 modalities; node m*4 + i.
    g = utterance_modality_graph([0, 1, 0, 1], num_modalities=2, config=GraphConfig(1, 1, self_loops=False))
    assert g.num_nodes() == 8
    expected = set()
    for m in range(2):
        for i, j in [(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)]:
            expected.add((m * 4 + i, m * 4 + j, TEMPORAL))
        for i, j in [(0, 2), (2, 0), (1, 3), (3, 1)]:
            expected.add((m * 4 + i, m * 4 + j, SPEAKER))
    for i in range(4):
        expected |= {(i, 4 + i, CROSS_MODAL), (4 + i, i, CROSS_MODAL)}
    assert _edges(g) == expected and g.num_edges() == 28  # simple graph: no duplicate pairs
    assert g.ndata["utterance"].tolist() == [0, 1, 2, 3] * 2
    assert g.ndata["modality"].tolist() == [0] * 4 + [1] * 4
    src, dst = g.edges()
    same = g.ndata["speaker"][src] == g.ndata["speaker"][dst]
    assert torch.equal(g.edata["same_speaker"], same)


def test_temporal_window_is_directed_past_and_future():
    cfg = GraphConfig(past=2, future=0, speaker_edges=False, self_loops=False)
    g = utterance_modality_graph([0, 0, 0, 0], num_modalities=2, config=cfg)
    temporal = {(s, d) for s, d, t in _edges(g) if t == TEMPORAL and s < 4}
    # Utterance i hears j with i - 2 <= j < i.
    assert temporal == {(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)}


def test_self_loops_speaker_window_and_missing_flags():
    avail = np.array([[1, 0], [1, 1], [0, 1], [1, 1]])
    g = utterance_modality_graph([0, 0, 0, 0], avail, config=GraphConfig(0, 0, speaker_window=2))
    edges = _edges(g)
    assert {(n, n, SELF_LOOP) for n in range(8)} <= edges
    speaker_pairs = {(s, d) for s, d, t in edges if t == SPEAKER and s < 4}
    assert (0, 3) not in speaker_pairs and (0, 2) in speaker_pairs
    # Missing nodes stay in the graph, flagged: modality 1 of utterance 0 (node 4), modality 0 of 2 (node 2).
    assert g.ndata["missing"].dtype == torch.bool
    assert g.ndata["missing"].nonzero().flatten().tolist() == [2, 4]
    assert g.in_degrees(2) > 0 and g.in_degrees(4) > 0
    with pytest.raises(ValueError, match="utterance 1 has no available modality"):
        utterance_modality_graph([0, 0], np.array([[1, 0], [0, 0]]))


def test_one_utterance_conversation_graph():
    g = utterance_modality_graph([3], np.array([[1, 0, 1]]))
    assert g.num_nodes() == 3
    assert {t for _, _, t in _edges(g)} == {CROSS_MODAL, SELF_LOOP}
    assert g.ndata["missing"].tolist() == [False, True, False]


def test_batch_graph_equals_dgl_batch_of_conversation_graphs_and_gather_scatter_invert():
    ds = synthetic_conversations(seed=0, num_conversations=5)
    masks = random_missing(ds, 0.4, seed=0)
    batch = collate_conversations(list(ds), masks=masks)
    g = batch_graph(batch)
    assert g.batch_size == 5
    M = len(ds.modalities)
    assert g.batch_num_nodes().tolist() == [len(c) * M for c in ds]
    reference = dgl.batch([utterance_modality_graph(c.speakers, masks[b]) for b, c in enumerate(ds)])
    assert torch.equal(g.batch_num_edges(), reference.batch_num_edges())
    assert all(torch.equal(x, y) for x, y in zip(g.edges(), reference.edges()))
    for key in ("utterance", "modality", "speaker", "missing"):
        assert torch.equal(g.ndata[key], reference.ndata[key])
    for key in ("etype", "same_speaker"):
        assert torch.equal(g.edata[key], reference.edata[key])
    for b, (conv, sub) in enumerate(zip(ds, dgl.unbatch(g))):
        single = utterance_modality_graph(conv.speakers, masks[b])
        assert _edges(sub) == _edges(single)
        assert (sub.ndata["conversation"] == b).all()
        assert torch.equal(sub.ndata["missing"], single.ndata["missing"])
        assert int(sub.ndata["missing"].sum()) == int((~masks[b]).sum())
    H = torch.randn(5, batch.max_utterances, M, 7)
    nodes = gather_nodes(g, H)
    assert nodes.shape == (g.num_nodes(), 7)
    back = scatter_nodes(g, nodes, 5, batch.max_utterances)
    real = batch.utterance_mask[:, :, None, None]
    assert torch.equal(back * real, H * real) and not back[~batch.utterance_mask].any()
    missing_nodes = nodes[g.ndata["missing"]]
    expected = H.permute(3, 0, 1, 2)[:, batch.missing()].T
    assert torch.equal(missing_nodes.sort(0).values, expected.sort(0).values)


def test_structure_adjacency_values_padding_and_symmetry():
    speakers = torch.tensor([[0, 1, 0, 1], [2, 2, 0, 0]])
    A, n = structure_adjacency(speakers, torch.tensor([4, 2]), GraphConfig(past=1, future=1))
    expected0 = torch.ones(4, 4)
    expected0[0, 3] = expected0[3, 0] = 0  # distance 3, different speakers
    assert torch.equal(A[0], expected0)
    assert torch.equal(A[1, :2, :2], torch.ones(2, 2)) and not A[1, 2:].any() and not A[1, :, 2:].any()
    assert torch.equal(A, A.transpose(1, 2)) and n.tolist() == [4, 2]
    B, _ = structure_adjacency(speakers, torch.tensor([4, 2]), GraphConfig(1, 1, speaker_edges=False, self_loops=False))
    assert B[0, 0, 2] == 0 and B[0, 0, 0] == 0 and B[0, 0, 1] == 1


def test_similarity_adjacency_values_range_and_availability():
    x = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]], [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]])
    S, n = similarity_adjacency(x, torch.tensor([3, 1]))
    assert torch.allclose(S[0], torch.tensor([[1.0, 0.5, 0.0], [0.5, 1.0, 0.5], [0.0, 0.5, 1.0]]))
    assert torch.allclose(S[1, 0, 0], torch.tensor(1.0)) and S[1].sum() == S[1, 0, 0]
    avail = torch.tensor([[True, False, True], [True, False, False]])
    S2, _ = similarity_adjacency(x, torch.tensor([3, 1]), avail)
    assert not S2[0, 1].any() and not S2[0, :, 1].any() and S2[0, 0, 2] == 0 and S2[0, 2, 2] == 1


def test_dense_graphs_of_a_real_batch_are_exactly_what_batched_eigh_expects():
    ds = synthetic_conversations(seed=1, num_conversations=8)
    batch = collate_conversations(list(ds), masks=random_missing(ds, 0.3, seed=0))
    A, n = structure_adjacency(batch.speakers, batch.lengths)
    sims, n2 = modality_similarities(batch, observed=True)
    truth, _ = modality_similarities(batch, observed=False)
    assert torch.equal(n, batch.lengths) and torch.equal(n2, batch.lengths)
    for M in [A, *sims.values(), *truth.values()]:
        assert M.shape == (8, batch.max_utterances, batch.max_utterances)
        assert torch.equal(M, M.transpose(1, 2))
        assert M.min() >= 0 and M.max() <= 1
        pad = ~(batch.utterance_mask[:, :, None] & batch.utterance_mask[:, None, :])
        assert not M[pad].any()
        lam, U = batched_eigh(M.double(), n)
        recon = U @ torch.diag_embed(lam) @ U.transpose(1, 2)
        assert torch.allclose(recon, M.double(), atol=1e-9)
    # Observed similarities hide unavailable utterances; ground-truth ones do not.
    k = batch.modalities.index("a")
    hidden = batch.missing()[:, :, k]
    assert not sims["a"][hidden].any() and truth["a"][hidden].abs().sum() > 0


def test_one_utterance_dense_graphs():
    ds = ConversationDataset.from_arrays(
        {"t": [np.ones((1, 2))], "a": [np.ones((1, 3))]}, [np.array([0.0])], splits={"test": [0]}
    )
    batch = collate_conversations([ds[0]])
    A, n = structure_adjacency(batch.speakers, batch.lengths)
    assert A.tolist() == [[[1.0]]] and n.tolist() == [1]
    lam, _ = batched_eigh(A, n)
    assert lam.tolist() == [[1.0]]
    assert batch_graph(batch).num_nodes() == 2


@pytest.mark.parametrize("M", [2, 4])
def test_other_numbers_of_modalities_work_end_to_end(M):
    from mer.data import ModalitySpec

    specs = {f"m{k}": ModalitySpec(3 + k, (1.0, 0.5, 0.2, 0.1)) for k in range(M)}
    ds = synthetic_conversations(seed=0, num_conversations=6, modalities=specs)
    assert ds.modalities == list(specs)
    masks = random_missing(ds, (M - 1) / M, seed=0)
    assert all((m.sum(axis=1) == 1).all() for m in masks)  # at the ceiling: one modality each
    batch = collate_conversations(list(ds), masks=masks)
    assert batch.availability.shape[2] == M
    g = batch_graph(batch)
    assert g.num_nodes() == M * ds.num_utterances
    assert int(g.ndata["missing"].sum()) == (M - 1) * ds.num_utterances
    assert int((g.edata["etype"] == CROSS_MODAL).sum()) == M * (M - 1) * ds.num_utterances
