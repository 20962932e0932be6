"""The recoverer contract: observed entries unchanged, only missing ones filled, no peeking, registry."""

import dataclasses

import numpy as np
import pytest
import torch

from mer.data import ConversationDataset, collate_conversations, random_missing
from mer.recoverers import (
    FeatureScaler,
    Recoverer,
    Recovery,
    available_recoverers,
    build_recoverer,
    check_recoverer_settings,
    dropped_mse,
    merge_observed,
    recoverer_settings,
    recovery_error,
    register_recoverer,
)
from mer.training.evaluation import seeded_rng

from fast_settings import FAST


def _dataset(modalities, seed=0, n=8):
    rng = np.random.default_rng(seed)
    widths = {m: 3 + k for k, m in enumerate(modalities)}
    features = {m: [] for m in modalities}
    labels, speakers = [], []
    for i in range(n):
        N = 1 + (i * 3) % 7
        for m in modalities:
            features[m].append(rng.normal(1.0, 2.0, size=(N, widths[m])))
        labels.append(rng.uniform(-3, 3, size=N))
        speakers.append(rng.integers(0, 2, size=N))
    return ConversationDataset.from_arrays(
        features, labels, speakers, splits={"train": list(range(n - 2)), "valid": [n - 2], "test": [n - 1]}
    )


def _standardised_batch(dataset, rate=0.5, seed=0):
    scaler = FeatureScaler(dataset.feature_dims).fit(dataset)
    masks = random_missing(dataset, rate, seed=seed)
    return scaler(collate_conversations(list(dataset), masks)), scaler


def _build(name, dataset, scaler):
    rec = build_recoverer(name, dataset.modalities, dataset.feature_dims, **FAST.get(name, {}))
    rec.fit_statistics(dataset.split("train"), scaler)
    return rec


@pytest.mark.parametrize("name", available_recoverers())
@pytest.mark.parametrize("modalities", [("t", "a"), ("t", "a", "v", "x")], ids=["M2", "M4"])
def test_recover_keeps_observed_entries_and_fills_only_missing_ones(name, modalities):
    ds = _dataset(modalities)
    batch, scaler = _standardised_batch(ds, rate=0.4)
    rec = _build(name, ds, scaler).eval()
    with torch.no_grad():
        out = rec.recover(batch, batch.availability)
    assert isinstance(out, Recovery)
    assert list(out.features) == list(modalities)
    B, N = batch.utterance_mask.shape
    for k, m in enumerate(modalities):
        x, y = batch.features[m], out.features[m]
        assert y.shape == (B, N, ds.feature_dims[m])
        obs = batch.availability[:, :, k]
        assert torch.equal(y[obs], x[obs]), "observed entries must come back bit for bit"
        assert not y[~batch.utterance_mask].any(), "padded utterances must stay zero"
        missing = batch.missing()[:, :, k]
        assert torch.isfinite(y[missing]).all()
    if out.adjacency is not None:
        for m, A in out.adjacency.items():
            assert A.shape == (B, N, N)


@pytest.mark.parametrize("name", available_recoverers())
def test_recover_does_not_read_the_ground_truth_of_missing_entries(name):
    ds = _dataset(("t", "a", "v"))
    batch, scaler = _standardised_batch(ds, rate=0.5)
    rec = _build(name, ds, scaler).eval()
    # Replace every unobserved entry's ground truth by garbage: the recovery must not change.
    poisoned = dataclasses.replace(batch, features={
        m: torch.where(batch.availability[:, :, k, None], x, torch.full_like(x, 1e3))
        for k, (m, x) in enumerate(batch.features.items())
    })
    with torch.no_grad():
        torch.manual_seed(0)
        a = rec.recover(batch, batch.availability).features
        torch.manual_seed(0)
        b = rec.recover(poisoned, batch.availability).features
    for k, m in enumerate(ds.modalities):
        missing = batch.missing()[:, :, k]
        assert torch.allclose(a[m][missing], b[m][missing], atol=1e-5), m


@pytest.mark.parametrize("name", available_recoverers())
def test_stochastic_flag_is_true_exactly_when_recover_depends_on_the_seed(name):
    """Evaluation averages ``samples=K`` draws only for a ``stochastic`` method, and seeds torch's,
    NumPy's and Python's global generators per pass: a method must draw from those alone (same seed,
    same recovery) and declare whether it draws at all (other seed, other recovery)."""
    ds = _dataset(("t", "a", "v"))
    batch, scaler = _standardised_batch(ds, rate=0.5)
    rec = _build(name, ds, scaler).eval()
    with torch.no_grad():  # off the initialisation, whose zeroed output layers can hide the noise
        generator = torch.Generator().manual_seed(0)
        for param in rec.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=generator))

    def fill(seed):
        with torch.no_grad(), seeded_rng(seed):
            out = rec.recover(batch, batch.availability).features
        return torch.cat([out[m][batch.missing()[:, :, k]].flatten() for k, m in enumerate(ds.modalities)])

    first = fill(0)
    assert torch.equal(first, fill(0)), "recover must draw only from the seeded global generators"
    assert torch.equal(first, fill(1)) != type(rec).stochastic, (
        f"{name}: stochastic={type(rec).stochastic} but the recovery "
        f"{'does not depend' if torch.equal(first, fill(1)) else 'depends'} on the seed"
    )


