"""Encoders, graph fusion and prediction heads (mer.models)."""

import dgl
import pytest
import torch

from mer.models import GraphFusion, ModalityEncoder, ModalityEncoders, PredictionHead


def test_encoder_output_of_a_conversation_does_not_depend_on_its_batch_mates():
    torch.manual_seed(0)
    enc = ModalityEncoder(4, 8, kernel_size=3)
    short = torch.randn(1, 3, 4)
    padded = torch.cat([short, torch.zeros(1, 2, 4)], dim=1)
    mask = torch.tensor([[True, True, True, False, False]])
    alone = enc(short, torch.ones(1, 3, dtype=torch.bool))
    batched = enc(padded, mask)
    assert torch.allclose(alone, batched[:, :3], atol=1e-6)
    assert not batched[:, 3:].any()


def test_modality_encoders_stack_to_B_N_M_d_and_reject_even_kernels():
    enc = ModalityEncoders({"t": 4, "a": 3}, 8, {"t": 3, "a": 1})
    out = enc({"t": torch.randn(2, 5, 4), "a": torch.randn(2, 5, 3)}, torch.ones(2, 5, dtype=torch.bool))
    assert out.shape == (2, 5, 2, 8)
    with pytest.raises(ValueError, match="odd"):
        ModalityEncoder(4, 8, kernel_size=2)


def test_graph_fusion_with_unit_weights_equals_the_unweighted_graph_and_weights_matter():
    torch.manual_seed(0)
    g = dgl.add_self_loop(dgl.graph(([0, 1, 2, 3], [1, 2, 3, 0]), num_nodes=4))
    fusion = GraphFusion(6, num_layers=2, dropout=0.0).eval()
    h = torch.randn(4, 6)
    plain = fusion(g, h)
    assert torch.allclose(plain, fusion(g, h, torch.ones(g.num_edges())), atol=1e-6)
    weights = torch.rand(g.num_edges()) + 0.1
    assert not torch.allclose(plain, fusion(g, h, weights), atol=1e-4)
    with pytest.raises(ValueError, match="edge_weight must have shape"):
        fusion(g, h, torch.ones(3))


def test_prediction_heads_give_one_value_or_C_logits_per_utterance():
    z = torch.randn(2, 5, 12)
    assert PredictionHead(12, 8, "regression")(z).shape == (2, 5)
    assert PredictionHead(12, 8, "classification", num_classes=7)(z).shape == (2, 5, 7)
    with pytest.raises(ValueError, match="num_classes"):
        PredictionHead(12, 8, "classification")


def test_fusion_normalisation_matches_dgl_and_accepts_zero_weights():
    from dgl.nn.pytorch import EdgeWeightNorm

    g = dgl.add_self_loop(dgl.graph(([0, 1, 2, 3, 0], [1, 2, 3, 0, 2]), num_nodes=4))
    w = torch.rand(g.num_edges()) + 0.1
    assert torch.allclose(GraphFusion.normalise(g, w), EdgeWeightNorm(norm="both")(g, w), atol=1e-6)
    w[:3] = 0.0  # edges a recovered graph switches off; self loops keep the degrees positive
    assert torch.isfinite(GraphFusion.normalise(g, w)).all()


def test_plain_fusion_layers_follow_relu_of_normalised_propagation():
    torch.manual_seed(0)
    g = dgl.add_self_loop(dgl.graph(([0, 1, 2], [1, 2, 0]), num_nodes=3))
    fusion = GraphFusion(4, num_layers=1, dropout=0.0, residual=False).eval()
    h = torch.randn(3, 4)
    layer = fusion.layers[0]
    A = torch.zeros(3, 3)
    src, dst = g.edges()
    A[dst, src] = 1.0
    d_in, d_out = A.sum(1), A.sum(0)
    A_hat = A / torch.sqrt(d_in[:, None] * d_out[None, :])
    expected = torch.relu(A_hat @ h @ layer.weight + layer.bias)
    assert torch.allclose(fusion(g, h), expected, atol=1e-5)
    residual = GraphFusion(4, num_layers=1, dropout=0.0, residual=True).eval()
    residual.load_state_dict(fusion.state_dict())
    assert torch.allclose(residual(g, h), h + expected, atol=1e-5)
