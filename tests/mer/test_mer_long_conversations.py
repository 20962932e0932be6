"""Long conversations (IEMOCAP's ~110 utterances, 200 as a stress case): chunked slot networks give the
unchunked result, every recoverer steps at 110 utterances, and a recoverer that would not fit refuses
before training (``docs/long_conversations.md``)."""

import numpy as np
import pytest
import torch

import mer
from mer.data import ConversationDataset, collate_conversations, random_missing
from mer.recoverers import FeatureScaler, available_recoverers, build_recoverer
from mer.recoverers.base import MEMORY_LIMIT_ENV, memory_limit, parse_bytes
from spectraldiff.score_networks import EdgeScoreNet, EigenvalueScoreNet

from fast_settings import FAST

FOUR_GB = 4 * 10**9
# Float32 sums of a few hundred terms in another order: outputs agree to ~1e-7, gradients to ~1e-5.
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def _dataset(lengths, seed=0, modalities=("t", "a", "v")):
    rng = np.random.default_rng(seed)
    widths = {m: 4 + k for k, m in enumerate(modalities)}
    features = {m: [rng.normal(size=(n, widths[m])) for n in lengths] for m in modalities}
    labels = [rng.uniform(-3, 3, size=n) for n in lengths]
    speakers = [rng.integers(0, 2, size=n) for n in lengths]
    k = len(lengths)
    return ConversationDataset.from_arrays(features, labels, speakers,
                                           splits={"train": list(range(k - 2)), "valid": [k - 2], "test": [k - 1]})


def _outputs_and_gradients(net, *inputs):
    net.zero_grad()
    out = net(*inputs)
    (out ** 2).sum().backward()
    return out.detach(), [p.grad.clone() for p in net.parameters()]


