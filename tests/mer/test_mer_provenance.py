"""A run records the data it was given (a DataConfig that rebuilds it, or in-memory data with its
fingerprint), `mer evaluate` asks for --data when it cannot rebuild it, and every JSON a command
prints is strict JSON (NaN → null)."""

import json

import numpy as np
import pytest

import mer
from mer.cli import main
from mer.config import RunConfig, parse_setting
from mer.data import ConversationDataset
from mer.data.source import IN_MEMORY, DataConfig, describe_data, load_data
from mer.training import dataset_fingerprint

TINY = {"model": {"dim": 8, "head_hidden": 8, "gcn_layers": 1},
        "train": {"epochs": 1, "batch_size": 8, "patience": 0}}
SMALL = DataConfig("synthetic", {"seed": 0, "num_conversations": 12, "min_utterances": 3, "max_utterances": 6})
SMALL_FLAGS = ["--synthetic-conversations", "12", "--set", "data.options.min_utterances=3",
               "data.options.max_utterances=6"]


def _strict(text: str):
    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def _arrays_dataset() -> ConversationDataset:
    rng = np.random.default_rng(0)
    lengths = [3, 4, 2, 5, 3, 4, 3, 2, 4, 3]
    features = {m: [rng.normal(size=(n, 4)) for n in lengths] for m in ("t", "a")}
    labels = [rng.uniform(-3, 3, size=n) for n in lengths]
    return ConversationDataset.from_arrays(features, labels, name="my arrays",
                                           splits={"train": range(6), "valid": [6, 7], "test": [8, 9]})


def test_a_model_trained_on_arrays_records_in_memory_data_with_its_fingerprint(tmp_path):
    dataset = _arrays_dataset()
    trained = mer.train(dataset, "zero", masks="none", config=TINY, out_dir=tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())["data"]
    assert data["source"] == IN_MEMORY == trained.config.data.source
    assert data["options"] == {"name": "my arrays", "fingerprint": dataset_fingerprint(dataset)}


def test_a_dataset_from_load_data_keeps_the_data_config_it_came_from(tmp_path):
    config = DataConfig(SMALL.source, dict(SMALL.options), "classification")
    dataset = load_data(config)
    assert describe_data(dataset, "unused") == config
    mer.train(dataset, "zero", masks="none", config=TINY, out_dir=tmp_path)
    saved = RunConfig.from_file(tmp_path / "config.json").data
    assert saved == config
    # A view derived from it is other data: in memory.
    assert describe_data(dataset.split("train"), "sha256:x").source == IN_MEMORY


def test_load_data_refuses_an_in_memory_record():
    with pytest.raises(ValueError, match="given in memory .*'my arrays'.*cannot be rebuilt"):
        load_data(DataConfig(IN_MEMORY, {"name": "my arrays", "fingerprint": "sha256:0"}))


def test_evaluate_asks_for_data_in_one_line_when_the_run_was_trained_in_memory(tmp_path, capsys):
    run = tmp_path / "run"
    mer.train(_small_copy(), "zero",
              masks="none", config=TINY, out_dir=run)
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"mer evaluate: error: {run} was trained on in-memory data ('synthetic(seed=0)', "
                          "fingerprint sha256:")
    assert "pass --data FILE" in err
    # With the data named, it evaluates.
    assert main(["evaluate", str(run), "--data", "synthetic", *SMALL_FLAGS]) == 0
    record = _strict(capsys.readouterr().out)
    assert record["metrics"]["mae"] >= 0


def _small_copy() -> ConversationDataset:
    """The SMALL data, built without load_data (so the run cannot know how to rebuild it)."""
    from mer.data import synthetic_conversations

    return synthetic_conversations(**SMALL.options)


def test_evaluate_rebuilds_data_it_can_as_before(tmp_path, capsys):
    run = tmp_path / "run"
    mer.train(load_data(SMALL), "zero", masks="none", config=TINY, out_dir=run)
    assert main(["evaluate", str(run)]) == 0
    assert _strict(capsys.readouterr().out)["split"] == "test"


