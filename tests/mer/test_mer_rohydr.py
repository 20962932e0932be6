"""RoHyDR: training learns, stage ownership of parameters, one vs multi stage, determinism, resume."""

import io

import pytest
import torch

import mer
from mer.config import RunConfig
from mer.data import collate_conversations, random_missing, synthetic_conversations
from mer.recoverers import FeatureScaler, build_recoverer
from mer.training import load_checkpoint

SMALL = {"timesteps": 10, "sample_steps": 3, "train_sample_steps": 2, "width": 16, "layers": 1,
         "hidden": 16, "fusion_dim": 16}
CONFIG = {
    "model": {"dim": 16, "head_hidden": 16, "gcn_layers": 1},
    "train": {"epochs": 2, "batch_size": 8, "patience": 0},
}


@pytest.fixture(scope="module")
def dataset():
    return synthetic_conversations(seed=0, num_conversations=40, max_utterances=12)


@pytest.fixture(scope="module")
def batch(dataset):
    masks = random_missing(dataset, 0.4, seed=1)
    raw = collate_conversations([dataset[i] for i in range(12)], masks=masks[:12])
    return FeatureScaler(dataset.feature_dims).fit(dataset)(raw)


def _recoverer(dataset, seed=0, **kwargs):
    torch.manual_seed(seed)
    return build_recoverer("rohydr", dataset.modalities, dataset.feature_dims, **{**SMALL, **kwargs})


def _snapshot(module):
    return {k: p.detach().clone() for k, p in module.named_parameters()}


def _changed(before, module):
    return {k for k, p in module.named_parameters() if not torch.equal(before[k], p.detach())}


def _train(dataset, stages="multi", **kwargs):
    cfg = RunConfig.from_dict(CONFIG)
    return mer.train(dataset, recoverer="rohydr", masks=0.3, config=cfg,
                     recoverer_kwargs={**SMALL, "stages": stages}, **kwargs)


def test_a_few_epochs_lower_the_training_and_validation_losses(dataset):
    cfg = RunConfig.from_dict(CONFIG)
    cfg.train.epochs, cfg.train.lr = 5, 3e-3
    trained = mer.train(dataset, recoverer="rohydr", masks=0.3, config=cfg, seed=3,
                        recoverer_kwargs={**SMALL, "lr": 3e-3})
    history = trained.history
    valid = [h["valid_loss"] for h in history]
    assert min(valid[1:]) < valid[0] - 0.05, valid
    for key in ("train_loss", "train_generator", "train_classifier"):
        assert history[-1][key] < history[0][key], (key, [h[key] for h in history])


def test_a_multi_stage_step_updates_only_the_stage_owned_parameters(dataset, batch):
    # Stage 1 (generators, unimodal reconstructors) and stage 2 (multimodal reconstructor,
    # discriminator) step inside training_step; fusion network and classifier are the trainer's.
    rec = _recoverer(dataset).train()
    before = _snapshot(rec)
    _, losses = rec.training_step(batch, batch.availability)
    owned = {k.split(".")[0] for k in _changed(before, rec)}
    assert owned == {"generators", "unimodal", "multimodal", "discriminator"}, owned
    assert not losses["generator"].requires_grad and not losses["fusion"].requires_grad
    assert losses["classifier"].requires_grad
    assert all(p.grad is None for p in rec.parameters()), "internal stages must not leave gradients"


def test_a_one_stage_step_updates_only_the_discriminator_itself(dataset, batch):
    rec = _recoverer(dataset, stages="one").train()
    before = _snapshot(rec)
    _, losses = rec.training_step(batch, batch.availability)
    assert {k.split(".")[0] for k in _changed(before, rec)} == {"discriminator"}
    assert all(v.requires_grad for v in losses.values())