def _slot_inputs(T, B=3, C=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    values, condition, t = torch.randn(B, T, generator=g), torch.randn(B, T, C, generator=g), torch.rand(B, generator=g)
    mask = torch.ones(B, T, dtype=torch.bool)
    return values, t, mask, condition


def test_chunked_slot_attention_equals_unchunked_in_output_and_gradient():
    torch.manual_seed(0)
    net = EigenvalueScoreNet(hidden_dim=16, num_layers=2, condition_dim=5)
    values, t, mask, condition = _slot_inputs(21)
    mask[1, 15:] = False  # a padded sequence: its padding must stay invisible either way
    whole, whole_grad = _outputs_and_gradients(net, values, t, mask, condition)
    net.attention_budget = 3 * 4 * 4 * 21  # 4 queries per chunk: 6 chunks, the last one short
    chunked, chunked_grad = _outputs_and_gradients(net, values, t, mask, condition)
    assert torch.allclose(chunked, whole, **TOLERANCE)
    for a, b in zip(chunked_grad, whole_grad):
        assert torch.allclose(a, b, **TOLERANCE)


def test_edge_network_in_chunks_equals_one_pass_in_output_and_gradient():
    torch.manual_seed(0)
    net = EdgeScoreNet(hidden_dim=16, num_layers=2, condition_dim=5, chunk=10**9)
    values, t, mask, condition = _slot_inputs(28)  # 7 × 7 matrices
    rows, cols = torch.triu_indices(7, 7)
    mask[1] = (rows < 4) & (cols < 4)  # a conversation of 4 utterances padded to 7
    whole, whole_grad = _outputs_and_gradients(net, values, t, mask, condition)
    net.chunk = 11
    chunked, chunked_grad = _outputs_and_gradients(net, values, t, mask, condition)
    assert torch.allclose(chunked, whole, **TOLERANCE)
    for a, b in zip(chunked_grad, whole_grad):
        assert torch.allclose(a, b, **TOLERANCE)
    assert not chunked[1][~mask[1]].any(), "padded slots must predict zero"


def test_edge_network_is_equivariant_to_relabelling_the_utterances():
    torch.manual_seed(0)
    n = 6
    net = EdgeScoreNet(hidden_dim=16, num_layers=2, condition_dim=0).eval()
    full = torch.randn(1, n, n)
    full = full + full.mT
    rows, cols = torch.triu_indices(n, n)
    perm = torch.randperm(n)
    relabelled = full[:, perm][:, :, perm]
    t, mask = torch.rand(1), torch.ones(1, rows.numel(), dtype=torch.bool)
    with torch.no_grad():
        out = net(full[:, rows, cols], t, mask)
        out_relabelled = net(relabelled[:, rows, cols], t, mask)
    as_matrix = torch.zeros(1, n, n)
    as_matrix[:, rows, cols] = out
    as_matrix = as_matrix + as_matrix.mT - torch.diag_embed(torch.diagonal(as_matrix, dim1=-2, dim2=-1))
    assert torch.allclose(as_matrix[:, perm][:, :, perm][:, rows, cols], out_relabelled, **TOLERANCE)


def test_adjacency_ablation_defaults_to_the_edge_network_and_keeps_attention_selectable():
    dims = {"t": 4, "a": 5, "v": 6}
    assert isinstance(build_recoverer("gsdnet_adjacency", list(dims), dims).graph_score, EdgeScoreNet)
    attention = build_recoverer("gsdnet_adjacency", list(dims), dims, slot_network="attention")
    assert isinstance(attention.graph_score, EigenvalueScoreNet)
    with pytest.raises(ValueError, match="needs graph='adjacency'"):
        build_recoverer("gsdnet", list(dims), dims, slot_network="edge")


@pytest.mark.parametrize("settings", [{}, {"slot_network": "attention"}], ids=["edge", "attention"])
def test_adjacency_ablation_estimates_under_4gb_at_iemocap_length(settings):
    dims = {"t": 100, "a": 73, "v": 512}  # IEMOCAP-like widths
    rec = build_recoverer("gsdnet_adjacency", list(dims), dims, **settings)
    assert rec.estimate_memory(110, 1) < FOUR_GB
    if not settings:  # the default network also takes the default batch of 16 at 110 utterances
        assert rec.estimate_memory(110, 16) < FOUR_GB
    # Attention's estimate grows with the slots, the edge network's too, but 20× more slowly per slot.
    assert rec.estimate_memory(200, 1) > rec.estimate_memory(110, 1)


@pytest.mark.parametrize("name", ["gsdnet_adjacency", "gsdnet"])
def test_adjacency_ablation_steps_and_recovers_at_110_utterances(name):
    ds = _dataset([110, 6, 5, 4])
    batch, scaler = _batch(ds, [0])
    _train_step_and_recover(_build(name, ds, scaler), batch)


@pytest.mark.slow
@pytest.mark.parametrize("name", available_recoverers())
def test_every_recoverer_trains_and_recovers_at_110_utterances(name):
    ds = _dataset([110, 6, 5, 4])
    batch, scaler = _batch(ds, [0])
    _train_step_and_recover(_build(name, ds, scaler), batch)


def test_check_memory_refuses_in_one_line_with_the_numbers_and_the_fix(monkeypatch):
    ds = _dataset([30, 6, 5, 4])
    rec = build_recoverer("gsdnet_adjacency", ds.modalities, ds.feature_dims, slot_network="attention")
    with pytest.raises(ValueError) as err:
        rec.check_memory(ds, batch_size=16, limit=10**6)
    message = str(err.value)
    assert "\n" not in message
    need = rec.estimate_memory(30, 2)  # two training conversations: the batch cannot be larger
    assert f"{need / 1e9:.2f} GB" in message and "30 utterances" in message and "0.00 GB limit" in message
    assert "slot_network='edge'" in message
    rec.check_memory(ds, batch_size=16, limit=10**12)  # fits: no error
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1MB")
    assert memory_limit() == 10**6
    with pytest.raises(ValueError, match="over the 0.00 GB limit"):
        rec.check_memory(ds, batch_size=16)


def test_training_refuses_before_the_first_epoch_under_a_small_limit(monkeypatch, tmp_path):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1KB")
    ds = _dataset([12, 6, 5, 4])
    epochs = []
    with pytest.raises(ValueError, match="utterances") as err:
        mer.train(ds, recoverer="gsdnet_adjacency", masks=0.3, epochs=1, seed=0, out_dir=tmp_path,
                  recoverer_kwargs=FAST["gsdnet_adjacency"], on_epoch_end=epochs.append)
    assert "\n" not in str(err.value)
    assert epochs == [] and not (tmp_path / "last.pt").exists()
    # Methods without an estimate are never refused.
    mer.train(ds, recoverer="zero", masks=0.3, epochs=1, seed=0)


@pytest.mark.parametrize("text, expected", [("4GB", 4 * 10**9), ("512MiB", 512 * 2**20), ("1e9", 10**9),
                                            (" 2 gib ", 2 * 2**30)])
def test_parse_bytes_reads_sizes(text, expected):
    assert parse_bytes(text) == expected


def test_parse_bytes_rejects_a_non_size_naming_the_setting(monkeypatch):
    with pytest.raises(ValueError, match="train.step_memory='lots' is not a size"):
        parse_bytes("lots", "train.step_memory")
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1.2.3GB")
    with pytest.raises(ValueError, match="MER_MEMORY_LIMIT='1.2.3GB' is not a size"):
        memory_limit()


# ------------------------------------------------------------------------------------- helpers
def _batch(ds, indices, rate=0.3):
    scaler = FeatureScaler(ds.feature_dims).fit(ds)
    masks = random_missing(ds, rate, seed=0)
    return scaler(collate_conversations([ds[i] for i in indices], [masks[i] for i in indices])), scaler


def _build(name, ds, scaler):
    settings = dict(FAST.get(name, {}))
    if name.startswith("gsdnet"):
        settings.update(hidden_dim=8)
    rec = build_recoverer(name, ds.modalities, ds.feature_dims, **settings)
    rec.fit_statistics(ds.split("train"), scaler)
    return rec


def _train_step_and_recover(rec, batch):
    torch.manual_seed(0)
    rec.train()
    recovery, losses = rec.training_step(batch, batch.availability)
    loss = sum(losses.values()) + sum(x.pow(2).mean() for x in recovery.features.values())
    if loss.requires_grad:
        loss.backward()
    rec.eval()
    with torch.no_grad():
        out = rec.recover(batch, batch.availability)
    for m, x in out.features.items():
        assert x.shape == batch.features[m].shape and torch.isfinite(x).all()
