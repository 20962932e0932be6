"""GSDNet against its paper (issue 16): a unique spectral basis whatever the speakers, the paper-literal
observed-graph basis, and the reverse SDE of Eq. 16 as a one-word switch."""

import pytest
import torch

import spectraldiff as sd
from mer.data import collate_conversations, random_missing, synthetic_conversations
from mer.recoverers import FeatureScaler, build_recoverer
from mer.recoverers import gsdnet as gsdnet_module


@pytest.fixture(scope="module")
def one_speaker():
    """A batch whose every utterance has speaker 0: the structure graph is all ones."""
    ds = synthetic_conversations(seed=3, num_conversations=8, min_utterances=6, max_utterances=9)
    masks = random_missing(ds, 0.4, seed=2)
    batch = collate_conversations([ds[i] for i in range(4)], masks=masks[:4])
    batch = FeatureScaler(ds.feature_dims).fit(ds)(batch)
    batch.speakers = torch.zeros_like(batch.speakers)
    return ds, batch


def _rotating_eigh(seed):
    """``batched_eigh`` returning, inside every repeated eigenspace, a random rotation of the basis."""
    solve = sd.batched_eigh

    def rotated(A, sizes, **kwargs):
        lam, U = solve(A, sizes, **kwargs)
        g = torch.Generator().manual_seed(seed)
        U = U.clone()
        for b, n in enumerate(sizes.tolist()):
            for start, stop in sd.eigh.degenerate_groups(lam[b], n, 1e-6):
                Q, _ = torch.linalg.qr(torch.randn(stop - start, stop - start, generator=g, dtype=U.dtype))
                U[b, :, start:stop] = U[b, :, start:stop] @ Q
        return lam, U

    return rotated


