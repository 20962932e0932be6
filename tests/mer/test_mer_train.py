"""The trainer: learning, early stopping bookkeeping, resume after an interruption, configs, outputs."""

import copy
import json

import numpy as np
import pytest
import torch
import yaml

import mer
from mer.config import MissingProtocol, RunConfig
from mer.data import ConversationDataset, split_masks, synthetic_conversations
from mer.training import TrainedModel, load_checkpoint

SMALL = {
    "model": {"dim": 16, "head_hidden": 16, "gcn_layers": 2},
    "train": {"epochs": 2, "batch_size": 8, "patience": 0},
}


@pytest.fixture(scope="module")
def dataset():
    return synthetic_conversations(seed=0, num_conversations=40, max_utterances=12)


def _config(**train):
    cfg = RunConfig.from_dict(SMALL)
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg


def test_a_few_epochs_lower_the_validation_loss(dataset):
    trained = mer.train(dataset, recoverer="mean", masks=0.3, config=_config(epochs=5, lr=3e-3), seed=3)
    losses = [h["valid_loss"] for h in trained.history]
    assert len(losses) == 5
    assert min(losses[1:]) < losses[0] - 0.05, losses
    assert trained.best_epoch == 1 + int(np.argmin(losses))


def test_evaluate_returns_the_metric_keys_and_recovery_mse(dataset):
    trained = mer.train(dataset, recoverer="autoencoder", masks=0.5, config=_config(), seed=0,
                        recoverer_kwargs={"hidden": 16, "bottleneck": 8})
    metrics = trained.evaluate(dataset, "test")
    for key in ("acc2_has0", "acc2_non0", "f1_has0", "f1_non0", "acc5", "acc7", "mae", "corr",
                "recovery_mse"):
        assert key in metrics and np.isfinite(metrics[key]), key
    # Default masks = the training protocol with the run's seed: the cached test draw.
    explicit = trained.evaluate(dataset, "test", list(split_masks(dataset, "test", 0.5, seed=0)))
    assert explicit == metrics
    # Nothing dropped: the recovery error is undefined, not zero.
    assert np.isnan(trained.evaluate(dataset, "test", MissingProtocol(kind="none"))["recovery_mse"])
    assert trained.evaluate(dataset, "test", ("t",))["recovery_mse"] > 0


def test_classification_training_reports_accuracy_and_f1(dataset):
    cls = dataset.as_classification()
    trained = mer.train(cls, recoverer="zero", masks=("t", "a"), config=_config(epochs=1), seed=0)
    metrics = trained.evaluate(cls, "test")
    assert {"acc", "f1_weighted", "recovery_mse"} <= set(metrics)


class _Interrupt(Exception):
    pass


def test_resume_continues_from_the_saved_epoch_with_identical_optimizer_state(dataset, tmp_path):
    cfg = _config(epochs=3)
    reference = mer.train(dataset, recoverer="autoencoder", masks=0.4, config=cfg, seed=5,
                          recoverer_kwargs={"hidden": 16, "bottleneck": 8}, out_dir=tmp_path / "ref")

    def stop_after_two(record):
        if record["epoch"] == 2:
            raise _Interrupt

    run = tmp_path / "run"
    with pytest.raises(_Interrupt):
        mer.train(dataset, recoverer="autoencoder", masks=0.4, config=cfg, seed=5,
                  recoverer_kwargs={"hidden": 16, "bottleneck": 8}, out_dir=run, on_epoch_end=stop_after_two)
    saved = load_checkpoint(run / "last.pt")
    assert saved["epoch"] == 2
    assert not (run / "best.pt").exists()

    seen = []
    resumed = mer.train(dataset, recoverer="autoencoder", masks=0.4, config=cfg, seed=5,
                        recoverer_kwargs={"hidden": 16, "bottleneck": 8}, out_dir=run,
                        on_epoch_end=lambda r: seen.append(r["epoch"]))
    assert seen == [3], "resumption must run only the epochs left"
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    # The optimizer state the resumed run started from is the one saved after epoch 2 ...
    ref_ckpt = load_checkpoint(tmp_path / "ref" / "last.pt")
    final = load_checkpoint(run / "last.pt")
    assert final["optimizer"]["state"][0]["step"] == ref_ckpt["optimizer"]["state"][0]["step"]
    # ... so the run ends exactly where the uninterrupted one did.
    for key, value in ref_ckpt["optimizer"]["state"].items():
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.allclose(final["optimizer"]["state"][key][name], value[name], atol=1e-6)
    for name, p in reference.model.state_dict().items():
        assert torch.allclose(p, resumed.model.state_dict()[name], atol=1e-6), name
    assert resumed.history[-1]["valid_loss"] == pytest.approx(reference.history[-1]["valid_loss"], abs=1e-6)