def test_the_discriminator_optimiser_changes_only_discriminator_parameters(dataset, batch):
    rec = _recoverer(dataset).train()
    recovery, _ = rec.training_step(batch, batch.availability)  # creates the internal optimisers
    partial = batch.utterance_mask & ~batch.availability.all(-1)
    with torch.no_grad():
        real = rec.fuse(batch.features)[partial]
        fake = rec.fuse(recovery.features)[partial]
    before = _snapshot(rec)
    loss = rec.discriminator_step(real, fake)
    changed = _changed(before, rec)
    assert torch.isfinite(loss)
    assert changed == {k for k, _ in rec.named_parameters() if k.startswith("discriminator.")}


def test_one_and_multi_stage_make_different_updates_from_the_same_start(dataset, batch):
    updates = {}
    for stages in ("multi", "one"):
        rec = _recoverer(dataset, seed=7, stages=stages).train()
        start = _snapshot(rec)
        common = torch.optim.Adam(rec.parameters(), lr=1e-3)  # the trainer's optimiser
        torch.manual_seed(11)
        recovery, losses = rec.training_step(batch, batch.availability)
        common.zero_grad(set_to_none=True)
        (sum(losses.values()) + sum(x.pow(2).mean() for x in recovery.features.values())).backward()
        common.step()
        updates[stages] = (start, {k: p.detach() - start[k] for k, p in rec.named_parameters()})
    (start_multi, multi), (start_one, one) = updates["multi"], updates["one"]
    assert all(torch.equal(start_multi[k], start_one[k]) for k in start_multi), "same start"
    for prefix in ("unimodal.", "multimodal.", "fusion."):
        keys = [k for k in multi if k.startswith(prefix)]
        assert any(not torch.allclose(multi[k], one[k], atol=1e-7) for k in keys), prefix


def test_two_runs_with_the_same_seed_give_identical_metrics(dataset):
    runs = []
    for _ in range(2):
        trained = _train(dataset, seed=5)  # the sampler draws from the torch stream train() seeds
        history = [{k: v for k, v in h.items() if k != "seconds"} for h in trained.history]
        runs.append((history, trained.evaluate(dataset, "test")))
    assert runs[0] == runs[1]


class _Interrupt(Exception):
    pass


def _internal_state(path):
    blob = load_checkpoint(path)["model"]["recoverer._extra_state"]
    return torch.load(io.BytesIO(blob.numpy().tobytes()), weights_only=True)


def test_resume_restores_the_internal_optimiser_state(dataset, tmp_path):
    cfg_epochs = {"epochs": 3}
    reference = _train(dataset, seed=2, out_dir=tmp_path / "ref", **cfg_epochs)

    def stop_after_two(record):
        if record["epoch"] == 2:
            raise _Interrupt

    run = tmp_path / "run"
    with pytest.raises(_Interrupt):
        _train(dataset, seed=2, out_dir=run, on_epoch_end=stop_after_two, **cfg_epochs)
    saved = _internal_state(run / "last.pt")
    assert set(saved) == {"discriminator", "generator", "fusion"}
    assert all(opt["state"] for opt in saved.values()), "the internal Adam moments are checkpointed"
    resumed = _train(dataset, seed=2, out_dir=run, **cfg_epochs)
    ref_state, res_state = _internal_state(tmp_path / "ref" / "last.pt"), _internal_state(run / "last.pt")
    for name, opt in ref_state.items():
        for key, value in opt["state"].items():
            for field in ("step", "exp_avg", "exp_avg_sq"):
                assert torch.allclose(res_state[name]["state"][key][field], value[field], atol=1e-6)
    ref_params = dict(reference.model.named_parameters())
    for name, p in resumed.model.named_parameters():
        assert torch.allclose(p, ref_params[name], atol=1e-6), name


