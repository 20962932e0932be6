"""GSDNet: recovered graphs keep the structure eigenvectors; training terms; sampler settings."""

import pytest
import torch

import spectraldiff as sd
from mer.data import collate_conversations, random_missing, synthetic_conversations
from mer.graph import structure_adjacency
from mer.recoverers import FeatureScaler, build_recoverer


@pytest.fixture(scope="module")
def setting():
    torch.manual_seed(0)
    ds = synthetic_conversations(seed=0, num_conversations=24)
    masks = random_missing(ds, 0.4, seed=1)
    batch = collate_conversations([ds[i] for i in range(12)], masks=masks[:12])
    return ds, FeatureScaler(ds.feature_dims).fit(ds)(batch)


def off_diagonal_ratio(U, A):
    projected = U.mT @ A @ U
    off = projected - torch.diag_embed(torch.diagonal(projected, dim1=-2, dim2=-1))
    return off.flatten(1).norm(dim=1) / A.flatten(1).norm(dim=1).clamp_min(1e-12)


def test_recovered_graphs_keep_the_structure_eigenvectors(setting):
    ds, batch = setting
    rec = build_recoverer("gsdnet", ds.modalities, ds.feature_dims, sampling_steps=3).eval()
    with torch.no_grad():
        out = rec.recover(batch, batch.availability)
    A, sizes = structure_adjacency(batch.speakers, batch.lengths, rec.graph_config, dtype=torch.float64)
    lam, U = sd.batched_eigh(A, sizes)
    U = sd.eigh.canonical_eigenvectors(lam, U, sizes, sd.eigh.path_tie_breaker(sizes, U.shape[-1]))
    for m in ds.modalities:
        A_m = out.adjacency[m].double()
        assert A_m.shape == A.shape
        assert float(off_diagonal_ratio(U, A_m).max()) < 1e-4
        # Basis-free: sharing eigenvectors with A, A_m commutes with it.
        commutator = A @ A_m - A_m @ A
        assert float((commutator.flatten(1).norm(dim=1) / A_m.flatten(1).norm(dim=1)).max()) < 1e-4
        pad = ~(batch.utterance_mask[:, :, None] & batch.utterance_mask[:, None, :])
        assert torch.all(A_m[pad].abs() < 1e-6)


