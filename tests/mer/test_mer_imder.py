"""IMDer's switches: the Table 3 ablations remove their module's parameters and loss term, the
unconditional variant (Figure 4) stops reading the other modalities, and nothing else changes."""

import dataclasses
import inspect

import pytest
import torch

from mer.config import RunConfig
from mer.data import collate_conversations, random_missing, synthetic_conversations
from mer.recoverers import FeatureScaler, build_recoverer
from mer.recoverers.imder import IMDer

SMALL = {"steps": 3, "train_steps": 2, "channels": (8, 16), "token_dim": 8, "time_dim": 8}


@pytest.fixture(scope="module")
def dataset():
    return synthetic_conversations(seed=0, num_conversations=16, max_utterances=10)


@pytest.fixture(scope="module")
def batch(dataset):
    masks = random_missing(dataset, 0.4, seed=1)
    raw = collate_conversations([dataset[i] for i in range(8)], masks=masks[:8])
    return FeatureScaler(dataset.feature_dims).fit(dataset)(raw)


def _imder(dataset, seed=0, **kwargs):
    torch.manual_seed(seed)
    return build_recoverer("imder", dataset.modalities, dataset.feature_dims, **{**SMALL, **kwargs})


def _missing(batch):
    return batch.missing_entries(batch.availability)


def _params(module):
    return {k: p.detach().clone() for k, p in module.named_parameters()}


def test_the_documented_training_sampler_default_is_the_one_the_code_uses():
    default = inspect.signature(IMDer.__init__).parameters["train_steps"].default
    assert default == 10
    assert "default **10**" in IMDer.__doc__ and "train_steps=100" in IMDer.__doc__


def test_without_the_score_network_its_parameters_and_loss_are_gone(dataset, batch):
    full, ablated = _imder(dataset).train(), _imder(dataset, score=False).train()
    assert any(k.startswith("score_nets.") for k in _params(full))
    assert not any(k.startswith("score_nets.") for k in _params(ablated))
    # Everything else is the same module with the same shapes.
    rest = {k: p.shape for k, p in full.named_parameters() if not k.startswith("score_nets.")}
    assert {k: p.shape for k, p in ablated.named_parameters()} == rest
    _, losses = ablated.training_step(batch, batch.availability)
    assert set(losses) == {"rec"}
    assert set(full.training_step(batch, batch.availability)[1]) == {"score", "rec"}


def test_without_the_score_network_recovery_is_deterministic_and_starts_at_the_mean(dataset, batch):
    rec = _imder(dataset, score=False, reconstruction=False).eval()
    assert not rec.stochastic and not list(rec.parameters())
    with torch.no_grad():
        torch.manual_seed(1)
        first = rec.recover(batch, batch.availability)
        torch.manual_seed(2)
        second = rec.recover(batch, batch.availability)
    missing = _missing(batch)
    for k, m in enumerate(dataset.modalities):
        assert torch.equal(first.features[m], second.features[m])
        # Without both modules the recovery is mean fill: zero in standardised space.
        assert torch.all(first.features[m][missing[:, :, k]] == 0)
        assert missing[:, :, k].any()
    assert _imder(dataset, score=False).stochastic is False and _imder(dataset).stochastic is True


def test_without_the_reconstruction_module_the_sample_is_the_recovery(dataset, batch):
    rec = _imder(dataset, reconstruction=False).eval()
    assert not any(k.startswith("reconstruct.") for k in _params(rec))
    with torch.no_grad():
        torch.manual_seed(3)
        out = rec.recover(batch, batch.availability)
    missing = _missing(batch)
    for k, m in enumerate(dataset.modalities):
        miss = missing[:, :, k]
        assert torch.equal(out.features[m][miss], out.extras[f"sample_{m}"][miss])
    full = _imder(dataset).eval()
    with torch.no_grad():
        torch.manual_seed(3)
        refined = full.recover(batch, batch.availability)
    m = dataset.modalities[0]
    miss = missing[:, :, 0]
    assert not torch.allclose(refined.features[m][miss], refined.extras[f"sample_{m}"][miss])
    _, losses = rec.train().training_step(batch, batch.availability)
    assert set(losses) == {"score"}


def _recover_with_other_modalities_changed(rec, batch, target):
    """Recover twice under one seed: as given, and with every other modality's features shifted."""
    k = batch.modalities.index(target)
    outs = []
    for shift in (0.0, 3.0):
        features = {m: (x if m == target else x + shift) for m, x in batch.features.items()}
        changed = dataclasses.replace(batch, features=features)
        with torch.no_grad():
            torch.manual_seed(5)
            outs.append(rec.recover(changed, batch.availability).features[target])
    miss = _missing(batch)[:, :, k]
    return outs[0][miss], outs[1][miss]


def test_the_unconditional_variant_ignores_the_other_modalities_and_keeps_the_parameters(dataset, batch):
    cond, uncond = _imder(dataset).eval(), _imder(dataset, conditional=False).eval()
    assert {k: p.shape for k, p in cond.named_parameters()} == {k: p.shape for k, p in uncond.named_parameters()}
    target = dataset.modalities[0]
    a, b = _recover_with_other_modalities_changed(uncond, batch, target)
    assert torch.allclose(a, b, atol=1e-6)
    a, b = _recover_with_other_modalities_changed(cond, batch, target)
    assert not torch.allclose(a, b, atol=1e-3)


@pytest.mark.parametrize("kwargs, match", [
    ({"score": "off"}, "true or false"),
    ({"score": False, "conditional": False}, "at most one"),
])
def test_bad_switches_are_rejected_with_a_message(dataset, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _imder(dataset, **kwargs)


def test_a_switch_is_reachable_from_a_config_setting(dataset):
    cfg = RunConfig().with_settings(["recoverer=imder", "recoverer_kwargs.score=false"])
    assert cfg.recoverer_kwargs == {"score": False}
    rec = build_recoverer(cfg.recoverer, dataset.modalities, dataset.feature_dims,
                          **{**SMALL, **cfg.recoverer_kwargs})
    assert not rec.use_score and not rec.stochastic