def test_resume_restores_the_saved_optimizer_state_exactly(dataset, tmp_path):
    cfg = _config(epochs=2)
    mer.train(dataset, recoverer="autoencoder", masks=0.4, config=cfg, seed=1, out_dir=tmp_path,
              recoverer_kwargs={"hidden": 16, "bottleneck": 8})
    saved = load_checkpoint(tmp_path / "last.pt")
    captured = {}
    original = torch.optim.Adam.load_state_dict

    def spy(self, state):
        original(self, state)
        captured["state"] = copy.deepcopy(self.state_dict())  # Adam updates its tensors in place

    torch.optim.Adam.load_state_dict = spy
    try:
        mer.train(dataset, recoverer="autoencoder", masks=0.4, config=cfg, seed=1, out_dir=tmp_path,
                  recoverer_kwargs={"hidden": 16, "bottleneck": 8}, epochs=3)
    finally:
        torch.optim.Adam.load_state_dict = original
    loaded = captured["state"]["state"]
    for key, value in saved["optimizer"]["state"].items():
        assert torch.equal(loaded[key]["step"], value["step"])
        assert torch.equal(loaded[key]["exp_avg"], value["exp_avg"])
        assert torch.equal(loaded[key]["exp_avg_sq"], value["exp_avg_sq"])


def test_resume_refuses_a_different_config(dataset, tmp_path):
    mer.train(dataset, recoverer="zero", masks=0.3, config=_config(epochs=1), seed=0, out_dir=tmp_path)
    with pytest.raises(ValueError, match="config differs in .*protocol.missing_rate"):
        mer.train(dataset, recoverer="zero", masks=0.5, config=_config(epochs=2), seed=0, out_dir=tmp_path)


def test_a_saved_model_keeps_the_recoverer_settings_it_was_trained_with(dataset, tmp_path):
    given = {"hidden": 16, "bottleneck": 8}
    mer.train(dataset, recoverer="autoencoder", masks=0.3, config=_config(epochs=1), seed=0,
              recoverer_kwargs=given, out_dir=tmp_path)
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["recoverer_settings"] == {"hidden": 16, "bottleneck": 8, "num_blocks": 3, "dropout": 0.1}

    def dropout_of(model):
        return {m.p for m in model.model.recoverer.modules() if isinstance(m, torch.nn.Dropout)}

    # As if written by a release whose default dropout was 0.3: loading builds what was trained.
    torch.save({**best, "recoverer_settings": {**best["recoverer_settings"], "dropout": 0.3}}, tmp_path / "old.pt")
    loaded = TrainedModel.load(tmp_path / "old.pt")
    assert dropout_of(loaded) == {0.3} and loaded.config.recoverer_kwargs["dropout"] == 0.3
    # A file from before the settings were recorded is built from its config and today's defaults.
    torch.save({k: v for k, v in best.items() if k != "recoverer_settings"}, tmp_path / "older.pt")
    assert dropout_of(TrainedModel.load(tmp_path / "older.pt")) == {0.1}
    # Resuming under other defaults than the saved run's is refused, naming the setting.
    last = load_checkpoint(tmp_path / "last.pt")
    torch.save({**last, "recoverer_settings": {**last["recoverer_settings"], "dropout": 0.3}}, tmp_path / "last.pt")
    with pytest.raises(ValueError, match=r"config differs in \['recoverer_settings.dropout'\]"):
        mer.train(dataset, recoverer="autoencoder", masks=0.3, config=_config(epochs=2), seed=0,
                  recoverer_kwargs=given, out_dir=tmp_path)