@pytest.mark.parametrize("name", available_recoverers())
def test_training_step_returns_finite_scalar_losses_that_backpropagate(name):
    ds = _dataset(("t", "a", "v"))
    batch, scaler = _standardised_batch(ds, rate=0.5)
    rec = _build(name, ds, scaler).train()
    recovery, losses = rec.training_step(batch, batch.availability)
    for k, m in enumerate(ds.modalities):
        obs = batch.availability[:, :, k]
        assert torch.equal(recovery.features[m][obs], batch.features[m][obs])
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    params = [p for p in rec.parameters() if p.requires_grad]
    if params:
        total = sum(losses.values()) + sum(x.sum() for x in recovery.features.values())
        total.backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)


def test_zero_fill_is_raw_zero_and_mean_fill_is_the_training_mean():
    ds = _dataset(("t", "a"))
    batch, scaler = _standardised_batch(ds, rate=0.5)
    zero = _build("zero", ds, scaler).recover(batch, batch.availability).features
    mean = _build("mean", ds, scaler).recover(batch, batch.availability).features
    train_idx = ds.splits["train"]
    for k, m in enumerate(ds.modalities):
        missing = batch.missing()[:, :, k]
        raw_zero = scaler.inverse(m, zero[m][missing])
        assert torch.allclose(raw_zero, torch.zeros_like(raw_zero), atol=1e-5)
        expected = np.concatenate([ds[i].features[m] for i in train_idx]).mean(axis=0)
        raw_mean = scaler.inverse(m, mean[m][missing])
        assert torch.allclose(raw_mean, torch.as_tensor(expected).float().expand_as(raw_mean), atol=1e-4)


def test_recovery_error_counts_only_dropped_scalars():
    ds = _dataset(("t", "a"))
    batch, _ = _standardised_batch(ds, rate=0.5)
    shifted = {m: x + 2.0 for m, x in batch.features.items()}
    sse, count = recovery_error(batch, batch.availability, shifted)
    missing = batch.missing()
    expected_count = sum(int(missing[:, :, k].sum()) * ds.feature_dims[m] for k, m in enumerate(ds.modalities))
    assert int(count) == expected_count
    assert float(sse / count) == pytest.approx(4.0)
    assert float(dropped_mse(batch, batch.availability, shifted)) == pytest.approx(4.0)


def test_registry_rejects_duplicates_and_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="already registered"):
        @register_recoverer("zero")
        class Another(Recoverer):
            pass
    with pytest.raises(ValueError, match="choose one of .*mean.*zero"):
        build_recoverer("nope", ["t", "a"], {"t": 2, "a": 2})
    with pytest.raises(ValueError, match="unknown settings \\['widht'\\]"):
        build_recoverer("autoencoder", ["t", "a"], {"t": 2, "a": 2}, widht=3)
    for name in ("zero", "mean", "autoencoder", "imder"):
        assert name in available_recoverers()


def test_recoverer_settings_are_the_constructor_defaults_with_the_given_ones_in_their_place():
    assert recoverer_settings("autoencoder", {"hidden": 32}) == {
        "hidden": 32, "bottleneck": 64, "num_blocks": 3, "dropout": 0.1}
    # A variant forwards its parent's settings: they are its defaults too, except those it gives its own.
    parent, variant = recoverer_settings("gsdnet", {}), recoverer_settings("gsdnet_adjacency", {"num_layers": 5})
    assert variant == {**parent, "graph": "adjacency", "slot_network": "edge", "num_layers": 5}
    assert "graph_config" not in variant
    for name in available_recoverers():  # each rebuilds from its record, as a checkpoint's load does
        every = recoverer_settings(name, {})
        check_recoverer_settings(name, every)
        assert isinstance(build_recoverer(name, ["t", "a"], {"t": 4, "a": 4}, **every), Recoverer), name


def test_merge_observed_gives_left_out_modalities_zeros_and_targets_list_what_is_missing():
    ds = _dataset(("t", "a", "v"))
    batch, _ = _standardised_batch(ds, rate=0.4)
    observed = batch.availability.clone()
    observed[:, :, 2] = batch.utterance_mask  # nothing of v is missing
    rec = _build("zero", ds, FeatureScaler(ds.feature_dims).fit(ds))
    assert rec.modalities_to_recover(batch, observed) == ["t", "a"]
    merged = merge_observed(batch, observed, {"t": torch.full_like(batch.features["t"], 5.0)})
    missing_t, missing_a = batch.missing()[:, :, 0], batch.missing()[:, :, 1]
    assert torch.all(merged["t"][missing_t] == 5.0)
    assert torch.all(merged["a"][missing_a] == 0.0)  # "a" left out: zeros where it is missing
    assert torch.equal(merged["v"][batch.utterance_mask], batch.features["v"][batch.utterance_mask])