def _recover(rec, batch, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        return rec.recover(batch, batch.availability)


@pytest.mark.parametrize("basis", ["structure", "observed"])
def test_a_rotation_inside_a_repeated_eigenspace_changes_nothing(one_speaker, monkeypatch, basis):
    ds, batch = one_speaker
    torch.manual_seed(0)
    rec = build_recoverer("gsdnet", ds.modalities, ds.feature_dims, hidden_dim=16, basis=basis).eval()
    ctx = rec._context(batch, batch.availability)
    reference = _recover(rec, batch)
    for seed in (1, 2):
        monkeypatch.setattr(gsdnet_module.sd, "batched_eigh", _rotating_eigh(seed))
        rotated_ctx = rec._context(batch, batch.availability)
        torch.testing.assert_close(rotated_ctx.observed_graph, ctx.observed_graph, atol=1e-5, rtol=0)
        out = _recover(rec, batch)
        for m in ds.modalities:
            torch.testing.assert_close(out.adjacency[m], reference.adjacency[m], atol=1e-4, rtol=0)
            torch.testing.assert_close(out.features[m], reference.features[m], atol=1e-4, rtol=0)
        monkeypatch.undo()


def test_without_the_canonical_basis_a_rotation_would_change_the_spectra(one_speaker, monkeypatch):
    ds, batch = one_speaker
    rec = build_recoverer("gsdnet", ds.modalities, ds.feature_dims, hidden_dim=16).eval()
    ctx = rec._context(batch, batch.availability)
    monkeypatch.setattr(gsdnet_module, "_canonical", lambda lam, U, sizes: U)
    monkeypatch.setattr(gsdnet_module.sd, "batched_eigh", _rotating_eigh(1))
    raw = rec._context(batch, batch.availability)
    assert float((raw.observed_graph - ctx.observed_graph).abs().max()) > 1e-2


def test_the_observed_basis_diagonalises_the_mean_observed_graph(one_speaker):
    ds, batch = one_speaker
    structure = build_recoverer("gsdnet", ds.modalities, ds.feature_dims, hidden_dim=16)
    observed = build_recoverer("gsdnet", ds.modalities, ds.feature_dims, hidden_dim=16, basis="observed")
    ctx_s = structure._context(batch, batch.availability)
    ctx_o = observed._context(batch, batch.availability)
    # The feature network keeps the structure graph either way; only the spectral channel's basis moves.
    graph = lambda c: (c.eigenvectors * c.structure_eigenvalues[:, None, :]) @ c.eigenvectors.mT  # noqa: E731
    torch.testing.assert_close(graph(ctx_o), graph(ctx_s), atol=1e-5, rtol=0)
    assert not torch.allclose(ctx_o.graph_basis, ctx_s.graph_basis, atol=1e-3)
    mean = ctx_o.observed_graph.mean(-1)  # spectra of the observed graphs, averaged over modalities
    torch.testing.assert_close(mean, ctx_o.basis_eigenvalues, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="basis='observed' needs graph='spectral'"):
        build_recoverer("gsdnet_adjacency", ds.modalities, ds.feature_dims, basis="observed")
    with pytest.raises(ValueError, match="unknown basis"):
        build_recoverer("gsdnet", ds.modalities, ds.feature_dims, basis="adjacency")


def test_reverse_sde_inference_runs_euler_maruyama_to_t_near_zero_and_trains_the_same(one_speaker, monkeypatch):
    ds, batch = one_speaker
    calls = []
    real = sd.pc_sampler

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(gsdnet_module.sd, "pc_sampler", spy)
    torch.manual_seed(0)
    paper = build_recoverer("gsdnet", ds.modalities, ds.feature_dims, hidden_dim=16, inference="reverse_sde")
    torch.manual_seed(0)
    default = build_recoverer("gsdnet", ds.modalities, ds.feature_dims, hidden_dim=16)
    _recover(paper.eval(), batch)
    assert len(calls) == 1
    assert calls[0]["predictor"] == "euler_maruyama" and calls[0]["steps"] == gsdnet_module.REVERSE_SDE_STEPS
    assert calls[0]["eps"] == gsdnet_module.REVERSE_SDE_END <= 1e-3 and calls[0]["denoise"] is False
    _recover(default.eval(), batch)
    assert len(calls) == 1  # the default stops at denoise_time with the ODE, not this sampler
    # Training does not depend on the switch.
    for rec in (paper, default):
        rec.train()
    torch.manual_seed(5)
    a = paper.training_losses(batch, batch.availability)
    torch.manual_seed(5)
    b = default.training_losses(batch, batch.availability)
    assert {k: float(v) for k, v in a.items()} == {k: float(v) for k, v in b.items()}
    with pytest.raises(ValueError, match="unknown inference"):
        build_recoverer("gsdnet", ds.modalities, ds.feature_dims, inference="sde")


def test_speaker_weights_cover_the_same_speakers_other_turns_with_turn_decay():
    speakers = torch.tensor([[0, 1, 0, 0, 1, 0]])
    mask = torch.tensor([[True] * 5 + [False]])  # the last utterance is padding
    uniform, decayed = gsdnet_module._speaker_weights(speakers, mask)
    expected = torch.zeros(6, 6)
    for i, j in [(0, 2), (0, 3), (2, 3), (1, 4)]:
        expected[i, j] = expected[j, i] = 1.0
    torch.testing.assert_close(uniform[0], expected)
    # Speaker 0's turns 1, 2, 3 are utterances 0, 2, 3: one turn apart weighs 0.5, two turns 0.25.
    assert float(decayed[0, 0, 2]) == 0.5 and float(decayed[0, 0, 3]) == 0.25 and float(decayed[0, 2, 3]) == 0.5
    assert float(decayed[0, 1, 4]) == 0.5 and float(decayed[0, 5].abs().sum()) == 0.0


def test_speaker_context_reads_only_observed_entries_and_only_widens_the_feature_condition(one_speaker):
    ds, batch = one_speaker
    torch.manual_seed(0)
    with_context = build_recoverer("gsdnet", ds.modalities, ds.feature_dims, hidden_dim=16)
    torch.manual_seed(0)
    paper = build_recoverer("gsdnet", ds.modalities, ds.feature_dims, hidden_dim=16, speaker_context=False)
    D, M = with_context.total_dim, len(ds.modalities)
    assert with_context.speaker_context and not paper.speaker_context
    assert with_context.feature_score.condition.in_features == 3 * (D + M)
    assert paper.feature_score.condition.in_features == D + M
    widths = {k: v.shape for k, v in paper.state_dict().items()}
    changed = [k for k, v in with_context.state_dict().items() if v.shape != widths[k]]
    assert changed == ["feature_score.condition.weight"]
    ctx = with_context._context(batch, batch.availability)
    assert ctx.feature_condition.shape[-1] == 3 * (D + M)
    # Changing a dropped entry changes nothing the networks condition on.
    hidden = batch.features[ds.modalities[0]].clone()
    dropped = ~batch.availability[:, :, 0] & batch.utterance_mask
    assert dropped.any()
    hidden[dropped] += 5.0
    changed_batch = type(batch)(**{**batch.__dict__, "features": {**batch.features, ds.modalities[0]: hidden}})
    torch.testing.assert_close(with_context._context(changed_batch, batch.availability).feature_condition,
                               ctx.feature_condition)