def test_classification_labels_must_fit_the_classifier(dataset):
    cls = dataset.as_classification()
    masks = random_missing(cls, 0.4, seed=1)
    batch = FeatureScaler(cls.feature_dims).fit(cls)(collate_conversations([cls[i] for i in range(6)], masks[:6]))
    _, losses = _recoverer(cls).train().training_step(batch, batch.availability)
    assert all(torch.isfinite(v) for v in losses.values())
    with pytest.raises(ValueError, match="max_classes"):
        _recoverer(cls, max_classes=2).train().training_step(batch, batch.availability)


@pytest.mark.parametrize("bad, match", [
    ({"stages": "three"}, "stages must be one of"),
    ({"lambda_al": 1.5}, "lambda_al"),
    ({"sample_steps": 11}, "sample_steps must be in"),
    ({"width": 15, "heads": 2}, "divisible"),
])
def test_bad_settings_are_rejected_with_a_clear_message(dataset, bad, match):
    with pytest.raises(ValueError, match=match):
        _recoverer(dataset, **bad)


# ------------------------------------------------------------------ issue 16: the paper's switches
def _top(names):
    return {k.split(".")[0] for k in names}


def _grads_of_returned_losses(rec, batch):
    """Top-level modules the returned stage losses reach (what the trainer's optimiser would update)."""
    _, losses = rec.training_step(batch, batch.availability)
    rec.zero_grad(set_to_none=True)
    sum(v for v in losses.values() if v.requires_grad).backward()
    return _top(k for k, p in rec.named_parameters() if p.grad is not None and bool(p.grad.abs().sum() > 0))


@pytest.mark.parametrize("kwargs, groups", [
    ({}, {"discriminator", "generator", "fusion"}),
    ({"stages": "two"}, {"discriminator", "generator"}),
    ({"stages": "one"}, {"discriminator"}),
    ({"optimisation": "paper"}, {"discriminator", "model"}),
    ({"stages": "two", "optimisation": "paper"}, {"discriminator", "model"}),
    ({"disc": False}, {"generator", "fusion"}),
    ({"mr": False}, {"discriminator", "generator"}),
])
def test_each_setting_gives_its_internal_optimiser_groups(dataset, kwargs, groups):
    rec = _recoverer(dataset, **kwargs)
    owned = rec.stage_parameters()
    assert set(owned) == groups
    if "model" in owned:
        assert {id(p) for p in owned["model"]} == {
            id(p) for k, p in rec.named_parameters() if not k.startswith("discriminator.")}


def test_the_papers_optimisation_lets_each_stage_update_every_upstream_module(dataset, batch):
    # Algorithm 1: stage 2 updates the fusion network too (disjoint freezes it), and the last stage's
    # loss reaches the reconstructors (disjoint detaches them).
    paper = _recoverer(dataset, optimisation="paper").train()
    before = _snapshot(paper)
    paper.training_step(batch, batch.availability)
    assert _top(_changed(before, paper)) == {"generators", "unimodal", "multimodal", "fusion", "discriminator"}
    assert _grads_of_returned_losses(_recoverer(dataset, optimisation="paper").train(), batch) == {
        "unimodal", "multimodal", "fusion", "classifier"}
    assert _grads_of_returned_losses(_recoverer(dataset).train(), batch) == {"fusion", "classifier"}


def test_the_two_stage_strategy_steps_stage_one_inside_and_returns_the_rest(dataset, batch):
    rec = _recoverer(dataset, stages="two").train()
    before = _snapshot(rec)
    _, losses = rec.training_step(batch, batch.availability)
    assert _top(_changed(before, rec)) == {"generators", "unimodal", "discriminator"}
    assert not losses["generator"].requires_grad
    assert losses["fusion"].requires_grad and losses["classifier"].requires_grad
    assert _grads_of_returned_losses(_recoverer(dataset, stages="two").train(), batch) == {
        "multimodal", "fusion", "classifier"}