def test_train_prints_strict_json_when_a_metric_is_nan(tmp_path, capsys):
    # Nothing dropped: recovery_mse is NaN in memory and must print as null.
    code = main(["train", "--recoverer", "zero", "--protocol", "none", "--epochs", "1", *SMALL_FLAGS,
                 "--set", "model.dim=8", "model.head_hidden=8", "model.gcn_layers=1", "train.batch_size=8",
                 "--out", str(tmp_path / "run")])
    assert code == 0
    printed = _strict(capsys.readouterr().out)
    assert printed["test"]["recovery_mse"] is None


def test_evaluate_prints_and_writes_strict_json(tmp_path, capsys):
    run = tmp_path / "run"
    mer.train(load_data(SMALL), "zero", masks="none", config=TINY, out_dir=run)
    assert main(["evaluate", str(run), "--out", str(tmp_path / "m.json")]) == 0
    printed = _strict(capsys.readouterr().out)
    assert printed["metrics"]["recovery_mse"] is None
    assert _strict((tmp_path / "m.json").read_text()) == printed


# ------------------------------------------------------------------------------------- --set
def test_set_changes_any_setting_by_dotted_name_with_yaml_values():
    cfg = RunConfig().with_settings(["train.lr=3e-4", "model.dim=64", "recoverer_kwargs.steps=10",
                                     "protocol=0.3", "model.graph.past=1", "model.residual=false"])
    assert cfg.train.lr == 3e-4 and cfg.model.dim == 64 and cfg.recoverer_kwargs == {"steps": 10}
    assert cfg.protocol.kind == "random" and cfg.protocol.missing_rate == 0.3
    assert cfg.model.graph.past == 1 and cfg.model.residual is False
    assert parse_setting("model.kernel_sizes={t: 3, a: 5}") == ("model.kernel_sizes", {"t": 3, "a": 5})


@pytest.mark.parametrize("setting, message", [
    ("train.lrr=1", r"unknown setting 'train.lrr' \(did you mean 'train.lr'\?\); valid: train.epochs, "),
    ("trian.lr=1", r"unknown setting 'trian' \(did you mean 'train'\?\); valid: recoverer, "),
    ("train.lr=abc", r"train.lr must be a number, got 'abc' \(str\)"),
    ("train.epochs=1.5", r"train.epochs must be an integer, got 1.5"),
    ("train.epochs=true", r"train.epochs must be an integer, got True"),
    ("train.lr.x=1", r"'train.lr' is a setting, not a group"),
    ("model.dropout=1.5", r"dropout must be in \[0, 1\)"),
    ("lr", r"expected KEY=VALUE"),
])
def test_set_refuses_what_a_config_file_refuses_in_one_line(setting, message):
    with pytest.raises(ValueError, match=message) as info:
        RunConfig().with_settings([setting])
    assert "\n" not in str(info.value)


def test_cli_set_applies_over_the_config_file_and_under_the_flags(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("train: {epochs: 3, lr: 0.01, batch_size: 8}\nmodel: {dim: 8, head_hidden: 8, gcn_layers: 1}\n")
    run = tmp_path / "run"
    code = main(["train", "--recoverer", "zero", "--protocol", "none", "--config", str(config), *SMALL_FLAGS,
                 "--set", "train.lr=3e-4", "train.epochs=2", "--epochs", "1", "--out", str(run)])
    assert code == 0
    saved = RunConfig.from_file(run / "config.json")
    assert saved.train.lr == 3e-4  # --set over the file
    assert saved.train.epochs == 1  # the flag over --set
    assert saved.data.options["min_utterances"] == 3
    capsys.readouterr()
    assert main(["train", "--set", "train.lrr=1", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "did you mean 'train.lr'" in err


def test_evaluate_set_refuses_settings_the_weights_fix(tmp_path, capsys):
    run = tmp_path / "run"
    mer.train(load_data(SMALL), "zero", masks="none", config=TINY, out_dir=run)
    assert main(["evaluate", str(run), "--set", "model.dim=4"]) == 2
    assert "model.dim: fixed by the trained model" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--set", "protocol.kind=random", "protocol.missing_rate=0.5",
                 "train.eval_batch_size=2"]) == 0
    assert _strict(capsys.readouterr().out)["condition"] == "0.5"