def test_a_run_writes_config_seed_metrics_and_checkpoints_atomically(dataset, tmp_path):
    trained = mer.train(dataset, recoverer="zero", masks=0.3, config=_config(epochs=2), seed=7,
                        out_dir=tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    # No temp files left; the run lock's file stays, released (empty).
    assert names == [".lock", "best.pt", "config.json", "history.csv", "last.pt", "metrics.json",
                     "train.log"], names
    assert (tmp_path / ".lock").read_text() == ""
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["seed"] == 7 and config["recoverer"] == "zero"
    assert RunConfig.from_dict(config) == trained.config
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["seed"] == 7 and len(metrics["history"]) == 2
    assert metrics["dataset"]["fingerprint"] == mer.training.dataset_fingerprint(dataset)
    assert load_checkpoint(tmp_path / "best.pt")["dataset_info"]["fingerprint"] == metrics["dataset"]["fingerprint"]
    assert set(metrics["test"]) >= {"acc2_non0", "recovery_mse"}
    loaded = TrainedModel.load(tmp_path)
    assert loaded.evaluate(dataset, "test") == trained.evaluate(dataset, "test")


def test_run_config_round_trips_through_json_and_yaml(tmp_path):
    cfg = RunConfig(recoverer="imder", recoverer_kwargs={"steps": 7, "channels": [8, 16]},
                    protocol=MissingProtocol("fixed", pattern=("t", "v")), seed=11)
    cfg.model.kernel_sizes = {"t": 3, "a": 1, "v": 5}
    cfg.model.graph.past = 4
    cfg.to_json(tmp_path / "c.json")
    cfg.to_yaml(tmp_path / "c.yaml")
    assert RunConfig.from_file(tmp_path / "c.json") == cfg
    assert RunConfig.from_file(tmp_path / "c.yaml") == cfg
    assert yaml.safe_load(cfg.to_yaml())["protocol"]["pattern"] == ["t", "v"]
    with pytest.raises(ValueError, match="unknown TrainConfig settings \\['epoch'\\]"):
        RunConfig.from_dict({"train": {"epoch": 3}})


def test_bad_inputs_raise_clear_errors(dataset):
    # The error lists the valid names (the recoverer registry's wording).
    with pytest.raises(ValueError, match="unknown recoverer 'nope'.*'zero'"):
        mer.train(dataset, recoverer="nope", masks=0.3, config=_config())
    with pytest.raises(ValueError, match="outside \\[0, \\(M-1\\)/M"):
        mer.train(dataset, recoverer="zero", masks=0.7, config=_config())
    with pytest.raises(ValueError, match="unknown modalities \\['x'\\]"):
        mer.train(dataset, recoverer="zero", masks=("x",), config=_config())
    no_valid = dataset.subset(range(10), split_name="train")
    with pytest.raises(ValueError, match="empty 'valid' split"):
        mer.train(no_valid, recoverer="zero", config=_config())


def test_from_arrays_dataset_with_single_utterance_conversations_trains_end_to_end():
    rng = np.random.default_rng(0)
    sizes = [1, 1, 3, 2, 1, 4, 1, 2]
    ds = ConversationDataset.from_arrays(
        {"t": [rng.normal(size=(n, 3)) for n in sizes], "a": [rng.normal(size=(n, 2)) for n in sizes]},
        labels=[rng.uniform(-3, 3, size=n) for n in sizes],
        splits={"train": [0, 1, 2, 3, 4], "valid": [5], "test": [6, 7]},
    )
    trained = mer.train(ds, recoverer="autoencoder", masks=0.5, config=_config(epochs=1), seed=0)
    assert set(trained.evaluate(ds, "test")) >= {"mae", "recovery_mse"}


FAST = {
    "autoencoder": {"hidden": 16, "bottleneck": 8, "num_blocks": 2},
    "imder": {"steps": 3, "train_steps": 2, "channels": (8, 16), "token_dim": 8, "time_dim": 8},
    "gsdnet": {"hidden_dim": 16, "num_layers": 1, "sampling_steps": 2},
}


@pytest.mark.parametrize("name", mer.available_recoverers())
@pytest.mark.parametrize("modalities", [("t", "a"), ("t", "a", "v", "x")], ids=["M2", "M4"])
def test_every_recoverer_trains_and_evaluates_end_to_end_for_two_and_four_modalities(name, modalities):
    rng = np.random.default_rng(1)
    sizes = [3, 5, 2, 6, 4, 3, 5, 2]
    ds = ConversationDataset.from_arrays(
        {m: [rng.normal(size=(n, 2 + k)) for n in sizes] for k, m in enumerate(modalities)},
        labels=[rng.uniform(-3, 3, size=n) for n in sizes],
        speakers=[rng.integers(0, 2, size=n) for n in sizes],
        splits={"train": [0, 1, 2, 3, 4], "valid": [5], "test": [6, 7]},
    )
    trained = mer.train(ds, recoverer=name, masks=0.4, config=_config(epochs=1), seed=0,
                        recoverer_kwargs=FAST.get(name, {}))
    metrics = trained.evaluate(ds, "test")
    assert np.isfinite(metrics["mae"]) and np.isfinite(metrics["recovery_mse"])


def test_a_fresh_start_cut_short_never_leaves_the_earlier_runs_weights_beside_its_config(dataset, tmp_path):
    mer.train(dataset, recoverer="zero", masks=0.3, config=_config(epochs=1), seed=0, out_dir=tmp_path)
    assert (tmp_path / "best.pt").is_file()

    def cut(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # resume=False: start over, and stop after the first epoch
        mer.train(dataset, recoverer="mean", masks=0.3, config=_config(epochs=3), seed=0, out_dir=tmp_path,
                  resume=False, on_epoch_end=cut)
    # The zero run's best.pt is gone rather than evaluated as the mean run; last.pt is the new run's.
    assert not (tmp_path / "best.pt").exists()
    assert load_checkpoint(tmp_path / "last.pt")["config"]["recoverer"] == "mean"
    assert json.loads((tmp_path / "metrics.json").read_text())["recoverer"] == "mean"
    assert json.loads((tmp_path / "config.json").read_text())["recoverer"] == "mean"


def test_fewer_epochs_than_a_finished_run_holds_says_what_it_returns(dataset, tmp_path, caplog):
    import logging

    first = mer.train(dataset, recoverer="zero", masks=0.3, config=_config(epochs=2), seed=0, out_dir=tmp_path)
    with caplog.at_level(logging.INFO, logger="mer.training"):
        again = mer.train(dataset, recoverer="zero", masks=0.3, config=_config(epochs=1), seed=0, out_dir=tmp_path)
    assert "already finished after epoch 2/1 (it holds 2 epochs, more than the 1 asked" in caplog.text
    assert len(again.history) == len(first.history) == 2
