"""The full model (mer.model): standardise → recover → encode → fuse → predict."""

import pytest
import torch

from mer.config import ModelConfig
from mer.data import collate_conversations, random_missing, synthetic_conversations
from mer.graph import SELF_LOOP, batch_graph
from mer.model import MERModel
from mer.recoverers import Recovery, build_recoverer


def _model(recoverer="zero", task="regression", num_classes=None, **rkw):
    ds = synthetic_conversations(seed=0, num_conversations=6, max_utterances=9, task=task)
    rec = build_recoverer(recoverer, ds.modalities, ds.feature_dims, **rkw)
    model = MERModel(ds.modalities, ds.feature_dims, rec, ModelConfig(dim=8, head_hidden=8), task,
                     ds.num_classes)
    model.scaler.fit(ds)
    batch = collate_conversations(list(ds), random_missing(ds, 0.3, seed=0))
    return model, batch


def test_mer_model_predicts_one_output_per_utterance_for_both_tasks():
    model, batch = _model()
    out = model(batch)
    assert out.prediction.shape == batch.labels.shape
    model, batch = _model(task="classification")
    out = model(batch)
    assert out.prediction.shape == (*batch.labels.shape, 7)


def test_edge_weights_take_the_recovered_adjacency_on_within_modality_edges_only():
    model, batch = _model()
    g = batch_graph(batch, model.config.graph)
    B, N = batch.utterance_mask.shape
    A = {m: torch.rand(B, N, N) for m in batch.modalities}
    w = model.edge_weights(g, A)
    src, dst = g.edges()
    conv = g.ndata["conversation"][dst]
    ms, md = g.ndata["modality"][src], g.ndata["modality"][dst]
    us, ud = g.ndata["utterance"][src], g.ndata["utterance"][dst]
    within = (ms == md) & (g.edata["etype"] != SELF_LOOP)
    assert torch.all(w[~within] == 1.0)
    e = int(torch.nonzero(within)[0])
    m = batch.modalities[int(md[e])]
    assert w[e].item() == pytest.approx(A[m][conv[e], ud[e], us[e]].item())


def test_mer_model_runs_with_a_recovered_adjacency_holding_zeros_and_negatives():
    model, batch = _model()
    B, N = batch.utterance_mask.shape

    A = torch.randn(B, N, N)  # clamped at 0 by the model: about half the edges switched off
    plain = model.recoverer.recover
    model.recoverer.recover = lambda b, observed: Recovery(
        plain(b, observed).features, adjacency={m: A for m in b.modalities}
    )
    out = model(batch)
    assert torch.isfinite(out.prediction).all()


def test_mer_model_rejects_a_recoverer_for_other_modalities():
    ds = synthetic_conversations(seed=0, num_conversations=4)
    rec = build_recoverer("zero", ["t", "a"], {"t": 32, "a": 24})
    with pytest.raises(ValueError, match="recoverer was built for modalities"):
        MERModel(ds.modalities, ds.feature_dims, rec)