def test_training_step_returns_the_three_recovery_terms_and_they_backpropagate(setting):
    ds, batch = setting
    rec = build_recoverer("gsdnet", ds.modalities, ds.feature_dims)
    recovery, losses = rec.training_step(batch, batch.availability)
    assert set(losses) == {"rec", "score_features", "score_spectra"}
    assert all(torch.isfinite(v) and float(v) > 0 for v in losses.values())
    sum(losses.values()).backward()
    grads = [p.grad for p in rec.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    for k, m in enumerate(ds.modalities):
        seen = batch.availability[:, :, k] & batch.utterance_mask
        assert torch.equal(recovery.features[m][seen], batch.features[m][seen])


@pytest.mark.parametrize("name, hidden, steps", [
    ("gsdnet", 32, 60), ("gsdnet_adjacency", 16, 40), ("gsdnet_nograph", 32, 60)])
def test_a_few_steps_of_training_lower_the_score_losses(setting, name, hidden, steps):
    ds, batch = setting
    torch.manual_seed(1)
    rec = build_recoverer(name, ds.modalities, ds.feature_dims, hidden_dim=hidden)
    opt = torch.optim.Adam(rec.parameters(), lr=3e-3)
    history = []
    for _ in range(steps):
        _, losses = rec.training_step(batch, batch.availability)
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append(float(total))
    assert sum(history[-10:]) / 10 < 0.7 * sum(history[:10]) / 10


@pytest.mark.parametrize("sampler", ["ode", "euler_maruyama", "reverse_diffusion"])
def test_every_sampler_fills_only_missing_entries(setting, sampler):
    ds, batch = setting
    rec = build_recoverer("gsdnet", ds.modalities, ds.feature_dims, sampler=sampler, sampling_steps=2).eval()
    with torch.no_grad():
        out = rec.recover(batch, batch.availability)
    for k, m in enumerate(ds.modalities):
        seen = batch.availability[:, :, k] & batch.utterance_mask
        missing = ~batch.availability[:, :, k] & batch.utterance_mask
        assert torch.equal(out.features[m][seen], batch.features[m][seen])
        assert torch.all(out.features[m][~batch.utterance_mask] == 0)
        assert bool((out.features[m][missing] != 0).any())


def test_bad_settings_are_rejected_with_the_valid_choices():
    with pytest.raises(ValueError, match="ode"):
        build_recoverer("gsdnet", ["t", "a"], {"t": 2, "a": 2}, sampler="nope")
    with pytest.raises(ValueError, match="tweedie"):
        build_recoverer("gsdnet", ["t", "a"], {"t": 2, "a": 2}, rec_estimate="nope")
    with pytest.raises(ValueError, match="adjacency"):
        build_recoverer("gsdnet", ["t", "a"], {"t": 2, "a": 2}, graph="nope")
    with pytest.raises(ValueError, match=r"denoise_time must lie in \(0, 1\)"):
        build_recoverer("gsdnet", ["t", "a"], {"t": 2, "a": 2}, denoise_time=1.0)
    with pytest.raises(ValueError, match="data"):
        build_recoverer("gsdnet", ["t", "a"], {"t": 2, "a": 2}, prediction="nope")
    with pytest.raises(ValueError, match="fixes graph='none'"):
        build_recoverer("gsdnet_nograph", ["t", "a"], {"t": 2, "a": 2}, graph="spectral")


@pytest.mark.parametrize("name, key, slots", [
    ("gsdnet", "spectra", lambda n: n),
    ("gsdnet_adjacency", "adjacency", lambda n: n * (n + 1) // 2),
    ("gsdnet_nograph", None, None),
])
def test_graph_channels_diffuse_spectra_entries_or_nothing(setting, name, key, slots):
    ds, batch = setting
    torch.manual_seed(0)
    rec = build_recoverer(name, ds.modalities, ds.feature_dims, hidden_dim=16, sampling_steps=2)
    recovery, losses = rec.training_step(batch, batch.availability)
    expected = {"rec", "score_features"} | ({f"score_{key}"} if key else set())
    assert set(losses) == expected
    if key is None:
        assert recovery.adjacency is None and not any(n.startswith("graph_") for n, _ in rec.named_parameters())
        return
    B, N = batch.utterance_mask.shape
    assert recovery.extras[key].shape == (B, slots(N), len(ds.modalities))
    for m in ds.modalities:
        A = recovery.adjacency[m]
        assert torch.allclose(A, A.mT, atol=1e-5)


def test_slot_maps_invert_each_other_on_graphs_they_can_represent(setting):
    ds, batch = setting
    for name in ("gsdnet", "gsdnet_adjacency"):
        rec = build_recoverer(name, ds.modalities, ds.feature_dims, hidden_dim=16)
        ctx = rec._context(batch, batch.availability)
        mask = batch.utterance_mask[:, :, None] & batch.utterance_mask[:, None, :]
        if name == "gsdnet":  # a graph diagonal in the structure basis: U diag(v) Uᵀ
            v = torch.rand(batch.utterance_mask.shape) * batch.utterance_mask
            S = (ctx.eigenvectors * v[:, None, :]) @ ctx.eigenvectors.mT
        else:  # any symmetric graph
            S = torch.rand(mask.shape)
            S = (S + S.mT) / 2 * mask
        back = rec._from_slots(rec._to_slots(S, ctx)[..., 0], ctx)
        assert torch.allclose(back, S, atol=1e-5), name


@pytest.mark.parametrize("prediction", ["data", "noise"])
def test_score_and_one_step_denoiser_agree_in_both_parametrisations(setting, prediction):
    # Tweedie: x̂_0 = (x_t + std² s) / mean must hold whichever output the networks have.
    ds, batch = setting
    torch.manual_seed(0)
    rec = build_recoverer("gsdnet", ds.modalities, ds.feature_dims, hidden_dim=16, prediction=prediction)
    ctx = rec._context(batch, batch.availability)
    masks = rec._masks(ctx)
    state = {k: torch.randn(m.shape[:2] + (m.shape[2] if k == "features" else len(ds.modalities),)) * m
             for k, m in masks.items()}
    t = torch.full((batch.utterance_mask.shape[0],), 0.6)
    with torch.no_grad():
        scores = rec._score(state, t, ctx)
        denoised = rec._tweedie(state, t, ctx)
    mean, std = rec.sde.marginal_prob(torch.ones_like(t), t)
    for k, v in state.items():
        expected = (v + std[:, None, None] ** 2 * scores[k]) / mean[:, None, None] * masks[k]
        assert torch.allclose(denoised[k], expected, atol=1e-4), k


@pytest.mark.parametrize("name", ["gsdnet", "gsdnet_adjacency", "gsdnet_nograph"])
def test_training_and_recovery_are_deterministic_under_a_seed(setting, name):
    ds, batch = setting

    def run(seed):
        torch.manual_seed(0)  # same weights every time
        rec = build_recoverer(name, ds.modalities, ds.feature_dims, hidden_dim=16)
        torch.manual_seed(seed)
        _, losses = rec.training_step(batch, batch.availability)
        with torch.no_grad():
            out = rec.eval().recover(batch, batch.availability)
        return {k: float(v) for k, v in losses.items()}, out.features

    losses_a, features_a = run(7)
    losses_b, features_b = run(7)
    losses_c, _ = run(8)
    assert losses_a == losses_b and losses_a != losses_c
    assert all(torch.equal(features_a[m], features_b[m]) for m in ds.modalities)