@pytest.mark.parametrize("switch, module, terms", [
    ("hddm", "generators", {"hddm"}),
    ("ur", "unimodal", {"ur"}),
    ("disc", "discriminator", {"disc", "adv"}),
    ("mr", "multimodal", set()),
])
def test_each_ablation_removes_its_module_and_its_loss_terms(dataset, batch, switch, module, terms):
    full, ablated = _recoverer(dataset).train(), _recoverer(dataset, **{switch: False}).train()
    assert module in _top(k for k, _ in full.named_parameters())
    assert module not in _top(k for k, _ in ablated.named_parameters())
    assert _top(k for k, _ in ablated.named_parameters()) == _top(k for k, _ in full.named_parameters()) - {module}
    recovery, _ = ablated.training_step(batch, batch.availability)
    for term in terms:
        assert float(recovery.extras[term]) == 0.0, term
    for term in {"hddm", "ur", "disc", "adv", "rec", "c1", "c2"} - terms - ({"ur"} if switch == "hddm" else set()):
        assert float(recovery.extras[term]) != 0.0, term


def test_without_generator_and_reconstructors_the_recovery_is_mean_fill(dataset, batch):
    rec = _recoverer(dataset, hddm=False, ur=False, mr=False).eval()
    assert not rec.stochastic
    with torch.no_grad():
        out = rec.recover(batch, batch.availability)
    missing = batch.missing_entries(batch.availability)
    for k, m in enumerate(dataset.modalities):
        assert missing[:, :, k].any() and torch.all(out.features[m][missing[:, :, k]] == 0)
    unimodal_only = _recoverer(dataset, mr=False).eval()
    with torch.no_grad():
        torch.manual_seed(4)
        out = unimodal_only.recover(batch, batch.availability)
        torch.manual_seed(4)
        samples = unimodal_only.sample(batch, batch.availability, list(dataset.modalities), 10)
        refined = unimodal_only._unimodal(batch, samples)
    for k, m in enumerate(dataset.modalities):
        miss = missing[:, :, k]
        assert torch.allclose(out.features[m][miss], refined[m][miss])


def test_the_bilstm_extractor_feeds_the_generators_and_ignores_padding(dataset, batch):
    rec = _recoverer(dataset, extractor="bilstm").eval()
    assert set(rec.extractors) == set(dataset.modalities)
    assert any(isinstance(x, torch.nn.LSTM) and x.bidirectional for x in rec.extractors.modules())
    assert not len(_recoverer(dataset).extractors)
    m = dataset.modalities[0]
    x = batch.features[m] * batch.availability[:, :, 0, None]
    out = rec.extractors[m](x, batch.availability[:, :, 0], batch.utterance_mask)
    assert torch.all(out[~batch.utterance_mask] == 0)
    # Two more padded utterances change nothing on the real ones.
    pad = torch.nn.functional.pad
    longer = rec.extractors[m](pad(x, (0, 0, 0, 2)), pad(batch.availability[:, :, 0], (0, 2)),
                               pad(batch.utterance_mask, (0, 2)))
    assert torch.allclose(longer[:, :x.shape[1]], out, atol=1e-6)
    _, losses = rec.train().training_step(batch, batch.availability)
    assert all(torch.isfinite(v) for v in losses.values())


@pytest.mark.parametrize("kwargs", [
    {"optimisation": "paper"},
    {"stages": "two"},
    {"stages": "two", "optimisation": "paper"},
    {"extractor": "bilstm"},
    {"hddm": False, "disc": False},
])
def test_every_new_setting_trains_through_the_trainer(dataset, kwargs):
    cfg = RunConfig.from_dict(CONFIG).with_settings(
        [f"recoverer_kwargs.{k}={str(v).lower()}" for k, v in kwargs.items()])
    trained = mer.train(dataset, recoverer="rohydr", masks=0.3, config=cfg, epochs=1, seed=1,
                        recoverer_kwargs={**SMALL, **cfg.recoverer_kwargs})
    assert trained.model.recoverer.__dict__["stages"] == kwargs.get("stages", "multi")
    assert all(v == v for v in trained.evaluate(dataset, "test").values())  # no NaN
